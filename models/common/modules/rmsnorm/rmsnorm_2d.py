# SPDX-License-Identifier: Apache-2.0
"""RMSNorm2D: RMS normalisation on Galaxy meshes (8x4, 4x8), TTTv1's Galaxy (TG) DistributedNorm as one module.

    RMSNorm(x) = x / sqrt(mean(x², last dim) + eps) * weight

On a Galaxy the residual stream is split along ``dim`` over the mesh columns and copied on the rows, as Attention2D
and MLP2D take and leave it (``input_fractured``). Each device normalises its own slice with the sum of squares
gathered over the columns and keeps its slice: the output is split like the input, nothing else is gathered. The
input is not consumed (TTTv1's decoder keeps it as the residual). Variants, chosen once in ``__init__``:

decode   distributed: move into the sharded layout → rms_norm_pre_all_gather → all-gather the statistics over the
                      columns → rms_norm_post_all_gather with this column's slice of the weight → output layout
decode   head-local:  rms_norm on a whole interleaved input (per-head q/k norms over head_dim, no collective)
prefill  distributed: rms_norm_pre_all_gather → all-gather the statistics over the columns →
                      rms_norm_post_all_gather with this column's slice of the weight (DRAM)
prefill  head-local:  rms_norm (DRAM)

Defaults are TTTv1's (tt/distributed_norm.py DistributedNorm with TG=True, tt/ccl.py tt_sharded_distributed_rmsnorm
and tt_distributed_rmsnorm), taken with the mesh's real column count where TTTv1 hard-codes the 4 of an 8x4 mesh.
"""

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import ttnn

from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, load_input_device_tensor, resolve_lazy_weight
from models.common.modules.lightweight_module import LightweightModule
from models.common.modules.module_config import DecodeBatchRows, ResolvableConfig
from models.common.modules.rmsnorm.rmsnorm_1d import DEFAULT_EPS, GAMMA_TILE_ROWS_DIM, norm_gamma, tttv1_norm_weight
from models.common.tensor_utils import TILE_SIZE

TTTV1_GALAXY_MESH = (8, 4)  # TTTv1 lays a Galaxy out as 8x4 only (its TG model_config hard-codes 4 columns)
STATS_GATHER_LINKS = 1  # TTTv1 tt_(sharded_)distributed_rmsnorm: num_links=1
STATS_TILES_PER_DEVICE = 1  # rms_norm_pre_all_gather leaves one tile of statistics per device (ln_sharded_stats_memcfg)
ACCEPTED_DTYPES = (ttnn.bfloat16, ttnn.bfloat8_b)  # the residual stream's dtypes in TTTv1 (activation, CCL dtype)


@dataclass(frozen=True)
class RMSNorm2DConfig(ResolvableConfig, DecodeBatchRows):
    """Everything RMSNorm2D decides; ``None`` fields are derived by the ``default_*`` methods (TTTv1's choices).
    Composes like RMSNorm1DConfig: the same names for the same decisions (a q/k norm is ``input_fractured=False``)."""

    weight: LazyWeight  # (dim,) as in HF ``*_layernorm.weight``
    mesh_device: Any = None
    tt_ccl: Any = None
    topology: ttnn.Topology | None = None
    cluster_axis: int | None = None  # the mesh axis ``dim`` is split over, and the statistics are gathered over
    num_links: int | None = None
    eps: float = DEFAULT_EPS
    add_unit_offset: bool = False  # Gemma-style weights: scale by (1 + weight)
    max_batch_size: int = pc.MAX_DECODE_BATCH
    input_fractured: bool = True  # input split along dim over ``cluster_axis`` (False: whole, e.g. q/k norm)
    compute_kernel_config: Any = None  # prefill (and head-local decode)
    decode_compute_kernel_config: Any = None  # None: ttnn's default, as TTTv1's sharded decode norm
    decode_core_grid: ttnn.CoreGrid | None = None  # the sharded decode layout's grid (distributed only)
    decode_program_config: Any = None
    decode_memcfg: ttnn.MemoryConfig | None = None  # the sharded layout the distributed decode runs in
    decode_stats_memcfg: ttnn.MemoryConfig | None = None  # the gathered statistics
    decode_input_memcfg: ttnn.MemoryConfig | None = None
    decode_output_memcfg: ttnn.MemoryConfig | None = None  # give the consumer's decode input layout to feed it
    prefill_input_memcfg: ttnn.MemoryConfig | None = None

    # the distributed decode's sharded layout has no meaning for a head-local norm
    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "decode_compute_kernel_config",
            "decode_core_grid",
            "decode_program_config",
            "decode_memcfg",
            "decode_stats_memcfg",
        }
    )

    @property
    def dim(self) -> int:
        return math.prod(self.weight.shape)

    @property
    def splits(self) -> int:
        """How many slices ``dim`` is cut into (the devices along ``cluster_axis``; 1 for a whole input)."""
        return tuple(self.mesh_device.shape)[self.cluster_axis] if self.input_fractured else 1

    @property
    def slice_dim(self) -> int:
        """The width of each device's input and output."""
        return self.dim // self.splits

    def split_over_axis(self, tensor_dim: int) -> MeshMapping:
        """``tensor_dim`` split over ``cluster_axis`` and copied along the other mesh axis (a whole input:
        replicated): how the weight's and the input's slices lie."""
        if not self.input_fractured:
            return MeshMapping.replicate()
        dims = [None, None]
        dims[self.cluster_axis] = tensor_dim
        return MeshMapping.shard_2d(*dims)

    @property
    def input_mapping(self) -> MeshMapping:
        """How a host input is laid over the mesh: width-split over ``cluster_axis``, copied along the other."""
        return self.split_over_axis(-1)

    @property
    def gamma_mappings(self) -> tuple[MeshMapping, ...]:
        """How the uploaded gamma lies over the mesh (one copy, split as the input)."""
        return (self.split_over_axis(GAMMA_TILE_ROWS_DIM),)

    def check_split(self) -> None:
        if self.slice_dim % TILE_SIZE:
            raise ValueError(f"dim {self.dim} cannot be split into whole tiles over {self.splits} mesh devices")

    def default_mesh_device(self):
        return self.weight.device or ttnn.GetDefaultDevice()

    def default_tt_ccl(self):
        return ccl.get_tt_ccl(self.mesh_device)

    def default_topology(self):
        return ttnn.Topology.Linear  # TTTv1 tt_sharded_distributed_rmsnorm, tt_all_gather: Linear on a Galaxy

    def default_cluster_axis(self):
        return ccl.COL_AXIS  # TTTv1 tt_(sharded_)distributed_rmsnorm: statistics gathered over the mesh columns

    def default_num_links(self):
        return STATS_GATHER_LINKS

    def default_compute_kernel_config(self):
        if self.input_fractured:  # TTTv1 DistributedNorm (TG) ln_cfg: HiFi2, no fp32 or L1 accumulation
            return pc.compute_kernel_config("hifi2_na")
        return pc.rmsnorm_compute_kernel_config()  # TTTv1 RMSNorm (the q/k norms)

    def default_decode_compute_kernel_config(self):
        return None if self.input_fractured else self.compute_kernel_config

    def default_decode_core_grid(self):
        if not self.input_fractured:
            return None
        self.check_split()
        return pc.galaxy_decode_grid(self.slice_dim)  # TTTv1 DistributedNorm (TG) core_grid_ln

    def default_decode_program_config(self):
        if not self.input_fractured:
            return None
        # TTTv1 DistributedNorm (TG) ln_prg_cfg: the whole shard in one block and one sub-block
        block_w = self.slice_dim // self.decode_core_grid.num_cores // TILE_SIZE
        return ttnn.LayerNormShardedMultiCoreProgramConfig(
            compute_with_storage_grid_size=(self.decode_core_grid.x, self.decode_core_grid.y),
            subblock_w=block_w,
            block_h=self.tile_padded_batch_rows // TILE_SIZE,
            block_w=block_w,
            inplace=False,
        )

    def default_decode_memcfg(self):
        if not self.input_fractured:
            return None
        grid = self.decode_core_grid  # TTTv1 DistributedNorm (TG) gather_in_mem_cfg
        return pc.width_sharded_l1_memcfg((self.tile_padded_batch_rows, self.slice_dim // grid.num_cores), grid)

    def default_decode_stats_memcfg(self):
        if not self.input_fractured:
            return None
        # TTTv1 ln_sharded_stats_memcfg: one tile of statistics per column, on one core
        width = TILE_SIZE * STATS_TILES_PER_DEVICE * self.splits
        return pc.width_sharded_l1_memcfg((self.tile_padded_batch_rows, width), ttnn.CoreGrid(y=1, x=1))

    def default_decode_input_memcfg(self):
        return ttnn.L1_MEMORY_CONFIG  # TTTv1 DECODE_RESIDUAL_MEMCFG on Galaxy; Attention2D / MLP2D leave L1

    def default_decode_output_memcfg(self):
        # TTTv1 DistributedNorm (TG) returns the sharded layout it ran in; a head-local norm stays in L1
        return self.decode_memcfg if self.input_fractured else ttnn.L1_MEMORY_CONFIG

    def default_prefill_input_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG

    @classmethod
    def per_head(cls, weight: LazyWeight, **overrides) -> "RMSNorm2DConfig":
        """A per-head norm over head_dim (TTTv1's q/k norms): whole interleaved input, no collective."""
        return cls(weight, input_fractured=False, **overrides)

    @classmethod
    def from_model_args(
        cls,
        mesh_device,
        tt_ccl,
        args,
        state_dict,
        weight_cache_path,
        layer_num: int | None,
        weight_key: str = "attention_norm",
        state_dict_prefix: str | None = None,
    ) -> "RMSNorm2DConfig":
        """TTTv1's Galaxy norm (RMSNorm + DistributedNorm with TG=True) from a ModelArgs of an 8x4 mesh, host-side.

        ``weight_key`` and ``state_dict_prefix`` as RMSNorm1DConfig.from_model_args ("attention_norm", "ffn_norm",
        "norm", or the per-head "q_norm" / "k_norm"). The only place RMSNorm2D touches TTTv1."""
        shape = tuple(args.cluster_shape)
        if shape != TTTV1_GALAXY_MESH:
            raise ValueError(
                f"RMSNorm2D.from_model_args takes TTTv1's Galaxy (TG) norm, laid out for an 8x4 mesh, not "
                f"{shape[0]}x{shape[1]}: use RMSNorm1D.from_model_args on 1D meshes, RMSNorm2D(weight) on 4x8"
            )
        weight, head_norm = tttv1_norm_weight(
            "RMSNorm2D", args, state_dict, weight_cache_path, layer_num, weight_key, state_dict_prefix
        )
        return cls(
            weight=weight,
            mesh_device=mesh_device,
            tt_ccl=tt_ccl,
            eps=args.norm_eps,
            add_unit_offset=args.rms_norm_add_unit_offset,
            max_batch_size=args.max_batch_size,
            input_fractured=not head_norm,
            decode_input_memcfg=args.model_config["DECODE_RESIDUAL_MEMCFG"],
        )


class RMSNorm2D(LightweightModule):
    """RMSNorm on a Galaxy mesh. ``RMSNorm2D(weight)``, ``RMSNorm2D.from_config(cfg)``, ``from_model_args(...)``."""

    CONFIG = RMSNorm2DConfig

    def __init__(self, weight: LazyWeight, **overrides):
        self._init_from_config(RMSNorm2DConfig(weight=weight, **overrides))

    def _init_from_config(self, config: RMSNorm2DConfig) -> None:
        shape = tuple((config.mesh_device or config.default_mesh_device()).shape)
        if shape not in ccl.TWO_D_MESHES:
            raise ValueError(f"RMSNorm2D runs on Galaxy meshes {ccl.TWO_D_MESHES}, not {shape}; use RMSNorm1D")
        dim = math.prod(config.weight.shape)
        if dim % TILE_SIZE:
            raise ValueError(f"RMSNorm2D weight has {dim} elements; it must be a multiple of {TILE_SIZE}")
        cfg = config.resolve()
        cfg.check_split()
        if cfg.input_fractured and cfg.slice_dim % (cfg.decode_core_grid.num_cores * TILE_SIZE):
            raise ValueError(
                f"each device's {cfg.slice_dim} of dim {cfg.dim} cannot be width-sharded into whole tiles over the "
                f"{cfg.decode_core_grid.num_cores} cores of decode_core_grid"
            )
        self.config = cfg
        [gamma_mapping] = cfg.gamma_mappings
        self.weight = norm_gamma(cfg, gamma_mapping, "gamma")
        self._decode = self._decode_distributed if cfg.input_fractured else self._decode_head_local
        self._prefill = self._prefill_distributed if cfg.input_fractured else self._prefill_head_local

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """x: [1, 1, 32, slice_dim] per device in ``decode_input_memcfg`` (kept) → the same shape, normalised over
        the whole dim, in ``decode_output_memcfg``."""
        return self._decode(self._load(x, self.config.decode_input_memcfg))

    def prefill_forward(self, x: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """x: [1, 1, seq_len, slice_dim] per device in ``prefill_input_memcfg`` (kept) → the same shape, normalised
        over the whole dim, in DRAM."""
        return self._prefill(self._load(x, self.config.prefill_input_memcfg))

    def forward(self, x, mode: str) -> ttnn.Tensor:
        """TTTv1-style entry point (drop-in for DistributedNorm): ``mode`` is "decode" or "prefill"."""
        return self.decode_forward(x) if mode == "decode" else self.prefill_forward(x)

    # --- factories -------------------------------------------------------------------------------------------
    @classmethod
    def from_model_args(cls, *positional, **keywords) -> "RMSNorm2D":
        """TTTv1's Galaxy norm from a ModelArgs; takes RMSNorm2DConfig.from_model_args's arguments (mesh_device,
        tt_ccl, args, state_dict, weight_cache_path, layer_num, weight_key="attention_norm", state_dict_prefix=None);
        usable as TTTv1 TransformerBlock's ``attention_norm=`` / ``ff_norm=`` builder on 8x4."""
        return cls.from_config(RMSNorm2DConfig.from_model_args(*positional, **keywords))

    # --- variants (one of each pair is bound in __init__) and steps ----------------------------------------
    def _decode_distributed(self, x):
        cfg = self.config
        sharded = ttnn.to_memory_config(x, cfg.decode_memcfg)
        stats = ttnn.rms_norm_pre_all_gather(
            sharded, program_config=cfg.decode_program_config, compute_kernel_config=cfg.decode_compute_kernel_config
        )
        gathered = self._gather_stats(stats, cfg.decode_stats_memcfg)
        out = ttnn.rms_norm_post_all_gather(
            sharded,
            gathered,
            epsilon=cfg.eps,
            weight=self.weight,
            program_config=cfg.decode_program_config,
            compute_kernel_config=cfg.decode_compute_kernel_config,
        )
        ttnn.deallocate(gathered)
        return ttnn.to_memory_config(out, cfg.decode_output_memcfg)

    def _decode_head_local(self, x):
        cfg = self.config
        return ttnn.rms_norm(
            x,
            epsilon=cfg.eps,
            weight=self.weight,
            memory_config=cfg.decode_output_memcfg,
            compute_kernel_config=cfg.decode_compute_kernel_config,
        )

    def _prefill_distributed(self, x):
        cfg = self.config
        stats = ttnn.rms_norm_pre_all_gather(x, compute_kernel_config=cfg.compute_kernel_config, dtype=ttnn.bfloat16)
        gathered = self._gather_stats(stats, ttnn.DRAM_MEMORY_CONFIG)
        out = ttnn.rms_norm_post_all_gather(
            x, gathered, epsilon=cfg.eps, weight=self.weight, compute_kernel_config=cfg.compute_kernel_config
        )
        ttnn.deallocate(gathered)
        return out

    def _prefill_head_local(self, x):
        cfg = self.config
        return ttnn.rms_norm(
            x,
            epsilon=cfg.eps,
            weight=self.weight,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            compute_kernel_config=cfg.compute_kernel_config,
        )

    def _load(self, x, memory_config):
        """The input on device in ``memory_config``; one clear error for a width or dtype the norm cannot take."""
        cfg = self.config
        if isinstance(x, LazyWeight):
            x = resolve_lazy_weight(x, mesh_mapping=self.config.input_mapping)
        x = load_input_device_tensor(x, memory_config=memory_config, mesh_device=cfg.mesh_device)
        if x.shape[-1] != cfg.slice_dim or x.dtype not in ACCEPTED_DTYPES:
            raise ValueError(
                f"RMSNorm2D input is [..., {x.shape[-1]}] {x.dtype} per device; it takes [..., {cfg.slice_dim}] "
                f"(dim {cfg.dim} over {cfg.splits} mesh devices) in one of {ACCEPTED_DTYPES}"
            )
        return x

    def _gather_stats(self, stats, memory_config):
        """Every column's statistics side by side (dim 3) on each device; ``stats`` is freed."""
        cfg = self.config
        gathered = ccl.all_gather(
            cfg.tt_ccl,
            stats,
            dim=ccl.WIDTH_DIM,  # the statistics' tiles side by side
            memory_config=memory_config,
            topology=cfg.topology,
            num_links=cfg.num_links,
            cluster_axis=cfg.cluster_axis,
        )
        ttnn.deallocate(stats)
        return gathered
