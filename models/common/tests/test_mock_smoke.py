# SPDX-License-Identifier: Apache-2.0
"""Device smoke tests on every supported mesh: real ttnn validation and dispatch through the fixture."""

import pytest
import torch
import ttnn

ALL_MESHES = [(1, 1), (1, 2), (1, 8), (8, 4), (4, 8)]
MESH_IDS = ["1x1", "1x2", "1x8", "8x4", "4x8"]

# A decode-shaped DRAM-sharded matmul: one tile row of activations, K=2048, N=3072 (Llama-3.2-1B dim / QKV width).
M, K, N = 32, 2048, 3072
ACT_CORES = 8  # activations width-sharded over 8 L1 cores: K / 32 / 8 = 8 tiles each
TILE = 32


def _dram_sharded_weight_memcfg(mesh):
    """(K, N) width-sharded over every DRAM bank, N padded to whole tiles per bank (TTTv1 dram-sharded weights)."""
    banks = mesh.dram_grid_size().x
    padded_n = -(-N // (TILE * banks)) * TILE * banks
    grid = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(banks - 1, 0))})
    spec = ttnn.ShardSpec(grid, (K, padded_n // banks), ttnn.ShardOrientation.ROW_MAJOR)
    return ttnn.MemoryConfig(ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.BufferType.DRAM, spec)


def _l1_width_sharded(width):
    grid = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(ACT_CORES - 1, 0))})
    spec = ttnn.ShardSpec(grid, (M, width // ACT_CORES), ttnn.ShardOrientation.ROW_MAJOR)
    return ttnn.MemoryConfig(ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.BufferType.L1, spec)


def _dram_sharded_program_config(in0_block_w):
    return ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
        in0_block_w=in0_block_w,
        per_core_M=M // TILE,
        per_core_N=N // TILE // ACT_CORES,
        fused_activation=None,
    )


def _inputs(mesh):
    replicate = ttnn.ReplicateTensorToMesh(mesh)
    x = ttnn.from_torch(
        torch.randn(1, 1, M, K), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=replicate
    )
    w = ttnn.from_torch(
        torch.randn(1, 1, K, N),
        dtype=ttnn.bfloat8_b,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        mesh_mapper=replicate,
        memory_config=_dram_sharded_weight_memcfg(mesh),
    )
    return ttnn.to_memory_config(x, _l1_width_sharded(K)), w


@pytest.mark.parametrize("ttnn_mesh_device", ALL_MESHES, ids=MESH_IDS, indirect=True)
def test_dram_sharded_matmul_rms_norm_all_gather(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    x, w = _inputs(mesh)
    out_memcfg = _l1_width_sharded(N)
    y = ttnn.linear(x, w, program_config=_dram_sharded_program_config(K // TILE // ACT_CORES), memory_config=out_memcfg)
    assert tuple(y.shape) == (1, 1, M, N)
    assert y.memory_config() == out_memcfg

    h = ttnn.from_torch(
        torch.randn(1, 1, M, K),
        dtype=ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        mesh_mapper=ttnn.ReplicateTensorToMesh(mesh),
    )
    normed = ttnn.rms_norm(h, epsilon=1e-5)
    assert tuple(normed.shape) == (1, 1, M, K) and normed.dtype == ttnn.bfloat16

    entries = mesh.num_program_cache_entries()
    ttnn.linear(x, w, program_config=_dram_sharded_program_config(K // TILE // ACT_CORES), memory_config=out_memcfg)
    assert mesh.num_program_cache_entries() == entries, "the same matmul again must hit the program cache"

    rows, cols = tuple(mesh.shape)
    if rows * cols > 1:
        axis = 1 if cols > 1 else 0
        gathered = ttnn.all_gather(h, dim=3, cluster_axis=axis)
        assert tuple(gathered.shape) == (1, 1, M, K * tuple(mesh.shape)[axis])


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_invalid_program_config_raises(ttnn_mesh_device):
    """Validation is real: K=2048 is 8 tiles per core, which in0_block_w=3 does not divide."""
    x, w = _inputs(ttnn_mesh_device)
    with pytest.raises(RuntimeError, match="in0_block_w"):
        ttnn.linear(x, w, program_config=_dram_sharded_program_config(3), memory_config=_l1_width_sharded(N))
