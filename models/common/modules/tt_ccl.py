# SPDX-License-Identifier: Apache-2.0
"""Per-mesh CCL resources (global semaphores) and the default CCL topology for a mesh.

Facts from upstream tt-metal ``models/common/modules/tt_ccl.py`` and TTTv1 ``ModelArgs.ccl_topology``:
- one set of semaphores per cluster axis (0, 1) plus one for "no axis", each double-buffered so consecutive
  CCL calls never reuse a semaphore still in flight: barrier = 1, all-gather = 2, reduce-scatter = 3 semaphores;
- topology: Ring on an 8-device T3K/Galaxy ring, Linear on any other multi-device mesh, none on one device.
"""

import ttnn

AG_SEMAPHORES_PER_CALL = 2  # all_gather_async: multi_device_global_semaphore list length
RS_SEMAPHORES_PER_CALL = 3  # reduce_scatter_minimal_async: multi_device_global_semaphore list length
BUFFERING = 2  # double-buffered: a call's semaphores are reused two calls later
NO_AXIS = 2  # slot index for CCLs over the whole mesh (cluster_axis=None)
RING_DEVICE_COUNT = 8  # TTTv1 ccl_topology: Ring only for 8-device rings (T3K 1x8)
RING_CLUSTERS = ("T3K", "GALAXY", "TG")
# The meshes each family of modules runs on. 1D: TTTv1 ModelArgs's 1xN meshes, N150 (1x1), N300 (1x2), N150x4
# (1x4) and T3K (1x8), which split heads and hidden over cluster_shape[1] (a 2x4 mesh is no TTTv1 layout: its 8
# devices would hold the heads of 4). 2D: Galaxy, TTTv1's TG 8x4 and its transpose 4x8.
ONE_D_MESHES = ((1, 1), (1, 2), (1, 4), (1, 8))
TWO_D_MESHES = ((8, 4), (4, 8))
ROW_AXIS, COL_AXIS = 0, 1  # cluster axes: 0 = mesh rows, 1 = mesh columns
GALAXY_ALL_GATHER_LINKS = 2  # TTTv1 ModelArgs.num_all_gather_links on Galaxy (TG)
ROWS_DIM = 2  # the rows (users, tokens) of a [1, 1, rows, width] activation
WIDTH_DIM = 3  # the last dim of a [1, 1, rows, width] activation: the residual stream splits and gathers along it


def default_topology(mesh_device) -> ttnn.Topology | None:
    """TTTv1 ``ccl_topology()``: Ring for 8 devices on a T3K/Galaxy cluster, Linear for >1 device, None for 1."""
    num_devices = mesh_device.get_num_devices()
    if num_devices == 1:
        return None
    if num_devices == RING_DEVICE_COUNT and ttnn.cluster.get_cluster_type().name in RING_CLUSTERS:
        return ttnn.Topology.Ring
    return ttnn.Topology.Linear


class TT_CCL:
    """Double-buffered global semaphores for the async CCL ops on one mesh, one slot per cluster axis."""

    def __init__(self, mesh_device):
        self.mesh_device = mesh_device
        grid = mesh_device.compute_with_storage_grid_size()
        cores = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(grid.x - 1, grid.y - 1))})

        def semaphore():
            return ttnn.create_global_semaphore(mesh_device, cores, 0)

        slots = range(NO_AXIS + 1)
        self._barrier = [[semaphore() for _ in range(BUFFERING)] for _ in slots]
        self._ag = [[[semaphore() for _ in range(AG_SEMAPHORES_PER_CALL)] for _ in range(BUFFERING)] for _ in slots]
        self._rs = [[[semaphore() for _ in range(RS_SEMAPHORES_PER_CALL)] for _ in range(BUFFERING)] for _ in slots]
        self._index = {"barrier": [0] * len(slots), "ag": [0] * len(slots), "rs": [0] * len(slots)}

    def _cycle(self, kind: str, table, cluster_axis: int | None):
        slot = NO_AXIS if cluster_axis is None else cluster_axis
        i = self._index[kind][slot]
        self._index[kind][slot] = (i + 1) % BUFFERING
        return table[slot][i]

    def get_and_cycle_barrier_semaphore_handle(self, cluster_axis: int | None = None):
        return self._cycle("barrier", self._barrier, cluster_axis)

    def get_and_cycle_ag_semaphore_handles(self, cluster_axis: int | None = None):
        return self._cycle("ag", self._ag, cluster_axis)

    def get_and_cycle_rs_semaphore_handles(self, cluster_axis: int | None = None):
        return self._cycle("rs", self._rs, cluster_axis)


_tt_ccl_cache: dict[int, TT_CCL] = {}


def get_tt_ccl(mesh_device) -> TT_CCL:
    """The mesh's shared TT_CCL, created on first use (one per open mesh)."""
    key = id(mesh_device)
    if key not in _tt_ccl_cache or _tt_ccl_cache[key].mesh_device is not mesh_device:
        _tt_ccl_cache[key] = TT_CCL(mesh_device)
    return _tt_ccl_cache[key]


def clear_tt_ccl_cache() -> None:
    """Forget all TT_CCLs (call when a mesh is closed so a new mesh at the same address gets fresh semaphores)."""
    _tt_ccl_cache.clear()


# Async-CCL tuning that TTTv1's ccl.py (async generation) and upstream TTTv2 pass on every call.
CHUNKS_PER_SYNC = 10
NUM_WORKERS_PER_LINK = 2
NUM_BUFFERS_PER_CHANNEL = 2


def reduce_scatter(tt_ccl: TT_CCL, x, *, dim, memory_config, topology, num_links, cluster_axis=None):
    """Sum ``x`` over the devices (of ``cluster_axis``, or all) and leave each device 1/N of ``dim``."""
    return ttnn.experimental.reduce_scatter_minimal_async(
        x,
        persistent_output_buffers=None,
        dim=dim,
        multi_device_global_semaphore=tt_ccl.get_and_cycle_rs_semaphore_handles(cluster_axis),
        barrier_semaphore=tt_ccl.get_and_cycle_barrier_semaphore_handle(cluster_axis),
        num_links=num_links,
        memory_config=memory_config,
        intermediate_memory_config=ttnn.DRAM_MEMORY_CONFIG,
        topology=topology,
        cluster_axis=cluster_axis,
        chunks_per_sync=CHUNKS_PER_SYNC,
        num_workers_per_link=NUM_WORKERS_PER_LINK,
        num_buffers_per_channel=NUM_BUFFERS_PER_CHANNEL,
    )


def all_gather(tt_ccl: TT_CCL, x, *, dim, memory_config, topology, num_links, cluster_axis=None):
    """Concatenate every device's ``x`` (of ``cluster_axis``, or all) along ``dim``."""
    return ttnn.experimental.all_gather_async(
        x,
        persistent_output_buffer=None,
        dim=dim,
        multi_device_global_semaphore=tt_ccl.get_and_cycle_ag_semaphore_handles(cluster_axis),
        num_links=num_links,
        cluster_axis=cluster_axis,
        topology=topology,
        memory_config=memory_config,
        barrier_semaphore=tt_ccl.get_and_cycle_barrier_semaphore_handle(cluster_axis),
        chunks_per_sync=CHUNKS_PER_SYNC,
        num_workers_per_link=NUM_WORKERS_PER_LINK,
        num_buffers_per_channel=NUM_BUFFERS_PER_CHANNEL,
    )


def reduce_scatter_residual(tt_ccl: TT_CCL, x, *, topology, num_links, memory_config):
    """Sum the partial outputs ``x`` of every device and leave each its 1/N of the width (dim 3) in
    ``memory_config``: the width-fractured residual stream of 1D meshes (TTTv1 tt_all_reduce on 1xN). Consumes
    ``x``."""
    out = reduce_scatter(tt_ccl, x, dim=WIDTH_DIM, memory_config=memory_config, topology=topology, num_links=num_links)
    ttnn.deallocate(x)
    return out


def reduce_scatter_residual_in_place(tt_ccl: TT_CCL, x, *, topology, num_links):
    """``reduce_scatter_residual`` keeping ``x``'s memory config (decode: the matmul's sharded L1 output)."""
    return reduce_scatter_residual(tt_ccl, x, topology=topology, num_links=num_links, memory_config=x.memory_config())


def all_reduce(
    tt_ccl: TT_CCL, x, *, cluster_axis, memory_config, topology, num_reduce_scatter_links, num_all_gather_links
):
    """Sum ``x`` over one mesh axis, every device keeping the whole sum: reduce-scatter then all-gather along the
    width (TTTv1 tt_all_reduce, composite path). Consumes ``x``.

    Topology labels: where the other mesh axis already splits the width (the 2D residual stream), the reduce-scatter
    splits each device's slice again, a layout no ttnn TensorTopology can express: ttnn would log an error and keep
    the input's label. That intermediate lives only here, so the reduce-scatter is given ``x`` labelled as one copy
    per device group of this axis (replicated elsewhere), and the result gets ``x``'s label with this axis
    replicated: what an all-reduce over it holds."""
    reduced_label = _replicated_on(x.tensor_topology(), cluster_axis)
    x.update_tensor_topology(_replicated_on(x.tensor_topology(), *_other_axes(x.tensor_topology(), cluster_axis)))
    common = dict(dim=WIDTH_DIM, memory_config=memory_config, topology=topology, cluster_axis=cluster_axis)
    scattered = reduce_scatter(tt_ccl, x, num_links=num_reduce_scatter_links, **common)
    ttnn.deallocate(x)
    out = all_gather(tt_ccl, scattered, num_links=num_all_gather_links, **common)
    ttnn.deallocate(scattered)
    out.update_tensor_topology(reduced_label)
    return out


def _other_axes(label: ttnn.TensorTopology, axis: int) -> list[int]:
    return [other for other in range(len(label.placements())) if other != axis]


def _replicated_on(label: ttnn.TensorTopology, *axes: int) -> ttnn.TensorTopology:
    """``label`` with ``axes`` of its distribution replicated."""
    placements = [ttnn.PlacementReplicate() if i in axes else p for i, p in enumerate(label.placements())]
    return ttnn.TensorTopology(label.distribution_shape(), placements, label.mesh_coords())
