# SPDX-License-Identifier: Apache-2.0
"""A host-only stand-in for ``ttnn.MeshDevice``: the few device facts ModelArgs reads, without a device.

Values are those of the mock cluster descriptors (models/common/mock_device/clusters, see
docs/mock-device.md): Wormhole chips with an 8x8 worker grid (one harvested row) on N150/N300/T3K, 8x9 on Galaxy,
and 12 DRAM banks (DRAM grid 12x1) everywhere.

``ModelArgs.ccl_topology()`` asks the live cluster for its type (``ttnn.cluster.get_cluster_type()``), which a
host-only process does not have; tests patch that call when they need the topology of an 8-device mesh.
"""

from dataclasses import dataclass

import ttnn

GALAXY_DEVICES = 32  # a Galaxy (TG) is 32 Wormhole chips, meshed 8x4 or 4x8
WORKER_GRID = (8, 8)  # N150/N300/T3K chips: 8x8 workers (a 10-row grid with one harvested row, one for dispatch)
GALAXY_WORKER_GRID = (8, 9)  # Galaxy chips: 8x9 workers by default
WORMHOLE_DRAM_GRID = (12, 1)  # 12 DRAM banks on Wormhole


@dataclass(frozen=True)
class HostMesh:
    """Mesh shape, worker grid (x, y), DRAM grid (x, y) and architecture of a mesh, answered like a MeshDevice."""

    rows: int
    cols: int
    worker_grid: tuple[int, int]
    dram_grid: tuple[int, int] = WORMHOLE_DRAM_GRID
    device_arch: ttnn.Arch = ttnn.Arch.WORMHOLE_B0

    @classmethod
    def for_shape(cls, shape) -> "HostMesh":
        """The Wormhole system that has a mesh of this (rows, cols) shape: Galaxy for 32 devices, else N150/N300/T3K."""
        rows, cols = tuple(shape)
        return cls(rows, cols, GALAXY_WORKER_GRID if rows * cols == GALAXY_DEVICES else WORKER_GRID)

    @property
    def shape(self) -> ttnn.MeshShape:
        return ttnn.MeshShape(self.rows, self.cols)

    def get_num_devices(self) -> int:
        return self.rows * self.cols

    def compute_with_storage_grid_size(self) -> ttnn.CoreCoord:
        return ttnn.CoreCoord(*self.worker_grid)

    def dram_grid_size(self) -> ttnn.CoreCoord:
        return ttnn.CoreCoord(*self.dram_grid)

    def arch(self) -> ttnn.Arch:
        return self.device_arch
