# SPDX-License-Identifier: Apache-2.0
"""MLP2D: the SwiGLU feed-forward block on Galaxy meshes (8x4, 4x8), TTTv1's TG dataflow.

    MLP(x) = w2( act(x @ w1) * (x @ w3) )      w1 = gate_proj.T, w3 = up_proj.T, w2 = down_proj.T (HF names)

decode:  linear(w1), linear(w3) → reduce-scatter both over mesh columns (axis 1) → mul(act(w1_out), w3_out)
         → all-gather over axis 1 → linear(w2) → all-reduce over mesh rows (axis 0: reduce-scatter + all-gather)
prefill: [reshape to chunks of prefill_len_cutoff rows] → the same with DRAM outputs → reshape to (1, 1, seq_len, ·)

Layout (TTTv1 TG): the input is split along ``dim`` over mesh columns; w1/w3 split ``hidden`` over mesh rows and
``dim`` over columns, w2 the transpose. The first matmuls leave partial sums over the columns, reduced before the
gate; the second leaves partial sums over the rows, all-reduced at the end, so the output is split along ``dim``
over the columns like the input. Defaults follow upstream MLP2D (program configs left to ttnn, bfloat8_b weights
and CCL dtype, HiFi2 matmuls).
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import ttnn

from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, load_input_device_tensor, resolve_lazy_weight
from models.common.modules.lightweight_module import LightweightModule
from models.common.modules.mlp.mlp_1d import (
    SwiGLUConfig,
    check_swiglu_weights,
    padded_weights,
    swiglu_gate,
    swiglu_model_args,
)

TG_DECODE_PROGCFG_MIN_DIM = 4096  # TTTv1 mlp.py: FF1_3_TG_PROGCFG / FF2_TG_PROGCFG from dim 4096 on, ttnn picks below


@dataclass(frozen=True)
class MLP2DConfig(SwiGLUConfig):
    """Everything MLP2D decides; ``None`` fields are derived by the ``default_*`` methods (here and in SwiGLUConfig)."""

    num_all_gather_links: int = ccl.GALAXY_ALL_GATHER_LINKS
    ccl_dtype: ttnn.DataType | None = None
    # decode (program configs None: ttnn picks, as upstream MLP2D; from_model_args gives TTTv1's from dim 4096)
    decode_input_memcfg: ttnn.MemoryConfig | None = None
    decode_w1_w3_prg_config: Any = None
    decode_w2_prg_config: Any = None
    decode_output_memcfg: ttnn.MemoryConfig | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = SwiGLUConfig.OPTIONAL_FIELDS | {
        "decode_w1_w3_prg_config",
        "decode_w2_prg_config",
    }

    @classmethod
    def from_model_args(
        cls, mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num: int, state_dict_prefix=None
    ) -> "MLP2DConfig":
        """TTTv1's Galaxy (TG) MLP settings from a ModelArgs: its weights, dtypes, math fidelities and TG
        model_config program configs (the only place MLP2D touches TTTv1; retires with it). Host-side."""
        from models.tt_transformers.tt.model_config import TG_COLS, TG_ROWS

        rows, cols = args.cluster_shape
        if (rows, cols) != (TG_ROWS, TG_COLS):
            raise ValueError(
                f"MLP2D.from_model_args takes TTTv1's Galaxy configs, which are laid out for a {TG_ROWS}x{TG_COLS} "
                f"mesh, not {rows}x{cols}: use MLP1D.from_model_args on 1D meshes, MLP2D(w1, w2, w3) on 4x8"
            )
        mc = args.model_config
        tg_decode_configs = args.dim >= TG_DECODE_PROGCFG_MIN_DIM
        return cls(
            mesh_device=mesh_device,
            tt_ccl=tt_ccl,
            num_all_gather_links=args.num_all_gather_links,
            ccl_dtype=args.ccl_dtype,
            decode_w1_w3_prg_config=mc["FF1_3_TG_PROGCFG"] if tg_decode_configs else None,
            decode_w2_prg_config=mc["FF2_TG_PROGCFG"] if tg_decode_configs else None,
            decode_input_memcfg=mc["MLP_ACT_MEMCFG"],  # TTTv1's decoder reshards the MLP input to it on Galaxy
            **swiglu_model_args(args, state_dict, weight_cache_path, layer_num, state_dict_prefix),
        )

    @property
    def hidden_pieces(self) -> int:
        """w1/w3 split the hidden dim over the mesh rows."""
        return tuple(self.mesh_device.shape)[ccl.ROW_AXIS]

    @property
    def input_mapping(self) -> MeshMapping:
        """How a host input is laid over the mesh: width-split over the mesh columns, copied on the rows."""
        return MeshMapping.shard_2d(None, -1)

    def default_ccl_dtype(self):
        return ttnn.bfloat8_b  # TTTv1 ModelArgs.ccl_dtype

    def default_decode_input_memcfg(self):
        return ttnn.L1_MEMORY_CONFIG

    def default_decode_output_memcfg(self):
        return ttnn.L1_MEMORY_CONFIG

    def default_prefill_w1_w3_prg_config(self):
        return _ttnn_picks

    def default_prefill_w2_prg_config(self):
        return _ttnn_picks


class MLP2D(LightweightModule):
    """SwiGLU MLP on a Galaxy mesh. ``MLP2D(w1, w2, w3)``, ``MLP2D.from_config(cfg)``, ``from_model_args(...)``."""

    CONFIG = MLP2DConfig

    def __init__(self, w1: LazyWeight, w2: LazyWeight, w3: LazyWeight, **overrides):
        self._init_from_config(MLP2DConfig(w1=w1, w2=w2, w3=w3, **overrides))

    def _init_from_config(self, config: MLP2DConfig) -> None:
        cfg = config.resolve()
        shape = tuple(cfg.mesh_device.shape)
        if shape not in ccl.TWO_D_MESHES:
            raise ValueError(f"MLP2D runs on Galaxy meshes {ccl.TWO_D_MESHES}, not {shape}; use MLP1D on 1D meshes")
        check_swiglu_weights(cfg, "MLP2D")
        common = dict(device=cfg.mesh_device, layout=ttnn.TILE_LAYOUT, memory_config=ttnn.DRAM_MEMORY_CONFIG)
        w1_w3 = dict(dtype=cfg.w1_w3_dtype, mesh_mapping=MeshMapping.shard_2d(-1, -2))
        w2 = dict(dtype=cfg.w2_dtype, mesh_mapping=MeshMapping.shard_2d(-2, -1))
        self.config = cfg
        self.weights = {
            name: resolve_lazy_weight(weight, **kw, **common) for name, weight, kw in padded_weights(cfg, w1_w3, w2)
        }
        self.w1, self.w2, self.w3 = (self.weights[name].get_device_weight() for name in ("w1", "w2", "w3"))

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """x: [1, 1, 32, dim / mesh columns] per device; consumed. Returns the same layout."""
        cfg = self.config
        x = self._load(x, cfg.decode_input_memcfg)
        w2_in = self._ff1_gate(x, cfg.decode_w1_w3_prg_config, ttnn.L1_MEMORY_CONFIG)
        w2_out = self._linear(w2_in, self.w2, cfg.decode_w2_prg_config, cfg.ff2_compute_kernel_config, cfg.ccl_dtype)
        ttnn.deallocate(w2_in)
        return self._all_reduce_rows(w2_out, cfg.decode_output_memcfg)

    def prefill_forward(self, x: ttnn.Tensor | LazyWeight, seq_len: int) -> ttnn.Tensor:
        """x: [1, 1, seq_len, dim / mesh columns] per device in DRAM; consumed. Returns the same layout."""
        cfg = self.config
        x = self._load(x, cfg.prefill_input_memcfg)
        if seq_len >= cfg.prefill_len_cutoff:  # runtime: long sequences run as chunks of cutoff rows
            if seq_len % cfg.prefill_len_cutoff:
                raise ValueError(f"prefill seq_len {seq_len} must be a multiple of {cfg.prefill_len_cutoff}")
            x = ttnn.reshape(x, [1, seq_len // cfg.prefill_len_cutoff, cfg.prefill_len_cutoff, -1])
        dram = ttnn.DRAM_MEMORY_CONFIG
        w2_in = self._ff1_gate(x, cfg.prefill_w1_w3_prg_config(seq_len), dram)
        pc2 = cfg.prefill_w2_prg_config(seq_len)
        w2_out = self._linear(w2_in, self.w2, pc2, cfg.ff2_compute_kernel_config, cfg.ccl_dtype, dram)
        ttnn.deallocate(w2_in)
        w2_out = ttnn.reshape(w2_out, [1, 1, seq_len, w2_out.shape[-1]])
        return self._all_reduce_rows(w2_out, dram)

    def forward(self, x, mode: str, seq_len: int | None = None) -> ttnn.Tensor:
        """TTTv1-style entry point: ``mode`` is "decode" or "prefill"."""
        return self.decode_forward(x) if mode == "decode" else self.prefill_forward(x, seq_len or x.shape[-2])

    # --- factories -------------------------------------------------------------------------------------------
    @classmethod
    def from_model_args(cls, *positional, **keywords) -> "MLP2D":
        """TTTv1's Galaxy MLP from a ModelArgs; takes MLP2DConfig.from_model_args's arguments (mesh_device, tt_ccl,
        args, state_dict, weight_cache_path, layer_num, state_dict_prefix=None)."""
        return cls.from_config(MLP2DConfig.from_model_args(*positional, **keywords))

    # --- steps shared by both forwards -----------------------------------------------------------------------
    def _load(self, x, memory_config):
        if isinstance(x, LazyWeight):
            x = resolve_lazy_weight(x, mesh_mapping=self.config.input_mapping)
        return load_input_device_tensor(x, memory_config=memory_config, mesh_device=self.config.mesh_device)

    def _ff1_gate(self, x, program_config, memory_config):
        """w1, w3 → reduce-scatter over columns → act(w1_out) * w3_out → all-gather over columns."""
        cfg = self.config
        kernel = cfg.ff1_3_compute_kernel_config
        w1_out = self._linear(x, self.w1, program_config, kernel, cfg.ccl_dtype, memory_config)
        w3_out = self._linear(x, self.w3, program_config, kernel, cfg.ccl_dtype, memory_config)
        ttnn.deallocate(x)
        w1_out = self._reduce_scatter(w1_out, ccl.COL_AXIS, memory_config)
        w3_out = self._reduce_scatter(w3_out, ccl.COL_AXIS, memory_config)
        gated = swiglu_gate(w1_out, w3_out, cfg.activation, cfg.mul_dtype)
        return self._all_gather(gated, ccl.COL_AXIS, memory_config)

    def _linear(self, x, weight, program_config, compute_kernel_config, dtype, memory_config=None):
        return ttnn.linear(
            x,
            weight,
            dtype=dtype,
            program_config=program_config,
            compute_kernel_config=compute_kernel_config,
            memory_config=memory_config or ttnn.L1_MEMORY_CONFIG,
        )

    def _reduce_scatter(self, x, cluster_axis, memory_config):
        return self._ccl(ccl.reduce_scatter, x, cluster_axis, memory_config, self.config.num_reduce_scatter_links)

    def _all_gather(self, x, cluster_axis, memory_config):
        return self._ccl(ccl.all_gather, x, cluster_axis, memory_config, self.config.num_all_gather_links)

    def _ccl(self, op, x, cluster_axis, memory_config, num_links):
        """``op`` (ccl.reduce_scatter or ccl.all_gather) along ``dim`` over one mesh axis; consumes ``x``."""
        out = op(
            self.config.tt_ccl,
            x,
            dim=ccl.WIDTH_DIM,
            memory_config=memory_config,
            topology=ttnn.Topology.Linear,
            num_links=num_links,
            cluster_axis=cluster_axis,
        )
        ttnn.deallocate(x)
        return out

    def _all_reduce_rows(self, x, memory_config):
        """Sum the partial outputs over mesh rows (TTTv1 composite all-reduce); consumes ``x``."""
        cfg = self.config
        return ccl.all_reduce(
            cfg.tt_ccl,
            x,
            cluster_axis=ccl.ROW_AXIS,
            memory_config=memory_config,
            topology=ttnn.Topology.Linear,
            num_reduce_scatter_links=cfg.num_reduce_scatter_links,
            num_all_gather_links=cfg.num_all_gather_links,
        )


def _ttnn_picks(seq_len: int) -> None:
    """Prefill program config: none given, ttnn chooses (upstream MLP2D default)."""
    return None
