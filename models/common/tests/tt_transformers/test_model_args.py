# SPDX-License-Identifier: Apache-2.0
"""Host-only tests of TTTv1 ModelArgs: shipped configs on every mesh, program configs worked out by hand,
checkpoint loading round trips on tiny checkpoints, and the errors for a bad model selection."""

import json

import pytest
import torch
import ttnn
from transformers import AutoModelForCausalLM, LlamaConfig, Phi3Config, Qwen2Config, Qwen3Config

from models.tt_transformers.tt import reference
from models.tt_transformers.tt.host_mesh import HostMesh
from models.tt_transformers.tt.load_checkpoints import shipped_models
from models.tt_transformers.tt.model_config import (
    DecodersPrecision,
    ModelArgs,
    OpGroup,
    TensorGroup,
)

MESH_SHAPES = [(1, 1), (1, 2), (1, 8), (8, 4), (4, 8)]
# (dim, hidden_dim, n_heads, n_kv_heads, head_dim, n_layers, norm_eps, vocab_size, rope_theta, qk_norm), from the
# shipped config.json files (Llama vision: text_config, 100 layers minus 20 cross-attention layers)
SHIPPED = {
    "Llama-3.2-1B-Instruct": (2048, 8192, 32, 8, 64, 16, 1e-5, 128256, 500000.0, False),
    "Llama-3.2-3B-Instruct": (3072, 8192, 24, 8, 128, 28, 1e-5, 128256, 500000.0, False),
    "Llama-3.1-8B-Instruct": (4096, 14336, 32, 8, 128, 32, 1e-5, 128256, 500000.0, False),
    "Llama-3.1-70B-Instruct": (8192, 28672, 64, 8, 128, 80, 1e-5, 128256, 500000.0, False),
    "Llama-3.2-90B-Vision-Instruct": (8192, 28672, 64, 8, 128, 80, 1e-5, 128256, 500000.0, False),
    "Mistral-7B-Instruct-v0.3": (4096, 14336, 32, 8, 128, 32, 1e-5, 32768, 1000000.0, False),
    "Qwen2-7B-Instruct": (3584, 18944, 28, 4, 128, 28, 1e-6, 152064, 1000000.0, False),
    "Qwen2.5-7B-Instruct": (3584, 18944, 28, 4, 128, 28, 1e-6, 152064, 1000000.0, False),
    "Qwen2.5-72B-Instruct": (8192, 29568, 64, 8, 128, 80, 1e-6, 152064, 1000000.0, False),
    "Qwen2.5-Coder-32B-Instruct": (5120, 27648, 40, 8, 128, 64, 1e-6, 152064, 1000000.0, False),
    "Qwen3-32B": (5120, 25600, 64, 8, 128, 64, 1e-6, 151936, 1000000, True),
    "phi-4": (5120, 17920, 40, 10, 128, 40, 1e-5, 100352, 250000.0, False),
}
# TTTv1 pads these hidden dims (PAD_MLP_CORES 16 for Qwen2.5-7B, 32 for Qwen2.5-72B) to the nearest multiple of
# cores * 32 * devices: 18944 on 2 devices -> multiple of 1024 = 19456; 29568 on 1 / 2 / 8 / 32 devices -> multiple
# of 1024 / 2048 / 8192 / 32768 = 29696 / 30720 / 32768 / 32768. Every other model keeps its hidden dim.
PADDED_HIDDEN = {
    "Qwen2.5-7B-Instruct": {(1, 2): 19456},
    "Qwen2.5-72B-Instruct": {(1, 1): 29696, (1, 2): 30720, (1, 8): 32768, (8, 4): 32768, (4, 8): 32768},
}
# Meshes a model cannot use (upstream raises): Qwen2.5-7B only on 2 (or 4) devices, phi-4's 10 KV heads split
# over 1 or 2 mesh columns only, Qwen2-7B's 28 heads not over 8 columns and its dim 3584 not into Galaxy's LM-head
# rows of 32x32 tiles
UNSUPPORTED = {
    "Qwen2.5-7B-Instruct": {(1, 1): "only supported on 2 or 4", (1, 8): "2 or 4", (8, 4): "2 or 4", (4, 8): "2 or 4"},
    "phi-4": {(1, 8): "n_kv_heads", (8, 4): "n_kv_heads", (4, 8): "n_kv_heads"},
    "Qwen2-7B-Instruct": {(1, 8): "n_heads", (8, 4): "dim=3584 is not a multiple of 1024", (4, 8): "n_heads"},
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_MODEL", raising=False)
    monkeypatch.delenv("PAD_MLP_CORES", raising=False)


def model_args(model, shape, **kwargs):
    return ModelArgs(HostMesh.for_shape(shape), hf_model=model, **kwargs)


def test_every_listed_model_is_shipped():
    assert sorted(SHIPPED) == shipped_models()


@pytest.mark.parametrize("shape", MESH_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_shipped_model_on_mesh(model, shape):
    if shape in UNSUPPORTED.get(model, {}):
        with pytest.raises(ValueError, match=UNSUPPORTED[model][shape]):
            model_args(model, shape)
        return
    args = model_args(model, shape, max_batch_size=32)
    dim, hidden, heads, kv_heads, head_dim, layers, eps, vocab, theta, qk_norm = SHIPPED[model]
    assert (args.dim, args.unpadded_hidden_dim, args.n_heads, args.n_kv_heads, args.head_dim) == (
        dim,
        hidden,
        heads,
        kv_heads,
        head_dim,
    )
    assert args.hidden_dim == PADDED_HIDDEN.get(model, {}).get(shape, hidden)
    assert (args.n_layers, args.norm_eps, args.vocab_size, args.rope_theta, args.qk_norm) == (
        layers,
        eps,
        vocab,
        theta,
        qk_norm,
    )
    rows, cols = shape
    assert args.cluster_shape == [rows, cols]
    assert args.num_devices == rows * cols
    assert args.is_galaxy == (rows * cols == 32)
    assert args.num_all_gather_links == (2 if args.is_galaxy else 1)
    assert (args.num_reduce_scatter_links, args.ccl_dtype, args.tile_padded_batch_rows) == (1, ttnn.bfloat8_b, 32)
    assert args.qkv_size == head_dim * (2 * kv_heads + heads)
    assert args.n_local_heads == heads // cols
    assert args.min_kv_prefill_shard_seqlen == 32 * 64 / (kv_heads // cols)
    assert args.max_grid_size.y == (9 if args.is_galaxy else 8)
    mc = args.model_config
    for seq_len in (128, 1024, 4096):  # the callables build for short and long prefills
        for key in ("PREFILL_MLP_W1_W3_PRG_CONFIG", "PREFILL_MLP_W2_PRG_CONFIG", "WO_PREFILL_PROGCFG"):
            assert mc[key](seq_len) is not None
        mc["XQKV_PREFILL_PROGCFG"](seq_len)
        mc["KV_PREFILL_MEM_CFG"](seq_len)
        mc["SDPA_PROGCFG"](seq_len)
    assert ("FF1_3_TG_PROGCFG" in mc) == args.is_galaxy
    assert mc["DECODERS_OPTIMIZATIONS"] is args.optimizations


def test_llama_8b_t3k_program_configs_by_hand():
    args = model_args("meta-llama/Llama-3.1-8B-Instruct", (1, 8))
    mc = args.model_config
    assert (args.device_name, args.prefill_len_cutoff, args.instruct) == ("T3K", 1024, True)
    assert args.rope_scaling["rope_type"] == "llama3" and args.rope_scaling["factor"] == 8.0
    # Residual: find_grid(4096 / 8 / 32 = 16) -> 2x8 = 16 cores; shard [32, 4096 / 16 / 8 = 32]
    assert list(mc["DECODE_RESIDUAL_MEMCFG"].shard_spec.shape) == [32, 32]
    assert mc["DECODE_RESIDUAL_MEMCFG"].shard_spec.grid.num_cores() == 16
    # MLP grid: find_grid_k_n(128, 14336 / 8 / 32 = 56) -> 8 cores; input shard [32, 4096 / 8 = 512]
    assert list(mc["SHARDED_MLP_INPUT_MEMCFG"].shard_spec.shape) == [32, 512]
    # W1/W3: K 4096 / (32 * 8) = 16 -> in0_block_w 8; N 1792 / (32 * 8) = 7
    w1 = mc["DECODE_MLP_W1_W3_PRG_CONFIG"]
    assert (w1.in0_block_w, w1.per_core_M, w1.per_core_N) == (8, 1, 7)
    # W2: grid find_grid_k_n(56, 128) = 8; K 1792 / 256 = 7 -> in0_block_w 7; N 4096 / 256 = 16
    w2 = mc["DECODE_MLP_W2_PRG_CONFIG"]
    assert (w2.in0_block_w, w2.per_core_N) == (7, 16)
    assert list(mc["SHARDED_MLP2_INPUT_MEMCFG"].shard_spec.shape) == [32, 224]
    # QKV: qkv_size 128 * (2 * 8 + 32) = 6144, 768 per device; attn grid find_grid(128) = 32 cores;
    # in0_block_w = div(4096 / 1024 = 4) = 4; per_core_N = ceil(768 / 1024) = 1
    xqkv = mc["XQKV_DECODE_PROGCFG"]
    assert (xqkv.in0_block_w, xqkv.per_core_N) == (4, 1)
    # WO decode: K = 32 * 128 / 8 = 512 over 32 / 8 = 4 cores -> in0_block_w 4; N 4096 / (32 * 4) = 32
    wo = mc["ATTN_OUTPUT_PROGCFG"]
    assert (wo.in0_block_w, wo.per_core_N) == (4, 32)
    # Fused all-gather matmul: 8 devices and (4096 / 32 / 8 = 16) % 8 == 0; in0_block_w 4096 / 32 / 8 = 16,
    # per_core_N = 4096 / 8 / 32 / 8 = 2 -> out_subblock_w 2
    assert mc["USE_FUSED_ALL_GATHER_MATMUL"]
    ag = mc["ATTN_ALL_GATHER_MATMUL_PROGCFG"]
    assert (ag.in0_block_w, ag.per_core_N, ag.out_subblock_w) == (16, 2, 2)
    # WO prefill (fused case): K 512, N = 1024 (1024 % 512 == 0), grid find_prefill_grid(8, 16) = (8, 8);
    # per_core_M = ceil(128 / 256) = 1, per_core_N = ceil(1024 / 256) = 4, in0_block_w = div(512 / 256 = 2) = 2
    wo_prefill = mc["WO_PREFILL_PROGCFG"](128)
    assert (wo_prefill.per_core_M, wo_prefill.per_core_N, wo_prefill.in0_block_w, wo_prefill.out_subblock_w) == (
        1,
        4,
        2,
        4,
    )
    # Prefill W1/W3 at 1024 rows: grid (8, 8); per_core_M = ceil(1024 / 256) = 4; per_core_N = ceil(1792 / 256) = 7;
    # in0_block_w = div(4096 / 256 = 16) = 8; out_subblock_w(7) = 1
    p1 = mc["PREFILL_MLP_W1_W3_PRG_CONFIG"](1024)
    assert (p1.per_core_M, p1.per_core_N, p1.in0_block_w, p1.out_subblock_w) == (4, 7, 8, 1)
    # Prefill W2: K = 14336 (whole hidden dim, as TTTv1), grid find_prefill_grid(8, 448) = (8, 8);
    # in0_block_w = div(14336 / 256 = 56) = 8; per_core_N = ceil(4096 / 256) = 16 -> out_subblock_w 4;
    # 8192 rows are capped at the cutoff: per_core_M = 1024 / 256 = 4
    p2 = mc["PREFILL_MLP_W2_PRG_CONFIG"](8192)
    assert (p2.per_core_M, p2.per_core_N, p2.in0_block_w, p2.out_subblock_w) == (4, 16, 8, 4)
    # XQKV prefill at 128: per_core_M = ceil(128 / 32 / 8) = 1, per_core_N = ceil(6144 / 8 / 32 / 8) = 3
    xp = mc["XQKV_PREFILL_PROGCFG"](128)
    assert (xp.per_core_M, xp.per_core_N, xp.fuse_batch) == (1, 3, True)
    # LM head: 8 rows x 8 cols divide 4096 / 32 -> 64 cores, input shard [32, 4096 / 64 = 64]
    assert (args.lm_head_core_grid.x, args.lm_head_core_grid.y) == (8, 8)
    assert list(mc["LM_HEAD_INPUT_MEMCFG"].shard_spec.shape) == [32, 64]
    assert args.max_columns_per_device_lm_head == 668 * 64
    # Norms on the attention grid: block_w = 4096 / 32 cores / 32 = 4
    norm = mc["SHARDED_NORM_ATTN_PRGM_CFG"]
    assert (norm.block_w, norm.subblock_w, norm.block_h) == (4, 4, 1)
    assert not args.is_distributed_norm("prefill") and not args.is_distributed_norm("decode")


def test_llama_70b_galaxy_program_configs_by_hand():
    args = model_args("Llama-3.1-70B-Instruct", (8, 4))
    mc = args.model_config
    assert (args.device_name, args.is_70b, args.padded_vocab_size) == ("TG", True, 128 * 1024)
    assert mc["DECODE_RESIDUAL_MEMCFG"] == ttnn.L1_MEMORY_CONFIG
    assert mc["ATTN_OUTPUT_PROGCFG"] is None
    # LM head on Galaxy: 4 rows since 8192 % (32 * 32 * 4) == 0; then 4 x 8 cores divide 8192 / 32
    assert (args.lm_head_core_grid.x, args.lm_head_core_grid.y) == (8, 4)
    # XQKV decode for 70B on Galaxy: grid (8, 5), in0_block_w 2
    xqkv = mc["XQKV_DECODE_PROGCFG"]
    assert (xqkv.compute_with_storage_grid_size.y, xqkv.in0_block_w) == (5, 2)
    # FF1_3_TG: [32 x 2048] x [2048 x 3584] on 8x2: in0_block_w = div(2048 / 512 = 4) = 4; per_core_N = 112 / 16 = 7
    ff1 = mc["FF1_3_TG_PROGCFG"]
    assert (ff1.in0_block_w, ff1.per_core_N, ff1.out_subblock_w) == (4, 7, 1)
    # FF2_TG: [32 x 3584] x [3584 x 2048]: in0_block_w = div(3584 / 512 = 7) = 7; per_core_N = 64 / 16 = 4
    ff2 = mc["FF2_TG_PROGCFG"]
    assert (ff2.in0_block_w, ff2.per_core_N) == (7, 4)
    # Prefill W1/W3 at 128: grid (8, min(128 / 32, 4) = 4); K = 8192 / 8 = 1024, N = 28672 / 4 = 7168;
    # per_core_M = ceil(128 / (32 * 4)) = 1, per_core_N = ceil(7168 / 256) = 28, in0_block_w = div(1024 / 128) = 8,
    # out_subblock_w forced to 1 on Galaxy
    p1 = mc["PREFILL_MLP_W1_W3_PRG_CONFIG"](128)
    assert (p1.per_core_M, p1.per_core_N, p1.in0_block_w, p1.out_subblock_w) == (1, 28, 8, 1)
    # Attention input: [32, nearest_32(8192 / (8 * 4) / 4 = 64)] on 4 x 8 cores
    assert list(mc["SHARDED_ATTN_INPUT_MEMCFG"].shard_spec.shape) == [32, 64]
    # dim 8192: FF2 reduce-scatter output [32, 8192 / 8 / 4 = 256] on one row of 8 cores
    assert list(mc["FF2_OUT_REDUCE_SCATTER_MEMCFG"].shard_spec.shape) == [32, 256]
    assert args.is_distributed_norm("decode") and args.is_distributed_norm("prefill")
    # accuracy mode keeps BFP4 MLPs for 70B
    opt = args.optimizations
    assert opt.get_tensor_dtype(0, TensorGroup.FF1_FF3) == ttnn.bfloat4_b
    assert opt.get_math_fidelity(0, OpGroup.LI_FF1_FF3, args) is args.compute_kernel_config_lofi


def test_qwen25_72b_t3k_program_configs_by_hand():
    args = model_args("Qwen/Qwen2.5-72B-Instruct", (1, 8))
    mc = args.model_config
    assert (args.device_name, args.prefill_len_cutoff, args.base_model_name) == ("T3K", 1024, "Qwen2.5-72B")
    # hidden 29568 padded with 32 cores on 8 devices: nearest multiple of 32 * 32 * 8 = 8192 -> 32768, 4096 per device
    assert (args.unpadded_hidden_dim, args.hidden_dim) == (29568, 32768)
    # MLP grid: find_grid_k_n(8192 / 32 = 256, 4096 / 32 = 128) -> 64 cores; input shard [32, 8192 / 64 = 128]
    assert list(mc["SHARDED_MLP_INPUT_MEMCFG"].shard_spec.shape) == [32, 128]
    # W1/W3: in0_block_w = div(8192 / (32 * 64) = 4) = 4; per_core_N = ceil(4096 / (32 * 64)) = 2
    w1 = mc["DECODE_MLP_W1_W3_PRG_CONFIG"]
    assert (w1.in0_block_w, w1.per_core_M, w1.per_core_N) == (4, 1, 2)
    # W2: grid find_grid_k_n(128, 256) -> 64 cores; in0_block_w = div(4096 / 2048 = 2) = 2; N 8192 / 2048 = 4;
    # its input shard [32, 4096 / 64 = 64]
    w2 = mc["DECODE_MLP_W2_PRG_CONFIG"]
    assert (w2.in0_block_w, w2.per_core_N) == (2, 4)
    assert list(mc["SHARDED_MLP2_INPUT_MEMCFG"].shard_spec.shape) == [32, 64]
    # Prefill W1/W3 at 1024 rows: grid find_prefill_grid(8, 256) = (8, 8); per_core_M = 1024 / 256 = 4;
    # per_core_N = ceil(4096 / 256) = 16 -> out_subblock_w 4; in0_block_w = div(8192 / 256 = 32) = 8
    p1 = mc["PREFILL_MLP_W1_W3_PRG_CONFIG"](1024)
    assert (p1.per_core_M, p1.per_core_N, p1.in0_block_w, p1.out_subblock_w) == (4, 16, 8, 4)
    # Prefill W2: K = 32768 (whole padded hidden dim), grid find_prefill_grid(8, 1024) = (8, 8);
    # in0_block_w = div(32768 / 256 = 128) = 8; per_core_N = ceil(8192 / 256) = 32 -> out_subblock_w 4
    p2 = mc["PREFILL_MLP_W2_PRG_CONFIG"](1024)
    assert (p2.per_core_M, p2.per_core_N, p2.in0_block_w, p2.out_subblock_w) == (4, 32, 8, 4)
    # Residual: find_grid(8192 / 8 / 32 = 32) -> 32 cores; shard [32, 8192 / 32 / 8 = 32]
    assert list(mc["DECODE_RESIDUAL_MEMCFG"].shard_spec.shape) == [32, 32]
    assert mc["DECODE_RESIDUAL_MEMCFG"].shard_spec.grid.num_cores() == 32
    # QKV: qkv_size 128 * (2 * 8 + 64) = 10240, 1280 per device; attn grid find_grid(256) = 32 cores;
    # in0_block_w = div(8192 / 1024 = 8) = 8; per_core_N = ceil(1280 / 1024) = 2
    xqkv = mc["XQKV_DECODE_PROGCFG"]
    assert (args.qkv_size, xqkv.in0_block_w, xqkv.per_core_N) == (10240, 8, 2)
    # accuracy mode keeps BFP4 MLPs for Qwen2.5-72B
    assert args.optimizations.get_tensor_dtype(0, TensorGroup.FF1_FF3) == ttnn.bfloat4_b
    # Qwen2-7B has Qwen2.5-7B's dims, but TTTv1 neither pads its hidden dim nor shortens its N300 prefill cutoff
    qwen2 = model_args("Qwen/Qwen2-7B-Instruct", (1, 2))
    assert (qwen2.base_model_name, qwen2.hidden_dim, qwen2.prefill_len_cutoff) == ("Qwen2-7B", 18944, 1024)


def test_qwen_models_by_hand():
    args = model_args("Qwen/Qwen2.5-7B-Instruct", (1, 2))
    # N300 cutoff for Qwen2.5-7B is 512; hidden padded to 19456 (9728 per device)
    assert (args.prefill_len_cutoff, args.unpadded_hidden_dim, args.hidden_dim) == (512, 18944, 19456)
    # MLP grid find_grid_k_n(112, 304) = 16 cores: in0_block_w = div(3584 / 512 = 7) = 7; N ceil(9728 / 512) = 19
    w1 = args.model_config["DECODE_MLP_W1_W3_PRG_CONFIG"]
    assert (w1.in0_block_w, w1.per_core_N) == (7, 19)
    # accuracy and performance: BF16 attention with HiFi4 for Qwen2.5-7B
    assert args.optimizations.get_tensor_dtype(0, TensorGroup.WQKV) == ttnn.bfloat16
    perf = DecodersPrecision.performance(args.n_layers, args.model_name)
    assert perf.get_tensor_dtype(0, TensorGroup.FF1_FF3) == ttnn.bfloat8_b
    assert perf.get_math_fidelity(0, OpGroup.LI_QKV_DECODE, args) is args.compute_kernel_config_hifi4

    args = model_args("Qwen/Qwen3-32B", (1, 1))
    mc = args.model_config
    # qkv_size 128 * (2 * 8 + 64) = 10240; attn grid find_grid(160) = 32 cores; in0_block_w = div(5120 / 1024) = 5,
    # per_core_N = 10240 / 1024 = 10
    xqkv = mc["XQKV_DECODE_PROGCFG"]
    assert (xqkv.in0_block_w, xqkv.per_core_N) == (5, 10)
    # WO: K = 64 * 128 = 8192 (!= dim 5120) over 64 cores -> in0_block_w 4; N ceil(5120 / 2048) = 3
    wo = mc["ATTN_OUTPUT_PROGCFG"]
    assert (wo.in0_block_w, wo.per_core_N) == (4, 3)
    assert args.get_state_dict_prefix("MLP", 3) == "layers.3.feed_forward"
    assert args.get_state_dict_prefix("Attention", 0) == "layers.0.attention"
    assert args.get_state_dict_prefix("", None) == ""


def test_llama_vision_text_model():
    args = model_args("Llama-3.2-90B-Instruct", (1, 8))  # upstream alias without "-Vision"
    assert (args.model_name, args.is_90b, args.is_multimodal) == ("Llama-3.2-90B-Instruct", True, True)
    assert args.optimizations.get_tensor_dtype(0, TensorGroup.FF1_FF3) == ttnn.bfloat4_b


def test_precision_defaults_and_validation():
    args = model_args("Llama-3.1-8B-Instruct", (1, 1))
    opt = args.optimizations
    assert opt.get_tensor_dtype(0, TensorGroup.FF1_FF3) == ttnn.bfloat8_b
    assert opt.get_tensor_dtype(0, TensorGroup.ACTIVATION) is None
    assert opt.get_math_fidelity(0, OpGroup.LI_FF2, args) is args.compute_kernel_config_hifi2_fp16
    assert opt.get_math_fidelity(0, OpGroup.SDPA_PREFILL, args) is args.compute_kernel_config_hifi4
    assert args.prefill_len_cutoff == 512  # Llama-3.1-8B on N150
    performance = DecodersPrecision.from_string("performance")
    perf = model_args("Llama-3.1-8B-Instruct", (1, 1), optimizations=lambda a: performance(a.n_layers, a.model_name))
    assert perf.optimizations.get_tensor_dtype(0, TensorGroup.FF1_FF3) == ttnn.bfloat4_b
    with pytest.raises(ValueError, match="performance"):
        DecodersPrecision.from_string("fast")
    with pytest.raises(ValueError, match="Batch size 3"):
        model_args("Llama-3.1-8B-Instruct", (1, 1), max_batch_size=3)


def test_ccl_topology_and_caches(monkeypatch, tmp_path):
    monkeypatch.setattr(ttnn.cluster, "get_cluster_type", lambda: ttnn.cluster.ClusterType.T3K)
    assert model_args("Llama-3.2-1B-Instruct", (1, 1)).ccl_topology() is None
    assert model_args("Llama-3.2-1B-Instruct", (1, 2)).ccl_topology() == ttnn.Topology.Linear
    args = model_args("Llama-3.2-1B-Instruct", (1, 8))
    assert args.ccl_topology() == ttnn.Topology.Ring
    assert args.weight_cache_path(ttnn.bfloat8_b).parts[-2:] == ("T3K", "tensor_cache_instruct_bfp8")


# ---- checkpoints ---------------------------------------------------------------------------------------------

TINY = dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2, vocab_size=512)
TINY_CONFIGS = {
    "llama": LlamaConfig(**TINY, num_hidden_layers=2, tie_word_embeddings=True),
    "qwen2": Qwen2Config(**TINY, num_hidden_layers=2),
    "qwen3": Qwen3Config(**TINY, num_hidden_layers=2, head_dim=64),
    "phi3": Phi3Config(**TINY, num_hidden_layers=2, pad_token_id=0),
}


def save_tiny(config, folder):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    return model


def hf_to_meta_rows(weight, head_dim):
    """Expected Meta row order for an HF q/k weight: per head, r0, i0, r1, i1, ..."""
    heads = weight.shape[0] // head_dim
    halves = weight.reshape(heads, 2, head_dim // 2, -1)
    return torch.stack((halves[:, 0], halves[:, 1]), dim=2).reshape(weight.shape)


@pytest.mark.parametrize("arch", sorted(TINY_CONFIGS))
def test_checkpoint_round_trip(arch, tmp_path):
    model = save_tiny(TINY_CONFIGS[arch], tmp_path)
    hf = {k: v.detach() for k, v in model.state_dict().items()}
    args = model_args(str(tmp_path), (1, 1))
    assert (args.dim, args.n_layers, args.head_dim, args.dummy_weights) == (256, 2, 64, False)
    ids = torch.randint(0, 512, (1, 8))
    with torch.no_grad():
        assert torch.equal(reference.reference_model(args)(ids).logits, model(ids).logits)
    args.n_layers = 1
    sd = args.load_state_dict()
    assert not any(k.startswith("layers.1.") for k in sd)
    if arch == "phi3":  # fused q/k/v: 4 * 64 query rows, then 2 * 64 key rows, then value
        q, k, v = torch.split(hf["model.layers.0.self_attn.qkv_proj.weight"], [256, 128, 128])
        gate, up = torch.chunk(hf["model.layers.0.mlp.gate_up_proj.weight"], 2)
    else:
        q, k, v = (hf[f"model.layers.0.self_attn.{n}_proj.weight"] for n in "qkv")
        gate, up = hf["model.layers.0.mlp.gate_proj.weight"], hf["model.layers.0.mlp.up_proj.weight"]
    assert torch.equal(sd["layers.0.attention.wq.weight"], hf_to_meta_rows(q, 64))
    assert torch.equal(sd["layers.0.attention.wk.weight"], hf_to_meta_rows(k, 64))
    assert torch.equal(sd["layers.0.attention.wv.weight"], v)
    assert torch.equal(sd["layers.0.feed_forward.w1.weight"], gate)
    assert torch.equal(sd["layers.0.feed_forward.w3.weight"], up)
    assert torch.equal(sd["layers.0.feed_forward.w2.weight"], hf["model.layers.0.mlp.down_proj.weight"])
    assert torch.equal(sd["layers.0.attention_norm.weight"], hf["model.layers.0.input_layernorm.weight"])
    assert torch.equal(sd["layers.0.ffn_norm.weight"], hf["model.layers.0.post_attention_layernorm.weight"])
    assert torch.equal(sd["norm.weight"], hf["model.norm.weight"])
    assert torch.equal(sd["output.weight"], hf["lm_head.weight"])
    assert torch.equal(sd["tok_embeddings.weight"], hf["model.embed_tokens.weight"])
    if arch == "qwen2":
        bias = hf["model.layers.0.self_attn.q_proj.bias"]
        assert torch.equal(sd["layers.0.attention.wq.bias"], hf_to_meta_rows(bias[:, None], 64)[:, 0])
    if arch == "qwen3":
        norm = hf["model.layers.0.self_attn.q_norm.weight"]
        assert torch.equal(sd["layers.0.attention.q_norm.weight"], torch.stack((norm[:32], norm[32:]), 1).flatten())
    # the reference modules hold exactly the checkpoint's weights
    x = torch.randn(1, 8, 256, dtype=torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(reference.reference_mlp(args)(x), model.model.layers[0].mlp(x))
        assert torch.equal(reference.reference_rms_norm(args)(x), model.model.layers[0].input_layernorm(x))


def test_random_weights_are_seeded_and_match_reference(tmp_path):
    save_tiny(TINY_CONFIGS["qwen2"], tmp_path)
    first = model_args(str(tmp_path), (1, 2), dummy_weights=True)
    first.n_layers = 1
    second = model_args(str(tmp_path), (1, 2), dummy_weights=True)
    weights = first.load_state_dict()
    layer0 = {k: v for k, v in second.load_state_dict().items() if k.startswith("layers.0.")}
    assert all(torch.equal(weights[k], v) for k, v in layer0.items())  # layer 0 does not depend on n_layers
    mlp = reference.reference_mlp(first)
    assert torch.equal(mlp.gate_proj.weight, weights["layers.0.feed_forward.w1.weight"])
    attention = reference.reference_attention(first)
    assert torch.equal(attention.layer.q_proj.bias, first.hf_state_dict()["model.layers.0.self_attn.q_proj.bias"])
    out = attention(torch.randn(1, 4, 256, dtype=torch.bfloat16), start_pos=0)
    assert out.shape == (1, 4, 256)
    decoder = reference.reference_decoder(first)
    assert decoder(torch.randn(1, 4, 256, dtype=torch.bfloat16), start_pos=0).shape == (1, 4, 256)


# ---- errors --------------------------------------------------------------------------------------------------


def test_model_selection_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="No model selected"):
        ModelArgs(HostMesh.for_shape((1, 1)))
    monkeypatch.setenv("HF_MODEL", "meta-llama/Llama-9-1T")
    with pytest.raises(ValueError, match="HF_MODEL=meta-llama/Llama-9-1T is neither a local checkpoint folder nor a"):
        ModelArgs(HostMesh.for_shape((1, 1)))
    with pytest.raises(ValueError, match="model 'Llama-9-1T' is neither"):  # named by the caller, not the variable
        ModelArgs(HostMesh.for_shape((1, 1)), hf_model="Llama-9-1T")
    monkeypatch.setenv("HF_MODEL", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="folder without config"):
        ModelArgs(HostMesh.for_shape((1, 1)))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 256}))
    with pytest.raises(ValueError, match="unsupported architecture model_type='gpt2'"):
        ModelArgs(HostMesh.for_shape((1, 1)))
    TINY_CONFIGS["llama"].save_pretrained(tmp_path)  # config only, no weights
    args = ModelArgs(HostMesh.for_shape((1, 1)))
    with pytest.raises(FileNotFoundError, match="has neither"):
        args.load_state_dict()
    with pytest.raises(ValueError, match="needs a mesh device"):
        ModelArgs(None)
