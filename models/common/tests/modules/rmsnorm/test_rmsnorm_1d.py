# SPDX-License-Identifier: Apache-2.0
"""RMSNorm1D: variant selection, forwards on 1x1/1x2/1x8 against a torch reference, bad input."""

import types

import pytest
import torch
import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D, RMSNorm1DConfig


def _host_mesh(shape):
    return types.SimpleNamespace(shape=shape, get_num_devices=lambda: shape[0] * shape[1])


def _resolved(dim, shape, **overrides):
    config = RMSNorm1DConfig(LazyWeight(torch.ones(dim)), mesh_device=_host_mesh(shape), tt_ccl=object(), **overrides)
    return config.resolve()


@pytest.mark.parametrize(
    "dim, shape, fractured, distributed",
    [(2048, (1, 1), False, False), (4096, (1, 8), True, False), (5120, (1, 8), True, True), (8192, (1, 2), True, True)],
)
def test_variants_follow_tttv1_distributed_norm(dim, shape, fractured, distributed):
    cfg = _resolved(dim, shape)
    assert (cfg.input_fractured, cfg.prefill_distributed) == (fractured, distributed)


def test_sharded_decode_config_by_hand():
    cfg = _resolved(4096, (1, 1))
    # grid = find_grid(4096 / 32 = 128 tiles): 32 cores (4 rows x 8 cols); block_w = 4096 / 32 / 32 = 4
    assert (cfg.decode_core_grid.y, cfg.decode_core_grid.x) == (4, 8)
    pc = cfg.decode_program_config
    assert (pc.block_w, pc.block_h, pc.subblock_w) == (4, 1, 4)
    assert cfg.decode_memcfg.shard_spec.shape == [32, 128]
    assert cfg.compute_kernel_config.math_fidelity == ttnn.MathFidelity.HiFi2


def test_interleaved_decode_for_qk_norms():
    cfg = _resolved(128, (1, 8), input_fractured=False, decode_sharded=False)
    assert cfg.decode_program_config is None and cfg.decode_memcfg == ttnn.L1_MEMORY_CONFIG
    assert cfg.decode_input_memcfg == ttnn.L1_MEMORY_CONFIG and not cfg.prefill_distributed


def _reference(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


# (mesh, dim, eps) for the shipped models each mesh runs: N150 up to Llama-3.1-8B (wider norms do not fit one
# device's L1 on the local prefill path), N300 up to the 14B/phi-4 class, T3K up to 70B.
MESH_DIMS = [
    pytest.param((1, 1), 2048, 1e-5, id="1x1-2048"),
    pytest.param((1, 1), 4096, 1e-5, id="1x1-4096"),
    pytest.param((1, 2), 3584, 1e-6, id="1x2-3584"),
    pytest.param((1, 2), 5120, 1e-5, id="1x2-5120"),
    pytest.param((1, 8), 4096, 1e-5, id="1x8-4096"),
    pytest.param((1, 8), 5120, 1e-6, id="1x8-5120"),
    pytest.param((1, 8), 8192, 1e-5, id="1x8-8192"),
]


@pytest.mark.parametrize("ttnn_mesh_device, dim, eps", MESH_DIMS, indirect=["ttnn_mesh_device"])
@pytest.mark.parametrize("mode, rows", [("decode", 32), ("prefill", 128), ("prefill", 1024)])
def test_rmsnorm_1d_forward(ttnn_mesh_device, dim, eps, mode, rows, reference_check):
    mesh = ttnn_mesh_device
    weight, x = torch.randn(dim), torch.randn(1, 1, rows, dim)
    norm = RMSNorm1D(LazyWeight(weight), mesh_device=mesh, eps=eps)
    forward = norm.decode_forward if mode == "decode" else norm.prefill_forward
    out = forward(LazyWeight(x))
    entries = mesh.num_program_cache_entries()
    forward(LazyWeight(x))
    assert mesh.num_program_cache_entries() == entries, "the second call must hit the program cache"
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, rows, dim)] * mesh.get_num_devices()
    expected = norm.config.decode_memcfg if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
    assert out.memory_config() == expected
    first_device = ttnn.to_torch(ttnn.get_device_tensors(out)[0]).float()
    reference_check(_reference(x, weight, eps), first_device, min_pcc=0.999)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_qk_norm_on_heads(ttnn_mesh_device, reference_check):
    weight, x = torch.randn(128), torch.randn(1, 32, 8, 128)
    norm = RMSNorm1D(LazyWeight(weight), mesh_device=ttnn_mesh_device, input_fractured=False, decode_sharded=False)
    out = norm.decode_forward(LazyWeight(x))
    assert tuple(out.shape) == (1, 32, 8, 128) and out.memory_config() == ttnn.L1_MEMORY_CONFIG
    reference_check(_reference(x, weight, 1e-5), ttnn.to_torch(ttnn.get_device_tensors(out)[0]).float(), 0.999)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_bad_input(ttnn_mesh_device):
    with pytest.raises(ValueError, match="must be a multiple of 32"):
        RMSNorm1D(LazyWeight(torch.ones(100)), mesh_device=ttnn_mesh_device)
    with pytest.raises(ValueError, match="cannot be width-split into whole tiles over 2 devices"):
        RMSNorm1D(LazyWeight(torch.ones(96)), mesh_device=ttnn_mesh_device)
    norm = RMSNorm1D(LazyWeight(torch.ones(2048)), mesh_device=ttnn_mesh_device)
    wrong = ttnn.from_torch(
        torch.ones(1, 1, 32, 1024),
        layout=ttnn.TILE_LAYOUT,
        device=ttnn_mesh_device,
        mesh_mapper=ttnn.ReplicateTensorToMesh(ttnn_mesh_device),
    )
    with pytest.raises(ValueError, match="is not the configured"):
        norm.decode_forward(wrong)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_rmsnorm_1d_rejects_galaxy(ttnn_mesh_device):
    with pytest.raises(ValueError, match="Galaxy needs a 2D norm"):
        RMSNorm1D(LazyWeight(torch.ones(8192)), mesh_device=ttnn_mesh_device)
