# SPDX-License-Identifier: Apache-2.0
"""Rope2D: Rope1D for Galaxy meshes (8x4, 4x8), where each mesh column decodes its own share of the users
(TTTv1 TG: max_batch_size / columns per column; Attention2D's decode batch split).

decode:  positions (one per user) → each mesh column looks up its users' positions → [1, users / columns, 32,
         head_dim] each, height-sharded one user per core
prefill: as Rope1D (replicated table rows)
"""

import math
from dataclasses import dataclass

import ttnn

from models.common import tensor_utils
from models.common.modules.lazy_weight import MeshMapping
from models.common.modules.rope.rope_1d import Rope1D, Rope1DConfig
from models.common.tensor_utils import TILE_SIZE

COL_AXIS = 1  # mesh columns split the decode users
INDEX_ROWS_OVER_COLUMNS = MeshMapping.shard_2d(None, -1)  # the [1, columns · 32] lookup row: a tile per mesh column


def users_per_column(max_batch_size: int, columns: int) -> int:
    """Decode users each mesh column holds (TTTv1 TG batch_size_per_device_group): max_batch_size / columns; a
    single user is column 0's (the other columns run on zero rows). ValueError for batches that do not split."""
    if max_batch_size > TILE_SIZE or (max_batch_size > 1 and max_batch_size % columns):
        raise ValueError(
            f"max_batch_size {max_batch_size} must be 1 or a multiple of the {columns} mesh columns, at most "
            f"{TILE_SIZE} (one tile of users)"
        )
    return max(max_batch_size // columns, 1)


@dataclass(frozen=True)
class Rope2DConfig(Rope1DConfig):
    def resolve(self):
        users_per_column(self.max_batch_size, self.mesh_columns)
        return super().resolve()

    @property
    def mesh_columns(self) -> int:
        return tuple((self.mesh_device or self.default_mesh_device()).shape)[COL_AXIS]

    @property
    def decode_users(self) -> int:
        return users_per_column(self.max_batch_size, self.mesh_columns)


class Rope2D(Rope1D):
    """``Rope2D(head_dim, max_seq_len, theta, scaling=None, max_batch_size=32, mesh_device=None)``."""

    config_class = Rope2DConfig

    def __init__(self, head_dim: int, max_seq_len: int, theta: float, **overrides):
        super().__init__(head_dim, max_seq_len, theta, **overrides)
        if self.config.max_batch_size == 1:  # a single user's position on every device
            self._host_indices = super()._host_indices

    def _host_indices(self, positions: list[int]) -> ttnn.Tensor:
        """Mesh column c looks up users c·n .. (c+1)·n - 1 (n = decode_users): one tile-padded row per column."""
        cfg = self.config
        width = math.ceil(cfg.decode_users / TILE_SIZE) * TILE_SIZE
        rows = tensor_utils.int_row_groups(positions, cfg.mesh_columns, width)
        return tensor_utils.from_host(
            rows,
            dtype=ttnn.uint32,
            layout=ttnn.ROW_MAJOR_LAYOUT,
            mesh_mapper=INDEX_ROWS_OVER_COLUMNS.mapper(cfg.mesh_device),
        )
