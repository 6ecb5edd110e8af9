# SPDX-License-Identifier: Apache-2.0
"""DecoderBlock: one pre-norm transformer layer built only from TTTv2 modules, for every family hf_loading knows.

decode:  x → norm → attention(current_pos, rot_mats, page_table) → + x → norm → MLP → + residual
prefill: x → norm → attention(seq_len, rot_mats, user_id, page tables) → + x → norm → MLP(seq_len) → + residual

The residual stream is TTTv1's: width-split over the devices (1D) or the mesh columns (2D), bfloat16, in the
attention's ``decode_residual_memcfg`` for decode and in DRAM for prefill. Which modules (1D or 2D) is decided once,
by ``parts_for(mesh_shape)``; the forwards are the same op list on every mesh. Family differences are data: the
biases and q/k norms the ModelDescription says the model has, and its norms' unit offset.

A caller that watches the block (the decoder-layer report) passes ``watch``: every part (each module in ``MODULES``,
and each ``RESIDUAL`` add) runs as ``watch(name, forward, *args)``, which must return ``forward(*args)``.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import ttnn

from models.common.models.hf_loading import ModelDescription
from models.common.modules.attention.attention_1d import Attention1D
from models.common.modules.attention.attention_2d import Attention2D
from models.common.modules.attention.attention_steps import PagedAttentionConfig
from models.common.modules.embedding.embedding_1d import Embedding1D
from models.common.modules.embedding.embedding_2d import Embedding2D
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, transposed
from models.common.modules.lm_head.lm_head_1d import LMHead1D
from models.common.modules.lm_head.lm_head_2d import LMHead2D
from models.common.modules.mlp.mlp_1d import MLP1D
from models.common.modules.mlp.mlp_2d import MLP2D
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D
from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2D
from models.common.modules.rope.rope_1d import Rope1D
from models.common.modules.rope.rope_2d import Rope2D
from models.common.modules.tt_ccl import ONE_D_MESHES, TWO_D_MESHES


def _norm_1d(weight: LazyWeight, description: ModelDescription, consumer, residual_memcfg, **kw) -> RMSNorm1D:
    """RMSNorm1D reading the residual and writing straight into ``consumer``'s (attention / MLP) decode input."""
    grid = consumer.config.decode_input_core_grid
    return RMSNorm1D(weight, decode_core_grid=grid, decode_input_memcfg=residual_memcfg, **_norm_kw(description), **kw)


def _final_norm_1d(weight: LazyWeight, description: ModelDescription, lm_head, residual_memcfg, **kw) -> RMSNorm1D:
    """RMSNorm1D writing the whole normed row into the LM head's decode input (TTTv1: SHARDED_NORM_LM_HEAD_PRGM_CFG
    on the LM head's grid, output LM_HEAD_INPUT_MEMCFG)."""
    cfg = lm_head.config
    memcfgs = dict(decode_input_memcfg=residual_memcfg, decode_memcfg=cfg.decode_input_memcfg)
    return RMSNorm1D(weight, decode_core_grid=cfg.core_grid, **memcfgs, **_norm_kw(description), **kw)


def _norm_2d(weight: LazyWeight, description: ModelDescription, consumer, residual_memcfg, **kw) -> RMSNorm2D:
    """RMSNorm2D on the column-split residual, writing straight into ``consumer``'s decode input."""
    memcfgs = dict(decode_input_memcfg=residual_memcfg, decode_output_memcfg=consumer.config.decode_input_memcfg)
    return RMSNorm2D(weight, **memcfgs, **_norm_kw(description), **kw)


def _final_norm_2d(weight: LazyWeight, description: ModelDescription, lm_head, residual_memcfg, **kw) -> RMSNorm2D:
    """RMSNorm2D writing its column slice into the LM head's decode input (LMHead2D takes dim split over columns)."""
    memcfgs = dict(decode_input_memcfg=residual_memcfg, decode_output_memcfg=lm_head.config.decode_input_memcfg)
    return RMSNorm2D(weight, **memcfgs, **_norm_kw(description), **kw)


MODULES = ("attention_norm", "attention", "ffn_norm", "mlp")  # a block's modules, in the order they run
RESIDUAL = "residual"  # the watch name of the residual adds
Watch = Callable[..., ttnn.Tensor]  # (name, forward, *args) → forward(*args)


def unwatched(name: str, forward: Callable, *args) -> ttnn.Tensor:
    """The default ``watch``: just the call."""
    return forward(*args)


def _norm_kw(description: ModelDescription) -> dict:
    return dict(eps=description.norm_eps, add_unit_offset=description.norm_unit_offset)


@dataclass(frozen=True)
class MeshParts:
    """The module classes for one kind of mesh, and how the residual stream is laid over it."""

    attention: type
    mlp: type
    rope: type
    embedding: type
    lm_head: type
    norm: Callable  # (weight, description, consumer, residual_memcfg, **kw) → the norm in front of consumer
    final_norm: Callable  # (weight, description, lm_head, residual_memcfg, **kw) → the norm in front of the LM head
    residual_mapping: MeshMapping  # host residual [1, 1, rows, dim] → the devices' slices


ONE_D = MeshParts(
    Attention1D, MLP1D, Rope1D, Embedding1D, LMHead1D, _norm_1d, _final_norm_1d, residual_mapping=MeshMapping.shard(-1)
)
TWO_D = MeshParts(  # the residual split over the mesh columns, copied on the rows
    Attention2D, MLP2D, Rope2D, Embedding2D, LMHead2D, _norm_2d, _final_norm_2d, MeshMapping.shard_2d(None, -1)
)


def parts_for(mesh_shape) -> MeshParts:
    """The 1D or 2D modules for ``mesh_shape``; ValueError naming the meshes each takes."""
    shape = tuple(mesh_shape)
    if shape in ONE_D_MESHES:
        return ONE_D
    if shape in TWO_D_MESHES:
        return TWO_D
    raise ValueError(f"mesh {shape} is not supported: 1D modules take {ONE_D_MESHES}, 2D modules {TWO_D_MESHES}")


def rope_for(description: ModelDescription, mesh_device, max_seq_len: int, max_batch_size: int):
    """The model's rotary tables (Rope1D / Rope2D), shared by every block of a model."""
    rope_cls = parts_for(mesh_device.shape).rope
    return rope_cls(
        description.head_dim,
        max_seq_len,
        description.rope_theta,
        scaling=description.rope_scaling,
        max_batch_size=max_batch_size,
        mesh_device=mesh_device,
    )


class DecoderBlock:
    """``DecoderBlock(description, weights, mesh_device, max_seq_len=..., max_batch_size=32)``: ``weights`` are one
    layer's canonical LazyWeights (``HFModel.weights("layers.i.")``); ``overrides``: module name (``MODULES``) →
    config fields given over that module's defaults (e.g. a precision recipe's dtypes and fidelities);
    ``weight_cache``: a folder for this layer's converted weights (``cached``), loaded instead of converted when
    their sources, dtypes and mesh layout match."""

    def __init__(
        self,
        description: ModelDescription,
        weights: dict[str, LazyWeight],
        mesh_device,
        *,
        max_seq_len: int,
        max_batch_size: int = 32,
        paged_attention_config: PagedAttentionConfig | None = None,
        overrides: dict[str, dict] | None = None,
        weight_cache: str | Path | None = None,
    ):
        d = description
        given = overrides or {}
        parts = parts_for(mesh_device.shape)
        weights = {name: cached(weight, weight_cache, name) for name, weight in weights.items()}
        host = {name: weight.host_tensor() for name, weight in weights.items() if name.startswith("self_attn.")}
        attention_kw = dict(
            n_heads=d.n_heads,
            n_kv_heads=d.n_kv_heads,
            head_dim=d.head_dim,
            max_seq_len=max_seq_len,
            max_batch_size=max_batch_size,
            paged_attention_config=paged_attention_config,
        )
        if d.qkv_bias:
            attention_kw.update({f"b{n}": host[f"self_attn.{n}_proj.bias"] for n in "qkv"})
        if d.qk_norm:  # per-head norms take the weight as is: no family with q/k norms has a unit offset
            attention_kw.update({n: host[f"self_attn.{n}.weight"] for n in ("q_norm", "k_norm")})
            attention_kw["norm_eps"] = d.norm_eps
        attention_kw.update(given.get("attention", {}))
        self.attention = parts.attention.from_hf(  # cached by content, as wqkv, wo, ... (hf_attention_config)
            *(host[f"self_attn.{n}_proj.weight"] for n in "qkvo"),
            mesh_device=mesh_device,
            cache_dir=weight_cache,
            **attention_kw,
        )
        self.mlp = parts.mlp(  # w1 = gate_proj.T, w2 = down_proj.T, w3 = up_proj.T
            *(transposed(weights[f"mlp.{n}_proj.weight"]) for n in ("gate", "down", "up")),
            mesh_device=mesh_device,
            **given.get("mlp", {}),
        )
        self.residual_memcfg = self.attention.config.decode_residual_memcfg

        def norm(name, hf_name, consumer):
            weight = weights[f"{hf_name}.weight"]
            return parts.norm(weight, d, consumer, self.residual_memcfg, mesh_device=mesh_device, **given.get(name, {}))

        self.attention_norm = norm("attention_norm", "input_layernorm", self.attention)
        self.ffn_norm = norm("ffn_norm", "post_attention_layernorm", self.mlp)

    @property
    def modules(self) -> dict:
        """The block's modules by name, in ``MODULES`` order."""
        return {name: getattr(self, name) for name in MODULES}

    def decode_forward(self, x, current_pos, rot_mats, page_table=None, watch: Watch = unwatched) -> ttnn.Tensor:
        """x: the residual [1, 1, 32, dim / split] in ``residual_memcfg`` (consumed); current_pos: one position per
        user (int32 device tensor or host ints); rot_mats: the model rope's decode_forward. Returns the next one."""
        attn_in = watch("attention_norm", self.attention_norm.decode_forward, x)
        attn = watch("attention", self.attention.decode_forward, attn_in, current_pos, rot_mats, page_table)
        h = watch(RESIDUAL, _add, x, attn, self.residual_memcfg)
        ff_out = watch("mlp", self.mlp.decode_forward, watch("ffn_norm", self.ffn_norm.decode_forward, h))
        return watch(RESIDUAL, _add, h, ff_out, self.residual_memcfg)

    def prefill_forward(
        self,
        x,
        seq_len,
        rot_mats,
        user_id=0,
        page_table=None,
        chunk_page_table=None,
        chunk_start_idx=None,
        watch: Watch = unwatched,
    ) -> ttnn.Tensor:
        """x: the residual [1, 1, seq_len, dim / split] in DRAM (consumed); fills user ``user_id``'s KV cache
        (through ``chunk_page_table`` for a chunk starting at ``chunk_start_idx``). Returns the next residual."""
        attn_in = watch("attention_norm", self.attention_norm.prefill_forward, x)
        attn = watch(
            "attention",
            self.attention.prefill_forward,
            attn_in,
            seq_len,
            rot_mats,
            user_id,
            page_table,
            chunk_page_table,
            chunk_start_idx,
        )
        h = watch(RESIDUAL, _add, x, attn, ttnn.DRAM_MEMORY_CONFIG)
        ff_out = watch("mlp", self.mlp.prefill_forward, watch("ffn_norm", self.ffn_norm.prefill_forward, h), seq_len)
        return watch(RESIDUAL, _add, h, ff_out, ttnn.DRAM_MEMORY_CONFIG)


def cached(weight: LazyWeight, folder: str | Path | None, name: str) -> LazyWeight:
    """``weight`` cached in ``folder`` as ``name`` (LazyWeight keys each file on its source_key, dtype, layout,
    memory and mesh layout, so a changed one misses); ``weight`` itself when ``folder`` is None."""
    return weight if folder is None else replace(weight, cache_dir=folder, cache_name=name)


def _add(residual, update, memory_config) -> ttnn.Tensor:
    """residual + update in bfloat16 (both consumed)."""
    out = ttnn.add(residual, update, memory_config=memory_config, dtype=ttnn.bfloat16)
    ttnn.deallocate(residual)
    ttnn.deallocate(update)
    return out
