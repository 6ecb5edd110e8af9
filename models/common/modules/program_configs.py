# SPDX-License-Identifier: Apache-2.0
"""Program-config, memory-config and compute-kernel-config math, written once for TTTv1 and TTTv2.

Every formula is TTTv1's (upstream tt-metal models/tt_transformers/tt/model_config.py and common.py), so a TTTv2
module's default equals the config TTTv1 would pick. Sizes are in elements unless a name says tiles.
"""

import math

import ttnn

from models.common.tensor_utils import TILE_SIZE

MAX_GRID_ROWS = MAX_GRID_COLS = 8  # TTTv1 searches grids within an 8x8 worker block
TARGET_CORES = 32  # find_grid prefers core counts closest to 32
MAX_BLOCK_DIVISOR = 8  # find_largest_divisor: in0_block_w and prefill grids are at most 8
MAX_SUBBLOCK_AREA = 4  # get_out_subblock_w: out_subblock_h * out_subblock_w <= 4 (no fp32 accumulation)
CORES_PER_ROW = 8  # TTTv1 num_to_corerange and the Galaxy grids: rows of 8 worker cores
# TTTv1 decodes at most one tile of users: ModelArgs takes max_batch_size in {1, 2, ..., 32} and pads the decode batch
# to tile_padded_batch_rows = 32; the module configs default to that full tile (upstream TTTv2: max_batch_size=32).
MAX_DECODE_BATCH = TILE_SIZE


def find_largest_divisor(n: int, max_divisor: int = MAX_BLOCK_DIVISOR) -> int:
    """Largest i <= max_divisor dividing n (1 if none)."""
    return next((i for i in range(max_divisor, 0, -1) if n % i == 0), 1)


def _rows_cols(core_counts) -> tuple[int, int]:
    for cores in core_counts:
        for rows in range(1, MAX_GRID_ROWS + 1):
            if cores % rows == 0 and cores // rows <= MAX_GRID_COLS:
                return rows, cores // rows
    raise ValueError("no grid of at most 8x8 cores fits")


def find_grid(n_tiles: int) -> tuple[int, int]:
    """(rows, cols) whose core count divides ``n_tiles``, closest to 32 cores (ties: fewer cores)."""
    counts = [c for c in range(1, MAX_GRID_ROWS * MAX_GRID_COLS + 1) if n_tiles % c == 0]
    return _rows_cols(sorted(counts, key=lambda c: abs(c - TARGET_CORES)))


def find_grid_k_n(k_tiles: int, n_tiles: int) -> tuple[int, int]:
    """(rows, cols) with the most cores dividing both ``k_tiles`` and ``n_tiles``."""
    counts = [c for c in range(1, MAX_GRID_ROWS * MAX_GRID_COLS + 1) if k_tiles % c == 0 and n_tiles % c == 0]
    return _rows_cols(sorted(counts, reverse=True))


def find_prefill_grid(row_tiles: int, col_tiles: int) -> tuple[int, int]:
    """(rows, cols) for prefill matmuls: the largest divisors <= 8 of each tile count."""
    return find_largest_divisor(row_tiles), find_largest_divisor(col_tiles)


def dram_shard_core_grid_for_k(k: int) -> ttnn.CoreGrid:
    rows, cols = find_grid(k // TILE_SIZE)
    return ttnn.CoreGrid(x=cols, y=rows)


GALAXY_GRID_MAX_ROWS = 4  # TTTv1 Galaxy decode grids (norm core_grid_ln, lm_head_core_grid): at most 4 rows of 8


def galaxy_decode_grid(width: int) -> ttnn.CoreGrid:
    """The grid a Galaxy device's ``width`` columns of the decode residual are width-sharded over (TTTv1
    DistributedNorm's core_grid_ln = (min(4, width / 32 / 8), 8), and SHARDED_ATTN_INPUT_MEMCFG's grid): the most
    rows (<= 4) of 8 cores over which ``width`` splits into whole tiles; that is TTTv1's grid wherever TTTv1's
    shards are whole tiles. When no row count does, the 1D grid (find_grid)."""
    for rows in range(GALAXY_GRID_MAX_ROWS, 0, -1):
        if width % (TILE_SIZE * CORES_PER_ROW * rows) == 0:
            return ttnn.CoreGrid(y=rows, x=CORES_PER_ROW)
    return dram_shard_core_grid_for_k(width)


def dram_shard_core_grid_for_k_and_n(k: int, n: int) -> ttnn.CoreGrid:
    rows, cols = find_grid_k_n(k // TILE_SIZE, n // TILE_SIZE)
    return ttnn.CoreGrid(x=cols, y=rows)


def get_out_subblock_w(per_core_n: int, out_subblock_h: int) -> int:
    """Widest out_subblock_w <= 4 dividing per_core_N with h * w <= 4."""
    return next(
        (w for w in range(MAX_SUBBLOCK_AREA, 0, -1) if w * out_subblock_h <= MAX_SUBBLOCK_AREA and per_core_n % w == 0),
        1,
    )


def dram_matmul_config(m: int, k: int, n: int, num_cores: int | None = None, fused_activation=None):
    """DRAM-sharded matmul (decode): activations width-sharded over ``num_cores``, weights over the DRAM banks.

    Without ``num_cores`` the grid comes from dram_shard_core_grid_for_k_and_n(k, n), and K must then split into
    whole tiles over it (TTTv1 asserts only in that case; with ``num_cores`` given, in0_block_w floors).
    """
    if num_cores is None:
        num_cores = dram_shard_core_grid_for_k_and_n(k, n).num_cores
        if k % (TILE_SIZE * num_cores):
            raise ValueError(f"K={k} does not split into whole tiles over {num_cores} cores")
    return ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
        in0_block_w=find_largest_divisor(k // (TILE_SIZE * num_cores)),
        per_core_M=math.ceil(m / TILE_SIZE),
        per_core_N=math.ceil(n / (TILE_SIZE * num_cores)),
        fused_activation=fused_activation,
    )


def matmul_config(
    m: int,
    k: int,
    n: int,
    grid_size: tuple[int, int],
    in0_block_w: int | None = None,
    fuse_batch: bool = False,
    fused_activation=None,
    per_core_M: int | None = None,
    per_core_N: int | None = None,
    out_subblock_w: int | None = None,
):
    """2D multicast matmul (prefill). As TTTv1, ``grid_size`` goes in as ``compute_with_storage_grid_size`` (x, y)
    although callers pass find_prefill_grid's (rows, cols): per_core_N splits N over grid_size[0] and per_core_M
    splits M over grid_size[1]. ``out_subblock_w`` defaults to get_out_subblock_w(per_core_N, 1) (TTTv1 forces 1
    on Galaxy as a hang workaround)."""
    per_core_M = per_core_M or math.ceil(m / (TILE_SIZE * grid_size[1]))
    per_core_N = per_core_N or math.ceil(n / (TILE_SIZE * grid_size[0]))
    if in0_block_w is None:
        if k % (TILE_SIZE * grid_size[1]):
            raise ValueError(f"K={k} does not split into whole tiles over {grid_size[1]} grid rows")
        in0_block_w = find_largest_divisor(k // (TILE_SIZE * grid_size[1]))
    return ttnn.MatmulMultiCoreReuseMultiCastProgramConfig(
        compute_with_storage_grid_size=grid_size,
        in0_block_w=in0_block_w,
        out_subblock_h=1,
        out_subblock_w=out_subblock_w or get_out_subblock_w(per_core_N, 1),
        per_core_M=per_core_M,
        per_core_N=per_core_N,
        transpose_mcast=False,
        fused_activation=fused_activation,
        fuse_batch=fuse_batch,
    )


def num_to_corerange(num_cores: int, start_core: ttnn.CoreCoord | None = None) -> ttnn.CoreRange:
    """``num_cores`` cores filling rows of 8 from ``start_core`` (default (0, 0); fewer than 8: one partial row)."""
    if num_cores > CORES_PER_ROW and num_cores % CORES_PER_ROW:
        raise ValueError(f"{num_cores} cores do not fill whole rows of {CORES_PER_ROW}")
    start = start_core or ttnn.CoreCoord(0, 0)
    cols = min(num_cores, CORES_PER_ROW)
    rows = num_cores // cols
    return ttnn.CoreRange(start, ttnn.CoreCoord(start.x + cols - 1, start.y + rows - 1))


LM_HEAD_MAX_ROWS = 8  # TTTv1 lm_head_core_grid: start from 8 rows (4 on Galaxy) of 8 cores, shrink until dim divides


def lm_head_core_grid(dim: int, galaxy: bool) -> ttnn.CoreGrid:
    """TTTv1 ModelArgs lm_head_core_grid: the most rows (<= 8, <= 4 on Galaxy, where each row must hold whole
    32x32-tile blocks of dim) of up to 8 cores over which dim splits into whole tiles (the LM head's and final
    norm's decode grid)."""
    rows = LM_HEAD_MAX_ROWS
    if galaxy:
        rows = GALAXY_GRID_MAX_ROWS
        while dim % (TILE_SIZE * TILE_SIZE * rows):
            rows -= 1
            if rows == 0:
                raise ValueError(
                    f"dim={dim} is not a multiple of {TILE_SIZE * TILE_SIZE} (32x32 tiles per lm_head row on a Galaxy)"
                )
    cols = CORES_PER_ROW
    while dim % (TILE_SIZE * rows * cols):
        rows -= 1
        if rows == 0:
            cols -= 1
            if cols == 0:
                raise ValueError(f"no lm_head core grid splits dim={dim} into whole tiles")
            rows = LM_HEAD_MAX_ROWS
    return ttnn.CoreGrid(y=rows, x=cols)


def create_dram_sharded_mem_config(k: int, n: int, dram_grid_size) -> ttnn.MemoryConfig:
    """(k, n) weight width-sharded over every DRAM bank, n padded to whole tiles per bank."""
    if dram_grid_size.y != 1:
        raise ValueError(f"DRAM-sharded weights need a 1-row DRAM grid, got {dram_grid_size}")
    banks = dram_grid_size.x
    padded_n = math.ceil(n / (TILE_SIZE * banks)) * TILE_SIZE * banks
    grid = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(banks - 1, 0))})
    spec = ttnn.ShardSpec(grid, (k, padded_n // banks), ttnn.ShardOrientation.ROW_MAJOR)
    return ttnn.MemoryConfig(ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.BufferType.DRAM, spec)


def width_sharded_l1_memcfg(shard_shape: tuple[int, int], grid) -> ttnn.MemoryConfig:
    """L1 width-sharded, one ``shard_shape`` (height, width) per core of ``grid`` (CoreGrid or CoreRangeSet)."""
    return _sharded_l1_memcfg(shard_shape, grid, ttnn.ShardStrategy.WIDTH)


def height_sharded_l1_memcfg(shard_shape: tuple[int, int], grid) -> ttnn.MemoryConfig:
    """L1 height-sharded, one ``shard_shape`` (height, width) per core of ``grid`` (CoreGrid or CoreRangeSet)."""
    return _sharded_l1_memcfg(shard_shape, grid, ttnn.ShardStrategy.HEIGHT)


def _sharded_l1_memcfg(shard_shape, grid, strategy) -> ttnn.MemoryConfig:
    return ttnn.create_sharded_memory_config(
        shard_shape, grid, strategy, ttnn.ShardOrientation.ROW_MAJOR, use_height_and_width_as_shard_shape=True
    )


def decode_residual_memcfg(dim: int, num_devices: int, batch_rows: int) -> ttnn.MemoryConfig:
    """TTTv1 DECODE_RESIDUAL_MEMCFG (1D meshes): the device's 1/N slice of ``dim`` width-sharded in L1."""
    grid = dram_shard_core_grid_for_k(dim // num_devices)
    return width_sharded_l1_memcfg((batch_rows, dim // grid.num_cores // num_devices), grid)


def create_sharded_norm_config(grid: ttnn.CoreGrid, dim: int, batch_rows: int):
    """Width-sharded rms_norm/layer_norm program config on ``grid`` (TTTv1 create_sharded_norm_config)."""
    block_w = dim // grid.num_cores // TILE_SIZE
    return ttnn.LayerNormShardedMultiCoreProgramConfig(
        compute_with_storage_grid_size=[grid.x, grid.y],
        subblock_w=find_largest_divisor(block_w, MAX_SUBBLOCK_AREA),
        block_h=batch_rows // TILE_SIZE,
        block_w=block_w,
        inplace=False,
    )


# TTTv1 ModelArgs.compute_kernel_config_<name>: WormholeComputeKernelConfig fields per fidelity setting.
COMPUTE_KERNEL_CONFIGS = {
    "lofi": dict(math_fidelity="LoFi", math_approx_mode=False, fp32_dest_acc_en=False, packer_l1_acc=True),
    "hifi2": dict(math_fidelity="HiFi2", math_approx_mode=True, fp32_dest_acc_en=True, packer_l1_acc=True),
    "hifi2_fp16": dict(math_fidelity="HiFi2", math_approx_mode=False, fp32_dest_acc_en=False, packer_l1_acc=True),
    "hifi4": dict(math_fidelity="HiFi4", math_approx_mode=False, fp32_dest_acc_en=True, packer_l1_acc=True),
    # math_approx_mode left at the ttnn default, as TTTv1 does
    "hifi4_fp32": dict(math_fidelity="HiFi4", fp32_dest_acc_en=True, packer_l1_acc=True, dst_full_sync_en=False),
    "hifi2_na": dict(math_fidelity="HiFi2", math_approx_mode=False, fp32_dest_acc_en=False, packer_l1_acc=False),
    "sdpa": dict(math_fidelity="HiFi4", math_approx_mode=False, fp32_dest_acc_en=True, packer_l1_acc=False),
    # model_config["SDPA_DECODE_COMPUTE_PROGCFG"]
    "sdpa_decode": dict(math_fidelity="HiFi2", math_approx_mode=False, fp32_dest_acc_en=False, packer_l1_acc=False),
}


def compute_kernel_config(name: str) -> ttnn.WormholeComputeKernelConfig:
    """The TTTv1 compute kernel config called ``name`` (a key of COMPUTE_KERNEL_CONFIGS)."""
    fields = dict(COMPUTE_KERNEL_CONFIGS[name])
    fields["math_fidelity"] = getattr(ttnn.MathFidelity, fields["math_fidelity"])
    return ttnn.WormholeComputeKernelConfig(**fields)


def hifi4_compute_kernel_config():
    """TTTv1 compute_kernel_config_hifi4: prefill SDPA's default."""
    return compute_kernel_config("hifi4")


def hifi2_fp16_compute_kernel_config():
    """TTTv1 compute_kernel_config_hifi2_fp16: the MLP matmuls' default (LI_FF1_FF3 / LI_FF2)."""
    return compute_kernel_config("hifi2_fp16")


def rmsnorm_compute_kernel_config():
    """TTTv1 RMSNorm's compute_kernel_config_hifi2: HiFi2 with fp32 accumulation."""
    return ttnn.WormholeComputeKernelConfig(
        math_fidelity=ttnn.MathFidelity.HiFi2, math_approx_mode=False, fp32_dest_acc_en=True, packer_l1_acc=True
    )


# --- attention (TTTv1 model_config.py: XQKV_PREFILL_PROGCFG, SDPA_*, KV_PREFILL_MEM_CFG, SCORES_*) --------------
FULL_GRID = (8, 8)  # TTTv1 attention program configs use an 8x8 compute grid on Wormhole
MAX_QKV_MM_SEQ_LEN = 2048  # ModelArgs.MAX_QKV_MM_SEQ_LEN: longer prefills run the QKV matmul in 2048-row chunks
MAX_MM_SEQ_LEN = 1024  # TTTv1 WO prefill: M capped at 1024 rows per call (longer sequences are chunked)
# TTTv1 WO_PREFILL_PROGCFG on T3K with the fused all-gather matmul: the column-split wo's N is 1024 when dim / 8
# divides it (a width, not the 1024-row MAX_MM_SEQ_LEN cap)
FUSED_WO_PREFILL_N = 1024
SDPA_LONG_SEQ_LEN = 2048  # SDPA_PROGCFG: 256-row q/k chunks from 2048 tokens, 64 below ("what works best empirically")
SDPA_LONG_CHUNK, SDPA_SHORT_CHUNK = 256, 64


def xqkv_prefill_config(seq_len: int, n: int, dram_shard_grid_width: int):
    """TTTv1 XQKV_PREFILL_PROGCFG(seq_len); ``n`` = fused QKV columns per device."""
    rows_per_core = MAX_GRID_ROWS if seq_len >= MAX_QKV_MM_SEQ_LEN else math.ceil(seq_len / TILE_SIZE / MAX_GRID_ROWS)
    return ttnn.MatmulMultiCoreReuseMultiCastProgramConfig(
        compute_with_storage_grid_size=FULL_GRID,
        in0_block_w=1,
        out_subblock_h=1,
        out_subblock_w=1,
        per_core_M=max(1, rows_per_core),
        per_core_N=math.ceil(n / TILE_SIZE / dram_shard_grid_width),
        transpose_mcast=False,
        fused_activation=None,
        fuse_batch=seq_len <= MAX_QKV_MM_SEQ_LEN,
    )


def sdpa_prefill_config(seq_len: int):
    """TTTv1 SDPA_PROGCFG(seq_len): q/k chunks of 256 (>= 2048 tokens) or 64."""
    chunk = SDPA_LONG_CHUNK if seq_len >= SDPA_LONG_SEQ_LEN else SDPA_SHORT_CHUNK
    return ttnn.SDPAProgramConfig(
        compute_with_storage_grid_size=FULL_GRID, exp_approx_mode=False, q_chunk_size=chunk, k_chunk_size=chunk
    )


def sdpa_chunk_aligned(config, chunk_start_idx: int):
    """``config`` for a chunked prefill starting at ``chunk_start_idx``: its q/k chunks must divide the start, so
    they shrink to the start's lowest set bit when that is smaller (a start of 0 keeps them)."""
    chunk = min(config.q_chunk_size, chunk_start_idx & -chunk_start_idx) if chunk_start_idx else config.q_chunk_size
    if chunk == config.q_chunk_size:
        return config
    grid = config.compute_with_storage_grid_size
    return ttnn.SDPAProgramConfig(
        compute_with_storage_grid_size=(grid.x, grid.y),
        exp_approx_mode=config.exp_approx_mode,
        q_chunk_size=chunk,
        k_chunk_size=chunk,
    )


def sdpa_decode_config():
    """TTTv1 SDPA_DECODE_PROGCFG (chunk sizes 0: the op picks)."""
    return ttnn.SDPAProgramConfig(
        compute_with_storage_grid_size=FULL_GRID, exp_approx_mode=False, q_chunk_size=0, k_chunk_size=0
    )


def kv_prefill_memcfg(seq_len: int, n_local_kv_heads: int, head_dim: int) -> ttnn.MemoryConfig:
    """TTTv1 KV_PREFILL_MEM_CFG(seq_len): a prefill's K or V heads height-sharded over the 8x8 cores."""
    grid = ttnn.CoreGrid(x=FULL_GRID[0], y=FULL_GRID[1])
    return height_sharded_l1_memcfg((n_local_kv_heads * seq_len // grid.num_cores, head_dim), grid)


def scores_memcfg(batch: int, n_local_heads: int, head_dim: int) -> ttnn.MemoryConfig:
    """TTTv1 SCORES_BATCHED_MM_OUTPUT_MEMCFG(batch): one user per core, its heads padded to a tile."""
    cores = ttnn.CoreRangeSet({num_to_corerange(batch)})
    return height_sharded_l1_memcfg((math.ceil(n_local_heads / TILE_SIZE) * TILE_SIZE, head_dim), cores)
