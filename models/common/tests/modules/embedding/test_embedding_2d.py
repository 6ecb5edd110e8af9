# SPDX-License-Identifier: Apache-2.0
"""Embedding2D: TTTv1's Galaxy defaults by hand, upstream's Galaxy cases and ours on 8x4 and 4x8 against nn.Embedding,
1D meshes refused."""

import pytest
import torch
import ttnn

from models.common.modules.embedding.embedding_2d import Embedding2D, Embedding2DConfig
from models.common.modules.lazy_weight import LazyWeight
from models.common.testing import numerics
from models.common.tests.modules.embedding.cases import EMBEDDING_2D_CASES
from models.tt_transformers.tt.host_mesh import HostMesh

MIN_PCC = 0.9999


def test_defaults_by_hand():
    """TTTv1 on Galaxy (embedding.py, model_config.py): the bfloat16 row-major table in DRAM, its dim split over the
    mesh columns and replicated over the rows (ShardTensor2dMesh dims (None, 3)); the decode residual is L1
    interleaved (DECODE_RESIDUAL_MEMCFG on Galaxy)."""
    weight = LazyWeight(torch.empty(128256, 4096, device="meta"))
    cfg = Embedding2DConfig(weight, mesh_device=HostMesh.for_shape((8, 4))).resolve()
    assert cfg.decode_output_memcfg == ttnn.L1_MEMORY_CONFIG and cfg.prefill_output_memcfg == ttnn.DRAM_MEMORY_CONFIG
    assert cfg.weight_dtype == ttnn.bfloat16 and cfg.weight_memcfg == ttnn.DRAM_MEMORY_CONFIG
    assert cfg.MESH_MAPPING.shard_dims == (None, -1)


# scope="module": a mesh stays open over its cases (pytest reopens an indirect fixture per param set otherwise)
@pytest.mark.parametrize("ttnn_mesh_device, case", EMBEDDING_2D_CASES, indirect=["ttnn_mesh_device"], scope="module")
def test_embedding_2d_vs_reference(ttnn_mesh_device, case, reference_check):
    """Device (r, c) holds columns [c·dim/cols, (c+1)·dim/cols) of every embedding: mesh row 0's devices make the
    whole output. Cases whose host golden is too costly for CI run dispatched only (a meta table)."""
    mesh, (mode, tokens, vocab, dim) = ttnn_mesh_device, case
    rows, cols = tuple(mesh.shape)
    compare = reference_check.compares(numerics.shadow_affordable(dim=dim, mode=mode, seq_len=tokens))
    ids = torch.randint(vocab, (1, tokens), generator=torch.Generator().manual_seed(0))
    ids[0, 0], ids[0, -1] = 0, vocab - 1
    with reference_check.running(compare):
        if compare:
            table = torch.randn(vocab, dim, generator=torch.Generator().manual_seed(1)).bfloat16()
        else:
            table = torch.empty(vocab, dim, device="meta")
        embedding = Embedding2D(LazyWeight(table), mesh_device=mesh)
        out = (embedding.decode_forward if mode == "decode" else embedding.prefill_forward)(LazyWeight(ids))
        assert out.memory_config() == (ttnn.L1_MEMORY_CONFIG if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG)
        assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, tokens, dim // cols)] * (rows * cols)
        if compare:
            composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=(rows, cols), dims=(0, -1))
            host = ttnn.to_torch(out, mesh_composer=composer).float()
    if compare:
        reference_check(table[ids].float()[None], host[:1], min_pcc=MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_embedding_2d_bad_input(ttnn_mesh_device):
    embedding = Embedding2D(LazyWeight(torch.randn(1024, 256).bfloat16()), mesh_device=ttnn_mesh_device)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 1024\)"):
        embedding.decode_forward(LazyWeight(torch.full((1, 32), 5000)))


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_embedding_2d_rejects_1d_meshes(ttnn_mesh_device):
    with pytest.raises(ValueError, match=r"Embedding2D runs on meshes .* not \(1, 8\); use Embedding1D on 1D meshes"):
        Embedding2D(LazyWeight(torch.zeros(1024, 256)), mesh_device=ttnn_mesh_device)
