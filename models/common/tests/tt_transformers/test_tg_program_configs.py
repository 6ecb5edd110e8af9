# SPDX-License-Identifier: Apache-2.0
"""TTTv1's Galaxy-only program-config helpers (models/tt_transformers/tt/tg_program_configs.py), values worked out
by hand from upstream model_config.py's matmul_1d_config / num_to_coregrid."""

import ttnn

from models.tt_transformers.tt import tg_program_configs as tg_pc


def test_matmul_1d_config():
    # Llama-70B FF1_3_TG: M=32, K=8192/4=2048, N=28672/8=3584 (112 tiles) on 8x2=16 cores:
    # in0_block_w = div(2048 / (32*16) = 4) = 4, per_core_N = ceil(112/16) = 7
    cfg = tg_pc.matmul_1d_config_from_tensor_shapes(
        (1, 1, 32, 2048),
        (1, 1, 2048, 3584),
        grid=ttnn.CoreGrid(x=8, y=2),
        overwrite_subblock_h=1,
        overwrite_subblock_w=1,
    )
    assert (cfg.in0_block_w, cfg.per_core_M, cfg.per_core_N, cfg.out_subblock_w, cfg.out_subblock_h) == (4, 1, 7, 1, 1)
    # N = 256 (8 tiles) on the default 8x8 grid: fewer tiles than cores -> grid shrinks to y = 8 // 8 = 1;
    # per_core_N = 1, subblock_w = 1, subblock_h = largest h <= 8 dividing per_core_M = 4 -> 4
    cfg = tg_pc.matmul_1d_config(128, 1024, 256)
    grid = cfg.compute_with_storage_grid_size
    assert (grid.x, grid.y, cfg.per_core_N, cfg.out_subblock_w, cfg.out_subblock_h) == (8, 1, 1, 1, 4)


def test_num_to_coregrid():
    assert (tg_pc.num_to_coregrid(40).x, tg_pc.num_to_coregrid(40).y) == (8, 5)
    assert (tg_pc.num_to_coregrid(12).x, tg_pc.num_to_coregrid(12).y) == (6, 2)
    assert (tg_pc.num_to_coregrid(20).x, tg_pc.num_to_coregrid(20).y) == (5, 4)
