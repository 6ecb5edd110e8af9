# SPDX-License-Identifier: Apache-2.0
"""TTTv1 rotary-embedding setup (upstream models/tt_transformers/tt/rope.py ``RotarySetup``): the cos / sin tables
attention's decode looks up per user, and the transformation matrices rotary_embedding_llama multiplies by.

The table math is shared with TTTv2's Rope1D (``tensor_utils.rope_cos_sin`` / ``rot_transformation_mat``): each
frequency repeated for its interleaved pair (Q/K weights in the Meta layout), Llama-3 frequency scaling when the HF
``rope_scaling`` says ``rope_type: llama3``. With ``use_qk_fused`` (rotary_embedding_llama_fused_qk on Q and K at
once) every user appears twice: the transformation matrix covers twice the users' cores and positions are repeated.
On a Galaxy (32 devices) each mesh column serves ``batch / columns`` users (TTTv1's device groups).
Left out from upstream: the linear / yarn / longrope scalings (no shipped model uses them), ``return_rot_idxs`` and
the host-only ``on_host`` index path.
"""

import math

import torch
import ttnn

from models.common import tensor_utils
from models.common.modules.lightweight_module import LightweightModule
from models.common.tensor_utils import TILE_SIZE

GALAXY_DEVICES = 32
BLACKHOLE_USER_GRID = ttnn.CoreCoord(8, 8)  # upstream: the decode user cores fill an 8x8 block on Blackhole
LLAMA3_ROPE_TYPE = "llama3"


def llama3_scaling(rope_scaling) -> tuple[float, float, float, int] | None:
    """HF ``rope_scaling`` (a dict, or None for plain RoPE) → tensor_utils.rope_cos_sin's Llama-3 scaling tuple."""
    if rope_scaling is None:
        return None
    rope_type = rope_scaling.get("rope_type", rope_scaling.get("type"))
    if rope_type != LLAMA3_ROPE_TYPE:
        raise NotImplementedError(
            f"rope_scaling type {rope_type!r} is not supported by RotarySetup: only {LLAMA3_ROPE_TYPE!r} or none"
        )
    return (
        rope_scaling["factor"],
        rope_scaling["low_freq_factor"],
        rope_scaling["high_freq_factor"],
        rope_scaling["original_max_position_embeddings"],
    )


def compute_gather_cos_sin(dhead, end, theta, rope_scaling) -> tuple[torch.Tensor, torch.Tensor]:
    """Host cos and sin tables of ``end // 2`` positions, [1, 1, end // 2, dhead] each, interleaved pairs."""
    return tensor_utils.rope_cos_sin(dhead, end // 2, theta, llama3_scaling(rope_scaling))


def get_rot_mats(head_dim, device, seq_len, theta, rope_scaling, datatype=ttnn.bfloat16):
    """[cos, sin] tables of ``seq_len`` positions, [1, 1, seq_len, head_dim] each, replicated on ``device``."""
    tables = compute_gather_cos_sin(dhead=head_dim, end=2 * seq_len, theta=theta, rope_scaling=rope_scaling)
    return [
        ttnn.from_torch(
            table,
            device=device,
            layout=ttnn.TILE_LAYOUT,
            dtype=datatype,
            mesh_mapper=ttnn.ReplicateTensorToMesh(device),
        )
        for table in tables
    ]


class RotarySetup(LightweightModule):
    def __init__(
        self,
        device,
        batch_size: int,
        head_dim: int,
        max_seq_len: int,
        rope_theta: float,
        rope_scaling=None,
        use_qk_fused: bool = False,
        datatype=ttnn.bfloat16,
    ):
        super().__init__()
        self.use_qk_fused = use_qk_fused
        self.original_batch_size = batch_size
        # Fused Q/K ops (rotary embedding + paged cache update) put Q and K users on separate cores: twice the users
        self.doubled_batch_size = batch_size * 2 if use_qk_fused else batch_size
        self.head_dim = head_dim
        self.device = device
        self.num_devices = device.get_num_devices()
        if self.num_devices == GALAXY_DEVICES:
            self.batch_size_per_device_group = max(self.doubled_batch_size // list(device.shape)[1], 1)
        else:
            self.batch_size_per_device_group = self.doubled_batch_size
        self.core_grid = (
            BLACKHOLE_USER_GRID if device.arch() == ttnn.Arch.BLACKHOLE else device.compute_with_storage_grid_size()
        )

        # cos / sin tables for ttnn.embedding
        self.cos_matrix, self.sin_matrix = get_rot_mats(
            head_dim=head_dim,
            device=device,
            seq_len=max_seq_len,
            theta=rope_theta,
            rope_scaling=rope_scaling,
            datatype=datatype,
        )

        self.batch_grid = ttnn.num_cores_to_corerangeset(self.doubled_batch_size, self.core_grid, row_wise=True)
        # One 32x32 transformation tile per user core
        trans_mat = tensor_utils.rot_transformation_mat(self.doubled_batch_size * TILE_SIZE)
        trans_mat_mem_config = ttnn.create_sharded_memory_config(
            shape=(TILE_SIZE, TILE_SIZE),
            core_grid=self.batch_grid,
            strategy=ttnn.ShardStrategy.HEIGHT,
            orientation=ttnn.ShardOrientation.ROW_MAJOR,
            use_height_and_width_as_shard_shape=True,
        )
        # Galaxy: each mesh column holds the tiles of its own users
        split_users = self.num_devices == GALAXY_DEVICES and batch_size > 1
        self.transformation_mat = ttnn.from_torch(
            trans_mat,
            device=device,
            layout=ttnn.TILE_LAYOUT,
            dtype=datatype,
            memory_config=trans_mat_mem_config,
            mesh_mapper=ttnn.ShardTensor2dMesh(
                device, dims=(None, 2) if split_users else (None, None), mesh_shape=list(device.shape)
            ),
        )
        # rotary_embedding_llama works one tile at a time: the prefill matrix is a single 32x32 tile too
        self.transformation_mat_prefill = ttnn.from_torch(
            tensor_utils.rot_transformation_mat(),
            device=device,
            layout=ttnn.TILE_LAYOUT,
            dtype=datatype,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            mesh_mapper=ttnn.ReplicateTensorToMesh(device),
        )

    def get_both_trans_mats(self) -> dict[str, ttnn.Tensor]:
        return {"decode": self.transformation_mat, "prefill": self.transformation_mat_prefill}

    def get_rot_idxs(self, position_idxs: torch.Tensor) -> ttnn.Tensor:
        """[batch] positions → the [1, batch padded to 32] uint32 row-major index tensor, replicated, in DRAM."""
        if not isinstance(position_idxs, torch.Tensor) or position_idxs.dim() != 1:
            raise ValueError(f"position_idxs must be a 1D torch tensor of positions, got {position_idxs!r}")
        if self.use_qk_fused:
            # the fused ops rotate Q and K users at once: each position twice
            position_idxs = position_idxs.repeat(2)
            if position_idxs.shape[0] != self.batch_size_per_device_group:
                raise ValueError(
                    f"fused Q/K rotary needs one position per user ({self.batch_size_per_device_group // 2}), "
                    f"got {position_idxs.shape[0] // 2}"
                )
        if torch.min(position_idxs) < 0:
            raise ValueError(f"positions must be non-negative, got {position_idxs.tolist()}")
        batch = position_idxs.shape[0]
        row = tensor_utils.int_rows(position_idxs.tolist(), math.ceil(batch / TILE_SIZE) * TILE_SIZE)
        return ttnn.as_tensor(
            row,
            dtype=ttnn.uint32,
            layout=ttnn.ROW_MAJOR_LAYOUT,
            device=self.device,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            mesh_mapper=ttnn.ReplicateTensorToMesh(self.device),
        )

    def get_rot_mats(self, position_idxs) -> list[ttnn.Tensor]:
        """[cos, sin] for the users' positions (a [batch] torch tensor, or get_rot_idxs' device tensor), each
        [1, users, 32, head_dim] height-sharded one user per core."""
        rot_idxs = self.get_rot_idxs(position_idxs) if isinstance(position_idxs, torch.Tensor) else position_idxs
        if len(rot_idxs.shape) != 2 or rot_idxs.shape[0] != 1:
            raise ValueError(f"rot_idxs must be a [1, batch] tensor, got shape {tuple(rot_idxs.shape)}")
        batch = rot_idxs.shape[-1]
        cos = ttnn.embedding(rot_idxs, self.cos_matrix, layout=ttnn.TILE_LAYOUT)  # [1, batch, head_dim]
        sin = ttnn.embedding(rot_idxs, self.sin_matrix, layout=ttnn.TILE_LAYOUT)
        # [1, batch, 1 (32), head_dim]. Upstream: unsqueeze_to_4D then transpose(1, 2); one reshape gives the same
        # values and layout with ops the mock tier's shadow execution covers.
        cos = ttnn.reshape(cos, (1, batch, 1, self.head_dim))
        sin = ttnn.reshape(sin, (1, batch, 1, self.head_dim))
        if self.batch_size_per_device_group % TILE_SIZE != 0:
            # upstream slices with cos[:, :users] (ttnn.slice)
            end = (1, self.batch_size_per_device_group, 1, self.head_dim)
            cos = ttnn.slice(cos, (0, 0, 0, 0), end)
            sin = ttnn.slice(sin, (0, 0, 0, 0), end)
        mem_config = ttnn.create_sharded_memory_config(
            shape=(TILE_SIZE, self.head_dim),
            core_grid=self.batch_grid,
            strategy=ttnn.ShardStrategy.HEIGHT,
            orientation=ttnn.ShardOrientation.ROW_MAJOR,
            use_height_and_width_as_shard_shape=True,
        )
        return [ttnn.interleaved_to_sharded(cos, mem_config), ttnn.interleaved_to_sharded(sin, mem_config)]
