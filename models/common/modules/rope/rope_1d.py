# SPDX-License-Identifier: Apache-2.0
"""Rope1D: the rotary-embedding inputs attention needs on a 1D mesh (TTTv1 models/tt_transformers/tt/rope.py).

decode:  positions (one per user) → embedding lookup in the cos / sin tables → [1, users, 32, head_dim] each,
         height-sharded one user per core (rotary_embedding_llama's decode layout)
prefill: slice rows [start_pos, start_pos + seq_len) of the cos / sin tables → [1, 1, seq_len, head_dim] in DRAM

Tables follow TTTv1 (common.precompute_freqs + gather_cos_sin): each frequency is repeated for its interleaved pair,
which matches Q/K weights in the interleaved ("Meta") layout (``tensor_utils.hf_to_meta_rows``). The transformation
matrices (``transformation_mats``) are TTTv1's 32x32 pair-swap tile: one per user core for decode, one in DRAM for
prefill. Everything is replicated over the mesh.
"""

import math
from dataclasses import dataclass
from typing import Any

import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules.module_config import ResolvableConfig
from models.common.tensor_utils import TILE_SIZE


@dataclass(frozen=True)
class Llama3RopeScaling:
    """HF ``rope_scaling`` with ``rope_type: llama3`` (Llama-3.1 / 3.2 / 3.3)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclass(frozen=True)
class Rope1DConfig(ResolvableConfig):
    head_dim: int
    max_seq_len: int  # rows of the cos / sin tables: every position must be below it
    theta: float  # HF rope_theta
    scaling: Llama3RopeScaling | None = None
    max_batch_size: int = pc.MAX_DECODE_BATCH
    mesh_device: Any = None
    decode_user_cores: Any = None  # CoreRangeSet with one core per user (rows of the compute grid)

    OPTIONAL_FIELDS = frozenset({"scaling"})

    @property
    def decode_users(self) -> int:
        """Users each device decodes (Rope2D: a mesh column's share)."""
        return self.max_batch_size

    def default_mesh_device(self):
        return ttnn.GetDefaultDevice()

    def default_decode_user_cores(self):
        return user_cores(self.mesh_device, self.decode_users)


class Rope1D:
    """``Rope1D(head_dim, max_seq_len, theta, scaling=None, max_batch_size=32, mesh_device=None)``."""

    config_class = Rope1DConfig

    def __init__(self, head_dim: int, max_seq_len: int, theta: float, **overrides):
        cfg = self.config_class(head_dim=head_dim, max_seq_len=max_seq_len, theta=theta, **overrides).resolve()
        if head_dim % TILE_SIZE:
            raise ValueError(f"head_dim {head_dim} must be a multiple of {TILE_SIZE} for rotary_embedding_llama")
        self.config = cfg
        scaling = cfg.scaling and (
            cfg.scaling.factor,
            cfg.scaling.low_freq_factor,
            cfg.scaling.high_freq_factor,
            cfg.scaling.original_max_position_embeddings,
        )
        table_rows = math.ceil(cfg.max_seq_len / TILE_SIZE) * TILE_SIZE
        cos, sin = tensor_utils.rope_cos_sin(cfg.head_dim, table_rows, cfg.theta, scaling)
        self.cos, self.sin = (_replicated(t, cfg.mesh_device, ttnn.DRAM_MEMORY_CONFIG) for t in (cos, sin))
        self.decode_memcfg = pc.height_sharded_l1_memcfg((TILE_SIZE, cfg.head_dim), cfg.decode_user_cores)
        self.transformation_mats = transformation_matrices(cfg.mesh_device, cfg.decode_users, cfg.decode_user_cores)

    def decode_forward(self, positions) -> tuple[ttnn.Tensor, ttnn.Tensor]:
        """positions: one int per user (host sequence) or a [1, 32·k] uint32 row-major device tensor.
        Returns (cos, sin), each [1, decode_users, 32, head_dim] height-sharded one user per core."""
        cfg = self.config
        if not isinstance(positions, ttnn.Tensor):
            positions = self.position_indices(positions)
        rows = positions.shape[-1]
        cos, sin = (ttnn.embedding(positions, table, layout=ttnn.TILE_LAYOUT) for table in (self.cos, self.sin))
        # [1, rows, head_dim] → [1, rows, 1 (32 padded), head_dim] → this device's decode_users users
        cos, sin = (ttnn.reshape(t, (1, rows, 1, cfg.head_dim)) for t in (cos, sin))
        end = (1, cfg.decode_users, 1, cfg.head_dim)
        cos, sin = (ttnn.slice(t, (0, 0, 0, 0), end) for t in (cos, sin))
        return tuple(ttnn.interleaved_to_sharded(t, self.decode_memcfg) for t in (cos, sin))

    def prefill_forward(self, seq_len: int, start_pos: int = 0) -> tuple[ttnn.Tensor, ttnn.Tensor]:
        """(cos, sin) rows [start_pos, start_pos + seq_len), each [1, 1, seq_len, head_dim] in DRAM."""
        if start_pos + seq_len > self.config.max_seq_len:
            raise ValueError(
                f"positions up to {start_pos + seq_len} exceed the rope tables' max_seq_len {self.config.max_seq_len}"
            )
        begin, end = (0, 0, start_pos, 0), (1, 1, start_pos + seq_len, self.config.head_dim)
        return tuple(ttnn.slice(t, begin, end) for t in (self.cos, self.sin))

    def position_indices(self, positions) -> ttnn.Tensor:
        """Host positions → the [1, users padded to 32] uint32 row-major device tensor decode_forward looks up."""
        return ttnn.to_device(self.host_indices(positions), self.config.mesh_device, ttnn.DRAM_MEMORY_CONFIG)

    def host_indices(self, positions) -> ttnn.Tensor:
        """position_indices' tensor still on the host, laid out for the mesh: what a trace-ready caller copies into
        its persistent device tensor (``ttnn.copy_host_to_device_tensor``)."""
        positions = list(positions)
        if len(positions) != self.config.max_batch_size:
            raise ValueError(f"got {len(positions)} positions, expected one per user ({self.config.max_batch_size})")
        if max(positions) >= self.config.max_seq_len or min(positions) < 0:
            raise ValueError(f"positions must be in [0, {self.config.max_seq_len}), got {positions}")
        return self._host_indices(positions)

    def _host_indices(self, positions: list[int]) -> ttnn.Tensor:
        """Every device looks up every user's position: one row, padded to whole tiles, replicated."""
        row = tensor_utils.int_rows(positions, math.ceil(len(positions) / TILE_SIZE) * TILE_SIZE)
        return tensor_utils.from_host(
            row,
            dtype=ttnn.uint32,
            layout=ttnn.ROW_MAJOR_LAYOUT,
            mesh_mapper=ttnn.ReplicateTensorToMesh(self.config.mesh_device),
        )


def user_cores(mesh_device, users: int):
    """One core per decode user, filling rows of the compute grid (TTTv1 RotarySetup batch_grid)."""
    return ttnn.num_cores_to_corerangeset(users, mesh_device.compute_with_storage_grid_size(), row_wise=True)


def transformation_matrices(mesh_device, users: int, cores=None) -> dict[str, ttnn.Tensor]:
    """TTTv1 rotary transformation matrices: "decode" one 32x32 tile per user core (height-sharded, the cores
    rotary_embedding_llama's decode mode runs on), "prefill" one tile in DRAM; replicated."""
    cores = cores or user_cores(mesh_device, users)
    decode = tensor_utils.rot_transformation_mat(users * TILE_SIZE)
    return {
        "decode": _replicated(decode, mesh_device, pc.height_sharded_l1_memcfg((TILE_SIZE, TILE_SIZE), cores)),
        "prefill": _replicated(tensor_utils.rot_transformation_mat(), mesh_device, ttnn.DRAM_MEMORY_CONFIG),
    }


def _replicated(host, mesh_device, memory_config):
    return tensor_utils.from_host(
        host,
        dtype=ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=mesh_device,
        mesh_mapper=ttnn.ReplicateTensorToMesh(mesh_device),
        memory_config=memory_config,
    )
