# SPDX-License-Identifier: Apache-2.0
"""Attention1D: grouped-query self-attention with its own KV cache on 1D meshes (1x1 N150, 1x2 N300,
1x4 N150x4, 1x8 T3K).

decode:  linear(wqkv) [DRAM-sharded] (+ bias) → to interleaved → create heads (one user per core) → [q/k norm]
         → rotary_embedding_llama(q), (k) → update the KV cache at current_pos (paged or not) → SDPA decode
         → concat heads → linear(wo) [DRAM-sharded] → reduce-scatter over the devices → residual memory config
         (T3K ring, TTTv1's fused path: concat heads → all-gather + matmul with the column-split wo in one op)
prefill: [reshape to 2048-row chunks] → linear(wqkv) (+ bias) → create heads → [q/k norm] → rotary_embedding_llama
         → fill the KV cache for user_id (paged or not) → causal SDPA (or chunked SDPA over the paged cache)
         → concat heads → [reshape to 1024-row chunks] → linear(wo) → reduce-scatter over the devices
         (T3K ring: all-gather the heads → linear(column-split wo), no reduce-scatter)

Tensor parallelism (TTTv1): device i holds q/k/v heads [i·H/N, (i+1)·H/N) — wqkv is TTTv1's fused per-device layout
(``tensor_utils.fuse_qkv``) split by columns, wo is split by rows — so each device computes a partial sum of the
output, and the reduce-scatter leaves it 1/N of ``dim`` (the width-fractured residual stream MLP1D also produces).
Q/K weights must be in the interleaved rotary layout; ``Attention1D.from_hf`` takes HF q/k/v/o weights and does the
permutation and fusion on host. Defaults are TTTv1's (attention.py + model_config.py, ModelOptimizations defaults):
bfloat8_b weights and KV cache, HiFi2 matmuls and decode SDPA, HiFi4 prefill SDPA.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, ClassVar

import ttnn

from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.attention.attention_steps import (
    AttentionBase,
    AttentionConfig,
    allocate_kv_cache,
    check_head_split,
    hf_attention_config,
    model_args_config,
    validate_attention_shapes,
)
from models.common.modules.lazy_weight import MeshMapping, load_input_device_tensor, resolve_lazy_weight
from models.common.modules.lightweight_module import identity
from models.common.tensor_utils import TILE_SIZE

PREFILL_GRID_ROWS = 8  # TTTv1 WO_PREFILL_PROGCFG: find_prefill_grid(8, k / 32)
WORMHOLE_DRAM_SHARD_GRID_WIDTH = 8  # TTTv1: per_core_N matches the DRAM shard width (8 on Wormhole)
KV_SHARD_CORES = 8 * 8  # TTTv1 min_kv_prefill_shard_seqlen = 32·8·8 / local KV heads: shard K/V when it fills 64 cores
FUSED_AG_MM_DEVICES = 8  # TTTv1 USE_FUSED_ALL_GATHER_MATMUL: only on 8-device rings (T3K)
FUSED_AG_MM_GRID = (8, 1)  # TTTv1 ATTN_ALL_GATHER_MATMUL_PROGCFG core grid
FUSED_AG_MM_CORE_OFFSET = (0, 4)  # TTTv1 all_gather_matmul all_gather_core_grid_offset
FUSED_AG_MM_LINKS = 1  # TTTv1 all_gather_matmul num_links


@dataclass(frozen=True)
class Attention1DConfig(AttentionConfig):
    """Everything Attention1D decides: AttentionConfig's fields plus the 1D output projection (TTTv1's fused
    all-gather matmul on T3K rings) and the sharded prefill cache fill; ``None`` fields are derived by the
    ``default_*`` methods (TTTv1's choices)."""

    # output projection (its layouts depend on the fused all-gather matmul)
    use_fused_all_gather_matmul: bool | None = None
    wo_memcfg: ttnn.MemoryConfig | None = None
    decode_wo_prg_config: Any = None
    decode_all_gather_matmul_prg_config: Any = None
    decode_all_gather_matmul_memcfg: ttnn.MemoryConfig | None = None
    prefill_wo_prg_config: Callable[[int], Any] | None = None
    # prefill cache fill: K/V height-sharded from min_kv_prefill_shard_seqlen tokens on
    prefill_kv_memcfg: Callable[[int], ttnn.MemoryConfig] | None = None
    min_kv_prefill_shard_seqlen: int | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = AttentionConfig.OPTIONAL_FIELDS | frozenset(
        {"decode_all_gather_matmul_prg_config", "decode_all_gather_matmul_memcfg"}
    )

    def resolve(self):
        check_head_split(self, (self.mesh_device or self.default_mesh_device()).get_num_devices())
        return super().resolve()

    # --- derived sizes ---------------------------------------------------------------------------------------
    @property
    def head_groups(self) -> int:
        """Device groups the heads split over: each device."""
        return self.num_devices

    @property
    def decode_users(self) -> int:
        """Users each device decodes: all of them."""
        return self.max_batch_size

    @property
    def decode_input_core_grid(self) -> ttnn.CoreGrid:
        """Cores the decode input is width-sharded over (TTTv1 attn_input_grid; give it to the feeding norm)."""
        return pc.dram_shard_core_grid_for_k(self.dim)

    # --- defaults (TTTv1) ------------------------------------------------------------------------------------
    def default_wqkv_memcfg(self):
        n = self.qkv_size // self.num_devices
        return pc.create_dram_sharded_mem_config(self.dim, n, self.mesh_device.dram_grid_size())

    def default_decode_input_memcfg(self):
        grid = self.decode_input_core_grid
        return pc.width_sharded_l1_memcfg((self.tile_padded_batch_rows, self.dim // grid.num_cores), grid)

    def default_decode_xqkv_prg_config(self):
        n = self.qkv_size // self.num_devices
        return pc.dram_matmul_config(self.tile_padded_batch_rows, self.dim, n, self.decode_input_core_grid.num_cores)

    def default_decode_residual_memcfg(self):
        return pc.decode_residual_memcfg(self.dim, self.num_devices, self.tile_padded_batch_rows)

    def default_prefill_xqkv_prg_config(self):
        n = self.qkv_size // self.num_devices
        return lru_cache(partial(pc.xqkv_prefill_config, n=n, dram_shard_grid_width=WORMHOLE_DRAM_SHARD_GRID_WIDTH))

    def default_use_fused_all_gather_matmul(self):
        # TTTv1 USE_FUSED_ALL_GATHER_MATMUL: 8 devices and (dim / 32 / 8) % 8 == 0; it all-gathers on a ring.
        n = self.num_devices
        return (
            n == FUSED_AG_MM_DEVICES and (self.dim // TILE_SIZE // n) % n == 0 and self.topology == ttnn.Topology.Ring
        )

    def default_wo_memcfg(self):
        if self.use_fused_all_gather_matmul:
            return ttnn.DRAM_MEMORY_CONFIG  # TTTv1: the fused all-gather matmul reads wo interleaved
        k = self.n_heads * self.head_dim // self.num_devices
        return pc.create_dram_sharded_mem_config(k, self.dim, self.mesh_device.dram_grid_size())

    def default_decode_wo_prg_config(self):
        # TTTv1 ATTN_OUTPUT_PROGCFG: "for some models n_heads * head_dim != dim"
        k = self.n_heads * self.head_dim // self.num_devices
        return pc.dram_matmul_config(self.tile_padded_batch_rows, k, self.dim, self.n_local_heads)

    def default_decode_all_gather_matmul_prg_config(self):
        if not self.use_fused_all_gather_matmul:
            return None
        cores = FUSED_AG_MM_GRID[0] * FUSED_AG_MM_GRID[1]
        per_core_n = self.dim // self.num_devices // TILE_SIZE // cores
        return ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig(
            compute_with_storage_grid_size=FUSED_AG_MM_GRID,
            in0_block_w=self.dim // TILE_SIZE // cores,
            out_subblock_h=1,
            out_subblock_w=pc.get_out_subblock_w(per_core_n, 1),
            per_core_M=self.tile_padded_batch_rows // TILE_SIZE,
            per_core_N=per_core_n,
            fuse_batch=True,
            fused_activation=None,
            mcast_in0=True,
        )

    def default_decode_all_gather_matmul_memcfg(self):
        if not self.use_fused_all_gather_matmul:
            return None
        # TTTv1 ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG: one device's slice of the heads per core
        grid = ttnn.CoreRangeSet({pc.num_to_corerange(self.num_devices)})
        spec = ttnn.ShardSpec(
            grid, [self.tile_padded_batch_rows, self.dim // self.num_devices], ttnn.ShardOrientation.ROW_MAJOR
        )
        return ttnn.MemoryConfig(ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.BufferType.L1, spec)

    def default_prefill_wo_prg_config(self):
        k = self.n_heads * self.head_dim // self.num_devices
        fused = self.use_fused_all_gather_matmul
        n = pc.FUSED_WO_PREFILL_N if fused and pc.FUSED_WO_PREFILL_N % (self.dim // self.num_devices) == 0 else self.dim
        per_core_n = None if fused else math.ceil(n / (TILE_SIZE * WORMHOLE_DRAM_SHARD_GRID_WIDTH))
        grid = pc.find_prefill_grid(PREFILL_GRID_ROWS, k // TILE_SIZE)

        @lru_cache
        def for_seq_len(seq_len: int):
            m = min(seq_len, pc.MAX_MM_SEQ_LEN)
            fuse_batch = seq_len <= pc.MAX_MM_SEQ_LEN
            return pc.matmul_config(m, k, n, grid, fuse_batch=fuse_batch, per_core_N=per_core_n)

        return for_seq_len

    def default_prefill_kv_memcfg(self):
        return lru_cache(partial(pc.kv_prefill_memcfg, n_local_kv_heads=self.n_local_kv_heads, head_dim=self.head_dim))

    def default_min_kv_prefill_shard_seqlen(self):
        return TILE_SIZE * KV_SHARD_CORES // self.n_local_kv_heads


class Attention1D(AttentionBase):
    """GQA attention on a 1D mesh. ``Attention1D(wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len)``,
    ``Attention1D.from_config(cfg)``, ``Attention1D.from_hf(wq, wk, wv, wo, ...)`` (HF nn.Linear weights),
    ``Attention1D.from_model_args(...)`` (a TTTv1 ModelArgs)."""

    CONFIG = Attention1DConfig

    def __init__(self, wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len, **overrides):
        self._init_from_config(Attention1DConfig(wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len, **overrides))

    def _init_from_config(self, config: Attention1DConfig) -> None:
        shape = tuple((config.mesh_device or config.default_mesh_device()).shape)
        if shape not in ccl.ONE_D_MESHES:
            raise ValueError(
                f"Attention1D runs on 1D meshes {ccl.ONE_D_MESHES}, not {shape}; use Attention2D on Galaxy"
            )
        cfg = config.resolve()
        validate_attention_shapes(cfg)
        self.config = cfg
        wo_split = -1 if cfg.use_fused_all_gather_matmul else -2  # TTTv1: column-split for the fused AG-MM
        common = dict(device=cfg.mesh_device, layout=ttnn.TILE_LAYOUT)
        self.wqkv = resolve_lazy_weight(
            cfg.wqkv, dtype=cfg.wqkv_dtype, memory_config=cfg.wqkv_memcfg, mesh_mapping=MeshMapping.shard(-1), **common
        ).get_device_weight()
        wo = resolve_lazy_weight(
            cfg.wo, dtype=cfg.wo_dtype, memory_config=cfg.wo_memcfg, mesh_mapping=MeshMapping.shard(wo_split), **common
        ).get_device_weight()
        self.wo = ttnn.reshape(wo, (1, 1, wo.shape[-2], wo.shape[-1]))  # the fused all-gather matmul takes rank 4
        self.keys, self.values = allocate_kv_cache(cfg)
        self._bind_shared_variants(bias_mapping=MeshMapping.shard(-1), users_mapping=MeshMapping.replicate())
        single = cfg.num_devices == 1
        fused = cfg.use_fused_all_gather_matmul
        self._wo_decode = self._fused_all_gather_wo if fused else self._wo_then_reduce_scatter
        self._gather_before_wo_prefill = self._all_gather_prefill if fused else identity
        links = dict(topology=cfg.topology, num_links=cfg.num_reduce_scatter_links)
        dram = ttnn.DRAM_MEMORY_CONFIG
        reduce_prefill = partial(ccl.reduce_scatter_residual, cfg.tt_ccl, memory_config=dram, **links)
        self._reduce_prefill = identity if single or fused else reduce_prefill
        self._reduce_decode = identity if single else partial(ccl.reduce_scatter_residual_in_place, cfg.tt_ccl, **links)

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x, current_pos, rot_mats, page_table=None) -> ttnn.Tensor:
        """x: [1, 1, 32, dim] in ``decode_input_memcfg`` (consumed); current_pos: one position per user (host ints,
        checked, or an int32 device tensor); rot_mats: Rope1D.decode_forward's (cos, sin). Returns the residual
        slice [1, 1, 32, dim / devices] in ``decode_residual_memcfg``."""
        cfg = self.config
        current_pos = self._decode_positions(current_pos)
        self._check_decode_page_table(page_table)
        x = load_input_device_tensor(x, memory_config=cfg.decode_input_memcfg, mesh_device=cfg.mesh_device)
        xqkv = ttnn.linear(
            x,
            self.wqkv,
            dtype=self._qkv_dtype,
            program_config=cfg.decode_xqkv_prg_config,
            compute_kernel_config=cfg.li_qkv_decode_compute_kernel_config,
            memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
        )
        ttnn.deallocate(x)
        xqkv = self._add_decode_bias(xqkv)
        xqkv_interleaved = ttnn.sharded_to_interleaved(xqkv, ttnn.L1_MEMORY_CONFIG, ttnn.bfloat16)  # heads need bf16
        ttnn.deallocate(xqkv)
        attn = self._attend_decode(xqkv_interleaved, current_pos, rot_mats, page_table)  # [1, 1, 32, Hq·D]
        return self._wo_decode(attn)

    def prefill_forward(
        self, x, seq_len, rot_mats, user_id=0, page_table=None, chunk_page_table=None, chunk_start_idx=None
    ) -> ttnn.Tensor:
        """x: [1, 1, seq_len, dim] in DRAM (consumed); rot_mats: Rope1D.prefill_forward's (cos, sin) for positions
        [chunk_start_idx or 0, + seq_len). Fills user ``user_id``'s KV cache (through ``chunk_page_table`` when
        chunked). Returns [1, 1, seq_len, dim / devices] in DRAM."""
        cfg = self.config
        self._check_prefill(seq_len, user_id, page_table, chunk_page_table, chunk_start_idx)
        x = load_input_device_tensor(x, memory_config=cfg.prefill_input_memcfg, mesh_device=cfg.mesh_device)
        rows = min(seq_len, pc.MAX_QKV_MM_SEQ_LEN)  # runtime: long prefills run the matmul in 2048-row chunks
        x = ttnn.reshape(x, [1, seq_len // rows, rows, -1])
        xqkv = ttnn.linear(
            x,
            self.wqkv,
            dtype=self._qkv_dtype,
            program_config=cfg.prefill_xqkv_prg_config(seq_len),
            compute_kernel_config=cfg.li_qkv_prefill_compute_kernel_config,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )
        ttnn.deallocate(x)
        xqkv = ttnn.reshape(self._add_prefill_bias(xqkv), [1, 1, seq_len, -1])
        attn = self._attend_prefill(xqkv, seq_len, rot_mats, user_id, page_table, chunk_page_table, chunk_start_idx)
        rows = min(seq_len, pc.MAX_MM_SEQ_LEN)  # runtime: the WO matmul runs in 1024-row chunks
        attn = self._gather_before_wo_prefill(ttnn.reshape(attn, [1, seq_len // rows, rows, -1]))
        out = ttnn.linear(
            attn,
            self.wo,
            dtype=self._wo_dtype,
            program_config=cfg.prefill_wo_prg_config(seq_len),
            compute_kernel_config=cfg.li_o_prefill_compute_kernel_config,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )
        ttnn.deallocate(attn)
        return self._reduce_prefill(ttnn.reshape(out, [1, 1, seq_len, -1]))

    # --- factories -------------------------------------------------------------------------------------------
    @classmethod
    def from_hf(cls, wq, wk, wv, wo, *, mesh_device, **kw) -> "Attention1D":
        """From HF ``q_proj/k_proj/v_proj/o_proj.weight`` tensors; keywords as ``hf_attention_config`` (n_heads,
        n_kv_heads, head_dim, max_seq_len, optional biases and q/k norms), the rest go to Attention1DConfig."""
        groups = mesh_device.get_num_devices()  # TTTv1: one head group per device
        return cls.from_config(
            hf_attention_config(Attention1DConfig, groups, wq, wk, wv, wo, mesh_device=mesh_device, **kw)
        )

    @classmethod
    def from_model_args(
        cls, mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num, paged_attention_config=None
    ) -> "Attention1D":
        """Build from a TTTv1 ModelArgs (``attention_steps.model_args_config``) with its 1D CCL settings: topology,
        and the fused all-gather matmul TTTv1 uses on rings. The module builds its own KV cache."""
        if args.is_galaxy:
            raise ValueError("Attention1D cannot be used on Galaxy (8x4 / 4x8) meshes; use Attention2D")
        mc = args.model_config
        ring = args.ccl_topology() == ttnn.Topology.Ring  # TTTv1 fuses the all-gather into the matmul on rings
        config = model_args_config(
            Attention1DConfig,
            mesh_device,
            args,
            state_dict,
            weight_cache_path,
            layer_num,
            mesh_device.get_num_devices(),  # TTTv1: one head group per device
            paged_attention_config=paged_attention_config,
            tt_ccl=tt_ccl,
            topology=args.ccl_topology(),
            use_fused_all_gather_matmul=mc["USE_FUSED_ALL_GATHER_MATMUL"] and ring,
            decode_all_gather_matmul_prg_config=mc["ATTN_ALL_GATHER_MATMUL_PROGCFG"],
            prefill_kv_memcfg=mc["KV_PREFILL_MEM_CFG"],
            min_kv_prefill_shard_seqlen=int(args.min_kv_prefill_shard_seqlen),
        )
        return cls.from_config(config)

    # --- steps and variants (bound in __init__) --------------------------------------------------------------
    def _cache_fill(self, fill, cache, seq_len, user_id):
        """TTTv1: K/V of long prefills go to the cache height-sharded over 64 cores (update_cache's L1 limits)."""
        cfg = self.config
        if seq_len < cfg.min_kv_prefill_shard_seqlen:  # runtime: depends on seq_len
            return fill
        return ttnn.interleaved_to_sharded(fill, cfg.prefill_kv_memcfg(seq_len))

    def _wo_then_reduce_scatter(self, attn):
        cfg = self.config
        out = ttnn.linear(
            attn,
            self.wo,
            program_config=cfg.decode_wo_prg_config,
            compute_kernel_config=cfg.li_o_decode_compute_kernel_config,
            memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
        )
        ttnn.deallocate(attn)
        return ttnn.to_memory_config(self._reduce_decode(out), cfg.decode_residual_memcfg)

    def _fused_all_gather_wo(self, attn):
        """TTTv1 T3K decode: all-gather the heads and multiply by the column-split wo in one op."""
        cfg = self.config
        attn = ttnn.to_memory_config(attn, cfg.decode_all_gather_matmul_memcfg)
        _, out = ttnn.experimental.all_gather_matmul_async(
            attn,
            self.wo,
            persistent_output_buffer=None,
            dim=ccl.WIDTH_DIM,
            multi_device_global_semaphore=cfg.tt_ccl.get_and_cycle_ag_semaphore_handles(),
            all_gather_core_grid_offset=FUSED_AG_MM_CORE_OFFSET,
            barrier_semaphore=cfg.tt_ccl.get_and_cycle_barrier_semaphore_handle(),
            num_links=FUSED_AG_MM_LINKS,
            memory_config_ag=cfg.decode_all_gather_matmul_memcfg,
            memory_config_mm=cfg.decode_residual_memcfg,
            program_config=cfg.decode_all_gather_matmul_prg_config,
            compute_kernel_config=cfg.li_o_decode_compute_kernel_config,
            chunks_per_sync=ccl.CHUNKS_PER_SYNC,
            num_workers_per_link=ccl.NUM_WORKERS_PER_LINK,
            num_buffers_per_channel=ccl.NUM_BUFFERS_PER_CHANNEL,
        )
        ttnn.deallocate(attn)
        return ttnn.to_memory_config(out, cfg.decode_residual_memcfg)

    def _all_gather_prefill(self, attn):
        cfg = self.config
        out = ccl.all_gather(
            cfg.tt_ccl,
            attn,
            dim=ccl.WIDTH_DIM,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            topology=cfg.topology,
            num_links=FUSED_AG_MM_LINKS,
        )
        ttnn.deallocate(attn)
        return out
