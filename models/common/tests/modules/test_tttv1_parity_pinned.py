# SPDX-License-Identifier: Apache-2.0
"""TTTv1 parity pinned to literal values worked out by hand from upstream's TTTv1 source.

Our TTTv1 layer (models/tt_transformers/tt/model_config.py) and the TTTv2 modules compute their program configs with
the same models/common/modules/program_configs.py functions, so comparing one with the other cannot catch a slip in
transcribing upstream. Here every expected value is a literal, worked out from tenstorrent/tt-metal
models/tt_transformers/tt/model_config.py (ModelArgs.__init__'s model_config block and its helpers find_grid,
find_grid_k_n, find_prefill_grid, find_largest_divisor, dram_matmul_config, matmul_config, matmul_1d_config,
create_dram_sharded_mem_config, create_sharded_norm_config, get_xqkv_prefill_mem_cfg, is_distributed_norm; the
hidden-dim padding in _set_params_from_dict), common.py (get_out_subblock_w, num_to_core_range_set), mlp.py and
attention.py (weight memory configs) and distributed_norm.py (which norm config feeds which input). Each value is
checked against ModelArgs.model_config and against the TTTv2 module defaults built from raw (unpadded) weights,
wherever a module claims TTTv1's value. Host-only: configs are resolved, nothing runs.

Shorthand used in the comments (Wormhole, 12 DRAM banks, batch 32 -> M = 32 rows = 1 tile):
  find_grid(t)        most cores <= 64 dividing t tiles, closest to 32 (ties: fewer), rows 1..8 first, cols <= 8
  find_grid_k_n(k, n) most cores <= 64 dividing both k and n tiles, rows 1..8 first, cols <= 8
  div(x)              find_largest_divisor(x): largest of 8..1 dividing x
  sbw(n)              get_out_subblock_w(n, 1): largest of 4..1 dividing n
  dram_mm(m, k, n, c) in0_block_w = div(k / 32 / c), per_core_M = ceil(m / 32), per_core_N = ceil(n / 32 / c)
  matmul(m, k, n, (r, c))  grid (x, y) = (r, c), per_core_M = ceil(m / 32 / c), in0_block_w = div(k / 32 / c),
                      out_subblock_w = sbw(per_core_N) (1 on Galaxy)
  dram_shard(k, n)    shard (k, ceil(n / 384) * 384 / 12) on DRAM banks (0,0)-(11,0)
  norm(grid)          block_w = dim / cores / 32, subblock_w = largest of 4..1 dividing block_w, block_h = 1
"""

import math

import pytest
import torch
import ttnn

from models.common.modules.attention.attention_1d import Attention1DConfig
from models.common.modules.attention.attention_2d import Attention2DConfig
from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_1d import MLP1DConfig
from models.common.modules.mlp.mlp_2d import MLP2DConfig
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1DConfig
from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2DConfig

SEQ_LENS = (128, 1024, 4096)
PREFILL_KEYS = (
    "PREFILL_MLP_W1_W3_PRG_CONFIG",
    "PREFILL_MLP_W2_PRG_CONFIG",
    "XQKV_PREFILL_PROGCFG",
    "WO_PREFILL_PROGCFG",
    "SDPA_PROGCFG",
    "KV_PREFILL_MEM_CFG",
)
DRAM_BANKS_END = (11, 0)  # Wormhole: 12 DRAM banks, grid (0,0)-(11,0)


# --- expected-value shorthands (plain dicts, so a mismatch prints field by field) -------------------------------
def dram_mm(in0_block_w, per_core_M, per_core_N):
    """MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig."""
    return dict(kind="dram_sharded_mm", in0_block_w=in0_block_w, per_core_M=per_core_M, per_core_N=per_core_N)


def mm2d(grid, in0_block_w, out_subblock_w, per_core_M, per_core_N, fuse_batch):
    """MatmulMultiCoreReuseMultiCastProgramConfig (out_subblock_h 1, no transpose_mcast, as every TTTv1 one)."""
    return dict(
        kind="mm2d",
        grid=grid,
        in0_block_w=in0_block_w,
        out_subblock_h=1,
        out_subblock_w=out_subblock_w,
        per_core_M=per_core_M,
        per_core_N=per_core_N,
        transpose_mcast=False,
        fuse_batch=fuse_batch,
    )


def mm1d(grid, in0_block_w, out_subblock_w, per_core_M, per_core_N):
    """MatmulMultiCoreReuseMultiCast1DProgramConfig (out_subblock_h 1, batch fused, in0 multicast)."""
    return dict(
        kind="mm1d",
        grid=grid,
        in0_block_w=in0_block_w,
        out_subblock_h=1,
        out_subblock_w=out_subblock_w,
        per_core_M=per_core_M,
        per_core_N=per_core_N,
        fuse_batch=True,
        mcast_in0=True,
    )


def sharded(layout, buffer, shape, last_core):
    """A one-range sharded memory config: cores (0,0)..last_core (x, y), ROW_MAJOR shards of ``shape``."""
    return dict(kind="memcfg", layout=layout, buffer=buffer, shard_shape=shape, cores=[((0, 0), last_core)])


def l1_width(shape, last_core):
    return sharded("WIDTH_SHARDED", "L1", shape, last_core)


def l1_height(shape, last_core):
    return sharded("HEIGHT_SHARDED", "L1", shape, last_core)


def dram_width(shape):
    return sharded("WIDTH_SHARDED", "DRAM", shape, DRAM_BANKS_END)


def interleaved(buffer):
    return dict(kind="memcfg", layout="INTERLEAVED", buffer=buffer, shard_shape=None, cores=None)


def norm(grid, subblock_w, block_w):
    """LayerNormShardedMultiCoreProgramConfig, block_h 1 (32 rows), not in place."""
    return dict(kind="norm", grid=grid, subblock_w=subblock_w, block_h=1, block_w=block_w, inplace=False)


def sdpa(chunk):
    """SDPAProgramConfig on the 8x8 grid, q and k chunks equal."""
    return dict(kind="sdpa", grid=(8, 8), q_chunk_size=chunk, k_chunk_size=chunk, exp_approx_mode=False)


def prefill(grid, in0_block_w, out_subblock_w, per_core_N, per_core_M, fuse_batch):
    """{seq_len: mm2d} for SEQ_LENS; per_core_M and fuse_batch are 3-tuples (one per length)."""
    return {
        seq: mm2d(grid, in0_block_w, out_subblock_w, per_core_M[i], per_core_N, fuse_batch[i])
        for i, seq in enumerate(SEQ_LENS)
    }


NO_FUSE = (False, False, False)
FUSE_UP_TO_2048 = (True, True, False)  # XQKV_PREFILL_PROGCFG: fuse_batch = seq_len <= 2048
FUSE_UP_TO_1024 = (True, True, False)  # WO_PREFILL_PROGCFG: fuse_batch = seq_len <= 1024
SDPA_PREFILL = {128: sdpa(64), 1024: sdpa(64), 4096: sdpa(256)}  # SDPA_PROGCFG: 256 from 2048 tokens, else 64
SDPA_DECODE = sdpa(0)  # SDPA_DECODE_PROGCFG: chunk sizes 0


# --- the pinned values ----------------------------------------------------------------------------------------
# (model, mesh) -> (dim, hidden_dim, n_heads, n_kv_heads, head_dim) from the HF config.json, and the expected values
CASES = {}

# Llama-3.1-8B on N150 (1x1): dim 4096 = 128 tiles, hidden 14336 = 448 tiles, qkv 128 * (32 + 2 * 8) = 6144
CASES["Llama-3.1-8B-Instruct", (1, 1)] = (
    (4096, 14336, 32, 8, 128),
    {
        # model_config.py: PAD_MLP_CORES default 0 for Llama; prefill_len_cutoff 512 for Llama-3.1-8B on N150
        "hidden_dim": 14336,
        "prefill_len_cutoff": 512,
        "distributed_prefill_norm": False,  # is_distributed_norm: one device
        # DECODE_RESIDUAL_MEMCFG: find_grid(4096 / 1 / 32 = 128) = 32 cores = 4 x 8; [32, 4096 / 32 / 1]
        "DECODE_RESIDUAL_MEMCFG": l1_width([32, 128], (7, 3)),
        # mlp_core_grid = find_grid_k_n(128, 448) = 64 cores = 8 x 8; SHARDED_MLP_INPUT_MEMCFG [32, 4096 / 64]
        "SHARDED_MLP_INPUT_MEMCFG": l1_width([32, 64], (7, 7)),
        # DECODE_MLP_W1_W3_PRG_CONFIG = dram_mm(32, 4096, 14336, 64): div(2) = 2, ceil(14336 / 2048) = 7
        "DECODE_MLP_W1_W3_PRG_CONFIG": dram_mm(2, 1, 7),
        # mlp2_core_grid = find_grid_k_n(448, 128) = 8 x 8; SHARDED_MLP2_INPUT_MEMCFG [32, 14336 / 64]
        "SHARDED_MLP2_INPUT_MEMCFG": l1_width([32, 224], (7, 7)),
        # DECODE_MLP_W2_PRG_CONFIG = dram_mm(32, 14336, 4096, 64): div(7) = 7, 4096 / 2048 = 2
        "DECODE_MLP_W2_PRG_CONFIG": dram_mm(7, 1, 2),
        # PREFILL_MLP_W1_W3_PRG_CONFIG: matmul(min(s, 512), 4096, 14336, find_prefill_grid(8, 128) = (8, 8)),
        # per_core_N = ceil(14336 / (32 * 8)) = 56, sbw 4, in0 div(16) = 8, per_core_M ceil(128|512|512 / 256)
        "PREFILL_MLP_W1_W3_PRG_CONFIG": prefill((8, 8), 8, 4, 56, (1, 2, 2), NO_FUSE),
        # PREFILL_MLP_W2_PRG_CONFIG: k 14336, find_prefill_grid(8, 448) = (8, 8), in0 div(56) = 8, N 4096 / 256 = 16
        "PREFILL_MLP_W2_PRG_CONFIG": prefill((8, 8), 8, 4, 16, (1, 2, 2), NO_FUSE),
        # mlp.py: dram_shard(4096, 14336 / 1): ceil(14336 / 384) = 38 -> 14592 / 12; dram_shard(14336, 4096): 11 -> 352
        "mlp_w1_w3_memcfg": dram_width([4096, 1216]),
        "mlp_w2_memcfg": dram_width([14336, 352]),
        # attn_input_grid = find_grid(128) = 4 x 8; SHARDED_ATTN_INPUT_MEMCFG [32, 4096 / 32]
        "SHARDED_ATTN_INPUT_MEMCFG": l1_width([32, 128], (7, 3)),
        # XQKV_DECODE_PROGCFG = dram_mm(32, 4096, 6144, 32): div(4) = 4, ceil(6144 / 1024) = 6
        "XQKV_DECODE_PROGCFG": dram_mm(4, 1, 6),
        # ATTN_OUTPUT_PROGCFG = dram_mm(32, 32 * 128, 4096, 32 heads): div(4) = 4, 4096 / 1024 = 4
        "ATTN_OUTPUT_PROGCFG": dram_mm(4, 1, 4),
        "ATTN_ALL_GATHER_MATMUL_PROGCFG": None,  # USE_FUSED_ALL_GATHER_MATMUL needs 8 devices
        "SDPA_DECODE_PROGCFG": SDPA_DECODE,
        # XQKV_PREFILL_PROGCFG: 8x8, in0 1, per_core_M max(1, ceil(s / 256)) or 8 from 2048, N ceil(6144 / 256) = 24
        "XQKV_PREFILL_PROGCFG": prefill((8, 8), 1, 1, 24, (1, 4, 8), FUSE_UP_TO_2048),
        # WO_PREFILL_PROGCFG: matmul(min(s, 1024), k 4096, n 4096, find_prefill_grid(8, 128) = (8, 8)), in0 div(16),
        # per_core_N ceil(4096 / 256) = 16 (DRAM-sharded wo), sbw 4
        "WO_PREFILL_PROGCFG": prefill((8, 8), 8, 4, 16, (1, 4, 4), FUSE_UP_TO_1024),
        "SDPA_PROGCFG": SDPA_PREFILL,
        # get_xqkv_prefill_mem_cfg: [8 kv heads * s / 64, 128] height-sharded on 8x8
        "KV_PREFILL_MEM_CFG": {s: l1_height([8 * s // 64, 128], (7, 7)) for s in SEQ_LENS},
        # attention.py: wqkv dram_shard(4096, 6144): 16 * 384 / 12 = 512; wo dram_shard(4096, 4096): 11 -> 352
        "attn_wqkv_memcfg": dram_width([4096, 512]),
        "attn_wo_memcfg": dram_width([4096, 352]),
        # SHARDED_NORM_ATTN_PRGM_CFG = norm(4 x 8): block_w 4096 / 32 / 32 = 4; SHARDED_NORM_MLP_PRGM_CFG norm(8 x 8): 2
        "SHARDED_NORM_ATTN_PRGM_CFG": norm((8, 4), 4, 4),
        "SHARDED_NORM_MLP_PRGM_CFG": norm((8, 8), 2, 2),
    },
)

# Llama-3.1-8B on T3K (1x8): hidden per device 14336 / 8 = 1792 = 56 tiles, qkv per device 6144 / 8 = 768
CASES["Llama-3.1-8B-Instruct", (1, 8)] = (
    (4096, 14336, 32, 8, 128),
    {
        "hidden_dim": 14336,
        "prefill_len_cutoff": 1024,  # not on the 512 list for T3K
        "distributed_prefill_norm": False,  # is_distributed_norm: 1D mesh and dim 4096 is not > 4096
        # find_grid(4096 / 8 / 32 = 16) = 16 cores = 2 x 8; [32, 4096 / 16 / 8]
        "DECODE_RESIDUAL_MEMCFG": l1_width([32, 32], (7, 1)),
        # find_grid_k_n(128, 56) = 8 cores = 1 x 8; [32, 4096 / 8]
        "SHARDED_MLP_INPUT_MEMCFG": l1_width([32, 512], (7, 0)),
        # dram_mm(32, 4096, 1792, 8): div(16) = 8, ceil(1792 / 256) = 7
        "DECODE_MLP_W1_W3_PRG_CONFIG": dram_mm(8, 1, 7),
        # find_grid_k_n(56, 128) = 1 x 8; [32, 1792 / 8]
        "SHARDED_MLP2_INPUT_MEMCFG": l1_width([32, 224], (7, 0)),
        # dram_mm(32, 1792, 4096, 8): div(7) = 7, 4096 / 256 = 16
        "DECODE_MLP_W2_PRG_CONFIG": dram_mm(7, 1, 16),
        # matmul(min(s, 1024), 4096, 1792, (8, 8)): per_core_N ceil(1792 / 256) = 7 -> sbw 1, in0 div(16) = 8
        "PREFILL_MLP_W1_W3_PRG_CONFIG": prefill((8, 8), 8, 1, 7, (1, 4, 4), NO_FUSE),
        # k = whole hidden 14336 (non-Galaxy), find_prefill_grid(8, 448) = (8, 8), in0 div(56) = 8, N 16, sbw 4
        "PREFILL_MLP_W2_PRG_CONFIG": prefill((8, 8), 8, 4, 16, (1, 4, 4), NO_FUSE),
        # dram_shard(4096, 1792): ceil(1792 / 384) = 5 -> 1920 / 12 = 160; dram_shard(1792, 4096) -> 352
        "mlp_w1_w3_memcfg": dram_width([4096, 160]),
        "mlp_w2_memcfg": dram_width([1792, 352]),
        "SHARDED_ATTN_INPUT_MEMCFG": l1_width([32, 128], (7, 3)),
        # dram_mm(32, 4096, 768, 32): div(4) = 4, ceil(768 / 1024) = 1
        "XQKV_DECODE_PROGCFG": dram_mm(4, 1, 1),
        # dram_mm(32, 4096 / 8 = 512, 4096, 32 / 8 = 4 cores): div(512 / 128 = 4) = 4, 4096 / 128 = 32
        "ATTN_OUTPUT_PROGCFG": dram_mm(4, 1, 32),
        # USE_FUSED_ALL_GATHER_MATMUL: 8 devices and (4096 / 32 / 8 = 16) % 8 == 0. (8, 1) grid, in0 4096 / 32 / 8
        # = 16, per_core_N 4096 / 8 / 32 / 8 = 2, sbw(2) = 2
        "ATTN_ALL_GATHER_MATMUL_PROGCFG": mm1d((8, 1), 16, 2, 1, 2),
        # ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG: num_to_core_range_set(8) = (0,0)-(7,0), [32, 4096 / 8]
        "ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG": l1_width([32, 512], (7, 0)),
        "SDPA_DECODE_PROGCFG": SDPA_DECODE,
        # per_core_N ceil(6144 / 8 / 32 / 8) = 3
        "XQKV_PREFILL_PROGCFG": prefill((8, 8), 1, 1, 3, (1, 4, 8), FUSE_UP_TO_2048),
        # k 4096 / 8 = 512, n = 1024 (8 devices, 1024 % 512 == 0), find_prefill_grid(8, 16) = (8, 8), in0 div(2) = 2,
        # per_core_N not DRAM-sharded (fused): ceil(1024 / 256) = 4, sbw 4
        "WO_PREFILL_PROGCFG": prefill((8, 8), 2, 4, 4, (1, 4, 4), FUSE_UP_TO_1024),
        "SDPA_PROGCFG": SDPA_PREFILL,
        "KV_PREFILL_MEM_CFG": {s: l1_height([1 * s // 64, 128], (7, 7)) for s in SEQ_LENS},  # 8 kv heads / 8
        # wqkv dram_shard(4096, 768): 2 * 384 / 12 = 64; wo DRAM interleaved with the fused all-gather matmul
        "attn_wqkv_memcfg": dram_width([4096, 64]),
        "attn_wo_memcfg": interleaved("DRAM"),
        # norm(4 x 8): 4; norm(1 x 8): block_w 4096 / 8 / 32 = 16 -> subblock 4
        "SHARDED_NORM_ATTN_PRGM_CFG": norm((8, 4), 4, 4),
        "SHARDED_NORM_MLP_PRGM_CFG": norm((8, 1), 4, 16),
    },
)

# Llama-3.2-1B on N300 (1x2): dim 2048 = 64 tiles, hidden per device 8192 / 2 = 4096, qkv 64 * 48 = 3072
CASES["Llama-3.2-1B-Instruct", (1, 2)] = (
    (2048, 8192, 32, 8, 64),
    {
        "hidden_dim": 8192,
        "prefill_len_cutoff": 1024,
        "distributed_prefill_norm": False,
        # find_grid(2048 / 2 / 32 = 32) = 4 x 8; [32, 2048 / 32 / 2]
        "DECODE_RESIDUAL_MEMCFG": l1_width([32, 32], (7, 3)),
        # find_grid_k_n(64, 128) = 64 = 8 x 8; [32, 2048 / 64]
        "SHARDED_MLP_INPUT_MEMCFG": l1_width([32, 32], (7, 7)),
        # dram_mm(32, 2048, 4096, 64): div(1) = 1, 4096 / 2048 = 2
        "DECODE_MLP_W1_W3_PRG_CONFIG": dram_mm(1, 1, 2),
        "SHARDED_MLP2_INPUT_MEMCFG": l1_width([32, 64], (7, 7)),  # [32, 4096 / 64]
        # dram_mm(32, 4096, 2048, 64): div(2) = 2, 2048 / 2048 = 1
        "DECODE_MLP_W2_PRG_CONFIG": dram_mm(2, 1, 1),
        # find_prefill_grid(8, 64) = (8, 8), in0 div(8) = 8, per_core_N ceil(4096 / 256) = 16, sbw 4
        "PREFILL_MLP_W1_W3_PRG_CONFIG": prefill((8, 8), 8, 4, 16, (1, 4, 4), NO_FUSE),
        # k 8192, find_prefill_grid(8, 256) = (8, 8), in0 div(32) = 8, per_core_N 2048 / 256 = 8, sbw 4
        "PREFILL_MLP_W2_PRG_CONFIG": prefill((8, 8), 8, 4, 8, (1, 4, 4), NO_FUSE),
        # dram_shard(2048, 4096): 11 * 384 / 12 = 352; dram_shard(4096, 2048): ceil(5.33) = 6 -> 192
        "mlp_w1_w3_memcfg": dram_width([2048, 352]),
        "mlp_w2_memcfg": dram_width([4096, 192]),
        # find_grid(64) = 32 = 4 x 8; [32, 2048 / 32]
        "SHARDED_ATTN_INPUT_MEMCFG": l1_width([32, 64], (7, 3)),
        # dram_mm(32, 2048, 1536, 32): div(2) = 2, ceil(1536 / 1024) = 2
        "XQKV_DECODE_PROGCFG": dram_mm(2, 1, 2),
        # dram_mm(32, 32 * 64 / 2 = 1024, 2048, 16 cores): div(2) = 2, 2048 / 512 = 4
        "ATTN_OUTPUT_PROGCFG": dram_mm(2, 1, 4),
        "ATTN_ALL_GATHER_MATMUL_PROGCFG": None,
        "SDPA_DECODE_PROGCFG": SDPA_DECODE,
        # per_core_N ceil(3072 / 2 / 32 / 8) = 6
        "XQKV_PREFILL_PROGCFG": prefill((8, 8), 1, 1, 6, (1, 4, 8), FUSE_UP_TO_2048),
        # k 1024, n 2048, find_prefill_grid(8, 32) = (8, 8), in0 div(4) = 4, per_core_N 2048 / 256 = 8, sbw 4
        "WO_PREFILL_PROGCFG": prefill((8, 8), 4, 4, 8, (1, 4, 4), FUSE_UP_TO_1024),
        "SDPA_PROGCFG": SDPA_PREFILL,
        "KV_PREFILL_MEM_CFG": {s: l1_height([4 * s // 64, 64], (7, 7)) for s in SEQ_LENS},  # 8 kv heads / 2
        # wqkv dram_shard(2048, 1536): 4 * 384 / 12 = 128; wo dram_shard(1024, 2048) -> 192
        "attn_wqkv_memcfg": dram_width([2048, 128]),
        "attn_wo_memcfg": dram_width([1024, 192]),
        # norm(4 x 8): block_w 2048 / 32 / 32 = 2; norm(8 x 8): 1
        "SHARDED_NORM_ATTN_PRGM_CFG": norm((8, 4), 2, 2),
        "SHARDED_NORM_MLP_PRGM_CFG": norm((8, 8), 1, 1),
    },
)

# Qwen2.5-7B on N300 (1x2): dim 3584 = 112 tiles; hidden 18944 padded (PAD_MLP_CORES 16) to the next multiple of
# 16 * 32 * 2 = 1024: 19456, 9728 = 304 tiles per device; qkv 128 * (28 + 8) = 4608
CASES["Qwen2.5-7B-Instruct", (1, 2)] = (
    (3584, 18944, 28, 4, 128),
    {
        "hidden_dim": 19456,
        "prefill_len_cutoff": 512,  # Qwen2.5-7B on N300
        "distributed_prefill_norm": False,
        # find_grid(3584 / 2 / 32 = 56): 28 cores (closest to 32) = 4 x 7; [32, 3584 / 28 / 2]
        "DECODE_RESIDUAL_MEMCFG": l1_width([32, 64], (6, 3)),
        # find_grid_k_n(112, 304) = 16 = 2 x 8; [32, 3584 / 16]
        "SHARDED_MLP_INPUT_MEMCFG": l1_width([32, 224], (7, 1)),
        # dram_mm(32, 3584, 9728, 16): div(7) = 7, ceil(9728 / 512) = 19
        "DECODE_MLP_W1_W3_PRG_CONFIG": dram_mm(7, 1, 19),
        "SHARDED_MLP2_INPUT_MEMCFG": l1_width([32, 608], (7, 1)),  # [32, 9728 / 16]
        # dram_mm(32, 9728, 3584, 16): div(19) = 1, 3584 / 512 = 7
        "DECODE_MLP_W2_PRG_CONFIG": dram_mm(1, 1, 7),
        # find_prefill_grid(8, 112) = (8, 8), in0 div(14) = 7, per_core_N ceil(9728 / 256) = 38 -> sbw 2
        "PREFILL_MLP_W1_W3_PRG_CONFIG": prefill((8, 8), 7, 2, 38, (1, 2, 2), NO_FUSE),
        # k 19456, find_prefill_grid(8, 608) = (8, 8), in0 div(76) = 4, per_core_N 3584 / 256 = 14 -> sbw 2
        "PREFILL_MLP_W2_PRG_CONFIG": prefill((8, 8), 4, 2, 14, (1, 2, 2), NO_FUSE),
        # dram_shard(3584, 9728): ceil(25.33) = 26 -> 9984 / 12 = 832; dram_shard(9728, 3584): 10 -> 320
        "mlp_w1_w3_memcfg": dram_width([3584, 832]),
        "mlp_w2_memcfg": dram_width([9728, 320]),
        # find_grid(112) = 28 = 4 x 7; [32, 3584 / 28]
        "SHARDED_ATTN_INPUT_MEMCFG": l1_width([32, 128], (6, 3)),
        # dram_mm(32, 3584, 2304, 28): div(4) = 4, ceil(2304 / 896) = 3
        "XQKV_DECODE_PROGCFG": dram_mm(4, 1, 3),
        # dram_mm(32, 28 * 128 / 2 = 1792, 3584, 14 cores): div(4) = 4, 3584 / 448 = 8
        "ATTN_OUTPUT_PROGCFG": dram_mm(4, 1, 8),
        "ATTN_ALL_GATHER_MATMUL_PROGCFG": None,
        "SDPA_DECODE_PROGCFG": SDPA_DECODE,
        # per_core_N ceil(4608 / 2 / 32 / 8) = 9
        "XQKV_PREFILL_PROGCFG": prefill((8, 8), 1, 1, 9, (1, 4, 8), FUSE_UP_TO_2048),
        # k 1792, n 3584, find_prefill_grid(8, 56) = (8, 8), in0 div(7) = 7, per_core_N 3584 / 256 = 14 -> sbw 2
        "WO_PREFILL_PROGCFG": prefill((8, 8), 7, 2, 14, (1, 4, 4), FUSE_UP_TO_1024),
        "SDPA_PROGCFG": SDPA_PREFILL,
        "KV_PREFILL_MEM_CFG": {s: l1_height([2 * s // 64, 128], (7, 7)) for s in SEQ_LENS},  # 4 kv heads / 2
        # wqkv dram_shard(3584, 2304): 6 * 384 / 12 = 192; wo dram_shard(1792, 3584) -> 320
        "attn_wqkv_memcfg": dram_width([3584, 192]),
        "attn_wo_memcfg": dram_width([1792, 320]),
        # norm(4 x 7): block_w 3584 / 28 / 32 = 4; norm(2 x 8): block_w 7 -> subblock 1
        "SHARDED_NORM_ATTN_PRGM_CFG": norm((7, 4), 4, 4),
        "SHARDED_NORM_MLP_PRGM_CFG": norm((8, 2), 1, 7),
    },
)

# Llama-3.1-70B on Galaxy (8x4): dim 8192, hidden 28672, qkv 128 * (64 + 16) = 10240; TG configs
CASES["Llama-3.1-70B-Instruct", (8, 4)] = (
    (8192, 28672, 64, 8, 128),
    {
        "hidden_dim": 28672,
        "prefill_len_cutoff": 1024,
        "distributed_prefill_norm": True,  # is_distributed_norm: both mesh dims > 1
        "DECODE_RESIDUAL_MEMCFG": interleaved("L1"),  # Galaxy: L1 interleaved
        # MLP_ACT_MEMCFG (dim >= 4096): [32, 8192 / 4 / 16] on CoreGrid(x=8, y=2)
        "MLP_ACT_MEMCFG": l1_width([32, 128], (7, 1)),
        # FF1_3_TG_PROGCFG = matmul_1d_config(32, 8192 / 4, 28672 / 8 = 3584, 8 x 2, subblocks 1 x 1):
        # in0 div(2048 / (32 * 16) = 4) = 4, per_core_N ceil(3584 / 32 / 16) = 7
        "FF1_3_TG_PROGCFG": mm1d((8, 2), 4, 1, 1, 7),
        # FF2_TG_PROGCFG = matmul_1d_config(32, 3584, 2048, 8 x 2): in0 div(7) = 7, per_core_N 2048 / 32 / 16 = 4
        "FF2_TG_PROGCFG": mm1d((8, 2), 7, 1, 1, 4),
        # Galaxy prefill grid (8, min(min(s, 1024) / 32, 4)) = (8, 4); k 8192 / 8 = 1024, n 28672 / 4 = 7168,
        # per_core_N ceil(7168 / 256) = 28, per_core_M ceil(min(s, 1024) / 128), in0 div(1024 / 128) = 8, sbw 1
        "PREFILL_MLP_W1_W3_PRG_CONFIG": prefill((8, 4), 8, 1, 28, (1, 8, 8), NO_FUSE),
        # k 28672 / 4 = 7168 -> in0 div(56) = 8, n 8192 -> per_core_N 32
        "PREFILL_MLP_W2_PRG_CONFIG": prefill((8, 4), 8, 1, 32, (1, 8, 8), NO_FUSE),
        "mlp_w1_w3_memcfg": interleaved("DRAM"),  # mlp.py: DRAM interleaved on Galaxy
        "mlp_w2_memcfg": interleaved("DRAM"),
        # lm_head grid on Galaxy: 4 rows (8192 % (32 * 32 * 4) == 0) of 8; [32, nearest_32(8192 / 32 / 4)]
        "SHARDED_ATTN_INPUT_MEMCFG": l1_width([32, 64], (7, 3)),
        # XQKV_DECODE_PROGCFG (TG, Llama 70B): grid (8, 5), in0 2, per_core_M 1, per_core_N 1, subblocks 1 x 1
        "XQKV_DECODE_PROGCFG": mm1d((8, 5), 2, 1, 1, 1),
        "ATTN_OUTPUT_PROGCFG": None,  # Galaxy: ttnn picks
        "ATTN_ALL_GATHER_MATMUL_PROGCFG": None,
        "SDPA_DECODE_PROGCFG": SDPA_DECODE,
        # per_core_N ceil(10240 / 4 / 32 / 8) = 10
        "XQKV_PREFILL_PROGCFG": prefill((8, 8), 1, 1, 10, (1, 4, 8), FUSE_UP_TO_2048),
        # k 64 * 128 / 8 = 1024, n 8192 / 4 = 2048, find_prefill_grid(8, 32) = (8, 8), in0 1, per_core_N 8, sbw 1
        "WO_PREFILL_PROGCFG": prefill((8, 8), 1, 1, 8, (1, 4, 4), FUSE_UP_TO_1024),
        "SDPA_PROGCFG": SDPA_PREFILL,
        "KV_PREFILL_MEM_CFG": {s: l1_height([2 * s // 64, 128], (7, 7)) for s in SEQ_LENS},  # 8 kv heads / 4 cols
        "attn_wqkv_memcfg": interleaved("DRAM"),  # attention.py: DRAM interleaved on Galaxy
        "attn_wo_memcfg": interleaved("DRAM"),
        # attn_input_grid = mlp_core_grid (Galaxy) = find_grid(256) = 4 x 8; norm: block_w 8192 / 32 / 32 = 8
        "SHARDED_NORM_ATTN_PRGM_CFG": norm((8, 4), 4, 8),
        "SHARDED_NORM_MLP_PRGM_CFG": norm((8, 4), 4, 8),
    },
)

# Values a TTTv2 module deliberately does not take from TTTv1 (so the module side has no value to compare)
NOT_CLAIMED_BY_MODULES = {
    # MLP2D leaves its program configs to ttnn (upstream MLP2D; from_model_args passes TTTv1's) and takes its
    # input as given (TTTv1's decoder reshards to MLP_ACT_MEMCFG); TTTv1's Galaxy DistributedNorm builds its own
    # sharded norm configs instead of these (RMSNorm2D follows those, see test_rmsnorm_2d); Attention2D never
    # shards the prefill KV (TTTv1 TG
    # fills the cache from interleaved K/V) and has no fused all-gather matmul (TTTv1's is T3K-only)
    (8, 4): {
        "ATTN_ALL_GATHER_MATMUL_PROGCFG",
        "MLP_ACT_MEMCFG",
        "FF1_3_TG_PROGCFG",
        "FF2_TG_PROGCFG",
        "PREFILL_MLP_W1_W3_PRG_CONFIG",
        "PREFILL_MLP_W2_PRG_CONFIG",
        "mlp_w1_w3_memcfg",
        "mlp_w2_memcfg",
        "SHARDED_NORM_ATTN_PRGM_CFG",
        "SHARDED_NORM_MLP_PRGM_CFG",
        "KV_PREFILL_MEM_CFG",
    },
}


# --- describing ttnn objects as the shorthands above ------------------------------------------------------------
def describe(value):
    """The shorthand dict of a program config / memory config (plain values pass through)."""
    if isinstance(value, ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig):
        return dram_mm(value.in0_block_w, value.per_core_M, value.per_core_N)
    if isinstance(value, ttnn.MatmulMultiCoreReuseMultiCastProgramConfig):
        grid = _xy(value.compute_with_storage_grid_size)
        d = mm2d(grid, value.in0_block_w, value.out_subblock_w, value.per_core_M, value.per_core_N, value.fuse_batch)
        return d | dict(out_subblock_h=value.out_subblock_h, transpose_mcast=value.transpose_mcast)
    if isinstance(value, ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig):
        grid = _xy(value.compute_with_storage_grid_size)
        d = mm1d(grid, value.in0_block_w, value.out_subblock_w, value.per_core_M, value.per_core_N)
        return d | dict(out_subblock_h=value.out_subblock_h, fuse_batch=value.fuse_batch, mcast_in0=value.mcast_in0)
    if isinstance(value, ttnn.LayerNormShardedMultiCoreProgramConfig):
        d = norm(_xy(value.compute_with_storage_grid_size), value.subblock_w, value.block_w)
        return d | dict(block_h=value.block_h, inplace=value.inplace)
    if isinstance(value, ttnn.SDPAProgramConfig):
        grid = _xy(value.compute_with_storage_grid_size)
        chunks = dict(q_chunk_size=value.q_chunk_size, k_chunk_size=value.k_chunk_size)
        return dict(kind="sdpa", grid=grid, exp_approx_mode=value.exp_approx_mode, **chunks)
    if isinstance(value, ttnn.MemoryConfig):
        spec = value.shard_spec
        cores = [((r.start.x, r.start.y), (r.end.x, r.end.y)) for r in spec.grid.ranges()] if spec else None
        if spec is not None and spec.orientation != ttnn.ShardOrientation.ROW_MAJOR:
            cores = f"{spec.orientation} {cores}"
        return dict(
            kind="memcfg",
            layout=value.memory_layout.name,
            buffer=value.buffer_type.name,
            shard_shape=list(spec.shape) if spec else None,
            cores=cores,
        )
    return value


def _xy(coord):
    return tuple(coord) if isinstance(coord, (tuple, list)) else (coord.x, coord.y)


def mismatches(label: str, got, expected) -> list[str]:
    """Readable differences between ``got`` (a ttnn object or plain value) and the ``expected`` shorthand."""
    if isinstance(expected, dict) and set(expected) <= set(SEQ_LENS):  # per prefill length
        return [line for seq in expected for line in mismatches(f"{label}({seq})", got(seq), expected[seq])]
    described = describe(got)
    if not (isinstance(expected, dict) and isinstance(described, dict)):
        return [] if described == expected else [f"{label}: got {described!r}, expected {expected!r}"]
    lines = []
    for field in sorted(set(expected) | set(described)):
        want, have = expected.get(field, "<missing>"), described.get(field, "<missing>")
        if want != have:
            lines.append(f"{label}.{field}: got {have!r}, expected {want!r}")
    return lines


def assert_pinned(values: dict, expected: dict, who: str) -> None:
    lines = [line for key, value in values.items() for line in mismatches(key, value, expected[key])]
    assert not lines, f"{who} differs from the pinned TTTv1 values:\n  " + "\n  ".join(lines)


# --- the two sides ----------------------------------------------------------------------------------------------
def _host_mesh(mesh):
    from models.tt_transformers.tt.host_mesh import HostMesh

    return HostMesh.for_shape(mesh)


def tttv1_values(model: str, mesh) -> dict:
    """What our TTTv1 layer gives for every pinned key (model_config, plus the weight memory configs its mlp.py
    and attention.py build with ModelArgs.create_dram_sharded_mem_config)."""
    from models.tt_transformers.tt.model_config import ModelArgs

    args = ModelArgs(_host_mesh(mesh), hf_model=model, max_batch_size=32)
    mc, n = args.model_config, args.num_devices
    values = {key: mc[key] for key in CASES[model, mesh][1] if key in mc}
    dram, galaxy = ttnn.DRAM_MEMORY_CONFIG, args.is_galaxy
    wo_interleaved = galaxy or mc["USE_FUSED_ALL_GATHER_MATMUL"]
    values |= {
        "hidden_dim": args.hidden_dim,
        "prefill_len_cutoff": args.prefill_len_cutoff,
        "distributed_prefill_norm": args.is_distributed_norm("prefill"),
        "mlp_w1_w3_memcfg": dram if galaxy else args.create_dram_sharded_mem_config(args.dim, args.hidden_dim // n),
        "mlp_w2_memcfg": dram if galaxy else args.create_dram_sharded_mem_config(args.hidden_dim // n, args.dim),
        "attn_wqkv_memcfg": dram if galaxy else args.create_dram_sharded_mem_config(args.dim, args.qkv_size // n),
        "attn_wo_memcfg": dram
        if wo_interleaved
        else args.create_dram_sharded_mem_config(args.n_heads * args.head_dim // n, args.dim),
    }
    return values


def _meta(*shape):
    return LazyWeight(torch.empty(shape, device="meta"))  # shapes only: config resolution reads no values


def tttv2_values(model: str, mesh) -> dict:
    """What the TTTv2 modules' own defaults give, built from raw (unpadded) weights with no ModelArgs."""
    (dim, hidden, n_heads, n_kv_heads, head_dim), _ = CASES[model, mesh]
    host = _host_mesh(mesh)
    topology = {(1, 1): None, (1, 2): ttnn.Topology.Linear, (1, 8): ttnn.Topology.Ring}.get(mesh, ttnn.Topology.Linear)
    common = dict(mesh_device=host, tt_ccl=object(), topology=topology)
    qkv = head_dim * (n_heads + 2 * n_kv_heads)
    attention_cls = Attention2DConfig if mesh == (8, 4) else Attention1DConfig
    attn = attention_cls(
        _meta(dim, qkv), _meta(n_heads * head_dim, dim), n_heads, n_kv_heads, head_dim, max_seq_len=4096, **common
    ).resolve()
    weights = (_meta(dim, hidden), _meta(hidden, dim), _meta(dim, hidden))
    values = {
        "SHARDED_ATTN_INPUT_MEMCFG": attn.decode_input_memcfg,
        "XQKV_DECODE_PROGCFG": attn.decode_xqkv_prg_config,
        "ATTN_OUTPUT_PROGCFG": attn.decode_wo_prg_config,
        "SDPA_DECODE_PROGCFG": attn.decode_sdpa_prg_config,
        "DECODE_RESIDUAL_MEMCFG": attn.decode_residual_memcfg,
        "XQKV_PREFILL_PROGCFG": attn.prefill_xqkv_prg_config,
        "WO_PREFILL_PROGCFG": attn.prefill_wo_prg_config,
        "SDPA_PROGCFG": attn.prefill_sdpa_prg_config,
        "attn_wqkv_memcfg": attn.wqkv_memcfg,
        "attn_wo_memcfg": attn.wo_memcfg,
    }
    if mesh == (8, 4):
        mlp2d = MLP2DConfig(*weights, **common).resolve()
        norm2d = RMSNorm2DConfig(_meta(dim), mesh_device=host, tt_ccl=object()).resolve()
        return values | {
            "hidden_dim": mlp2d.padded_hidden_dim,
            "prefill_len_cutoff": mlp2d.prefill_len_cutoff,
            "distributed_prefill_norm": norm2d.input_fractured,  # a residual norm gathers statistics in prefill
        }

    mlp = MLP1DConfig(*weights, **common).resolve()
    attention_norm = RMSNorm1DConfig(_meta(dim), **common).resolve()
    ffn_norm = RMSNorm1DConfig(_meta(dim), decode_core_grid=mlp.decode_input_core_grid, **common).resolve()
    for norm_config in (attention_norm, ffn_norm):  # distributed_norm.py: a norm reads the residual stream
        assert norm_config.decode_input_memcfg == mlp.decode_residual_memcfg == attn.decode_residual_memcfg
    assert attention_norm.decode_memcfg == attn.decode_input_memcfg  # ... and writes its consumer's input
    assert ffn_norm.decode_memcfg == mlp.decode_input_memcfg
    assert attention_norm.prefill_distributed == ffn_norm.prefill_distributed
    if attn.decode_all_gather_matmul_memcfg is not None:
        values["ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG"] = attn.decode_all_gather_matmul_memcfg
    return values | {
        "ATTN_ALL_GATHER_MATMUL_PROGCFG": attn.decode_all_gather_matmul_prg_config,
        "hidden_dim": mlp.padded_hidden_dim,
        "prefill_len_cutoff": mlp.prefill_len_cutoff,
        "distributed_prefill_norm": attention_norm.prefill_distributed,
        "SHARDED_MLP_INPUT_MEMCFG": mlp.decode_input_memcfg,
        "DECODE_MLP_W1_W3_PRG_CONFIG": mlp.decode_w1_w3_prg_config,
        "SHARDED_MLP2_INPUT_MEMCFG": mlp.decode_mlp2_input_memcfg,
        "DECODE_MLP_W2_PRG_CONFIG": mlp.decode_w2_prg_config,
        "PREFILL_MLP_W1_W3_PRG_CONFIG": mlp.prefill_w1_w3_prg_config,
        "PREFILL_MLP_W2_PRG_CONFIG": mlp.prefill_w2_prg_config,
        "mlp_w1_w3_memcfg": mlp.w1_w3_memcfg,
        "mlp_w2_memcfg": mlp.w2_memcfg,
        "KV_PREFILL_MEM_CFG": attn.prefill_kv_memcfg,
        "SHARDED_NORM_ATTN_PRGM_CFG": attention_norm.decode_program_config,
        "SHARDED_NORM_MLP_PRGM_CFG": ffn_norm.decode_program_config,
    }


CASE_IDS = [f"{model}-{mesh[0]}x{mesh[1]}" for model, mesh in CASES]


@pytest.fixture(autouse=True)
def _shipped_configs_only(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PAD_MLP_CORES", raising=False)  # TTTv1 reads it; the pinned padding is the default


@pytest.mark.parametrize("model, mesh", list(CASES), ids=CASE_IDS)
def test_tttv1_model_args_match_pinned(model, mesh):
    expected = CASES[model, mesh][1]
    values = tttv1_values(model, mesh)
    assert set(values) == set(expected), "every pinned key is read from ModelArgs"
    assert_pinned(values, expected, f"TTTv1 ModelArgs ({model} on {mesh[0]}x{mesh[1]})")


@pytest.mark.parametrize("model, mesh", list(CASES), ids=CASE_IDS)
def test_tttv2_defaults_match_pinned(model, mesh):
    expected = CASES[model, mesh][1]
    values = tttv2_values(model, mesh)
    assert set(values) == set(expected) - NOT_CLAIMED_BY_MODULES.get(mesh, set()), "module coverage changed"
    assert_pinned(values, expected, f"TTTv2 module defaults ({model} on {mesh[0]}x{mesh[1]})")


# Hidden-dim padding (model_config.py _set_params_from_dict: PAD_MLP_CORES default Qwen2.5-7B 16, Qwen2.5-72B 32,
# else 0; hidden = nearest_multiple(hidden, cores * 32 * devices)) for the shipped models TTTv1 pads, and one each
# that shares their dims but is not padded on that mesh
PADDED_HIDDEN = {
    ("Qwen2.5-7B-Instruct", (1, 2)): ((3584, 18944), 19456),  # multiple of 1024
    ("Qwen2.5-72B-Instruct", (1, 1)): ((8192, 29568), 29696),  # multiple of 1024
    ("Qwen2.5-72B-Instruct", (1, 2)): ((8192, 29568), 30720),  # multiple of 2048
    ("Qwen2.5-72B-Instruct", (1, 8)): ((8192, 29568), 32768),  # multiple of 8192
    ("Qwen2.5-72B-Instruct", (8, 4)): ((8192, 29568), 32768),  # multiple of 32768
    ("Qwen2-7B-Instruct", (1, 1)): ((3584, 18944), 18944),  # not on the list (Qwen2.5-7B never runs on 1 device)
    ("Qwen2.5-Coder-32B-Instruct", (1, 8)): ((5120, 27648), 27648),  # not on the list (QwQ-32B, same dims, is)
}


@pytest.mark.parametrize("model, mesh", list(PADDED_HIDDEN), ids=[f"{m}-{s[0]}x{s[1]}" for m, s in PADDED_HIDDEN])
def test_hidden_padding_pinned(model, mesh):
    from models.tt_transformers.tt.model_config import ModelArgs

    (dim, hidden), padded = PADDED_HIDDEN[model, mesh]
    args = ModelArgs(_host_mesh(mesh), hf_model=model, max_batch_size=32)
    assert (args.unpadded_hidden_dim, args.hidden_dim) == (hidden, padded)
    config_cls = MLP2DConfig if mesh == (8, 4) else MLP1DConfig
    weights = (_meta(dim, hidden), _meta(hidden, dim), _meta(dim, hidden))
    cfg = config_cls(*weights, mesh_device=_host_mesh(mesh), tt_ccl=object(), topology=None).resolve()
    assert (cfg.hidden_dim, cfg.padded_hidden_dim) == (hidden, padded)
    assert padded % (math.prod(mesh) * 32) == 0, "whole tiles per device"


def test_mismatch_report_names_each_field():
    """The helper that makes the pinned tests readable reports every differing field and nothing else."""
    got = ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
        in0_block_w=2, per_core_M=1, per_core_N=7, fused_activation=None
    )
    assert mismatches("X", got, dram_mm(2, 1, 7)) == []
    assert mismatches("X", got, dram_mm(4, 1, 7)) == ["X.in0_block_w: got 2, expected 4"]
    assert mismatches("N", 512, 1024) == ["N: got 512, expected 1024"]
