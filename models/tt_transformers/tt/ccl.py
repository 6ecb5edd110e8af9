# SPDX-License-Identifier: Apache-2.0
"""TTTv1 collective helpers: tt_all_reduce / tt_all_gather with TTTv1's per-mesh-shape semantics.

Facts from upstream tt-metal models/tt_transformers/tt/ccl.py (async generation, semaphores from a TT_CCL):
- 1x1, and a reduce/gather over cluster axis 1 on a 1xN / Nx1 mesh, are no-ops;
- on a 1D mesh the all-reduce is a reduce-scatter along ``dim`` that leaves each device 1/N of it (the residual
  stream stays width-fractured);
- on a 2D (Galaxy) mesh it is an all-gather + fast_reduce_nc over ``cluster_axis``, or reduce-scatter + all-gather
  when ``use_composite`` (dim == 8192 models).
"""

import ttnn

from models.common.modules import tt_ccl as ccl
from models.common.tensor_utils import TILE_SIZE


def _is_noop(mesh_device, cluster_axis) -> bool:
    shape = tuple(mesh_device.shape)
    return shape == (1, 1) or (cluster_axis == 1 and 1 in shape)


def tt_all_reduce(
    input_tensor,
    mesh_device,
    tt_ccl,
    cluster_axis=0,
    dim=0,
    num_reduce_scatter_links=1,
    num_all_gather_links=2,
    topology=ttnn.Topology.Linear,
    memory_config=None,
    sharded=False,
    dtype=ttnn.bfloat16,
    use_composite=False,
):
    if _is_noop(mesh_device, cluster_axis):
        return input_tensor

    original_shape = tuple(input_tensor.shape)
    if original_shape[0] != 1 or original_shape[1] != 1:
        input_tensor = ttnn.reshape(
            input_tensor, (1, 1, original_shape[-4] * original_shape[-3] * original_shape[-2], original_shape[-1])
        )

    if 1 in tuple(mesh_device.shape):  # 1D mesh: reduce-scatter, output stays fractured
        if input_tensor.is_sharded() and not sharded:
            input_tensor = ttnn.sharded_to_interleaved(input_tensor, ttnn.L1_MEMORY_CONFIG)
        reduced = ccl.reduce_scatter(
            tt_ccl,
            input_tensor,
            dim=dim,
            memory_config=memory_config,
            topology=topology,
            num_links=num_reduce_scatter_links,
        )
        input_tensor.deallocate(True)
        return reduced

    input_mem_cfg = input_tensor.memory_config()
    if input_tensor.dtype != dtype:
        # typecast to L1 interleaved. Upstream then moves it into ``memory_config``, the gathered output's shard spec
        # (cluster-axis size x the rows): ttnn 0.81.1 rejects that for the un-gathered input (TTTv1's Galaxy MLP
        # decode below dim 8192), so the all-gather reads it interleaved and writes ``memory_config`` itself
        input_tensor = ttnn.to_memory_config(input_tensor, ttnn.L1_MEMORY_CONFIG, dtype)
    if not sharded:
        input_tensor = ttnn.to_memory_config(input_tensor, ttnn.DRAM_MEMORY_CONFIG)

    if use_composite:
        scattered = ccl.reduce_scatter(
            tt_ccl,
            input_tensor,
            dim=dim,
            memory_config=memory_config if sharded else ttnn.DRAM_MEMORY_CONFIG,
            topology=topology,
            num_links=num_reduce_scatter_links,
            cluster_axis=cluster_axis,
        )
        reduced = ccl.all_gather(
            tt_ccl,
            scattered,
            dim=dim,
            memory_config=input_mem_cfg,
            topology=topology,
            num_links=num_all_gather_links,
            cluster_axis=cluster_axis,
        )
    else:
        gathered = ccl.all_gather(
            tt_ccl,
            input_tensor,
            dim=dim,
            memory_config=ttnn.DRAM_MEMORY_CONFIG if not sharded else memory_config,
            topology=topology,
            num_links=num_all_gather_links,
            cluster_axis=cluster_axis,
        )
        if sharded:
            gathered = ttnn.to_memory_config(gathered, ttnn.L1_MEMORY_CONFIG)
        reduced = ttnn.experimental.fast_reduce_nc(
            gathered,
            dims=[dim],
            output=None,
            compute_kernel_config=None,
            memory_config=ttnn.L1_MEMORY_CONFIG if sharded else ttnn.DRAM_MEMORY_CONFIG,
        )
    return ttnn.reshape(reduced, (*original_shape[:-1], reduced.shape[-1]))


def tt_all_gather(
    input_tensor,
    mesh_device,
    tt_ccl,
    cluster_axis,
    dim,
    num_links=2,
    memory_config=None,
    sharded=False,
    topology=ttnn.Topology.Linear,
    dtype=ttnn.bfloat16,
):
    if _is_noop(mesh_device, cluster_axis):
        return input_tensor
    if not sharded:
        input_tensor = ttnn.to_memory_config(input_tensor, ttnn.DRAM_MEMORY_CONFIG)
    if input_tensor.dtype != dtype:
        input_tensor = ttnn.to_memory_config(input_tensor, ttnn.L1_MEMORY_CONFIG, dtype)
    gathered = ccl.all_gather(
        tt_ccl,
        input_tensor,
        dim=dim,
        memory_config=memory_config,
        topology=topology,
        num_links=num_links,
        cluster_axis=cluster_axis,
    )
    input_tensor.deallocate(True)
    return gathered


def tt_distributed_rmsnorm(inp, epsilon, gamma, mesh_device, tt_ccl, compute_kernel_config):
    """Interleaved distributed RMSNorm: local statistics → all-gather over axis 1 → normalise with this slice."""
    stats = ttnn.rms_norm_pre_all_gather(inp, compute_kernel_config=compute_kernel_config, dtype=ttnn.bfloat16)
    padded_shape = (1, 1, inp.shape[-2], TILE_SIZE)
    stats = ttnn.reshape(stats, padded_shape)
    gathered = tt_all_gather(
        stats, mesh_device, tt_ccl, cluster_axis=1, dim=3, num_links=1, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )
    out = ttnn.rms_norm_post_all_gather(
        inp, gathered, epsilon=epsilon, weight=gamma, compute_kernel_config=compute_kernel_config
    )
    gathered.deallocate(True)
    return out


def tt_sharded_distributed_rmsnorm(
    inp, epsilon, gamma, mesh_device, tt_ccl, ln_sharded_input_memcfg, ln_sharded_progcfg, ln_sharded_stats_memcfg
):
    """Width-sharded distributed RMSNorm (TG decode)."""
    inp = ttnn.to_memory_config(inp, memory_config=ln_sharded_input_memcfg)
    stats = ttnn.rms_norm_pre_all_gather(inp, program_config=ln_sharded_progcfg)
    gathered = ccl.all_gather(
        tt_ccl,
        stats,
        dim=3,
        memory_config=ln_sharded_stats_memcfg,
        topology=ttnn.Topology.Linear,
        num_links=1,
        cluster_axis=1,
    )
    return ttnn.rms_norm_post_all_gather(
        inp, epsilon=epsilon, weight=gamma, program_config=ln_sharded_progcfg, stats=gathered
    )
