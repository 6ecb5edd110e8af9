# SPDX-License-Identifier: Apache-2.0
"""Attention2D: GQA attention with its own KV cache on Galaxy meshes (8x4, 4x8), TTTv1's TG weight layout.

decode:  linear(wqkv) → all-reduce over mesh columns (reduce-scatter + all-gather) (+ bias) → create heads
         → [q/k norm] → rotary_embedding_llama → update the KV cache (paged or not) → SDPA decode → concat heads
         → linear(wo) → all-reduce over mesh rows
prefill: [reshape to 2048-row chunks] → linear(wqkv) → all-reduce over columns (+ bias) → create heads → [q/k norm]
         → rotary_embedding_llama → fill the KV cache for user_id → causal (or chunked paged) SDPA → concat heads
         → [reshape to 1024-row chunks] → linear(wo) → all-reduce over rows

Layout (TTTv1 TG attention.py): the input is split along ``dim`` over mesh columns and replicated over rows. wqkv is
fused per mesh row (``tensor_utils.fuse_qkv`` with one group per row: TTTv1's n_kv_heads groups on 8x4) and split
``dim``-wise over columns, so the QKV matmul leaves partial sums over the columns; each row then owns
n_heads / rows query heads and n_kv_heads / rows KV heads. wo is split by heads over rows and by ``dim`` over
columns, so its partial sums are all-reduced over the rows and the output is split along ``dim`` over the columns
like the input. Difference from TTTv1: every device keeps all users (TTTv1 TG splits the batch over the columns
with selection matmuls), so no user-selection matrices are needed and the KV cache holds max_batch_size users.
Program configs are left to ttnn (upstream TTTv2 MLP2D / TTTv1 TG pass none for most attention matmuls).
"""

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import ttnn

from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.attention.attention_1d import Attention1DConfig
from models.common.modules.attention.attention_steps import (
    allocate_kv_cache,
    bind_attention_variants,
    check_head_split,
    hf_attention_config,
    validate_attention_shapes,
)
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, load_input_device_tensor, resolve_lazy_weight
from models.common.modules.lightweight_module import LightweightModule

TWO_D_MESHES = ((8, 4), (4, 8))
ROW_AXIS, COL_AXIS = 0, 1  # cluster axes: 0 = mesh rows, 1 = mesh columns
GALAXY_ALL_GATHER_LINKS = 2  # TTTv1 ModelArgs.num_all_gather_links on Galaxy


@dataclass(frozen=True)
class Attention2DConfig(Attention1DConfig):
    """Attention1DConfig's fields with Galaxy defaults; heads are split over mesh rows."""

    num_all_gather_links: int = GALAXY_ALL_GATHER_LINKS
    ccl_dtype: ttnn.DataType | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = Attention1DConfig.OPTIONAL_FIELDS | frozenset(
        {
            "decode_xqkv_prg_config",
            "decode_wo_prg_config",
            "prefill_xqkv_prg_config",
            "prefill_wo_prg_config",
            "decode_residual_memcfg",
        }
    )

    def resolve(self):
        rows, _ = tuple((self.mesh_device or self.default_mesh_device()).shape)
        check_head_split(self, rows)
        return super(Attention1DConfig, self).resolve()

    @property
    def head_groups(self) -> int:
        rows, _ = tuple(self.mesh_device.shape)
        return rows

    @property
    def n_local_heads(self) -> int:
        return self.n_heads // self.head_groups

    @property
    def n_local_kv_heads(self) -> int:
        return self.n_kv_heads // self.head_groups

    def default_ccl_dtype(self):
        return ttnn.bfloat8_b  # TTTv1 ModelArgs.ccl_dtype

    def default_use_fused_all_gather_matmul(self):
        return False  # TTTv1: the fused all-gather matmul is T3K-only

    def default_wqkv_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG  # TTTv1 TG: DRAM interleaved

    def default_wo_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG

    def default_decode_input_memcfg(self):
        return ttnn.L1_MEMORY_CONFIG

    def default_decode_xqkv_prg_config(self):
        return None

    def default_decode_wo_prg_config(self):
        return None

    def default_decode_residual_memcfg(self):
        return None

    def default_min_kv_prefill_shard_seqlen(self):
        return self.max_seq_len + 1  # TTTv1 TG fills the cache from interleaved K/V: never shard

    def default_prefill_xqkv_prg_config(self):
        return _ttnn_picks

    def default_prefill_wo_prg_config(self):
        return _ttnn_picks


class Attention2D(LightweightModule):
    """GQA attention on a Galaxy mesh. ``Attention2D(wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len)``,
    ``Attention2D.from_config(cfg)``, ``Attention2D.from_hf(wq, wk, wv, wo, ...)`` (HF nn.Linear weights)."""

    def __init__(self, wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len, **overrides):
        self.__init_from_config(Attention2DConfig(wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len, **overrides))

    @classmethod
    def from_config(cls, config: Attention2DConfig) -> "Attention2D":
        module = cls.__new__(cls)
        module.__init_from_config(config)
        return module

    @classmethod
    def from_hf(cls, wq, wk, wv, wo, *, n_heads, n_kv_heads, head_dim, max_seq_len, mesh_device, **kw):
        """As Attention1D.from_hf; q/k/v are fused per mesh row."""
        rows, _ = tuple(mesh_device.shape)  # TTTv1 TG: one head group per mesh row
        config = hf_attention_config(
            Attention2DConfig,
            rows,
            wq,
            wk,
            wv,
            wo,
            n_heads,
            n_kv_heads,
            head_dim,
            max_seq_len,
            mesh_device=mesh_device,
            **kw,
        )
        return cls.from_config(config)

    def __init_from_config(self, config: Attention2DConfig) -> None:
        shape = tuple((config.mesh_device or config.default_mesh_device()).shape)
        if shape not in TWO_D_MESHES:
            raise ValueError(f"Attention2D runs on Galaxy meshes {TWO_D_MESHES}, not {shape}; use Attention1D")
        cfg = config.resolve()
        validate_attention_shapes(cfg)
        self.config = cfg
        common = dict(device=cfg.mesh_device, layout=ttnn.TILE_LAYOUT)
        # rows split the fused heads (qkv columns), columns split dim (K); wo: rows split heads (K), columns dim (N)
        self.wqkv = resolve_lazy_weight(
            cfg.wqkv,
            dtype=cfg.wqkv_dtype,
            memory_config=cfg.wqkv_memcfg,
            mesh_mapping=MeshMapping.shard_2d(-1, -2),
            **common,
        ).get_device_weight()
        self.wo = resolve_lazy_weight(
            cfg.wo, dtype=cfg.wo_dtype, memory_config=cfg.wo_memcfg, mesh_mapping=MeshMapping.shard_2d(-2, -1), **common
        ).get_device_weight()
        self.keys, self.values = allocate_kv_cache(cfg, cfg.n_local_kv_heads, cfg.max_batch_size)
        bind_attention_variants(self, cfg, MeshMapping.shard_2d(-1, None), make_norm=_rmsnorm_2d)
        self._input_mapping = MeshMapping.shard_2d(None, -1)

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x, current_pos, rot_mats, page_table=None) -> ttnn.Tensor:
        """x: [1, 1, 32, dim / mesh columns] per device in L1 (consumed); current_pos, rot_mats as Attention1D
        (replicated). Returns [1, 1, 32, dim / mesh columns] per device in L1."""
        cfg = self.config
        current_pos = self._decode_positions(current_pos)
        self._check_decode_page_table(page_table)
        x = self._load(x, cfg.decode_input_memcfg)
        xqkv = self._linear(
            x, self.wqkv, cfg.decode_xqkv_prg_config, cfg.li_qkv_decode_compute_kernel_config, cfg.ccl_dtype
        )
        xqkv = self._add_decode_bias(self._all_reduce(xqkv, COL_AXIS, ttnn.L1_MEMORY_CONFIG))
        q, k, v = self._create_heads_decode(ttnn.typecast(xqkv, ttnn.bfloat16))  # create heads needs bf16
        ttnn.deallocate(xqkv)
        q, k = self._q_norm_decode(q), self._k_norm_decode(k)
        q, k = (self._rotary(t, *rot_mats, self.transformation_mats["decode"], True) for t in (q, k))
        ttnn.experimental.paged_update_cache(self.keys, k, update_idxs_tensor=current_pos, page_table=page_table)
        ttnn.experimental.paged_update_cache(self.values, v, update_idxs_tensor=current_pos, page_table=page_table)
        ttnn.deallocate(k)
        ttnn.deallocate(v)
        attn = self._sdpa_decode(q, current_pos, page_table)
        ttnn.deallocate(q)
        attn = ttnn.to_memory_config(attn, cfg.decode_scores_memcfg)
        attn = ttnn.experimental.nlp_concat_heads_decode(attn, num_heads=cfg.n_local_heads)  # [1, 1, 32, Hq·D]
        attn = ttnn.to_memory_config(attn, ttnn.L1_MEMORY_CONFIG)
        out = self._linear(
            attn, self.wo, cfg.decode_wo_prg_config, cfg.li_o_decode_compute_kernel_config, cfg.ccl_dtype
        )
        return self._all_reduce(out, ROW_AXIS, cfg.decode_input_memcfg)

    def prefill_forward(
        self, x, seq_len, rot_mats, user_id=0, page_table=None, chunk_page_table=None, chunk_start_idx=None
    ) -> ttnn.Tensor:
        """x: [1, 1, seq_len, dim / mesh columns] per device in DRAM (consumed). Returns the same layout."""
        cfg = self.config
        dram = ttnn.DRAM_MEMORY_CONFIG
        self._check_prefill(seq_len, user_id, page_table, chunk_page_table, chunk_start_idx)
        x = self._load(x, cfg.prefill_input_memcfg)
        rows = min(seq_len, pc.MAX_QKV_MM_SEQ_LEN)  # runtime: long prefills run the matmul in 2048-row chunks
        x = ttnn.reshape(x, [1, seq_len // rows, rows, -1])
        pc_qkv = cfg.prefill_xqkv_prg_config(seq_len)
        xqkv = self._linear(x, self.wqkv, pc_qkv, cfg.li_qkv_prefill_compute_kernel_config, cfg.ccl_dtype, dram)
        xqkv = ttnn.reshape(self._all_reduce(xqkv, COL_AXIS, dram), [1, 1, seq_len, -1])
        xqkv = self._add_prefill_bias(ttnn.typecast(xqkv, self._qkv_dtype))
        q, k, v = ttnn.experimental.nlp_create_qkv_heads(
            xqkv,
            num_heads=cfg.n_local_heads,
            num_kv_heads=cfg.n_local_kv_heads,
            transpose_k_heads=False,
            memory_config=dram,
        )  # q [1, Hq, S, D], k / v [1, Hkv, S, D]
        ttnn.deallocate(xqkv)
        q, k = self._to_bf16(self._q_norm_prefill(q)), self._to_bf16(self._k_norm_prefill(k))
        q, k = (self._rotary(t, *rot_mats, self.transformation_mats["prefill"], False) for t in (q, k))
        k, v = self._to_cache_dtype(k), self._to_cache_dtype(v)
        self._fill_cache(k, v, seq_len, user_id, page_table, chunk_page_table)
        q = self._to_sdpa_dtype(q)
        attn = self._sdpa_prefill(q, k, v, seq_len, page_table, chunk_start_idx)
        for t in (q, k, v):
            ttnn.deallocate(t)
        attn = ttnn.experimental.nlp_concat_heads(attn, memory_config=dram)  # [1, 1, S, Hq·D]
        rows = min(seq_len, pc.MAX_MM_SEQ_LEN)  # runtime: the WO matmul runs in 1024-row chunks
        attn = ttnn.reshape(attn, [1, seq_len // rows, rows, -1])
        pc_wo = cfg.prefill_wo_prg_config(seq_len)
        out = self._linear(attn, self.wo, pc_wo, cfg.li_o_prefill_compute_kernel_config, cfg.ccl_dtype, dram)
        return self._all_reduce(ttnn.reshape(out, [1, 1, seq_len, -1]), ROW_AXIS, dram)

    def forward(self, x, current_pos, rot_mats, user_id=0, mode="decode", page_table=None, **prefill_kwargs):
        """TTTv1-style entry point: ``mode`` is "decode" or "prefill"."""
        if mode == "decode":
            return self.decode_forward(x, current_pos, rot_mats, page_table)
        return self.prefill_forward(x, x.shape[-2], rot_mats, user_id, page_table, **prefill_kwargs)

    # --- steps -----------------------------------------------------------------------------------------------
    def _load(self, x, memory_config):
        if isinstance(x, LazyWeight):
            x = resolve_lazy_weight(x, mesh_mapping=self._input_mapping)
        return load_input_device_tensor(x, memory_config=memory_config, mesh_device=self.config.mesh_device)

    def _linear(self, x, weight, program_config, compute_kernel_config, dtype, memory_config=ttnn.L1_MEMORY_CONFIG):
        out = ttnn.linear(
            x,
            weight,
            dtype=dtype,
            program_config=program_config,
            compute_kernel_config=compute_kernel_config,
            memory_config=memory_config,
        )
        ttnn.deallocate(x)
        return out

    def _all_reduce(self, x, cluster_axis, memory_config):
        """Sum the partial results over one mesh axis: reduce-scatter then all-gather along the last dim (TTTv1
        tt_all_reduce composite path)."""
        cfg = self.config
        links = dict(topology=ttnn.Topology.Linear, cluster_axis=cluster_axis, dim=3)
        scattered = ccl.reduce_scatter(
            cfg.tt_ccl, x, memory_config=memory_config, num_links=cfg.num_reduce_scatter_links, **links
        )
        ttnn.deallocate(x)
        out = ccl.all_gather(
            cfg.tt_ccl, scattered, memory_config=memory_config, num_links=cfg.num_all_gather_links, **links
        )
        ttnn.deallocate(scattered)
        return out


def _rmsnorm_2d(cfg, norm_cfg):
    """(decode, prefill) per-head RMSNorm over head_dim with a replicated gamma (RMSNorm1D is 1D-only)."""
    weight = norm_cfg.weight.host_tensor
    gamma = LazyWeight(
        lambda: weight().reshape(1, 1, -1, pc.TILE),  # rms_norm takes gamma as ROW_MAJOR [1, 1, dim / 32, 32]
        dtype=ttnn.bfloat16,
        layout=ttnn.ROW_MAJOR_LAYOUT,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        mesh_mapping=MeshMapping.replicate(),
        device=cfg.mesh_device,
    ).get_device_weight()
    compute = norm_cfg.compute_kernel_config or pc.rmsnorm_compute_kernel_config()
    norm = partial(ttnn.rms_norm, epsilon=norm_cfg.eps, weight=gamma, compute_kernel_config=compute)
    decode = partial(_rms_norm_resharded, norm)
    return decode, partial(norm, memory_config=ttnn.DRAM_MEMORY_CONFIG)


def _rms_norm_resharded(norm, x):
    memory_config = x.memory_config()
    out = norm(ttnn.to_memory_config(x, ttnn.L1_MEMORY_CONFIG), memory_config=ttnn.L1_MEMORY_CONFIG)
    return ttnn.to_memory_config(out, memory_config)


def _ttnn_picks(seq_len: int) -> None:
    """Prefill program config: none given, ttnn chooses."""
    return None
