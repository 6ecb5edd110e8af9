# SPDX-License-Identifier: Apache-2.0
"""What Attention1D and Attention2D share, written once.

``AttentionConfig``: the fields and defaults both meshes' configs share. ``AttentionBase``: the decode and prefill
cores, their paged / contiguous KV-cache and SDPA variants and runtime argument checks, as methods (each module's
``__init__`` binds the variants once). Then the builders and helpers: HF → TTNN weights (``hf_attention_config``),
TTTv1 ModelArgs → config (``model_args_config``), shape checks, the module-owned KV cache and the serving-column
cache fill of Galaxy meshes.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any, ClassVar

import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, derived_cache
from models.common.modules.lightweight_module import LightweightModule, identity
from models.common.modules.module_config import DecodeBatchRows, ResolvableConfig
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D, RMSNorm1DConfig
from models.common.modules.rope.rope_1d import transformation_matrices
from models.common.tensor_utils import TILE_SIZE

PREFILL_SEQ_MULTIPLE = 128  # TTTv1 forward_prefill: "Seqlen must be divisible by 128"


@dataclass(frozen=True)
class PagedAttentionConfig:
    """Paged KV cache: ``max_num_blocks`` blocks of ``block_size`` tokens shared by all users via a page table
    (TTTv1 common.PagedAttentionConfig defaults)."""

    block_size: int = 32
    max_num_blocks: int = 1024


@dataclass(frozen=True)
class AttentionConfig(ResolvableConfig, DecodeBatchRows):
    """The fields Attention1DConfig and Attention2DConfig share, with the defaults that are the same on both meshes.
    Each mesh's config adds its own fields and the defaults that differ, and defines ``head_groups`` (device groups
    the heads split over), ``decode_users`` (users each device decodes) and ``decode_input_core_grid``."""

    wqkv: (
        LazyWeight  # (dim, qkv_size) in TTTv1's fused per-device-group layout (tensor_utils.fuse_qkv), Q/K interleaved
    )
    wo: LazyWeight  # (n_heads * head_dim, dim): o_proj.weight.T
    n_heads: int
    n_kv_heads: int
    head_dim: int
    max_seq_len: int  # KV cache length per user (non-paged) and the largest position accepted
    max_batch_size: int = pc.MAX_DECODE_BATCH
    wqkv_bias: LazyWeight | None = None  # (qkv_size,) fused like wqkv (Qwen2)
    q_norm_config: RMSNorm1DConfig | None = None  # per-head RMSNorm over head_dim (Qwen3), weight interleaved
    k_norm_config: RMSNorm1DConfig | None = None
    paged_attention_config: PagedAttentionConfig | None = None
    scale: float | None = None
    # mesh and CCL
    mesh_device: Any = None
    tt_ccl: Any = None
    topology: ttnn.Topology | None = None
    num_reduce_scatter_links: int = 1  # TTTv1 ModelArgs.num_reduce_scatter_links
    # dtypes and compute kernels
    wqkv_dtype: ttnn.DataType | None = None
    wo_dtype: ttnn.DataType | None = None
    kv_cache_dtype: ttnn.DataType | None = None
    activation_dtype: ttnn.DataType | None = None  # None: bfloat16 QKV output, bfloat8_b SDPA input / WO output
    li_qkv_decode_compute_kernel_config: Any = None
    sdpa_decode_compute_kernel_config: Any = None
    li_o_decode_compute_kernel_config: Any = None
    li_qkv_prefill_compute_kernel_config: Any = None
    sdpa_prefill_compute_kernel_config: Any = None
    li_o_prefill_compute_kernel_config: Any = None
    wqkv_memcfg: ttnn.MemoryConfig | None = None
    # decode
    decode_input_memcfg: ttnn.MemoryConfig | None = None
    decode_xqkv_prg_config: Any = None
    decode_create_qkv_heads_memcfg: ttnn.MemoryConfig | None = None
    decode_sdpa_prg_config: Any = None
    decode_scores_memcfg: ttnn.MemoryConfig | None = None
    decode_residual_memcfg: ttnn.MemoryConfig | None = None
    # prefill (program configs: seq_len → config)
    prefill_input_memcfg: ttnn.MemoryConfig | None = None
    prefill_xqkv_prg_config: Callable[[int], Any] | None = None
    prefill_sdpa_prg_config: Callable[[int], Any] | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"wqkv_bias", "q_norm_config", "k_norm_config", "paged_attention_config", "topology", "activation_dtype"}
    )
    NORM_CONFIG: ClassVar[type] = RMSNorm1DConfig  # the q/k norms' config (from_hf / from_model_args build them)

    # --- derived sizes ---------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.wqkv.shape[-2]

    @property
    def qkv_size(self) -> int:
        return self.head_dim * (self.n_heads + 2 * self.n_kv_heads)

    @property
    def num_devices(self) -> int:
        return self.mesh_device.get_num_devices()

    @property
    def n_local_heads(self) -> int:
        return self.n_heads // self.head_groups

    @property
    def n_local_kv_heads(self) -> int:
        return self.n_kv_heads // self.head_groups

    # --- defaults both meshes share (TTTv1) ------------------------------------------------------------------
    def default_scale(self):
        return self.head_dim**-0.5

    def default_mesh_device(self):
        return self.wqkv.device or ttnn.GetDefaultDevice()

    def default_tt_ccl(self):
        return ccl.get_tt_ccl(self.mesh_device)

    def default_topology(self):
        return ccl.default_topology(self.mesh_device)

    def default_wqkv_dtype(self):
        return ttnn.bfloat8_b

    def default_wo_dtype(self):
        return ttnn.bfloat8_b

    def default_kv_cache_dtype(self):
        return ttnn.bfloat8_b

    def default_li_qkv_decode_compute_kernel_config(self):
        return pc.compute_kernel_config("hifi2")

    def default_sdpa_decode_compute_kernel_config(self):
        return pc.compute_kernel_config("hifi2")

    def default_li_o_decode_compute_kernel_config(self):
        return pc.compute_kernel_config("hifi2")

    def default_li_qkv_prefill_compute_kernel_config(self):
        return pc.compute_kernel_config("hifi2")

    def default_sdpa_prefill_compute_kernel_config(self):
        return pc.compute_kernel_config("hifi4")

    def default_li_o_prefill_compute_kernel_config(self):
        return pc.compute_kernel_config("hifi2")

    def default_decode_create_qkv_heads_memcfg(self):
        return ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG  # TTTv1 CREATE_QKV_DECODE_SHARD on Wormhole

    def default_decode_sdpa_prg_config(self):
        return pc.sdpa_decode_config()

    def default_decode_scores_memcfg(self):
        return pc.scores_memcfg(self.decode_users, self.n_local_heads, self.head_dim)

    def default_prefill_input_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG

    def default_prefill_sdpa_prg_config(self):
        return lru_cache(pc.sdpa_prefill_config)


class AttentionBase(LightweightModule):
    """The decode and prefill cores Attention1D and Attention2D share, with their variants as methods. Each
    module's ``__init__`` sets ``config``, ``keys`` / ``values`` and calls ``_bind_shared_variants``; each defines
    ``_cache_fill`` (what a contiguous cache fill writes) and names the norm module its q/k norm configs build
    (``HEAD_NORM``)."""

    HEAD_NORM: ClassVar[type] = RMSNorm1D

    def _bind_shared_variants(self, bias_mapping: MeshMapping, users_mapping: MeshMapping) -> None:
        """The static choices both meshes make once: dtype casts, biases, q/k norms, paged or contiguous KV cache
        and the runtime checks that go with it. ``bias_mapping``: how the fused QKV bias lies over the mesh;
        ``users_mapping`` (public): how decode inputs indexed by user (current_pos, a paged page_table's rows)
        lie over the mesh."""
        cfg = self.config
        self._qkv_dtype = cfg.activation_dtype or ttnn.bfloat16
        self._sdpa_dtype = cfg.activation_dtype or ttnn.bfloat8_b
        self._wo_dtype = cfg.activation_dtype or ttnn.bfloat8_b
        self.transformation_mats = transformation_matrices(cfg.mesh_device, cfg.decode_users)
        self._to_bf16 = identity if self._qkv_dtype == ttnn.bfloat16 else partial(ttnn.typecast, dtype=ttnn.bfloat16)
        self._to_cache_dtype = partial(ttnn.typecast, dtype=cfg.kv_cache_dtype)
        self._to_sdpa_dtype = partial(ttnn.typecast, dtype=self._sdpa_dtype)
        self._add_decode_bias = self._add_prefill_bias = identity
        if cfg.wqkv_bias is not None:
            decode_bias, prefill_bias = _qkv_biases(cfg, bias_mapping)
            self._add_decode_bias = partial(_add, decode_bias)
            self._add_prefill_bias = partial(_add, prefill_bias)
        no_norm = (identity, identity)
        self._q_norm_decode, self._q_norm_prefill = self._head_norm(cfg.q_norm_config) if cfg.q_norm_config else no_norm
        self._k_norm_decode, self._k_norm_prefill = self._head_norm(cfg.k_norm_config) if cfg.k_norm_config else no_norm
        paged = cfg.paged_attention_config is not None
        self._sdpa_decode = self._sdpa_decode_paged if paged else self._sdpa_decode_contiguous
        self._fill_cache = self._fill_paged if paged else self._fill_contiguous
        self._sdpa_prefill = self._sdpa_prefill_paged if paged else self._sdpa_prefill_causal
        self._check_decode_page_table = self._check_page_table_paged if paged else self._check_no_page_table
        self._check_prefill_cache_args = self._check_prefill_paged if paged else self._check_prefill_contiguous
        self.users_mapping = users_mapping

    def forward(self, x, current_pos, rot_mats, user_id=0, mode="decode", page_table=None, **prefill_kwargs):
        """TTTv1-style entry point: ``mode`` is "decode" or "prefill"."""
        if mode == "decode":
            return self.decode_forward(x, current_pos, rot_mats, page_table)
        return self.prefill_forward(x, x.shape[-2], rot_mats, user_id, page_table, **prefill_kwargs)

    # --- the cores both meshes share -------------------------------------------------------------------------
    def _attend_decode(self, xqkv, current_pos, rot_mats, page_table):
        """Fused bfloat16 QKV [1, 1, 32, local qkv] in L1 (consumed) → heads, one user per core → [q/k norm]
        → rotary → KV-cache update at ``current_pos`` → SDPA decode → concatenated heads [1, 1, 32, Hq·D]."""
        cfg = self.config
        q, k, v = self._create_heads_decode(xqkv)  # q [1, users, Hq, D], k / v [1, users, Hkv, D]
        q, k = self._q_norm_decode(q), self._k_norm_decode(k)
        q, k = (_rotary(t, *rot_mats, self.transformation_mats["decode"], True) for t in (q, k))
        for cache, new in ((self.keys, k), (self.values, v)):
            ttnn.experimental.paged_update_cache(cache, new, update_idxs_tensor=current_pos, page_table=page_table)
            ttnn.deallocate(new)
        attn = self._sdpa_decode(q, current_pos, page_table)
        ttnn.deallocate(q)
        attn = ttnn.to_memory_config(attn, cfg.decode_scores_memcfg)
        return ttnn.experimental.nlp_concat_heads_decode(attn, num_heads=cfg.n_local_heads)

    def _attend_prefill(self, xqkv, seq_len, rot_mats, user_id, page_table, chunk_page_table, chunk_start_idx):
        """Fused QKV [1, 1, S, local qkv] in DRAM (consumed) → heads → [q/k norm] → rotary → fill user
        ``user_id``'s KV cache → causal (or chunked paged) SDPA → concatenated heads [1, 1, S, Hq·D] in DRAM."""
        cfg = self.config
        q, k, v = ttnn.experimental.nlp_create_qkv_heads(
            xqkv,
            num_heads=cfg.n_local_heads,
            num_kv_heads=cfg.n_local_kv_heads,
            transpose_k_heads=False,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )  # q [1, Hq, S, D], k / v [1, Hkv, S, D]
        ttnn.deallocate(xqkv)
        q, k = self._to_bf16(self._q_norm_prefill(q)), self._to_bf16(self._k_norm_prefill(k))
        q, k = (_rotary(t, *rot_mats, self.transformation_mats["prefill"], False) for t in (q, k))
        k, v = self._to_cache_dtype(k), self._to_cache_dtype(v)
        self._fill_cache(k, v, seq_len, user_id, page_table, chunk_page_table)
        q = self._to_sdpa_dtype(q)
        attn = self._sdpa_prefill(q, k, v, seq_len, page_table, chunk_start_idx)
        for t in (q, k, v):
            ttnn.deallocate(t)
        return ttnn.experimental.nlp_concat_heads(attn, memory_config=ttnn.DRAM_MEMORY_CONFIG)

    def _create_heads_decode(self, xqkv):
        """[1, 1, 32, local qkv] bfloat16 L1-interleaved → q, k, v heads, one user per core; the reshape keeps the
        32-row padding but makes the logical batch this device's decode users (TTTv1)."""
        cfg = self.config
        width = xqkv.shape[-1]
        xqkv = ttnn.reshape(xqkv, (1, 1, cfg.decode_users, width), (1, 1, TILE_SIZE, width))
        heads = ttnn.experimental.nlp_create_qkv_heads_decode(
            xqkv,
            num_heads=cfg.n_local_heads,
            num_kv_heads=cfg.n_local_kv_heads,
            memory_config=cfg.decode_create_qkv_heads_memcfg,
        )
        ttnn.deallocate(xqkv)
        return heads

    def _head_norm(self, norm_cfg):
        """(decode, prefill) per-head norms: ``HEAD_NORM`` built from the whole composed ``norm_cfg`` on the
        attention's mesh (interleaved decode, local prefill)."""
        norm = self.HEAD_NORM.from_config(replace(norm_cfg, mesh_device=self.config.mesh_device))
        return partial(_norm_resharded, norm.decode_forward), norm.prefill_forward

    # --- KV cache and SDPA variants (bound in _bind_shared_variants) -----------------------------------------
    def _sdpa_decode_contiguous(self, q, current_pos, page_table):
        cfg = self.config
        return ttnn.transformer.scaled_dot_product_attention_decode(
            q,
            self.keys,
            self.values,
            cur_pos_tensor=current_pos,
            scale=cfg.scale,
            program_config=cfg.decode_sdpa_prg_config,
            compute_kernel_config=cfg.sdpa_decode_compute_kernel_config,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )

    def _sdpa_decode_paged(self, q, current_pos, page_table):
        cfg = self.config
        return ttnn.transformer.paged_scaled_dot_product_attention_decode(
            q,
            self.keys,
            self.values,
            page_table_tensor=page_table,
            cur_pos_tensor=current_pos,
            scale=cfg.scale,
            program_config=cfg.decode_sdpa_prg_config,
            compute_kernel_config=cfg.sdpa_decode_compute_kernel_config,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )

    def _fill_contiguous(self, k, v, seq_len, user_id, page_table, chunk_page_table):
        """User ``user_id``'s slot of each cache takes the prefill's K / V, as the module lays it out
        (``_cache_fill``)."""
        slot = user_id % self.config.decode_users
        for cache, new in ((self.keys, k), (self.values, v)):
            fill = self._cache_fill(new, cache, seq_len, user_id)
            ttnn.fill_cache(cache, fill, slot)
            if fill is not new:  # runtime: a re-laid-out copy is freed, the caller's K / V are not
                ttnn.deallocate(fill)

    def _fill_paged(self, k, v, seq_len, user_id, page_table, chunk_page_table):
        fill_page_table = page_table if chunk_page_table is None else chunk_page_table
        for cache, fill in ((self.keys, k), (self.values, v)):
            ttnn.experimental.paged_fill_cache(cache, fill, fill_page_table, batch_idx=user_id)

    def _sdpa_prefill_causal(self, q, k, v, seq_len, page_table, chunk_start_idx):
        cfg = self.config
        return ttnn.transformer.scaled_dot_product_attention(
            q,
            k,
            v,
            is_causal=True,
            scale=cfg.scale,
            program_config=cfg.prefill_sdpa_prg_config(seq_len),
            compute_kernel_config=cfg.sdpa_prefill_compute_kernel_config,
        )

    def _sdpa_prefill_paged(self, q, k, v, seq_len, page_table, chunk_start_idx):
        """Paged prefill: causal SDPA over the new K/V, or (chunk_start_idx given) over the whole paged cache."""
        if chunk_start_idx is None:
            return self._sdpa_prefill_causal(q, k, v, seq_len, page_table, chunk_start_idx)
        cfg = self.config
        return ttnn.transformer.chunked_scaled_dot_product_attention(
            q,
            self.keys,
            self.values,
            page_table,
            chunk_start_idx,
            program_config=pc.sdpa_chunk_aligned(cfg.prefill_sdpa_prg_config(seq_len), chunk_start_idx),
            compute_kernel_config=cfg.sdpa_prefill_compute_kernel_config,
        )

    # --- runtime argument checks -----------------------------------------------------------------------------
    def _decode_positions(self, current_pos):
        """Host positions are checked against max_seq_len and uploaded; a device tensor is taken as is."""
        cfg = self.config
        if isinstance(current_pos, ttnn.Tensor):
            return current_pos
        positions = list(current_pos)
        if len(positions) != cfg.max_batch_size:
            raise ValueError(
                f"current_pos has {len(positions)} positions, expected one per user ({cfg.max_batch_size})"
            )
        if max(positions) >= cfg.max_seq_len or min(positions) < 0:
            raise ValueError(f"decode position {max(positions)} is past max_seq_len {cfg.max_seq_len} (or negative)")
        return upload_positions(positions, cfg.mesh_device, self.users_mapping)

    def _check_no_page_table(self, page_table):
        if page_table is not None:
            raise ValueError("a page_table was given, but this module has no paged_attention_config (contiguous cache)")

    def _check_page_table_paged(self, page_table):
        users = self.config.decode_users
        if page_table is None or page_table.shape[0] != users:
            got = None if page_table is None else tuple(page_table.shape)
            raise ValueError(
                f"paged attention needs a page_table of shape ({users}, blocks per user) on each device, got {got}"
            )

    def _check_prefill(self, seq_len, user_id, page_table, chunk_page_table, chunk_start_idx):
        if seq_len <= 0 or seq_len % PREFILL_SEQ_MULTIPLE:
            raise ValueError(f"prefill seq_len {seq_len} must be a positive multiple of {PREFILL_SEQ_MULTIPLE}")
        for chunk in (pc.MAX_MM_SEQ_LEN, pc.MAX_QKV_MM_SEQ_LEN):  # the matmuls run long prefills in chunks of these
            if seq_len > chunk and seq_len % chunk:
                raise ValueError(f"prefill seq_len {seq_len} above {chunk} must be a multiple of {chunk}")
        end = (chunk_start_idx or 0) + seq_len
        if end > self.config.max_seq_len:
            raise ValueError(f"prefill positions up to {end} are past max_seq_len {self.config.max_seq_len}")
        self._check_prefill_cache_args(seq_len, user_id, page_table, chunk_page_table, chunk_start_idx)

    def _check_prefill_contiguous(self, seq_len, user_id, page_table, chunk_page_table, chunk_start_idx):
        if page_table is not None or chunk_start_idx is not None:
            raise ValueError("page_table / chunked prefill need a paged_attention_config (this cache is contiguous)")

    def _check_prefill_paged(self, seq_len, user_id, page_table, chunk_page_table, chunk_start_idx):
        if page_table is None or len(page_table.shape) != 2 or user_id >= page_table.shape[0]:
            got = None if page_table is None else tuple(page_table.shape)
            raise ValueError(f"paged prefill needs a 2D page_table with a row for user {user_id}, got {got}")
        fill = page_table if chunk_page_table is None else chunk_page_table
        covered = fill.shape[-1] * self.config.paged_attention_config.block_size
        if covered < seq_len:
            raise ValueError(
                f"page table of shape {tuple(fill.shape)} covers {covered} tokens, fewer than seq_len {seq_len}"
            )


def hf_attention_config(config_cls, groups, wq, wk, wv, wo, *, n_heads, n_kv_heads, head_dim, max_seq_len, **kw):
    """A config of ``config_cls`` from HF ``q_proj/k_proj/v_proj/o_proj.weight`` (out, in) tensors: Q/K rows (and
    the optional ``bq/bk/bv`` biases, ``q_norm/k_norm`` weights with ``norm_eps``) reordered to the interleaved
    rotary layout, q/k/v fused per device group (``groups``: 1D one per device, 2D one per mesh row), wo transposed.
    ``norm_add_unit_offset`` makes the norms scale by (1 + weight) (Gemma-style). ``cache_dir`` caches the converted
    weights (names wqkv, wo, wqkv_bias, q_norm, k_norm); other keywords go to ``config_cls``."""
    bq, bk, bv = kw.pop("bq", None), kw.pop("bk", None), kw.pop("bv", None)
    q_norm, k_norm, eps = kw.pop("q_norm", None), kw.pop("k_norm", None), kw.pop("norm_eps", None)
    norm_kw = dict(mesh_device=kw.get("mesh_device"), add_unit_offset=kw.pop("norm_add_unit_offset", False))
    cache_dir = kw.pop("cache_dir", None)

    def lazy(source, name):
        return LazyWeight(source, **({} if cache_dir is None else {"cache_dir": cache_dir, "cache_name": name}))

    def fused(q, k, v):
        return lambda: tensor_utils.fuse_qkv(
            tensor_utils.hf_to_meta_rows(q, n_heads), tensor_utils.hf_to_meta_rows(k, n_kv_heads), v, groups
        )

    if bq is not None:
        kw["wqkv_bias"] = lazy(fused(bq, bk, bv), "wqkv_bias")
    norm_kw.update({} if eps is None else {"eps": eps})
    for name, weight in (("q_norm", q_norm), ("k_norm", k_norm)):
        if weight is not None:  # per-head weight: reorder its entries like the Q/K rows
            source = partial(tensor_utils.hf_to_meta_rows, weight, 1)
            kw[f"{name}_config"] = config_cls.NORM_CONFIG.per_head(lazy(source, name), **norm_kw)
    wqkv, wo_t = lazy(fused(wq, wk, wv), "wqkv"), lazy(lambda: wo.T.contiguous(), "wo")
    return config_cls(wqkv, wo_t, n_heads, n_kv_heads, head_dim, max_seq_len, **kw)


def model_args_config(config_cls, mesh_device, args, state_dict, weight_cache_path, layer_num, groups, **kw):
    """A config of ``config_cls`` from a TTTv1 ModelArgs: its Meta-named weights (already in the interleaved rotary
    layout) fused per device group, dtypes and math fidelities (DecodersPrecision), and the model_config keys both
    meshes share. ``kw`` adds the mesh-specific fields. The only place attention touches TTTv1; retires with it."""
    from models.tt_transformers.tt.model_config import OpGroup, TensorGroup

    prefix = args.get_state_dict_prefix("Attention", layer_num)
    layer = max(layer_num, 0)  # cross-attention blocks use the first decoder's settings (TTTv1)
    mc = args.model_config
    precision = mc["DECODERS_OPTIMIZATIONS"]
    cached = weight_cache_path is not None and not args.dummy_weights

    def lazy(source, name):
        cache = dict(cache_dir=weight_cache_path, cache_name=f"{prefix}.{name}") if cached else {}
        return LazyWeight(source, **cache)

    def fused(kind):
        parts = [state_dict[f"{prefix}.{w}.{kind}"] for w in ("wq", "wk", "wv")]
        return lazy(partial(tensor_utils.fuse_qkv, *parts, groups), f"wqkv_{kind}")

    for name in ("q_norm", "k_norm"):
        if f"{prefix}.{name}.weight" in state_dict:
            weight = lazy(state_dict[f"{prefix}.{name}.weight"], name)
            norm = dict(mesh_device=mesh_device, eps=args.norm_eps, add_unit_offset=args.rms_norm_add_unit_offset)
            kw[f"{name}_config"] = config_cls.NORM_CONFIG.per_head(weight, **norm)
    fidelity = partial(precision.get_math_fidelity, layer, configuration=args)
    dtype = partial(precision.get_tensor_dtype, layer)
    return config_cls(
        fused("weight"),
        lazy(state_dict[f"{prefix}.wo.weight"].T, "wo"),
        args.n_heads,
        args.n_kv_heads,
        args.head_dim,
        args.max_seq_len,
        max_batch_size=args.max_batch_size,
        wqkv_bias=fused("bias") if f"{prefix}.wq.bias" in state_dict else None,
        mesh_device=mesh_device,
        num_reduce_scatter_links=args.num_reduce_scatter_links,
        wqkv_dtype=dtype(TensorGroup.WQKV),
        wo_dtype=dtype(TensorGroup.WO),
        kv_cache_dtype=dtype(TensorGroup.KV_CACHE),
        activation_dtype=dtype(TensorGroup.ACTIVATION),
        li_qkv_decode_compute_kernel_config=fidelity(OpGroup.LI_QKV_DECODE),
        sdpa_decode_compute_kernel_config=fidelity(OpGroup.SDPA_DECODE),
        li_o_decode_compute_kernel_config=fidelity(OpGroup.LI_O_DECODE),
        li_qkv_prefill_compute_kernel_config=fidelity(OpGroup.LI_QKV_PREFILL),
        sdpa_prefill_compute_kernel_config=fidelity(OpGroup.SDPA_PREFILL),
        li_o_prefill_compute_kernel_config=fidelity(OpGroup.LI_O_PREFILL),
        decode_input_memcfg=mc["SHARDED_ATTN_INPUT_MEMCFG"],
        decode_xqkv_prg_config=mc["XQKV_DECODE_PROGCFG"],
        decode_create_qkv_heads_memcfg=mc["CREATE_QKV_DECODE_SHARD"],
        decode_sdpa_prg_config=mc["SDPA_DECODE_PROGCFG"],
        decode_wo_prg_config=mc["ATTN_OUTPUT_PROGCFG"],
        decode_residual_memcfg=mc["DECODE_RESIDUAL_MEMCFG"],
        prefill_xqkv_prg_config=mc["XQKV_PREFILL_PROGCFG"],
        prefill_sdpa_prg_config=mc["SDPA_PROGCFG"],
        prefill_wo_prg_config=mc["WO_PREFILL_PROGCFG"],
        **kw,
    )


def check_head_split(cfg, head_groups: int) -> None:
    """Before resolution: the heads split evenly over the device groups and each head is whole tiles."""
    if cfg.n_heads % head_groups or cfg.n_kv_heads % head_groups:
        raise ValueError(
            f"n_heads ({cfg.n_heads}) and n_kv_heads ({cfg.n_kv_heads}) must both divide over {head_groups} device "
            "groups; use a smaller mesh"
        )
    if cfg.head_dim % TILE_SIZE:
        raise ValueError(f"head_dim {cfg.head_dim} must be a multiple of {TILE_SIZE}")


def validate_attention_shapes(cfg) -> None:
    """Construction-time checks on a resolved config: weight shapes, paged block budget and scale."""
    if cfg.wqkv.shape[-1] != cfg.qkv_size:
        raise ValueError(
            f"wqkv has {cfg.wqkv.shape[-1]} columns, expected head_dim * (n_heads + 2 n_kv_heads) = {cfg.qkv_size}"
        )
    if tuple(cfg.wo.shape[-2:]) != (cfg.n_heads * cfg.head_dim, cfg.dim):
        raise ValueError(f"wo has shape {cfg.wo.shape}, expected ({cfg.n_heads * cfg.head_dim}, {cfg.dim})")
    paged = cfg.paged_attention_config
    if paged is not None and cfg.scale != cfg.head_dim**-0.5:
        # TTTv1 passes no scale to chunked SDPA (ttnn 0.81 rejects one on multi-device meshes): it uses head_dim^-0.5
        raise ValueError(f"paged attention (chunked prefill) supports only scale = head_dim ** -0.5, got {cfg.scale}")
    if paged is not None:
        needed = math.ceil(cfg.max_seq_len / paged.block_size) * cfg.max_batch_size
        if needed > paged.max_num_blocks:
            raise ValueError(
                f"paged KV cache has {paged.max_num_blocks} blocks, but {cfg.max_batch_size} users of up to "
                f"{cfg.max_seq_len} tokens need {needed} blocks of {paged.block_size}; raise max_num_blocks"
            )


def allocate_kv_cache(cfg) -> tuple[ttnn.Tensor, ttnn.Tensor]:
    """Zeroed K and V caches on every device: [decode users, local KV heads, max_seq_len, head_dim], or paged
    [max_num_blocks, local KV heads, block_size, head_dim] (TTTv1 init_kv_cache), in DRAM."""
    paged = cfg.paged_attention_config
    shape = (
        (cfg.decode_users, cfg.n_local_kv_heads, cfg.max_seq_len, cfg.head_dim)
        if paged is None
        else (paged.max_num_blocks, cfg.n_local_kv_heads, paged.block_size, cfg.head_dim)
    )
    return tuple(
        tensor_utils.from_host(
            tensor_utils.zeros(shape),
            dtype=cfg.kv_cache_dtype,
            layout=ttnn.TILE_LAYOUT,
            device=cfg.mesh_device,
            mesh_mapper=ttnn.ReplicateTensorToMesh(cfg.mesh_device),
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )
        for _ in range(2)
    )


def column_masks(mesh_device, columns: int) -> list[tuple[ttnn.Tensor, ttnn.Tensor]]:
    """Per mesh column: (1 on its devices, 0 elsewhere) and its complement, one scalar tile per device (the masks of
    ``fill_on_serving_column``)."""
    mapper = MeshMapping.shard_2d(None, 1).mapper(mesh_device)
    mask = dict(dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh_device, mesh_mapper=mapper)
    return [
        tuple(
            tensor_utils.from_host(m, **mask)
            for m in (tensor_utils.one_hot(columns, c), 1 - tensor_utils.one_hot(columns, c))
        )
        for c in range(columns)
    ]


def fill_on_serving_column(fill, cache, user_id: int, users: int, masks) -> ttnn.Tensor:
    """A prefill's K or V [1, heads, S, D] as the cache fill of ``user_id``'s slot when each mesh column caches its
    own ``users``: the new values on the column that decodes the user, the slot's current values elsewhere
    (new · mask + old · (1 - mask)). TTTv1 fills only that column's devices; ttnn 0.81's fill_cache fails on such a
    partial-mesh tensor."""
    slot, seq_len = user_id % users, fill.shape[2]
    old = ttnn.slice(cache, (slot, 0, 0, 0), (slot + 1, cache.shape[1], seq_len, cache.shape[3]))
    mask, keep = masks[user_id // users]
    new = ttnn.mul(fill, mask, dtype=cache.dtype)
    kept = ttnn.mul(old, keep, dtype=cache.dtype)  # old is not freed: slicing all of the cache returns the cache
    out = ttnn.add(new, kept, dtype=cache.dtype)
    for t in (new, kept):
        ttnn.deallocate(t)
    return out


def upload_positions(positions: list[int], mesh_device, users_mapping=None) -> ttnn.Tensor:
    """Decode positions, one per user, as the int32 row-major tensor decode_forward takes: on every device
    (``users_mapping`` None) or split as the module splits its decode users (its ``users_mapping``)."""
    return ttnn.to_device(host_positions(positions, mesh_device, users_mapping), mesh_device)


def host_positions(positions: list[int], mesh_device, users_mapping=None) -> ttnn.Tensor:
    """upload_positions' tensor still on the host, laid out for the mesh: what a trace-ready caller copies into its
    persistent device tensor (``ttnn.copy_host_to_device_tensor``)."""
    return tensor_utils.from_host(
        tensor_utils.int_vector(positions),
        dtype=ttnn.int32,
        layout=ttnn.ROW_MAJOR_LAYOUT,
        mesh_mapper=(users_mapping or MeshMapping.replicate()).mapper(mesh_device),
    )


def _qkv_biases(cfg, mapping: MeshMapping) -> tuple[ttnn.Tensor, ttnn.Tensor]:
    """The fused QKV bias on the mesh (laid out as ``mapping``), for decode expanded over the batch rows (TTTv1:
    "dram-sharded matmuls with bias" bug, so decode adds it separately) and for prefill one row."""
    rows, host = cfg.tile_padded_batch_rows, cfg.wqkv_bias.host_tensor
    bias = dict(device=cfg.mesh_device, layout=ttnn.TILE_LAYOUT, dtype=ttnn.bfloat16, mesh_mapping=mapping)
    bias["memory_config"] = ttnn.DRAM_MEMORY_CONFIG
    decode = LazyWeight(
        lambda: tensor_utils.repeat_rows(host(), rows), **bias, **derived_cache(cfg.wqkv_bias, "decode")
    )
    prefill = LazyWeight(lambda: tensor_utils.repeat_rows(host(), 1), **bias, **derived_cache(cfg.wqkv_bias, "prefill"))
    return decode.get_device_weight(), prefill.get_device_weight()


def _rotary(x, cos, sin, transformation_mat, is_decode_mode):
    out = ttnn.experimental.rotary_embedding_llama(x, cos, sin, transformation_mat, is_decode_mode=is_decode_mode)
    ttnn.deallocate(x)
    return out


def _norm_resharded(norm, x):
    """TTTv1 norm_reshard: rms_norm takes no height-sharded input, so normalise in L1 and move back."""
    memory_config = x.memory_config()
    out = norm(ttnn.to_memory_config(x, ttnn.L1_MEMORY_CONFIG))
    return ttnn.to_memory_config(out, memory_config)


def _add(bias, x):
    out = ttnn.add(x, bias, memory_config=x.memory_config())
    ttnn.deallocate(x)
    return out
