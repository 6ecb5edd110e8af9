# SPDX-License-Identifier: Apache-2.0
"""The report's decoder layer: the models' DecoderBlock (models/common/models/decoder_block.py, TTTv2 modules with
their own defaults, 1D or 2D by mesh) built from HF weights, and what the report does around it: the rotary tables,
uploading inputs, reading outputs back, and recording each part's ops under its name while tapping each module's
output (the block's ``watch``).
"""

import math

import torch
import ttnn

from models.common import tensor_utils
from models.common.models.decoder_block import DecoderBlock, Watch, rope_for
from models.common.modules import program_configs as pc
from models.common.modules.attention.attention_steps import upload_positions
from models.common.modules.lazy_weight import LazyWeight
from models.common.report.model import Model, is_2d
from models.common.tensor_utils import TILE_SIZE

USERS = pc.MAX_DECODE_BATCH  # decode batch: one tile of users, the modules' default
INPUT_SEED = 0  # the report's prefill prompt and decode tokens


class ReportLayer:
    """One DecoderBlock on ``mesh_device`` and its rope; ``decode`` / ``prefill`` run it on the residual."""

    def __init__(self, model: Model, weights: dict, mesh_device, cache_len: int, overrides=None):
        """``weights``: HF names without the layer prefix, unfused; ``overrides``: module name -> config fields given
        over the module's defaults (a precision recipe's)."""
        self.mesh_device, self.dim = mesh_device, model.dim
        self.two_d = is_2d(tuple(mesh_device.shape))
        description = model.description
        lazy = {name: LazyWeight(tensor) for name, tensor in weights.items()}
        self.block = DecoderBlock(
            description, lazy, mesh_device, max_seq_len=cache_len, max_batch_size=USERS, overrides=overrides
        )
        self.modules = self.block.modules
        self.residual_memcfg = self.block.residual_memcfg
        self.input_mapping = self.block.attention_norm.config.input_mapping  # the layer's input: its first norm's
        self.rope = rope_for(description, mesh_device, cache_len, USERS)

    @property
    def structure(self) -> str:
        label = {name: getattr(m, "LABEL", type(m).__name__) for name, m in self.modules.items()}
        residual = "+ residual"
        return " → ".join(
            (label["attention_norm"], label["attention"], residual, label["ffn_norm"], label["mlp"], residual)
        )

    # --- inputs (per model step, outside the layer) --------------------------------------------------------------
    def upload(self, x: torch.Tensor, memory_config) -> ttnn.Tensor:
        """A host residual [1, 1, rows, dim] laid out over the mesh as the layer takes it."""
        return tensor_utils.from_host(
            x,
            dtype=ttnn.bfloat16,
            layout=ttnn.TILE_LAYOUT,
            device=self.mesh_device,
            mesh_mapper=self.input_mapping.mapper(self.mesh_device),
            memory_config=memory_config,
        )

    def positions(self, positions: list[int]) -> ttnn.Tensor:
        """Decode positions as the int32 device tensor attention takes (one upload per model step)."""
        return upload_positions(positions, self.mesh_device, self.modules["attention"].users_mapping)

    def to_host(self, out: ttnn.Tensor) -> torch.Tensor:
        """A layer or module output back on host as [1, 1, rows, dim]: one copy when each device holds all of dim,
        else the width slices joined (over the devices on 1D; over one mesh row on 2D, the rows hold copies)."""
        mesh = self.mesh_device
        if out.shape[-1] == self.dim:
            return ttnn.to_torch(out, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=0)).float()[:1]
        if self.two_d:
            composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=tuple(mesh.shape), dims=(0, -1))
            return ttnn.to_torch(out, mesh_composer=composer).float()[:1]
        return ttnn.to_torch(out, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()

    # --- the layer -----------------------------------------------------------------------------------------------
    def decode(self, x, current_pos, rot_mats, scope, tap=None):
        """x: the residual [1, 1, 32, dim / split] in ``residual_memcfg`` (consumed); returns the next one. Each
        part's ops run under ``scope(name)``; ``tap(name, output)``, if given, sees each part's output before the
        next part consumes it."""
        return self.block.decode_forward(x, current_pos, rot_mats, watch=_watch(scope, tap or _no_tap))

    def prefill(self, x, seq_len, rot_mats, scope, tap=None):
        """x: the residual [1, 1, seq_len, dim / split] in DRAM (consumed); fills user 0's KV cache. ``scope``,
        ``tap``: as for ``decode``."""
        return self.block.prefill_forward(x, seq_len, rot_mats, watch=_watch(scope, tap or _no_tap))


def _watch(scope, tap) -> Watch:
    """The block's ``watch``: each part under ``scope(name)``, its output then shown to ``tap``."""

    def watch(name: str, forward, *args) -> ttnn.Tensor:
        with scope(name):
            out = forward(*args)
        tap(name, out)
        return out

    return watch


def _no_tap(name: str, output: ttnn.Tensor) -> None:
    pass


def cache_len(seq_len: int, decode_steps: int) -> int:
    """KV-cache positions the run needs: the prompt and every decode step, rounded up to a tile."""
    return math.ceil((seq_len + decode_steps) / TILE_SIZE) * TILE_SIZE
