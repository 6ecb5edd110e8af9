# SPDX-License-Identifier: Apache-2.0
"""Attention2D: GQA attention with its own KV cache on Galaxy meshes (8x4, 4x8), TTTv1's TG weight layout.

decode:  linear(wqkv) → all-reduce over mesh columns (reduce-scatter + all-gather) (+ bias) → keep this column's
         users (selection matmul) → create heads → [q/k norm] → rotary_embedding_llama → update the KV cache (paged or
         not) → SDPA decode → concat heads → all-gather the users over the columns → put them back in order
         (selection matmul) → linear(wo) → all-reduce over mesh rows
prefill: [reshape to 2048-row chunks] → linear(wqkv) → all-reduce over columns (+ bias) → create heads → [q/k norm]
         → rotary_embedding_llama → fill the KV cache for user_id (non-paged: only on the mesh column that decodes it)
         → causal (or chunked paged) SDPA → concat heads → [reshape to 1024-row chunks] → linear(wo) → all-reduce
         over rows

Layout (TTTv1 TG attention.py): the input is split along ``dim`` over mesh columns and replicated over rows. wqkv is
fused per mesh row (``tensor_utils.fuse_qkv`` with one group per row: TTTv1's n_kv_heads groups on 8x4) and split
``dim``-wise over columns, so the QKV matmul leaves partial sums over the columns; each row then owns
n_heads / rows query heads and n_kv_heads / rows KV heads. wo is split by heads over rows and by ``dim`` over
columns, so its partial sums are all-reduced over the rows and the output is split along ``dim`` over the columns
like the input. Decode users split over the mesh columns (TTTv1 TG): column c decodes users c·n .. (c+1)·n - 1,
n = max_batch_size / columns (``decode_users``), and its KV cache holds only them, so ``current_pos`` and a paged
decode ``page_table`` are split over the columns (``users_mapping``; host positions are split here) and the rotary
matrices are Rope2D's. Defaults are TTTv1's Galaxy model_config choices (SHARDED_ATTN_INPUT_MEMCFG,
XQKV_DECODE_PROGCFG, XQKV_PREFILL_PROGCFG, WO_PREFILL_PROGCFG, L1 residual), taken with the mesh's real column count
where TTTv1 hard-codes the 4 columns of an 8x4 mesh; the decode WO matmul is left to ttnn as in TTTv1.
Differences from TTTv1: both all-reduces are the composite reduce-scatter + all-gather (TTTv1 all-gathers and sums
with fast_reduce_nc below dim 8192), and the decode activations between the CCLs stay L1-interleaved (TTTv1 shards
them: QKV_OUT_GATHERED_MEMCFG, CREATE_HEAD_INPUT_MEMCFG, GATHER_USERS_MEMCFG).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, ClassVar

import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.attention.attention_1d import PREFILL_GRID_ROWS, WORMHOLE_DRAM_SHARD_GRID_WIDTH
from models.common.modules.attention.attention_steps import (
    AttentionBase,
    AttentionConfig,
    allocate_kv_cache,
    check_head_split,
    column_masks,
    fill_on_serving_column,
    hf_attention_config,
    model_args_config,
    validate_attention_shapes,
)
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, load_input_device_tensor, resolve_lazy_weight
from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2D, RMSNorm2DConfig
from models.common.modules.rope.rope_2d import users_per_column
from models.common.tensor_utils import TILE_SIZE

TTTV1_GALAXY_MESH = (8, 4)  # TTTv1's TG model_config hard-codes 8 mesh rows and 4 columns
OUT_SUBBLOCK_W = 1  # TTTv1 matmul_config on Galaxy: out_subblock_w = 1 (TG hang workaround)
USER_SELECTION_CORE_GRID = ttnn.CoreGrid(y=4, x=8)  # TTTv1 TG decode: the user-selection matmul's core grid
# user-indexed decode inputs (current_pos [users], a paged page_table [users, blocks]): rows split over the columns
USERS_OVER_COLUMNS = MeshMapping.shard_2d(None, 0)
SELECTION_DTYPE = ttnn.bfloat4_b  # TTTv1 TG slice_mat / user_selection_matrix: 0/1 entries are exact in bfloat4_b


@dataclass(frozen=True)
class Attention2DConfig(AttentionConfig):
    """Everything Attention2D decides: AttentionConfig's fields plus the Galaxy CCL settings and output
    projection; heads are split over mesh rows, decode users over mesh columns. ``None`` fields are derived by the
    ``default_*`` methods (TTTv1's Galaxy choices)."""

    num_all_gather_links: int = ccl.GALAXY_ALL_GATHER_LINKS
    ccl_dtype: ttnn.DataType | None = None
    q_norm_config: RMSNorm2DConfig | None = None  # per-head RMSNorm2D (RMSNorm2DConfig.per_head), weight interleaved
    k_norm_config: RMSNorm2DConfig | None = None
    wo_memcfg: ttnn.MemoryConfig | None = None
    decode_wo_prg_config: Any = None  # None: ttnn picks (TTTv1 ATTN_OUTPUT_PROGCFG on Galaxy)
    prefill_wo_prg_config: Callable[[int], Any] | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = AttentionConfig.OPTIONAL_FIELDS | frozenset({"decode_wo_prg_config"})
    NORM_CONFIG: ClassVar[type] = RMSNorm2DConfig

    def resolve(self):
        rows, cols = tuple((self.mesh_device or self.default_mesh_device()).shape)
        check_head_split(self, rows)
        users_per_column(self.max_batch_size, cols)
        return super().resolve()

    @property
    def head_groups(self) -> int:
        rows, _ = tuple(self.mesh_device.shape)
        return rows

    @property
    def mesh_cols(self) -> int:
        _, cols = tuple(self.mesh_device.shape)
        return cols

    @property
    def input_mapping(self) -> MeshMapping:
        """How a host input is laid over the mesh: width-split over the mesh columns, copied on the rows."""
        return MeshMapping.shard_2d(None, -1)

    @property
    def decode_users(self) -> int:
        return users_per_column(self.max_batch_size, self.mesh_cols)

    @property
    def decode_input_core_grid(self) -> ttnn.CoreGrid:
        """TTTv1's Galaxy attention input grid (its lm_head_core_grid): the most rows (<= 4) of 8 cores over which
        this device's dim / columns splits into whole tiles; when none does, the 1D grid (find_grid)."""
        return pc.galaxy_decode_grid(self.dim // self.mesh_cols)

    def default_ccl_dtype(self):
        return ttnn.bfloat8_b  # TTTv1 ModelArgs.ccl_dtype

    def default_wqkv_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG  # TTTv1 TG: DRAM interleaved

    def default_wo_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG

    def default_decode_input_memcfg(self):
        # TTTv1 SHARDED_ATTN_INPUT_MEMCFG (TG): [32, dim / 4 / cores] shards; the real column count here
        grid = self.decode_input_core_grid
        return pc.width_sharded_l1_memcfg(
            (self.tile_padded_batch_rows, self.dim // self.mesh_cols // grid.num_cores), grid
        )

    def default_decode_xqkv_prg_config(self):
        """TTTv1 XQKV_DECODE_PROGCFG (TG): 1D multicast on 8-wide rows, one output tile per core. TTTv1 uses the
        input grid's rows (5 rows and in0_block_w 2 for Llama 70B/90B); here the rows are those that hold every
        output tile and in0_block_w is the input shard width in tiles, which gives TTTv1's values for every Llama
        size."""
        n_tiles = self.qkv_size // self.head_groups // TILE_SIZE
        rows = max(self.decode_input_core_grid.y, math.ceil(n_tiles / pc.CORES_PER_ROW))
        return ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig(
            compute_with_storage_grid_size=(pc.CORES_PER_ROW, rows),
            in0_block_w=self.dim // self.mesh_cols // self.decode_input_core_grid.num_cores // TILE_SIZE,
            out_subblock_h=1,
            out_subblock_w=1,
            per_core_M=self.tile_padded_batch_rows // TILE_SIZE,
            per_core_N=1,
            fuse_batch=True,
            fused_activation=None,
            mcast_in0=True,
        )

    def default_decode_residual_memcfg(self):
        return ttnn.L1_MEMORY_CONFIG  # TTTv1 DECODE_RESIDUAL_MEMCFG on Galaxy

    def default_prefill_xqkv_prg_config(self):
        # TTTv1 XQKV_PREFILL_PROGCFG sizes N as qkv_size / mesh columns: on 8x4 that over-covers this device's
        # qkv_size / rows, on 4x8 it would fall short of it, so never less than the device's own columns
        n = self.qkv_size // min(self.mesh_cols, self.head_groups)
        return lru_cache(partial(pc.xqkv_prefill_config, n=n, dram_shard_grid_width=WORMHOLE_DRAM_SHARD_GRID_WIDTH))

    def default_prefill_wo_prg_config(self):
        # TTTv1 WO_PREFILL_PROGCFG (Galaxy): K = local heads, N = dim / columns, in0_block_w 1, out_subblock_w 1
        k, n = self.n_heads * self.head_dim // self.head_groups, self.dim // self.mesh_cols
        grid = pc.find_prefill_grid(PREFILL_GRID_ROWS, k // TILE_SIZE)

        @lru_cache
        def for_seq_len(seq_len: int):
            m, fuse_batch = min(seq_len, pc.MAX_MM_SEQ_LEN), seq_len <= pc.MAX_MM_SEQ_LEN
            return pc.matmul_config(m, k, n, grid, in0_block_w=1, fuse_batch=fuse_batch, out_subblock_w=OUT_SUBBLOCK_W)

        return for_seq_len


class Attention2D(AttentionBase):
    """GQA attention on a Galaxy mesh. ``Attention2D(wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len)``,
    ``Attention2D.from_config(cfg)``, ``Attention2D.from_hf(wq, wk, wv, wo, ...)`` (HF nn.Linear weights),
    ``Attention2D.from_model_args(...)`` (a TTTv1 ModelArgs on 8x4)."""

    CONFIG = Attention2DConfig
    HEAD_NORM = RMSNorm2D  # the q/k norms (RMSNorm2DConfig.per_head)

    def __init__(self, wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len, **overrides):
        self._init_from_config(Attention2DConfig(wqkv, wo, n_heads, n_kv_heads, head_dim, max_seq_len, **overrides))

    def _init_from_config(self, config: Attention2DConfig) -> None:
        shape = tuple((config.mesh_device or config.default_mesh_device()).shape)
        if shape not in ccl.TWO_D_MESHES:
            raise ValueError(f"Attention2D runs on Galaxy meshes {ccl.TWO_D_MESHES}, not {shape}; use Attention1D")
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
        self.keys, self.values = allocate_kv_cache(cfg)
        # a single user is decoded by column 0 (the others run on zero rows), with its position on every device
        users_mapping = USERS_OVER_COLUMNS if cfg.max_batch_size > 1 else MeshMapping.replicate()
        self._bind_shared_variants(bias_mapping=MeshMapping.shard_2d(-1, None), users_mapping=users_mapping)
        self._column_masks = column_masks(cfg.mesh_device, cfg.mesh_cols)
        self._user_slice, self._user_gather = _user_selection(cfg)
        self._all_reduce = partial(
            ccl.all_reduce,
            cfg.tt_ccl,
            topology=cfg.topology,
            num_reduce_scatter_links=cfg.num_reduce_scatter_links,
            num_all_gather_links=cfg.num_all_gather_links,
        )

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x, current_pos, rot_mats, page_table=None) -> ttnn.Tensor:
        """x: [1, 1, 32, dim / mesh columns] per device in ``decode_input_memcfg`` (consumed); current_pos: one
        position per user (host sequence), or the device tensor split as ``users_mapping``; rot_mats:
        Rope2D.decode_forward's. Returns [1, 1, 32, dim / mesh columns] per device in ``decode_residual_memcfg``."""
        cfg = self.config
        current_pos = self._decode_positions(current_pos)
        self._check_decode_page_table(page_table)
        x = self._load(x, cfg.decode_input_memcfg)
        sharded = ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG
        pc_qkv, fidelity = cfg.decode_xqkv_prg_config, cfg.li_qkv_decode_compute_kernel_config
        xqkv = self._linear(x, self.wqkv, pc_qkv, fidelity, cfg.ccl_dtype, sharded)
        xqkv = self._add_decode_bias(
            self._all_reduce(xqkv, cluster_axis=ccl.COL_AXIS, memory_config=ttnn.L1_MEMORY_CONFIG)
        )
        # this column's users, in bfloat16 (create heads needs it)
        own = ttnn.matmul(self._user_slice, xqkv, dtype=ttnn.bfloat16, memory_config=ttnn.L1_MEMORY_CONFIG)
        ttnn.deallocate(xqkv)
        attn = self._attend_decode(own, current_pos, rot_mats, page_table)
        attn = ttnn.to_memory_config(attn, ttnn.L1_MEMORY_CONFIG)
        gathered = ccl.all_gather(  # every column's users, one tile of rows each
            cfg.tt_ccl,
            attn,
            dim=ccl.ROWS_DIM,
            cluster_axis=ccl.COL_AXIS,
            memory_config=ttnn.L1_MEMORY_CONFIG,
            topology=cfg.topology,
            num_links=cfg.num_all_gather_links,
        )
        ttnn.deallocate(attn)
        attn = ttnn.matmul(
            self._user_gather,
            gathered,
            core_grid=USER_SELECTION_CORE_GRID,
            dtype=ttnn.bfloat16,
            memory_config=ttnn.L1_MEMORY_CONFIG,
        )
        ttnn.deallocate(gathered)
        out = self._linear(
            attn, self.wo, cfg.decode_wo_prg_config, cfg.li_o_decode_compute_kernel_config, cfg.ccl_dtype
        )
        return self._all_reduce(out, cluster_axis=ccl.ROW_AXIS, memory_config=cfg.decode_residual_memcfg)

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
        xqkv = ttnn.reshape(self._all_reduce(xqkv, cluster_axis=ccl.COL_AXIS, memory_config=dram), [1, 1, seq_len, -1])
        xqkv = self._add_prefill_bias(ttnn.typecast(xqkv, self._qkv_dtype))
        attn = self._attend_prefill(xqkv, seq_len, rot_mats, user_id, page_table, chunk_page_table, chunk_start_idx)
        rows = min(seq_len, pc.MAX_MM_SEQ_LEN)  # runtime: the WO matmul runs in 1024-row chunks
        attn = ttnn.reshape(attn, [1, seq_len // rows, rows, -1])
        pc_wo = cfg.prefill_wo_prg_config(seq_len)
        out = self._linear(attn, self.wo, pc_wo, cfg.li_o_prefill_compute_kernel_config, cfg.ccl_dtype, dram)
        return self._all_reduce(ttnn.reshape(out, [1, 1, seq_len, -1]), cluster_axis=ccl.ROW_AXIS, memory_config=dram)

    # --- factories -------------------------------------------------------------------------------------------
    @classmethod
    def from_hf(cls, wq, wk, wv, wo, *, mesh_device, **kw) -> "Attention2D":
        """As Attention1D.from_hf; q/k/v are fused per mesh row."""
        rows, _ = tuple(mesh_device.shape)  # TTTv1 TG: one head group per mesh row
        return cls.from_config(
            hf_attention_config(Attention2DConfig, rows, wq, wk, wv, wo, mesh_device=mesh_device, **kw)
        )

    @classmethod
    def from_model_args(
        cls, mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num, paged_attention_config=None
    ) -> "Attention2D":
        """Build from a TTTv1 ModelArgs of a Galaxy (``attention_steps.model_args_config``: weights fused per mesh
        row, dtypes, fidelities, TG model_config keys) with its Galaxy CCL settings. The module builds its own KV
        cache (each mesh column holds its own users, as TTTv1's)."""
        shape = tuple(args.cluster_shape)
        if shape != TTTV1_GALAXY_MESH:
            raise ValueError(
                f"Attention2D.from_model_args takes TTTv1's Galaxy (TG) configs, laid out for an 8x4 mesh, not "
                f"{shape[0]}x{shape[1]}: use Attention1D.from_model_args on 1D meshes, Attention2D.from_hf on 4x8"
            )
        config = model_args_config(
            Attention2DConfig,
            mesh_device,
            args,
            state_dict,
            weight_cache_path,
            layer_num,
            shape[0],  # TTTv1 TG: one head group per mesh row
            paged_attention_config=paged_attention_config,
            tt_ccl=tt_ccl,
            topology=args.ccl_topology(),
            num_all_gather_links=args.num_all_gather_links,
            ccl_dtype=args.ccl_dtype,
        )
        return cls.from_config(config)

    # --- steps -----------------------------------------------------------------------------------------------
    def _cache_fill(self, fill, cache, seq_len, user_id):
        """Only the mesh column that decodes ``user_id`` takes the prefill's K / V (``fill_on_serving_column``)."""
        return fill_on_serving_column(fill, cache, user_id, self.config.decode_users, self._column_masks)

    def _load(self, x, memory_config):
        if isinstance(x, LazyWeight):
            x = resolve_lazy_weight(x, mesh_mapping=self.config.input_mapping)
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


def _user_selection(cfg):
    """The decode batch split's matrices (TTTv1 TG): per mesh column the one that keeps its users [1, 1, users, 32],
    and the replicated one that puts every column's users back in order [1, 1, 32, columns · 32]."""
    cols, users, mesh = cfg.mesh_cols, cfg.decode_users, cfg.mesh_device
    by_column = MeshMapping.shard_2d(None, 1).mapper(mesh)
    selection = dict(dtype=SELECTION_DTYPE, layout=ttnn.TILE_LAYOUT, device=mesh)
    user_slice = tensor_utils.from_host(
        tensor_utils.user_slice_matrices(cols, users), mesh_mapper=by_column, **selection
    )
    user_gather = tensor_utils.from_host(
        tensor_utils.user_gather_matrix(cols, users), mesh_mapper=ttnn.ReplicateTensorToMesh(mesh), **selection
    )
    return user_slice, user_gather
