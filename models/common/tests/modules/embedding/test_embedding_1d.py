# SPDX-License-Identifier: Apache-2.0
"""Embedding1D: TTTv1's defaults by hand, forwards on 1x1/1x2/1x8 against nn.Embedding, the TTTv1 bridge, bad input."""

import types

import pytest
import torch
import ttnn

from models.common.modules.embedding.embedding_1d import Embedding1D, Embedding1DConfig
from models.common.modules.lazy_weight import LazyWeight
from models.common.testing import numerics
from models.common.tests.modules.embedding.cases import (
    EMBEDDING_1D_CASES,
    SAME_TABLE_AS_SHIPPED,
    UPSTREAM_1D,
    UPSTREAM_2D,
)

MIN_PCC = 0.9999  # a bfloat16 lookup is exact up to the table's own rounding (upstream asks 0.999)


def _host_mesh(shape):
    return types.SimpleNamespace(shape=shape, get_num_devices=lambda: shape[0] * shape[1])


def test_defaults_by_hand():
    """Llama-3.1-8B on 1x8 (TTTv1 embedding.py + model_config.py): a row-major bfloat16 table in DRAM
    (EMB_WEIGHTS_MEMCFG); decode output DECODE_RESIDUAL_MEMCFG = dim / 8 = 512 columns width-sharded on
    dram_shard_core_grid_for_k(512) = find_grid(16 tiles) = 16 cores (2 rows x 8): [32, 512 / 16 = 32] shards."""
    weight = LazyWeight(torch.empty(128256, 4096, device="meta"))
    cfg = Embedding1DConfig(weight, mesh_device=_host_mesh((1, 8))).resolve()
    assert (cfg.vocab_size, cfg.dim) == (128256, 4096)
    assert cfg.weight_dtype == ttnn.bfloat16 and cfg.weight_memcfg == ttnn.DRAM_MEMORY_CONFIG
    assert cfg.prefill_output_memcfg == ttnn.DRAM_MEMORY_CONFIG
    spec = cfg.decode_output_memcfg.shard_spec
    assert cfg.decode_output_memcfg.memory_layout == ttnn.TensorMemoryLayout.WIDTH_SHARDED
    assert spec.shape == [32, 32] and spec.grid.num_cores() == 16


_BUILT = {}  # (vocab, dim) -> (mesh, Embedding1D, table): one at a time (cases run grouped by mesh and table shape)


def _embedding(mesh, vocab, dim):
    """The Embedding1D of a seeded bfloat16 table on ``mesh``, shared by that mesh's cases of this table shape
    (drawing and uploading a 128256-row table costs seconds, a lookup does not)."""
    built = _BUILT.get((vocab, dim))
    if built is None or built[0] is not mesh:
        _BUILT.clear()
        generator = torch.Generator().manual_seed(1)
        table = torch.randn(vocab, dim, generator=generator, dtype=torch.bfloat16)
        built = _BUILT[(vocab, dim)] = mesh, Embedding1D(LazyWeight(table), mesh_device=mesh), table
    return built[1:]


def _ids(count, vocab, seed=0):
    return torch.randint(vocab, (1, count), generator=torch.Generator().manual_seed(seed))


def _to_host(out, mesh):
    """Every device's slice of ``dim``, concatenated."""
    return ttnn.to_torch(out, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()


def _check(out, reference, mesh, reference_check):
    reference_check(reference, _to_host(out, mesh), min_pcc=MIN_PCC)


def test_upstream_tables_are_shipped_configs():
    """The (vocab, dim) upstream states for each listed model is the shipped config's (or its stand-in's)."""
    from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR, load_hf_config, text_config

    listed = {model: dims for model, (dims, _) in UPSTREAM_1D.items()} | UPSTREAM_2D
    for upstream_model, dims in listed.items():
        config = text_config(
            load_hf_config(MODEL_PARAMS_DIR / SAME_TABLE_AS_SHIPPED.get(upstream_model, upstream_model))
        )
        assert (config.vocab_size, config.hidden_size) == dims, upstream_model


# scope="module": a mesh stays open over its cases (pytest reopens an indirect fixture per param set otherwise)
@pytest.mark.parametrize("ttnn_mesh_device, case", EMBEDDING_1D_CASES, indirect=["ttnn_mesh_device"], scope="module")
def test_embedding_1d_vs_reference(ttnn_mesh_device, case, reference_check):
    """Upstream's collected cases against nn.Embedding, every device's slice read back; output shapes and memory
    configs. Cases whose host golden is too costly for CI run dispatched only (a meta table, every op validated)."""
    mesh, (mode, tokens, vocab, dim) = ttnn_mesh_device, case
    compare = reference_check.compares(numerics.shadow_affordable(dim=dim, mode=mode, seq_len=tokens))
    ids = _ids(tokens, vocab)
    ids[0, 0], ids[0, -1] = 0, vocab - 1  # the table's first and last rows
    with reference_check.running(compare):
        if compare:
            embedding, table = _embedding(mesh, vocab, dim)
        else:
            embedding = Embedding1D(LazyWeight(torch.empty(vocab, dim, device="meta")), mesh_device=mesh)
        forward = embedding.decode_forward if mode == "decode" else embedding.prefill_forward
        out = forward(LazyWeight(ids))
        expected_memcfg = embedding.config.decode_output_memcfg if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
        assert out.memory_config() == expected_memcfg
        devices = mesh.get_num_devices()
        assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, tokens, dim // devices)] * devices
        host = _to_host(out, mesh) if compare else None
    if compare:
        reference_check(table[ids].float()[None], host, min_pcc=MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_embedding_1d_device_ids_and_tttv1_call(ttnn_mesh_device, reference_check):
    """Ids already on the device (uint32, as TTTv1 uploads them), and TTTv1's forward(x, memory_config)."""
    mesh, vocab, dim = ttnn_mesh_device, 1024, 256
    table = torch.randn(vocab, dim).bfloat16()
    embedding = Embedding1D(LazyWeight(table), mesh_device=mesh)
    ids = _ids(32, vocab)
    tt_ids = ttnn.from_torch(
        ids, dtype=ttnn.uint32, layout=ttnn.ROW_MAJOR_LAYOUT, device=mesh, mesh_mapper=ttnn.ReplicateTensorToMesh(mesh)
    )
    reference = table.float()[ids][None]
    _check(embedding.decode_forward(tt_ids), reference, mesh, reference_check)
    tttv1 = embedding.forward(tt_ids, memory_config=ttnn.DRAM_MEMORY_CONFIG)
    assert tuple(tttv1.shape) == (1, 32, dim // 2)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_embedding_1d_bad_input(ttnn_mesh_device):
    mesh, vocab = ttnn_mesh_device, 1024
    embedding = Embedding1D(LazyWeight(torch.randn(vocab, 256).bfloat16()), mesh_device=mesh)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 1024\).*\[1024\]"):
        embedding.decode_forward(LazyWeight(torch.full((1, 32), vocab)))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 1024\).*\[-1\]"):
        embedding.prefill_forward(LazyWeight(torch.full((1, 32), -1)))
    with pytest.raises(ValueError, match="token ids must be an integer tensor"):
        embedding.prefill_forward(LazyWeight(torch.zeros(1, 32)))
    with pytest.raises(ValueError, match=r"token ids must be \[1, 32\] \(one token per user"):
        embedding.decode_forward(LazyWeight(torch.zeros(1, 16, dtype=torch.int64)))
    with pytest.raises(ValueError, match=r"token ids must be \[1, seq_len\]"):
        embedding.prefill_forward(LazyWeight(torch.zeros(2, 32, dtype=torch.int64)))
    wrong_dtype = ttnn.from_torch(
        torch.zeros(1, 32),
        dtype=ttnn.bfloat16,
        layout=ttnn.ROW_MAJOR_LAYOUT,
        device=mesh,
        mesh_mapper=ttnn.ReplicateTensorToMesh(mesh),
    )
    with pytest.raises(ValueError, match="token ids on device must be uint32"):
        embedding.decode_forward(wrong_dtype)
    with pytest.raises(ValueError, match=r"embedding weight must be \(vocab, dim\)"):
        Embedding1D(LazyWeight(torch.zeros(1, 1, vocab, 256)), mesh_device=mesh)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_embedding_1d_rejects_galaxy(ttnn_mesh_device):
    with pytest.raises(ValueError, match=r"Embedding1D runs on meshes .* not \(8, 4\); use Embedding2D on Galaxy"):
        Embedding1D(LazyWeight(torch.zeros(1024, 256)), mesh_device=ttnn_mesh_device)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_embedding_1d_vs_reference_from_model_args(ttnn_mesh_device, reference_check):
    """TTTv1's call site (Transformer: Embedding(mesh, args, cache, state_dict, dtype), then embd(tokens)) with
    Embedding1D.from_model_args, Llama-3.2-1B on 1x2, against nn.Embedding holding the state dict's table."""
    from models.tt_transformers.tt.model_config import ModelArgs

    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model="Llama-3.2-1B-Instruct", max_batch_size=32, max_seq_len=256)
    args.n_layers = 1
    state_dict = args.load_state_dict()
    embedding = Embedding1D.from_model_args(mesh, args, None, state_dict, ttnn.bfloat16)
    assert embedding.config.decode_output_memcfg == args.model_config["DECODE_RESIDUAL_MEMCFG"]
    ids = _ids(32, args.vocab_size)
    reference = torch.nn.Embedding.from_pretrained(state_dict["tok_embeddings.weight"].float())
    with torch.no_grad():
        _check(embedding.decode_forward(LazyWeight(ids)), reference(ids)[None], mesh, reference_check)
