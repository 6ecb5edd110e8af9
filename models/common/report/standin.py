# SPDX-License-Identifier: Apache-2.0
"""Module configs resolved on meshes the report does not open, so its analytic figures there come from the same
config code that runs (``mesh_scaling``; the refusal before any mesh opens).

A ``StandInMesh`` answers what config resolution asks of a mesh: its shape, device count and a Wormhole chip's DRAM
and compute grids. The CCL fields size nothing and get placeholders, so no cluster is queried.
"""

import math
from dataclasses import dataclass

import ttnn

from models.common.modules.mlp.mlp_1d import MLP1DConfig
from models.common.modules.mlp.mlp_2d import MLP2DConfig
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1DConfig
from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2DConfig
from models.common.report.model import is_2d

WORMHOLE_DRAM_GRID = (12, 1)  # DRAM banks (x, y) of a Wormhole chip, as mesh_device.dram_grid_size()
WORMHOLE_COMPUTE_GRID = (8, 8)  # Tensix cores (x, y) of an n150 / n300 chip, as compute_with_storage_grid_size()
CCL_PLACEHOLDERS = dict(tt_ccl=object(), topology=ttnn.Topology.Linear)


@dataclass(frozen=True)
class StandInMesh:
    """A mesh of Wormhole chips as config resolution sees it, without a device."""

    shape: tuple[int, int]

    def get_num_devices(self) -> int:
        return math.prod(self.shape)

    def dram_grid_size(self) -> ttnn.CoreCoord:
        return ttnn.CoreCoord(*WORMHOLE_DRAM_GRID)

    def compute_with_storage_grid_size(self) -> ttnn.CoreCoord:
        return ttnn.CoreCoord(*WORMHOLE_COMPUTE_GRID)


def mlp_config(mesh_shape, w1, w2, w3, **fields):
    """The report layer's MLP config (MLP1D / MLP2D by mesh) resolved on a stand-in ``mesh_shape``."""
    cls = MLP2DConfig if is_2d(mesh_shape) else MLP1DConfig
    return cls(w1, w2, w3, mesh_device=StandInMesh(tuple(mesh_shape)), **CCL_PLACEHOLDERS, **fields).resolve()


def norm_config(mesh_shape, weight, **fields):
    """The report layer's residual norm config (RMSNorm1D / RMSNorm2D by mesh) resolved on a stand-in mesh."""
    cls = RMSNorm2DConfig if is_2d(mesh_shape) else RMSNorm1DConfig
    return cls(weight, mesh_device=StandInMesh(tuple(mesh_shape)), **CCL_PLACEHOLDERS, **fields).resolve()
