# SPDX-License-Identifier: Apache-2.0
"""Program-config, memory-config and compute-kernel-config math, written once for TTTv1 and TTTv2.

Every formula is TTTv1's (upstream tt-metal models/tt_transformers/tt/model_config.py and common.py), so a TTTv2
module's default equals the config TTTv1 would pick. Sizes are in elements unless a name says tiles.
"""

import math

import ttnn

TILE = 32  # tile edge in elements
MAX_GRID_ROWS = MAX_GRID_COLS = 8  # TTTv1 searches grids within an 8x8 worker block
TARGET_CORES = 32  # find_grid prefers core counts closest to 32
MAX_BLOCK_DIVISOR = 8  # find_largest_divisor: in0_block_w and prefill grids are at most 8
MAX_SUBBLOCK_AREA = 4  # get_out_subblock_w: out_subblock_h * out_subblock_w <= 4 (no fp32 accumulation)


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
    rows, cols = find_grid(k // TILE)
    return ttnn.CoreGrid(x=cols, y=rows)


def dram_shard_core_grid_for_k_and_n(k: int, n: int) -> ttnn.CoreGrid:
    rows, cols = find_grid_k_n(k // TILE, n // TILE)
    return ttnn.CoreGrid(x=cols, y=rows)


def get_out_subblock_w(per_core_n: int, out_subblock_h: int) -> int:
    """Widest out_subblock_w <= 4 dividing per_core_N with h * w <= 4."""
    return next(
        (w for w in range(MAX_SUBBLOCK_AREA, 0, -1) if w * out_subblock_h <= MAX_SUBBLOCK_AREA and per_core_n % w == 0),
        1,
    )


def dram_matmul_config(m: int, k: int, n: int, num_cores: int, fused_activation=None):
    """DRAM-sharded matmul (decode): activations width-sharded over ``num_cores``, weights over the DRAM banks."""
    if k % (TILE * num_cores):
        raise ValueError(f"K={k} does not split into whole tiles over {num_cores} cores")
    return ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
        in0_block_w=find_largest_divisor(k // (TILE * num_cores)),
        per_core_M=math.ceil(m / TILE),
        per_core_N=math.ceil(n / (TILE * num_cores)),
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
):
    """2D multicast matmul (prefill). As TTTv1, ``grid_size`` goes in as ``compute_with_storage_grid_size`` (x, y)
    although callers pass find_prefill_grid's (rows, cols): per_core_N splits N over grid_size[0] and per_core_M
    splits M over grid_size[1]."""
    per_core_M = per_core_M or math.ceil(m / (TILE * grid_size[1]))
    per_core_N = per_core_N or math.ceil(n / (TILE * grid_size[0]))
    if in0_block_w is None:
        if k % (TILE * grid_size[1]):
            raise ValueError(f"K={k} does not split into whole tiles over {grid_size[1]} grid rows")
        in0_block_w = find_largest_divisor(k // (TILE * grid_size[1]))
    return ttnn.MatmulMultiCoreReuseMultiCastProgramConfig(
        compute_with_storage_grid_size=grid_size,
        in0_block_w=in0_block_w,
        out_subblock_h=1,
        out_subblock_w=get_out_subblock_w(per_core_N, 1),
        per_core_M=per_core_M,
        per_core_N=per_core_N,
        transpose_mcast=False,
        fused_activation=fused_activation,
        fuse_batch=fuse_batch,
    )


def create_dram_sharded_mem_config(k: int, n: int, dram_grid_size) -> ttnn.MemoryConfig:
    """(k, n) weight width-sharded over every DRAM bank, n padded to whole tiles per bank."""
    if dram_grid_size.y != 1:
        raise ValueError(f"DRAM-sharded weights need a 1-row DRAM grid, got {dram_grid_size}")
    banks = dram_grid_size.x
    padded_n = math.ceil(n / (TILE * banks)) * TILE * banks
    grid = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(banks - 1, 0))})
    spec = ttnn.ShardSpec(grid, (k, padded_n // banks), ttnn.ShardOrientation.ROW_MAJOR)
    return ttnn.MemoryConfig(ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.BufferType.DRAM, spec)


def width_sharded_l1_memcfg(shard_shape: tuple[int, int], grid: ttnn.CoreGrid) -> ttnn.MemoryConfig:
    """L1 width-sharded, one ``shard_shape`` (height, width) per core of ``grid`` (row-major)."""
    return ttnn.create_sharded_memory_config(
        shard_shape,
        grid,
        ttnn.ShardStrategy.WIDTH,
        ttnn.ShardOrientation.ROW_MAJOR,
        use_height_and_width_as_shard_shape=True,
    )


def decode_residual_memcfg(dim: int, num_devices: int, batch_rows: int) -> ttnn.MemoryConfig:
    """TTTv1 DECODE_RESIDUAL_MEMCFG (1D meshes): the device's 1/N slice of ``dim`` width-sharded in L1."""
    grid = dram_shard_core_grid_for_k(dim // num_devices)
    return width_sharded_l1_memcfg((batch_rows, dim // grid.num_cores // num_devices), grid)


def create_sharded_norm_config(grid: ttnn.CoreGrid, dim: int, batch_rows: int):
    """Width-sharded rms_norm/layer_norm program config on ``grid`` (TTTv1 create_sharded_norm_config)."""
    block_w = dim // grid.num_cores // TILE
    return ttnn.LayerNormShardedMultiCoreProgramConfig(
        compute_with_storage_grid_size=[grid.x, grid.y],
        subblock_w=find_largest_divisor(block_w, MAX_SUBBLOCK_AREA),
        block_h=batch_rows // TILE,
        block_w=block_w,
        inplace=False,
    )


def compute_kernel_config(math_fidelity, *, math_approx_mode: bool, fp32_dest_acc_en: bool, packer_l1_acc: bool):
    return ttnn.WormholeComputeKernelConfig(
        math_fidelity=math_fidelity,
        math_approx_mode=math_approx_mode,
        fp32_dest_acc_en=fp32_dest_acc_en,
        packer_l1_acc=packer_l1_acc,
    )


def hifi2_fp16_compute_kernel_config():
    """TTTv1 compute_kernel_config_hifi2_fp16: the MLP matmuls' default (LI_FF1_FF3 / LI_FF2)."""
    return compute_kernel_config(
        ttnn.MathFidelity.HiFi2, math_approx_mode=False, fp32_dest_acc_en=False, packer_l1_acc=True
    )


def rmsnorm_compute_kernel_config():
    """TTTv1 RMSNorm's compute_kernel_config_hifi2: HiFi2 with fp32 accumulation."""
    return compute_kernel_config(
        ttnn.MathFidelity.HiFi2, math_approx_mode=False, fp32_dest_acc_en=True, packer_l1_acc=True
    )
