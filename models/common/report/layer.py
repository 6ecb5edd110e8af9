# SPDX-License-Identifier: Apache-2.0
"""The report's decoder layer: TTTv2 modules built from HF weights with the modules' own defaults.

    1D meshes (1x1, 1x2, 1x8):  RMSNorm1D → Attention1D → + residual → RMSNorm1D → MLP1D → + residual
    2D meshes (8x4, 4x8):       RMSNorm2D → Attention2D → + residual → RMSNorm2D → MLP2D → + residual

The residual stream is TTTv1's: width-split over the devices (1D) or over the mesh columns (2D), bfloat16, in L1 for
decode (the modules' ``decode_residual_memcfg``) and in DRAM for prefill. Each norm reads the residual and writes its
decode output straight into its consumer's decode input layout.
"""

import math
from functools import partial

import torch
import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules.attention.attention_1d import Attention1D
from models.common.modules.attention.attention_2d import Attention2D
from models.common.modules.attention.attention_steps import upload_positions
from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_1d import MLP1D
from models.common.modules.mlp.mlp_2d import MLP2D
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D
from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2D
from models.common.modules.rope.rope_1d import Rope1D
from models.common.modules.rope.rope_2d import Rope2D
from models.common.report.model import Model, is_2d
from models.common.tensor_utils import TILE_SIZE

USERS = pc.MAX_DECODE_BATCH  # decode batch: one tile of users, the modules' default
INPUT_SEED = 0  # the report's prefill prompt and decode tokens
MODULE_PARAMS = {  # the HF weights each module of the layer holds, by name prefix
    "attention_norm": "input_layernorm.",
    "attention": "self_attn.",
    "ffn_norm": "post_attention_layernorm.",
    "mlp": "mlp.",
}


class DecoderLayer:
    """One decoder layer of TTTv2 modules on ``mesh_device``; ``decode`` / ``prefill`` run it on the residual."""

    def __init__(self, model: Model, weights: dict, mesh_device, cache_len: int, progress, overrides=None):
        """``weights``: HF names without the layer prefix, unfused; ``progress`` advances by each module's weights;
        ``overrides``: module name -> config fields given over the module's defaults (a precision recipe's)."""
        self.mesh_device, self.dim = mesh_device, model.dim
        self.two_d = is_2d(tuple(mesh_device.shape))
        given = overrides or {}
        build = partial(_built, progress, weights)
        attention_cls, mlp_cls = (Attention2D, MLP2D) if self.two_d else (Attention1D, MLP1D)
        attention_kw = {**_attention_kw(model, weights, cache_len, mesh_device), **given.get("attention", {})}
        attention = build("attention", lambda: attention_cls.from_hf(*_attention_weights(weights), **attention_kw))
        mlp_kw = {"mesh_device": mesh_device, **given.get("mlp", {})}
        mlp = build("mlp", lambda: mlp_cls(*_mlp_weights(weights), **mlp_kw))
        eps = model.config.rms_norm_eps
        self.residual_memcfg = attention.config.decode_residual_memcfg
        if self.two_d:

            def norm(name, consumer):  # reads the residual, writes straight into its consumer's decode input layout
                weight = LazyWeight(weights[_norm_weight(name)])
                kw = dict(eps=eps, decode_input_memcfg=self.residual_memcfg)
                kw["decode_output_memcfg"] = consumer.config.decode_input_memcfg
                return RMSNorm2D(weight, mesh_device=mesh_device, **kw, **given.get(name, {}))

        else:

            def norm(name, consumer):  # reads the residual, writes straight into its consumer's decode input layout
                grid = consumer.config.decode_input_core_grid
                weight = LazyWeight(weights[_norm_weight(name)])
                kw = dict(eps=eps, decode_core_grid=grid, decode_input_memcfg=self.residual_memcfg)
                return RMSNorm1D(weight, mesh_device=mesh_device, **kw, **given.get(name, {}))

        attention_norm = build("attention_norm", lambda: norm("attention_norm", attention))
        ffn_norm = build("ffn_norm", lambda: norm("ffn_norm", mlp))
        self.modules = {"attention_norm": attention_norm, "attention": attention, "ffn_norm": ffn_norm, "mlp": mlp}
        self.input_mapping = attention_norm.config.input_mapping  # the layer's input is its first norm's
        theta = model.rope_parameters["rope_theta"]
        rope_cls = Rope2D if self.two_d else Rope1D  # 2D: each mesh column decodes its share of the users
        self.rope = rope_cls(model.head_dim, cache_len, theta, scaling=model.rope_scaling, mesh_device=mesh_device)

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
        """x: the residual [1, 1, 32, dim / split] in ``residual_memcfg`` (consumed); returns the next one.
        ``tap(name, output)``, if given, sees each module's output before the residual add consumes it."""
        args = (current_pos, rot_mats), (), self.residual_memcfg
        return self._layer("decode_forward", x, *args, scope, tap or _no_tap)

    def prefill(self, x, seq_len, rot_mats, scope, tap=None):
        """x: the residual [1, 1, seq_len, dim / split] in DRAM (consumed); fills user 0's KV cache. ``tap``: as
        for ``decode``."""
        args = (seq_len, rot_mats), (seq_len,), ttnn.DRAM_MEMORY_CONFIG
        return self._layer("prefill_forward", x, *args, scope, tap or _no_tap)

    def _layer(self, forward, x, attention_args, mlp_args, memory_config, scope, tap):
        """Each module's ``forward`` (decode_forward / prefill_forward) in turn, under its scope, with the residual
        adds in ``memory_config``."""
        m = {name: getattr(module, forward) for name, module in self.modules.items()}
        with scope("attention_norm"):
            attn_in = m["attention_norm"](x)
        tap("attention_norm", attn_in)
        with scope("attention"):
            attn_out = m["attention"](attn_in, *attention_args)
        tap("attention", attn_out)
        h = self._add(x, attn_out, memory_config, scope)
        with scope("ffn_norm"):
            ff_in = m["ffn_norm"](h)
        tap("ffn_norm", ff_in)
        with scope("mlp"):
            ff_out = m["mlp"](ff_in, *mlp_args)
        tap("mlp", ff_out)
        return self._add(h, ff_out, memory_config, scope)

    @staticmethod
    def _add(residual, update, memory_config, scope):
        """residual + update in bfloat16 (both consumed)."""
        with scope("residual"):
            out = ttnn.add(residual, update, memory_config=memory_config, dtype=ttnn.bfloat16)
        ttnn.deallocate(residual)
        ttnn.deallocate(update)
        return out


def _norm_weight(name: str) -> str:
    """The HF weight of norm ``name`` (attention_norm, ffn_norm)."""
    return MODULE_PARAMS[name] + "weight"


def _no_tap(name: str, output: ttnn.Tensor) -> None:
    pass


def _built(progress, weights: dict, name: str, build):
    """Build one module, then advance ``progress`` by its parameter count."""
    module = build()
    progress.update(sum(t.numel() for k, t in weights.items() if k.startswith(MODULE_PARAMS[name])))
    return module


def _attention_kw(model: Model, weights: dict, cache_len: int, mesh_device) -> dict:
    """Attention from_hf keywords: head counts, cache length, users, and the biases / q-k norms the model has."""
    kw = dict(
        n_heads=model.n_heads,
        n_kv_heads=model.n_kv_heads,
        head_dim=model.head_dim,
        max_seq_len=cache_len,
        max_batch_size=USERS,
        mesh_device=mesh_device,
    )
    if "self_attn.q_proj.bias" in weights:  # Qwen2
        kw.update({f"b{n}": weights[f"self_attn.{n}_proj.bias"] for n in ("q", "k", "v")})
    if "self_attn.q_norm.weight" in weights:  # Qwen3
        kw.update({n: weights[f"self_attn.{n}.weight"] for n in ("q_norm", "k_norm")})
        kw["norm_eps"] = model.config.rms_norm_eps
    return kw


def _attention_weights(weights: dict) -> tuple:
    return tuple(weights[f"self_attn.{name}_proj.weight"] for name in ("q", "k", "v", "o"))


def _mlp_weights(weights: dict) -> tuple[LazyWeight, LazyWeight, LazyWeight]:
    """w1 = gate_proj.T, w2 = down_proj.T, w3 = up_proj.T."""
    return tuple(LazyWeight(weights[f"mlp.{name}_proj.weight"].T) for name in ("gate", "down", "up"))


def cache_len(seq_len: int, decode_steps: int) -> int:
    """KV-cache positions the run needs: the prompt and every decode step, rounded up to a tile."""
    return math.ceil((seq_len + decode_steps) / TILE_SIZE) * TILE_SIZE
