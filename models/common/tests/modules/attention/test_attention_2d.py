# SPDX-License-Identifier: Apache-2.0
"""Attention2D: Galaxy defaults, forwards on 8x4 / 4x8 against the HF attention layer (standard, paged,
paged-chunked), rejections both ways and bad input."""

import types

import pytest
import torch
import ttnn

from models.common.modules.attention.attention_2d import Attention2D, Attention2DConfig
from models.common.modules.lazy_weight import LazyWeight
from models.common.tests.modules.attention.hf_reference import (
    CHUNKED,
    DECODE_BATCH,
    PAGED,
    STANDARD,
    build,
    check_decode,
    check_prefill,
    hf_layer,
)


def _config(dims, shape, **overrides):
    dim, n_heads, n_kv_heads, head_dim = dims
    mesh = types.SimpleNamespace(shape=shape, get_num_devices=lambda: shape[0] * shape[1])
    qkv = head_dim * (n_heads + 2 * n_kv_heads)
    wqkv, wo = LazyWeight(torch.zeros(dim, qkv)), LazyWeight(torch.zeros(n_heads * head_dim, dim))
    return Attention2DConfig(
        wqkv, wo, n_heads, n_kv_heads, head_dim, 4096, mesh_device=mesh, tt_ccl=object(), **overrides
    )


def test_galaxy_defaults_split_heads_over_rows():
    cfg = _config((8192, 64, 8, 128), (8, 4)).resolve()
    # TTTv1 TG: one KV head group per mesh row (8 rows → 8 q heads and 1 kv head per device), no fused AG-MM
    assert (cfg.n_local_heads, cfg.n_local_kv_heads, cfg.use_fused_all_gather_matmul) == (8, 1, False)
    assert (cfg.wqkv_dtype, cfg.wo_dtype, cfg.kv_cache_dtype, cfg.ccl_dtype) == (ttnn.bfloat8_b,) * 4
    assert cfg.wqkv_memcfg == cfg.wo_memcfg == ttnn.DRAM_MEMORY_CONFIG  # TTTv1 TG weights: DRAM interleaved
    assert cfg.decode_input_memcfg == ttnn.L1_MEMORY_CONFIG and cfg.prefill_input_memcfg == ttnn.DRAM_MEMORY_CONFIG
    assert cfg.decode_xqkv_prg_config is None and cfg.prefill_wo_prg_config(2048) is None, "ttnn picks"
    assert cfg.num_all_gather_links == 2  # TTTv1 num_all_gather_links on Galaxy
    assert cfg.min_kv_prefill_shard_seqlen > cfg.max_seq_len  # TTTv1 TG never shards K/V for the cache fill
    # 4x8: 4 rows → 16 q heads and 2 kv heads per device
    assert (_config((8192, 64, 8, 128), (4, 8)).resolve().n_local_kv_heads) == 2


def test_galaxy_rejects_heads_that_do_not_split_over_rows():
    with pytest.raises(ValueError, match=r"n_heads \(28\) and n_kv_heads \(4\) must both divide over 8"):
        _config((3584, 28, 4, 128), (8, 4)).resolve()


MESHES_2D = [(8, 4), (4, 8)]
CASES = [
    pytest.param((8, 4), "Llama-3.3-70B", "prefill", 128, STANDARD),
    pytest.param((8, 4), "Llama-3.1-8B", "decode", 128, STANDARD),
    pytest.param((4, 8), "Qwen3-32B", "prefill", 256, CHUNKED),
    pytest.param((4, 8), "Llama-3.1-8B", "decode", 128, PAGED, marks=pytest.mark.slow),
    pytest.param((8, 4), "Llama-3.3-70B", "decode", 128, STANDARD, marks=pytest.mark.slow),
    pytest.param((8, 4), "Llama-3.3-70B", "prefill", 2048, PAGED, marks=pytest.mark.slow),
    pytest.param((8, 4), "Qwen3-32B", "decode", 128, PAGED, marks=pytest.mark.slow),
    pytest.param((4, 8), "Llama-3.3-70B", "prefill", 4096, CHUNKED, marks=pytest.mark.slow),
]


def _case_id(case):
    mesh, model, mode, length, variant = case.values
    return f"{mesh[0]}x{mesh[1]}-{model}-{mode}-{length}-{variant}"


def _to_host(tensor, mesh):
    """Every mesh row holds the whole output, split along dim over the columns: compose and keep one row."""
    rows, cols = tuple(mesh.shape)
    composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=(rows, cols), dims=(0, -1))
    return ttnn.to_torch(tensor, mesh_composer=composer).float()[:1]


@pytest.mark.parametrize(
    "ttnn_mesh_device, model, mode, length, variant",
    CASES,
    ids=[_case_id(c) for c in CASES],
    indirect=["ttnn_mesh_device"],
)
def test_attention_2d_vs_reference(ttnn_mesh_device, model, mode, length, variant, reference_check):
    check = check_prefill if mode == "prefill" else check_decode
    check(Attention2D, ttnn_mesh_device, model, length, variant, _to_host, reference_check)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_attention_2d_bad_input_and_dispatcher(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    config, layer, _ = hf_layer("Llama-3.2-1B")
    attention, rope = build(Attention2D, mesh, config, layer, DECODE_BATCH, 256, paged=False)
    with pytest.raises(ValueError, match="seq_len 64 must be a positive multiple of 128"):
        attention.prefill_forward(LazyWeight(torch.randn(1, 1, 64, 2048)), 64, rope.prefill_forward(64))
    with pytest.raises(ValueError, match="decode position 300 is past max_seq_len 256"):
        attention.decode_forward(LazyWeight(torch.zeros(1, 1, 32, 2048)), [300] * DECODE_BATCH, None)
    out = attention.forward(LazyWeight(torch.randn(1, 1, 128, 2048)), None, rope.prefill_forward(128), mode="prefill")
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, 128, 512)] * 32
    positions = [128] * DECODE_BATCH
    out = attention.forward(LazyWeight(torch.zeros(1, 1, 32, 2048)), positions, rope.decode_forward(positions))
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, 32, 512)] * 32


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_attention_2d_rejects_1d_meshes(ttnn_mesh_device):
    config, layer, _ = hf_layer("Llama-3.2-1B")
    with pytest.raises(ValueError, match="use Attention1D"):
        build(Attention2D, ttnn_mesh_device, config, layer, 1, 128, paged=False)
