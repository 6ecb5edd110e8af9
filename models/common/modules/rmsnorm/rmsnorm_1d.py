# SPDX-License-Identifier: Apache-2.0
"""RMSNorm1D: RMS normalisation on 1D meshes (1x1, 1x2, 1x4, 1x8), TTTv1's RMSNorm + DistributedNorm in one module.

    RMSNorm(x) = x / sqrt(mean(x², last dim) + eps) * weight

The residual stream on a multi-device 1D mesh is width-fractured (each device holds 1/N of ``dim``, as the MLP's
and attention's reduce-scatter leave it); ``input_fractured`` says so, and the norm returns the full-width
normalised activation the next module takes; the input is not consumed (TTTv1's decoder keeps it as the
residual).

decode:               [all-gather the fractured input] (or move the whole one) into ``decode_memcfg`` → rms_norm
                      (width-sharded in L1 with the sharded program config; interleaved for per-head q/k norms)
prefill, chosen once in ``__init__``:
         local:       [all-gather the fractured input] → rms_norm (DRAM)
         distributed: rms_norm_pre_all_gather → all-gather the statistics → rms_norm_post_all_gather with the
                      weight slice of each device → all-gather the output (TTTv1 for dim > 4096)
"""

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import ttnn

from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import (
    LazyWeight,
    MeshMapping,
    derived_cache,
    load_input_device_tensor,
    resolve_lazy_weight,
)
from models.common.modules.lightweight_module import LightweightModule
from models.common.modules.module_config import DecodeBatchRows, ResolvableConfig
from models.common.tensor_utils import TILE_SIZE

DEFAULT_EPS = 1e-5  # TTTv1 RMSNorm default
DISTRIBUTED_PREFILL_MIN_DIM = 4096  # TTTv1 is_distributed_norm: prefill is distributed when dim > 4096
STATS_GATHER_LINKS = 1  # TTTv1 tt_distributed_rmsnorm gathers the statistics over 1 link
NORM_GATHER_LINKS = 1  # TTTv1 DistributedNorm all-gathers the residual over 1 link
GAMMA_DTYPE = ttnn.bfloat16  # gamma as rms_norm takes it (TTTv1 RMSNorm)
GAMMA_TILE_ROWS_DIM = 2  # gamma [1, 1, dim / 32, 32]: dim 2 runs along dim, so the distributed norm splits it there
# TTTv1 decoder.py / model.py: the model_config program config and output memory config each residual-stream norm
# is built with, by its state-dict weight key.
TTTV1_RESIDUAL_NORMS = {
    "attention_norm": ("SHARDED_NORM_ATTN_PRGM_CFG", "SHARDED_ATTN_INPUT_MEMCFG"),
    "ffn_norm": ("SHARDED_NORM_MLP_PRGM_CFG", "SHARDED_MLP_INPUT_MEMCFG"),
    "norm": ("SHARDED_NORM_LM_HEAD_PRGM_CFG", "LM_HEAD_INPUT_MEMCFG"),
}
TTTV1_HEAD_NORMS = ("q_norm", "k_norm")  # TTTv1 attention.py: per-head norms over head_dim, interleaved, no gather


@dataclass(frozen=True)
class RMSNorm1DConfig(ResolvableConfig, DecodeBatchRows):
    """Everything RMSNorm1D decides; ``None`` fields are derived by the ``default_*`` methods (TTTv1's choices)."""

    weight: LazyWeight  # (dim,) as in HF ``*_layernorm.weight``
    mesh_device: Any = None
    tt_ccl: Any = None
    topology: ttnn.Topology | None = None
    eps: float = DEFAULT_EPS
    add_unit_offset: bool = False  # Gemma-style weights: scale by (1 + weight)
    max_batch_size: int = pc.MAX_DECODE_BATCH
    input_fractured: bool | None = None  # input width-split over the devices (the TTTv1 residual stream)
    decode_sharded: bool = True  # decode input/output width-sharded in L1 (False: interleaved, e.g. q/k norm)
    prefill_distributed: bool | None = None
    compute_kernel_config: Any = None
    decode_core_grid: ttnn.CoreGrid | None = None  # shard grid; give the consumer's input grid to feed it directly
    decode_program_config: Any = None
    decode_memcfg: ttnn.MemoryConfig | None = None  # decode output (= sharded input after any gather)
    decode_input_memcfg: ttnn.MemoryConfig | None = None
    prefill_input_memcfg: ttnn.MemoryConfig | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"topology", "decode_program_config"})

    @property
    def dim(self) -> int:
        return math.prod(self.weight.shape)

    @property
    def num_devices(self) -> int:
        return self.mesh_device.get_num_devices()

    @property
    def input_mapping(self) -> MeshMapping:
        """How a host input is laid over the mesh: width-split over the devices when fractured, else copied."""
        return MeshMapping.shard(-1) if self.input_fractured else MeshMapping.replicate()

    @property
    def gamma_mappings(self) -> tuple[MeshMapping, ...]:
        """How each uploaded copy of gamma lies over the mesh: replicated, and split for the distributed prefill."""
        distributed = (MeshMapping.shard(GAMMA_TILE_ROWS_DIM),) if self.prefill_distributed else ()
        return (MeshMapping.replicate(), *distributed)

    def default_mesh_device(self):
        return self.weight.device or ttnn.GetDefaultDevice()

    def default_tt_ccl(self):
        return ccl.get_tt_ccl(self.mesh_device)

    def default_topology(self):
        return ccl.default_topology(self.mesh_device)

    def default_input_fractured(self):
        return self.num_devices > 1

    def default_prefill_distributed(self):
        return self.input_fractured and self.dim > DISTRIBUTED_PREFILL_MIN_DIM

    def default_compute_kernel_config(self):
        return pc.rmsnorm_compute_kernel_config()

    def default_decode_core_grid(self):
        return pc.dram_shard_core_grid_for_k(self.dim)

    def default_decode_program_config(self):
        if not self.decode_sharded:
            return None
        return pc.create_sharded_norm_config(self.decode_core_grid, self.dim, self.tile_padded_batch_rows)

    def default_decode_memcfg(self):
        if not self.decode_sharded:
            return ttnn.L1_MEMORY_CONFIG
        grid = self.decode_core_grid
        return pc.width_sharded_l1_memcfg((self.tile_padded_batch_rows, self.dim // grid.num_cores), grid)

    def default_decode_input_memcfg(self):
        """The residual stream's layout (TTTv1 DECODE_RESIDUAL_MEMCFG); a whole interleaved input (q/k norms) is
        taken as decode wants it."""
        if not (self.input_fractured or self.decode_sharded):
            return self.decode_memcfg
        return pc.decode_residual_memcfg(self.dim, self.num_devices, self.tile_padded_batch_rows)

    def default_prefill_input_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG

    @classmethod
    def per_head(cls, weight: LazyWeight, **overrides) -> "RMSNorm1DConfig":
        """A per-head norm over head_dim (TTTv1's q/k norms): whole interleaved input, no collective."""
        return cls(weight, input_fractured=False, decode_sharded=False, prefill_distributed=False, **overrides)

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
    ) -> "RMSNorm1DConfig":
        """TTTv1's RMSNorm + DistributedNorm arguments from a ModelArgs, host-side (nothing is uploaded).

        ``weight_key``: "attention_norm" / "ffn_norm" (the layer's, ``layer_num``), "norm" (the final norm,
        ``layer_num`` None), or "q_norm" / "k_norm" (the layer's attention, per head). The weight is
        ``state_dict[f"{state_dict_prefix}{weight_key}.weight"]``; the prefix defaults to TTTv1's ("layers.{i}.",
        "" for the final norm, "layers.{i}.attention." for q/k norms). The only place RMSNorm1D touches TTTv1.
        """
        if args.is_galaxy:
            raise ValueError("RMSNorm1D cannot be used on Galaxy (8x4 / 4x8) meshes; use RMSNorm2D")
        head_norm = weight_key in TTTV1_HEAD_NORMS
        if not head_norm and args.is_distributed_norm("decode"):
            raise ValueError(
                f"TTTv1 runs a distributed decode norm on a {args.cluster_shape} mesh, which RMSNorm1D does not "
                "have: use a 1xN mesh"
            )
        weight, _ = tttv1_norm_weight(
            "RMSNorm1D", args, state_dict, weight_cache_path, layer_num, weight_key, state_dict_prefix
        )
        common = dict(
            weight=weight,
            mesh_device=mesh_device,
            tt_ccl=tt_ccl,
            topology=args.ccl_topology(),
            eps=args.norm_eps,
            add_unit_offset=args.rms_norm_add_unit_offset,
            max_batch_size=args.max_batch_size,
        )
        if head_norm:
            return cls.per_head(**common)
        program_config, output_memcfg = (args.model_config[key] for key in TTTV1_RESIDUAL_NORMS[weight_key])
        return cls(
            input_fractured=args.is_multichip,
            prefill_distributed=args.is_distributed_norm("prefill"),
            decode_program_config=program_config,
            decode_memcfg=output_memcfg,
            decode_input_memcfg=args.model_config["DECODE_RESIDUAL_MEMCFG"],
            **common,
        )


class RMSNorm1D(LightweightModule):
    """RMSNorm on a 1D mesh. ``RMSNorm1D(weight)``, ``RMSNorm1D.from_config(cfg)``, ``from_model_args(...)``."""

    CONFIG = RMSNorm1DConfig

    def __init__(self, weight: LazyWeight, **overrides):
        self._init_from_config(RMSNorm1DConfig(weight=weight, **overrides))

    def _init_from_config(self, config: RMSNorm1DConfig) -> None:
        cfg = config.resolve()
        shape = tuple(cfg.mesh_device.shape)
        if shape not in ccl.ONE_D_MESHES:
            raise ValueError(f"RMSNorm1D runs on 1D meshes {ccl.ONE_D_MESHES}, not {shape}; use RMSNorm2D on Galaxy")
        if cfg.dim % TILE_SIZE:
            raise ValueError(f"RMSNorm1D weight has {cfg.dim} elements; it must be a multiple of {TILE_SIZE}")
        if cfg.input_fractured and cfg.dim % (cfg.num_devices * TILE_SIZE):
            raise ValueError(f"dim {cfg.dim} cannot be width-split into whole tiles over {cfg.num_devices} devices")
        self.config = cfg
        replicated, *distributed = cfg.gamma_mappings
        self.weight = norm_gamma(cfg, replicated, "gamma")
        self._gather = self._all_gather if cfg.input_fractured else ttnn.to_memory_config  # (x, memory_config)
        self._prefill = self._prefill_distributed if cfg.prefill_distributed else self._prefill_local
        if cfg.prefill_distributed:
            self.weight_distributed = norm_gamma(cfg, *distributed, "gamma_dist")

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """x: [1, 1, 32, dim (/ devices if fractured)] in ``decode_input_memcfg`` → [1, 1, 32, dim] in
        ``decode_memcfg`` (width-sharded with ``decode_program_config``, or interleaved: per-head q/k norms)."""
        cfg = self.config
        x = self._gather(self._load(x, cfg.decode_input_memcfg), cfg.decode_memcfg)
        return ttnn.rms_norm(
            x,
            epsilon=cfg.eps,
            weight=self.weight,
            program_config=cfg.decode_program_config,
            memory_config=cfg.decode_memcfg,
            compute_kernel_config=cfg.compute_kernel_config,
        )

    def prefill_forward(self, x: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """x: [1, 1, seq_len, dim (/ devices if fractured)] in DRAM → [1, 1, seq_len, dim] in DRAM, local or
        distributed (chosen in ``__init__``)."""
        return self._prefill(self._load(x, self.config.prefill_input_memcfg))

    def forward(self, x, mode: str) -> ttnn.Tensor:
        """TTTv1-style entry point (drop-in for DistributedNorm): ``mode`` is "decode" or "prefill"."""
        return self.decode_forward(x) if mode == "decode" else self.prefill_forward(x)

    # --- factories -------------------------------------------------------------------------------------------
    @classmethod
    def from_model_args(cls, *positional, **keywords) -> "RMSNorm1D":
        """TTTv1's norm from a ModelArgs; takes RMSNorm1DConfig.from_model_args's arguments (mesh_device, tt_ccl,
        args, state_dict, weight_cache_path, layer_num, weight_key="attention_norm", state_dict_prefix=None)."""
        return cls.from_config(RMSNorm1DConfig.from_model_args(*positional, **keywords))

    # --- prefill variants (bound in __init__) and steps ------------------------------------------------------
    def _prefill_local(self, x: ttnn.Tensor) -> ttnn.Tensor:
        """[all-gather the fractured input] → rms_norm in DRAM."""
        dram = ttnn.DRAM_MEMORY_CONFIG
        cfg = self.config
        x = self._gather(x, dram)
        return ttnn.rms_norm(
            x, epsilon=cfg.eps, weight=self.weight, memory_config=dram, compute_kernel_config=cfg.compute_kernel_config
        )

    def _prefill_distributed(self, x: ttnn.Tensor) -> ttnn.Tensor:
        """[1, 1, seq_len, dim / devices] → statistics all-gathered → normalised slice → all-gathered output."""
        cfg = self.config
        dram = ttnn.DRAM_MEMORY_CONFIG
        stats = ttnn.rms_norm_pre_all_gather(x, compute_kernel_config=cfg.compute_kernel_config, dtype=ttnn.bfloat16)
        gathered = ccl.all_gather(
            cfg.tt_ccl,
            stats,
            dim=ccl.WIDTH_DIM,
            memory_config=dram,
            topology=cfg.topology,
            num_links=STATS_GATHER_LINKS,
        )
        ttnn.deallocate(stats)
        out = ttnn.rms_norm_post_all_gather(
            x,
            gathered,
            epsilon=cfg.eps,
            weight=self.weight_distributed,
            compute_kernel_config=cfg.compute_kernel_config,
        )
        ttnn.deallocate(gathered)
        full = self._all_gather(out, dram)
        ttnn.deallocate(out)
        return full

    def _load(self, x, memory_config):
        if isinstance(x, LazyWeight):
            x = resolve_lazy_weight(x, mesh_mapping=self.config.input_mapping)
        return load_input_device_tensor(x, memory_config=memory_config, mesh_device=self.config.mesh_device)

    def _all_gather(self, x, memory_config):
        """Full-width copy of the width-split ``x``; ``x`` is kept (a caller's input is its residual)."""
        cfg = self.config
        return ccl.all_gather(
            cfg.tt_ccl,
            x,
            dim=ccl.WIDTH_DIM,
            memory_config=memory_config,
            topology=cfg.topology,
            num_links=NORM_GATHER_LINKS,
        )


def tttv1_norm_weight(module, args, state_dict, weight_cache_path, layer_num, weight_key, state_dict_prefix):
    """(weight, is a per-head norm) of the TTTv1 norm ``weight_key`` (TTTV1_RESIDUAL_NORMS or TTTV1_HEAD_NORMS):
    ``state_dict[f"{state_dict_prefix}{weight_key}.weight"]``, the prefix by default TTTv1's ("layers.{i}.", "" for
    the final norm, "layers.{i}.attention." for q/k norms), cached under that name unless the weights are dummy."""
    head_norm = weight_key in TTTV1_HEAD_NORMS
    if not head_norm and weight_key not in TTTV1_RESIDUAL_NORMS:
        known = (*TTTV1_RESIDUAL_NORMS, *TTTV1_HEAD_NORMS)
        raise ValueError(f"{module}.from_model_args: unknown weight_key {weight_key!r}; use one of {known}")
    if state_dict_prefix is None:
        attention_prefix = f"{args.get_state_dict_prefix('Attention', layer_num)}."
        state_dict_prefix = attention_prefix if head_norm else args.get_state_dict_prefix("", layer_num)
    name = f"{state_dict_prefix}{weight_key}"
    cached = weight_cache_path is not None and not args.dummy_weights
    cache = dict(cache_dir=weight_cache_path, cache_name=name) if cached else {}
    return LazyWeight(state_dict[f"{name}.weight"], **cache), head_norm


def norm_gamma(cfg, mesh_mapping: MeshMapping, suffix: str) -> ttnn.Tensor:
    """The norm's gamma on device: ``cfg.weight`` (+ 1 with ``add_unit_offset``) as rms_norm takes it, ROW_MAJOR
    [1, 1, dim / 32, 32] bfloat16 in DRAM (TTTv1 RMSNorm), laid over the mesh by ``mesh_mapping``; cached beside
    the weight (``derived_cache``, name + ``suffix``)."""
    rows = (1, 1, cfg.dim // TILE_SIZE, TILE_SIZE)
    offset = 1.0 if cfg.add_unit_offset else 0.0
    weight = cfg.weight
    return LazyWeight(
        lambda: weight.host_tensor().reshape(rows) + offset,
        dtype=GAMMA_DTYPE,
        layout=ttnn.ROW_MAJOR_LAYOUT,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        mesh_mapping=mesh_mapping,
        device=cfg.mesh_device,
        **derived_cache(weight, suffix),
    ).get_device_weight()
