# SPDX-License-Identifier: Apache-2.0
"""MLP2D: defaults, forwards on Galaxy 8x4 / 4x8 against a torch reference, rejections and bad input."""

import types

import pytest
import torch
import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_2d import MLP2D, MLP2DConfig

LLAMA_70B = (8192, 28672)  # (dim, hidden_dim) of Llama-3.3-70B
LLAMA_8B = (4096, 14336)  # (dim, hidden_dim) of Llama-3.1-8B


def _weights(dim, hidden, seed=0):
    generator = torch.Generator().manual_seed(seed)
    w1, w3 = torch.randn(dim, hidden, generator=generator), torch.randn(dim, hidden, generator=generator)
    return w1, torch.randn(hidden, dim, generator=generator), w3


def test_defaults_follow_upstream_mlp2d():
    mesh = types.SimpleNamespace(shape=(8, 4), get_num_devices=lambda: 32)
    w1, w2, w3 = (LazyWeight(w) for w in _weights(256, 1024))
    cfg = MLP2DConfig(w1=w1, w2=w2, w3=w3, mesh_device=mesh, tt_ccl=object(), topology=None).resolve()
    assert (cfg.w1_w3_dtype, cfg.w2_dtype, cfg.ccl_dtype, cfg.mul_dtype) == (ttnn.bfloat8_b,) * 4
    assert cfg.decode_input_memcfg == ttnn.L1_MEMORY_CONFIG and cfg.prefill_input_memcfg == ttnn.DRAM_MEMORY_CONFIG
    assert cfg.decode_w1_w3_prg_config is None and cfg.prefill_w2_prg_config(4096) is None, "ttnn picks"
    assert cfg.prefill_len_cutoff == 1024


_built: dict = {}


def _mlp_for(mesh, dims):
    """One MLP2D (and its host weights) per mesh and model dims, shared by that mesh's cases: weight conversion
    for 70B-sized weights dominates the test time otherwise."""
    key = (id(mesh), dims)
    if key not in _built:
        weights = _weights(*dims)
        _built.clear()  # keep one model's weights alive at a time
        _built[key] = (MLP2D(*(LazyWeight(w) for w in weights), mesh_device=mesh), weights)
    return _built[key]


def _reference(x, w1, w2, w3):
    return (torch.nn.functional.silu(x @ w1) * (x @ w3)) @ w2


CASES = [
    pytest.param(LLAMA_8B, "decode", 32, id="llama-8b-decode"),
    pytest.param(LLAMA_8B, "prefill", 2048, id="llama-8b-prefill-2048"),
    pytest.param(LLAMA_70B, "decode", 32, id="llama-70b-decode"),
    pytest.param(LLAMA_70B, "prefill", 128, id="llama-70b-prefill-128"),
    pytest.param(LLAMA_70B, "prefill", 4096, id="llama-70b-prefill-4096", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4), (4, 8)], ids=["8x4", "4x8"], indirect=True)
@pytest.mark.parametrize("dims, mode, seq_len", CASES)
def test_mlp_2d_forward(ttnn_mesh_device, dims, mode, seq_len, reference_check):
    mesh = ttnn_mesh_device
    rows, cols = tuple(mesh.shape)
    dim = dims[0]
    mlp, (w1, w2, w3) = _mlp_for(mesh, dims)
    x = torch.randn(1, 1, seq_len, dim)
    forward = mlp.decode_forward if mode == "decode" else lambda t: mlp.prefill_forward(t, seq_len)
    out = forward(LazyWeight(x))
    entries = mesh.num_program_cache_entries()
    forward(LazyWeight(x))
    assert mesh.num_program_cache_entries() == entries, "the second call must hit the program cache"
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, seq_len, dim // cols)] * (rows * cols)
    composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=(rows, cols), dims=(0, -1))
    per_row = ttnn.to_torch(out, mesh_composer=composer).float()  # every mesh row holds the whole output
    reference_check(_reference(x, w1, w2, w3), per_row[:1], min_pcc=0.98)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_mlp_2d_rejects_1d_meshes(ttnn_mesh_device):
    with pytest.raises(ValueError, match="use MLP1D on 1D meshes"):
        MLP2D(*(LazyWeight(w) for w in _weights(*LLAMA_8B)), mesh_device=ttnn_mesh_device)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_mlp_2d_bad_input(ttnn_mesh_device):
    mlp = MLP2D(*(LazyWeight(w) for w in _weights(*LLAMA_8B)), mesh_device=ttnn_mesh_device)
    with pytest.raises(ValueError, match="prefill seq_len 1536 must be a multiple of 1024"):
        mlp.prefill_forward(LazyWeight(torch.randn(1, 1, 1536, LLAMA_8B[0])), 1536)
