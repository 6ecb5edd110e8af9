# SPDX-License-Identifier: Apache-2.0
"""TTTv1's Galaxy (TG) program-config helpers that no TTTv2 module uses (upstream tt-metal
models/tt_transformers/tt/model_config.py): ``matmul_1d_config`` for FF1_3_TG_PROGCFG / FF2_TG_PROGCFG and
``num_to_coregrid`` for the TG decode memory configs. The shared math lives in models/common/modules/program_configs.py.
"""

import math

import ttnn

from models.common.modules import program_configs as pc
from models.common.tensor_utils import TILE_SIZE

MAX_1D_SUBBLOCK_AREA = 8  # matmul_1d_config: subblock h * w <= 8 ...
MAX_1D_SUBBLOCK_AREA_FP32 = 4  # ... or <= 4 with fp32 accumulation
DEFAULT_1D_GRID = (8, 8)  # matmul_1d_config default CoreGrid(x=8, y=8)


def matmul_1d_config(
    m: int,
    k: int,
    n: int,
    grid: ttnn.CoreGrid | None = None,
    act=None,
    is_fp32_accumulate: bool = False,
    overwrite_per_core_k: int | None = None,
    overwrite_subblock_w: int | None = None,
    overwrite_subblock_h: int | None = None,
):
    """1D multicast matmul (in0 multicast, batch fused) over ``grid`` (default 8x8), TTTv1 ``matmul_1d_config``.

    If N has fewer tiles than the grid has cores, the grid keeps its width and shrinks to n_tiles // grid.x rows.
    """
    grid = grid or ttnn.CoreGrid(x=DEFAULT_1D_GRID[0], y=DEFAULT_1D_GRID[1])
    n_tiles = n // TILE_SIZE
    if n_tiles // grid.num_cores < 1:
        grid = ttnn.CoreGrid(x=grid.x, y=n_tiles // grid.x)
    per_core_m = m // TILE_SIZE
    per_core_k = pc.find_largest_divisor(k // (TILE_SIZE * grid.num_cores))
    per_core_n = math.ceil(n / TILE_SIZE / grid.num_cores)
    area = MAX_1D_SUBBLOCK_AREA_FP32 if is_fp32_accumulate else MAX_1D_SUBBLOCK_AREA
    subblock_w = max(w for w in range(1, area + 1) if per_core_n % w == 0)
    subblock_h = max(h for h in range(1, area + 1) if per_core_m % h == 0 and h * subblock_w <= area)
    return ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig(
        compute_with_storage_grid_size=(grid.x, grid.y),
        in0_block_w=overwrite_per_core_k or per_core_k,
        out_subblock_h=overwrite_subblock_h or subblock_h,
        out_subblock_w=overwrite_subblock_w or subblock_w,
        per_core_M=per_core_m,
        per_core_N=per_core_n,
        fuse_batch=True,
        fused_activation=act,
        mcast_in0=True,
    )


def matmul_1d_config_from_tensor_shapes(in0_shape, in1_shape, grid: ttnn.CoreGrid | None = None, **kwargs):
    """matmul_1d_config with M = in0 dims 0..2 multiplied, K = in0_shape[3], N = in1_shape[3]."""
    m = in0_shape[0] * in0_shape[1] * in0_shape[2]
    return matmul_1d_config(m, in0_shape[3], in1_shape[3], grid, **kwargs)


NON_ROW_CORE_GRIDS = {12: (6, 2), 20: (5, 4)}  # TTTv1 num_to_coregrid: (x, y) for counts that are not rows of 8


def num_to_coregrid(num_cores: int) -> ttnn.CoreGrid:
    """TTTv1 num_to_coregrid: rows of 8 cores, or 6x2 for 12 and 5x4 for 20 cores."""
    if num_cores % pc.CORES_PER_ROW == 0:
        return ttnn.CoreGrid(y=num_cores // pc.CORES_PER_ROW, x=pc.CORES_PER_ROW)
    if num_cores not in NON_ROW_CORE_GRIDS:
        raise ValueError(f"no TTTv1 core grid for {num_cores} cores")
    x, y = NON_ROW_CORE_GRIDS[num_cores]
    return ttnn.CoreGrid(y=y, x=x)
