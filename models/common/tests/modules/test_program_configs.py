# SPDX-License-Identifier: Apache-2.0
"""Host-only checks of the shared TTTv1 program-config math against values worked out by hand."""

import pytest
import ttnn

from models.common.modules import program_configs as pc


@pytest.mark.parametrize("n, expected", [(14, 7), (12, 6), (16, 8), (11, 1), (56, 8)])
def test_find_largest_divisor(n, expected):
    assert pc.find_largest_divisor(n) == expected


@pytest.mark.parametrize(
    "n_tiles, expected",
    [
        # 448 (Llama-8B hidden 14336 / 32): divisors <= 64 nearest 32 is 32 itself -> 4 rows x 8 cols
        (448, (4, 8)),
        # 112 (dim 3584 / 32): divisors 1,2,4,7,8,14,16,28,56 -> 28 is nearest 32 -> 4 rows x 7 cols
        (112, (4, 7)),
        # 16 (dim 4096 / 8 devices / 32): 16 -> 2 rows x 8 cols (1 row would need 16 cols)
        (16, (2, 8)),
        # 20: divisors 1,2,4,5,10,20 -> 20; 1 or 2 rows need > 8 cols, 3 does not divide -> 4 rows x 5 cols
        (20, (4, 5)),
    ],
)
def test_find_grid(n_tiles, expected):
    assert pc.find_grid(n_tiles) == expected


def test_find_grid_k_n_takes_most_common_cores():
    # K = 128 tiles (dim 4096), N = 56 tiles (14336 / 8 devices): common divisors 1,2,4,8 -> 8 = 1 row x 8
    assert pc.find_grid_k_n(128, 56) == (1, 8)
    # K = 112 (3584), N = 304 (19456 / 2): common 1,2,4,8,16 -> 16 = 2 rows x 8
    assert pc.find_grid_k_n(112, 304) == (2, 8)


def test_core_grids_are_x_cols_y_rows():
    grid = pc.dram_shard_core_grid_for_k(4096)  # find_grid(128): 32 cores = 4 rows x 8 cols
    assert (grid.x, grid.y) == (8, 4)
    grid = pc.dram_shard_core_grid_for_k_and_n(4096, 1792)
    assert (grid.x, grid.y) == (8, 1)


def test_find_prefill_grid():
    assert pc.find_prefill_grid(8, 128) == (8, 8)
    assert pc.find_prefill_grid(8, 20) == (8, 5)  # 20 tiles: largest divisor <= 8 is 5


@pytest.mark.parametrize("per_core_n, h, expected", [(7, 1, 1), (8, 1, 4), (6, 1, 3), (4, 2, 2), (16, 1, 4)])
def test_get_out_subblock_w(per_core_n, h, expected):
    assert pc.get_out_subblock_w(per_core_n, h) == expected


def test_dram_matmul_config():
    # Llama-8B w1 on 1x8: K=4096 over 8 cores -> 4096 / (32*8) = 16 tiles per core -> in0_block_w 8;
    # N = 1792 -> ceil(1792 / 256) = 7 tiles per core; M = 32 -> 1 tile
    cfg = pc.dram_matmul_config(32, 4096, 1792, 8)
    assert (cfg.in0_block_w, cfg.per_core_M, cfg.per_core_N) == (8, 1, 7)
    # Without num_cores: grid from find_grid_k_n(128, 56) = 8 cores, same numbers
    cfg = pc.dram_matmul_config(32, 4096, 1792)
    assert (cfg.in0_block_w, cfg.per_core_N) == (8, 7)
    # With num_cores, K need not split into whole tiles (TTTv1 floors): 3200 / (32*8) = 12.5 -> 12 -> 6
    assert pc.dram_matmul_config(32, 3200, 5120, 8).in0_block_w == 6


def test_matmul_config_reproduces_rows_cols_as_x_y():
    # grid (8, 4) from find_prefill_grid means 8 rows x 4 cols, but TTTv1 passes it as (x=8, y=4):
    # per_core_M = ceil(128 / (32*4)) = 1, per_core_N = ceil(4096 / (32*8)) = 16, in0_block_w = div(2048/(32*4)=16) = 8
    cfg = pc.matmul_config(m=128, k=2048, n=4096, grid_size=(8, 4))
    assert (cfg.per_core_M, cfg.per_core_N, cfg.in0_block_w, cfg.out_subblock_w) == (1, 16, 8, 4)
    assert (cfg.compute_with_storage_grid_size.x, cfg.compute_with_storage_grid_size.y) == (8, 4)
    assert pc.matmul_config(128, 2048, 4096, (8, 4), out_subblock_w=1).out_subblock_w == 1
    with pytest.raises(ValueError, match="whole tiles"):
        pc.matmul_config(m=128, k=2000, n=4096, grid_size=(8, 4))


def test_create_dram_sharded_mem_config():
    # N = 1792 over 12 banks: padded to ceil(1792 / 384) * 384 = 1920 -> 160 columns per bank
    cfg = pc.create_dram_sharded_mem_config(4096, 1792, ttnn.CoreCoord(12, 1))
    assert cfg.buffer_type == ttnn.BufferType.DRAM
    assert list(cfg.shard_spec.shape) == [4096, 160]
    with pytest.raises(ValueError, match="1-row DRAM grid"):
        pc.create_dram_sharded_mem_config(4096, 1792, ttnn.CoreCoord(6, 2))


def test_sharded_memcfgs_and_norm_config():
    grid = ttnn.CoreGrid(x=8, y=4)
    width = pc.width_sharded_l1_memcfg((32, 128), grid)
    assert width.memory_layout == ttnn.TensorMemoryLayout.WIDTH_SHARDED
    assert list(width.shard_spec.shape) == [32, 128]
    height = pc.height_sharded_l1_memcfg((32, 128), grid)
    assert height.memory_layout == ttnn.TensorMemoryLayout.HEIGHT_SHARDED
    # dim 4096 over 32 cores: block_w = 4096 / 32 / 32 = 4 tiles, subblock_w 4, block_h = 32 / 32 = 1
    norm = pc.create_sharded_norm_config(grid, 4096, 32)
    assert (norm.block_w, norm.block_h, norm.subblock_w) == (4, 1, 4)


def test_core_counts():
    assert pc.num_to_corerange(3).end == ttnn.CoreCoord(2, 0)
    assert pc.num_to_corerange(16).end == ttnn.CoreCoord(7, 1)
    with pytest.raises(ValueError, match="whole rows"):
        pc.num_to_corerange(12)


def test_attention_prefill_configs():
    assert pc.sdpa_prefill_config(128).q_chunk_size == 64
    assert pc.sdpa_prefill_config(4096).k_chunk_size == 256
    # chunked prefill starting at 384 = 128 * 3: the chunk must divide the start -> min(256, 128) = 128
    assert pc.sdpa_chunk_aligned(pc.sdpa_prefill_config(4096), 384).q_chunk_size == 128
    assert pc.sdpa_chunk_aligned(pc.sdpa_prefill_config(4096), 384).k_chunk_size == 128
    assert pc.sdpa_chunk_aligned(pc.sdpa_prefill_config(4096), 0).q_chunk_size == 256, "a start of 0 keeps them"
    assert pc.sdpa_decode_config().q_chunk_size == 0
    # 128 rows over 8 grid rows: per_core_M = ceil(128 / 32 / 8) = 1; N = 768 -> ceil(768 / 32 / 8) = 3
    short = pc.xqkv_prefill_config(128, n=768, dram_shard_grid_width=8)
    assert (short.per_core_M, short.per_core_N, short.fuse_batch) == (1, 3, True)
    long = pc.xqkv_prefill_config(4096, n=768, dram_shard_grid_width=8)
    assert (long.per_core_M, long.fuse_batch) == (8, False)
    # 1 local KV head, 128 tokens over 64 cores -> 2 rows per shard
    assert list(pc.kv_prefill_memcfg(128, 1, 128).shard_spec.shape) == [2, 128]
    # 4 local heads pad to one tile of 32 rows; 8 users -> cores (0,0)-(7,0)
    scores = pc.scores_memcfg(8, 4, 128)
    assert list(scores.shard_spec.shape) == [32, 128]
    assert scores.shard_spec.grid.num_cores() == 8


def test_compute_kernel_configs():
    hifi2 = pc.compute_kernel_config("hifi2")
    assert (hifi2.math_fidelity, hifi2.math_approx_mode, hifi2.fp32_dest_acc_en) == (
        ttnn.MathFidelity.HiFi2,
        True,
        True,
    )
    lofi = pc.compute_kernel_config("lofi")
    assert (lofi.math_fidelity, lofi.fp32_dest_acc_en, lofi.packer_l1_acc) == (ttnn.MathFidelity.LoFi, False, True)
    assert pc.compute_kernel_config("hifi2_na").packer_l1_acc is False
    assert pc.hifi4_compute_kernel_config().math_fidelity == ttnn.MathFidelity.HiFi4
