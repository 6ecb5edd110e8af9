# SPDX-License-Identifier: Apache-2.0
"""MLP1D: the SwiGLU feed-forward block on 1D meshes (1x1 N150, 1x2 N300, 1x4 N150x4,
1x8 T3K).

    MLP(x) = w2( act(x @ w1) * (x @ w3) )      w1 = gate_proj.T, w3 = up_proj.T, w2 = down_proj.T (HF names)

decode:  linear(w1), linear(w3) [DRAM-sharded] → mul(act(w1_out), w3_out) → reshard → linear(w2) [DRAM-sharded]
         → reduce-scatter over the devices (multi-device) → residual memory config
prefill: [reshape to chunks of prefill_len_cutoff rows] → linear(w1), linear(w3) → mul(act, ·) → linear(w2)
         → reduce-scatter over the devices (multi-device) → reshape to (1, 1, seq_len, ·)

w1/w3 are split column-wise (hidden) and w2 row-wise across the devices, so each device holds a partial sum of
the output; the reduce-scatter sums them and leaves each device 1/N of ``dim`` (TTTv1 keeps the residual stream
width-fractured on N300/T3K). On one device no CCL op is issued. Defaults are TTTv1's (models/tt_transformers/tt/
mlp.py + model_config.py): DRAM-sharded decode matmuls with HiFi2 ("drops 1 bit of the activations but would be
FLOP-bound on 12 cores with HiFi4"), bfloat8_b weights, and the hidden dim zero-padded where TTTv1 pads it
(``padded_hidden_dim``; Qwen2.5-7B's 18944 runs as 19456 on 1x2, so the decode matmuls split over 16 cores).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, ClassVar

import ttnn

from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import (
    LazyWeight,
    MeshMapping,
    load_input_device_tensor,
    resolve_lazy_weight,
    zero_padded,
)
from models.common.modules.lightweight_module import LightweightModule, identity
from models.common.modules.module_config import DecodeBatchRows, ResolvableConfig
from models.common.tensor_utils import TILE_SIZE, get_padded_hidden_dim, nearest_multiple

WORMHOLE_PREFILL_LEN_CUTOFF = 1024  # TTTv1: "512 if Blackhole, 1024 if Wormhole" rows per prefill matmul
BLACKHOLE_PREFILL_LEN_CUTOFF = 512
# TTTv1 ModelArgs forces the cutoff to 512 for Llama-3.1-8B / Llama-3.2-11B / Mistral-7B (dim 4096) on N150 and
# Qwen2.5-7B (dim 3584) on N300: at 1024 rows their prefill matmuls' circular buffers exceed L1 ("Statically
# allocated circular buffers ... beyond max L1 size", reproduced on the mock N150). Keyed on (dim, devices), so
# same-width models (e.g. Qwen2-7B, whose hidden TTTv1 does not pad) get the safe cutoff too.
SHORT_PREFILL_LEN_CUTOFF = 512
SHORT_PREFILL_LEN_CUTOFF_SHAPES = frozenset({(4096, 1), (3584, 2)})
PREFILL_GRID_ROWS = 8  # TTTv1 find_prefill_grid(8, ...): prefill matmuls use 8 rows of cores
# TTTv1: per_core_N of prefill matmuls matches the DRAM shard width (8 on Wormhole) "otherwise matmuls silently
# give bad PCC".
WORMHOLE_DRAM_SHARD_GRID_WIDTH = 8
# TTTv1 ModelArgs pads the hidden dim of some models to a multiple of PAD_MLP_CORES * 32 * devices, so the decode
# matmuls split over more cores (upstream model_config.py, default_padded_cores by base model name: Qwen2.5-7B 16,
# Qwen2.5-72B and Qwen2.5-VL-72B 32, QwQ-32B and Qwen2.5-VL-32B 16). Keyed here on what the weights show,
# (dim, hidden_dim, devices) -> PAD_MLP_CORES. Qwen2.5-7B runs on 2 or 4 devices only in TTTv1; on 1 device its dims
# are Qwen2-7B's, which TTTv1 does not pad (on 2 it cannot tell them apart and pads both). (5120, 27648) is left
# out: those are the dims of the shipped Qwen2.5-Coder-32B too, which TTTv1 does not pad.
TTTV1_HIDDEN_PAD_CORES = {
    **{(3584, 18944, devices): 16 for devices in (2, 4)},
    **{(8192, 29568, devices): 32 for devices in (1, 2, 4, 8, 32)},
}


@dataclass(frozen=True)
class SwiGLUConfig(ResolvableConfig):
    """What MLP1DConfig and MLP2DConfig share: weights, mesh and CCL, the gate's math, prefill chunking, and the
    TTTv1 defaults of those. ``None`` fields are derived by the ``default_*`` methods (the subclasses add theirs)."""

    w1: LazyWeight  # (dim, hidden_dim): gate_proj.weight.T
    w2: LazyWeight  # (hidden_dim, dim): down_proj.weight.T
    w3: LazyWeight  # (dim, hidden_dim): up_proj.weight.T
    # mesh and CCL
    mesh_device: Any = None
    tt_ccl: Any = None
    topology: ttnn.Topology | None = None
    num_reduce_scatter_links: int = 1
    padded_hidden_dim: int | None = None  # hidden dim the weights are zero-padded to on upload (TTTv1 hidden_dim)
    # math
    activation: ttnn.UnaryOpType = ttnn.UnaryOpType.SILU
    activation_dtype: ttnn.DataType | None = None  # None: TTTv1's per-op dtypes (bfloat8_b mul output)
    w1_w3_dtype: ttnn.DataType | None = None
    w2_dtype: ttnn.DataType | None = None
    mul_dtype: ttnn.DataType | None = None
    ff1_3_compute_kernel_config: Any = None
    ff2_compute_kernel_config: Any = None
    # prefill
    prefill_input_memcfg: ttnn.MemoryConfig | None = None
    prefill_len_cutoff: int | None = None
    prefill_w1_w3_prg_config: Callable[[int], Any] | None = None
    prefill_w2_prg_config: Callable[[int], Any] | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"topology", "activation_dtype"})

    @property
    def dim(self) -> int:
        return self.w1.shape[-2]

    @property
    def hidden_dim(self) -> int:
        return self.w1.shape[-1]

    @property
    def num_devices(self) -> int:
        return self.mesh_device.get_num_devices()

    @property
    def hidden_pieces(self) -> int:
        """Pieces the hidden dim of w1/w3 is split into (every device; MLP2D: the mesh rows)."""
        return self.num_devices

    def default_mesh_device(self):
        return self.w1.device or ttnn.GetDefaultDevice()

    def default_tt_ccl(self):
        return ccl.get_tt_ccl(self.mesh_device)

    def default_topology(self):
        return ccl.default_topology(self.mesh_device)

    def default_padded_hidden_dim(self):
        """TTTv1's padding, then whole tiles in each hidden piece."""
        cores = TTTV1_HIDDEN_PAD_CORES.get((self.dim, self.hidden_dim, self.num_devices))
        hidden = nearest_multiple(self.hidden_dim, cores * TILE_SIZE * self.num_devices) if cores else self.hidden_dim
        return get_padded_hidden_dim(hidden, self.hidden_pieces)

    def default_w1_w3_dtype(self):
        return ttnn.bfloat8_b

    def default_w2_dtype(self):
        return ttnn.bfloat8_b

    def default_mul_dtype(self):
        return self.activation_dtype or ttnn.bfloat8_b

    def default_ff1_3_compute_kernel_config(self):
        return pc.hifi2_fp16_compute_kernel_config()

    def default_ff2_compute_kernel_config(self):
        return pc.hifi2_fp16_compute_kernel_config()

    def default_prefill_input_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG

    def default_prefill_len_cutoff(self):
        return default_prefill_len_cutoff(self.dim, self.num_devices)


def swiglu_model_args(args, state_dict, weight_cache_path, layer_num: int, state_dict_prefix=None) -> dict:
    """SwiGLUConfig fields as TTTv1's MLP takes them from a ModelArgs (Meta-named weights, padded to
    ``args.hidden_dim`` on upload and cached under TTTv1's names; the layer's dtypes and fidelities; prefill cutoff and
    program configs). Shared by MLP1DConfig.from_model_args and MLP2DConfig.from_model_args."""
    from models.tt_transformers.tt.model_config import OpGroup, TensorGroup

    prefix = state_dict_prefix or args.get_state_dict_prefix("MLP", layer_num)
    layer = max(layer_num, 0)  # cross-attention blocks use the first decoder's settings (TTTv1)
    mc = args.model_config
    precision = mc["DECODERS_OPTIMIZATIONS"]
    suffix = f".hidden_dim_{args.hidden_dim}" if args.hidden_dim != args.unpadded_hidden_dim else ""
    cached = weight_cache_path is not None and not args.dummy_weights

    def weight(name: str) -> LazyWeight:
        cache = dict(cache_dir=weight_cache_path, cache_name=f"{prefix}.{name}_sharded{suffix}") if cached else {}
        return LazyWeight(state_dict[f"{prefix}.{name}.weight"].T, **cache)

    return dict(
        w1=weight("w1"),
        w2=weight("w2"),
        w3=weight("w3"),
        padded_hidden_dim=args.hidden_dim,
        topology=args.ccl_topology(),
        num_reduce_scatter_links=args.num_reduce_scatter_links,
        activation=args.mlp_activation_type,
        activation_dtype=precision.get_tensor_dtype(decoder_id=layer, tensor=TensorGroup.ACTIVATION),
        w1_w3_dtype=precision.get_tensor_dtype(decoder_id=layer, tensor=TensorGroup.FF1_FF3),
        w2_dtype=precision.get_tensor_dtype(decoder_id=layer, tensor=TensorGroup.FF2),
        ff1_3_compute_kernel_config=precision.get_math_fidelity(layer, OpGroup.LI_FF1_FF3, configuration=args),
        ff2_compute_kernel_config=precision.get_math_fidelity(layer, OpGroup.LI_FF2, configuration=args),
        prefill_len_cutoff=args.prefill_len_cutoff,
        prefill_w1_w3_prg_config=mc["PREFILL_MLP_W1_W3_PRG_CONFIG"],
        prefill_w2_prg_config=mc["PREFILL_MLP_W2_PRG_CONFIG"],
    )


@dataclass(frozen=True)
class MLP1DConfig(SwiGLUConfig, DecodeBatchRows):
    """Everything MLP1D decides; ``None`` fields are derived by the ``default_*`` methods (TTTv1's choices)."""

    max_batch_size: int = pc.MAX_DECODE_BATCH
    linear_dtype: ttnn.DataType | None = None  # None: bfloat16 (TTTv1), or activation_dtype if given
    w1_w3_memcfg: ttnn.MemoryConfig | None = None
    w2_memcfg: ttnn.MemoryConfig | None = None
    # decode
    decode_input_memcfg: ttnn.MemoryConfig | None = None
    decode_w1_w3_prg_config: Any = None
    decode_mlp2_input_memcfg: ttnn.MemoryConfig | None = None
    decode_w2_prg_config: Any = None
    decode_residual_memcfg: ttnn.MemoryConfig | None = None

    @classmethod
    def from_model_args(
        cls, mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num: int, state_dict_prefix=None
    ) -> "MLP1DConfig":
        """TTTv1's MLP settings from a ModelArgs: its weights, dtypes, math fidelities and model_config program
        configs (the only place MLP1D touches TTTv1; retires with it). Host-side: nothing is uploaded."""
        if args.is_galaxy:
            raise ValueError("MLP1D cannot be used on Galaxy (8x4 / 4x8) meshes; use MLP2D.from_model_args")
        mc = args.model_config
        return cls(
            mesh_device=mesh_device,
            tt_ccl=tt_ccl,
            max_batch_size=args.max_batch_size,
            decode_input_memcfg=mc["SHARDED_MLP_INPUT_MEMCFG"],
            decode_w1_w3_prg_config=mc["DECODE_MLP_W1_W3_PRG_CONFIG"],
            decode_mlp2_input_memcfg=mc["SHARDED_MLP2_INPUT_MEMCFG"],
            decode_w2_prg_config=mc["DECODE_MLP_W2_PRG_CONFIG"],
            decode_residual_memcfg=mc["DECODE_RESIDUAL_MEMCFG"],
            **swiglu_model_args(args, state_dict, weight_cache_path, layer_num, state_dict_prefix),
        )

    # --- derived sizes ---------------------------------------------------------------------------------------
    @property
    def hidden_per_device(self) -> int:
        padded = self.padded_hidden_dim or self.default_padded_hidden_dim()  # decode_input_core_grid before resolve()
        return padded // self.num_devices

    # --- defaults (TTTv1) ------------------------------------------------------------------------------------
    def default_linear_dtype(self):
        return self.activation_dtype or ttnn.bfloat16

    def default_w1_w3_memcfg(self):
        return pc.create_dram_sharded_mem_config(self.dim, self.hidden_per_device, self.mesh_device.dram_grid_size())

    def default_w2_memcfg(self):
        return pc.create_dram_sharded_mem_config(self.hidden_per_device, self.dim, self.mesh_device.dram_grid_size())

    @property
    def decode_input_core_grid(self) -> ttnn.CoreGrid:
        """Cores the decode input is width-sharded over (give it to the norm that feeds this MLP)."""
        return pc.dram_shard_core_grid_for_k_and_n(self.dim, self.hidden_per_device)

    def _mlp2_core_grid(self):
        return pc.dram_shard_core_grid_for_k_and_n(self.hidden_per_device, self.dim)

    def default_decode_input_memcfg(self):
        grid = self.decode_input_core_grid
        return pc.width_sharded_l1_memcfg((self.tile_padded_batch_rows, self.dim // grid.num_cores), grid)

    def default_decode_w1_w3_prg_config(self):
        num_cores = self.decode_input_core_grid.num_cores
        return pc.dram_matmul_config(self.tile_padded_batch_rows, self.dim, self.hidden_per_device, num_cores)

    def default_decode_mlp2_input_memcfg(self):
        grid = self._mlp2_core_grid()
        return pc.width_sharded_l1_memcfg((self.tile_padded_batch_rows, self.hidden_per_device // grid.num_cores), grid)

    def default_decode_w2_prg_config(self):
        num_cores = self._mlp2_core_grid().num_cores
        return pc.dram_matmul_config(self.tile_padded_batch_rows, self.hidden_per_device, self.dim, num_cores)

    def default_decode_residual_memcfg(self):
        return pc.decode_residual_memcfg(self.dim, self.num_devices, self.tile_padded_batch_rows)

    def default_prefill_w1_w3_prg_config(self):
        n = self.hidden_per_device
        grid = pc.find_prefill_grid(PREFILL_GRID_ROWS, self.dim // TILE_SIZE)
        per_core_n = math.ceil(n / (TILE_SIZE * WORMHOLE_DRAM_SHARD_GRID_WIDTH))
        config = partial(pc.matmul_config, k=self.dim, n=n, grid_size=grid, per_core_N=per_core_n)
        return self._per_seq_len(config)

    def default_prefill_w2_prg_config(self):
        # TTTv1 (non-TG) sizes K as the whole padded hidden dim, not the per-device slice; kept as is.
        k = self.padded_hidden_dim
        grid = pc.find_prefill_grid(PREFILL_GRID_ROWS, k // TILE_SIZE)
        per_core_n = math.ceil(self.dim / (TILE_SIZE * WORMHOLE_DRAM_SHARD_GRID_WIDTH))
        config = partial(pc.matmul_config, k=k, n=self.dim, grid_size=grid, per_core_N=per_core_n)
        return self._per_seq_len(config)

    def _per_seq_len(self, config: Callable[..., Any]) -> Callable[[int], Any]:
        cutoff = self.prefill_len_cutoff

        @lru_cache
        def for_seq_len(seq_len: int):
            return config(m=min(seq_len, cutoff))

        return for_seq_len


class MLP1D(LightweightModule):
    """SwiGLU MLP on a 1D mesh. ``MLP1D(w1, w2, w3)``, ``MLP1D.from_config(cfg)``, ``MLP1D.from_model_args(...)``."""

    CONFIG = MLP1DConfig

    def __init__(self, w1: LazyWeight, w2: LazyWeight, w3: LazyWeight, **overrides):
        self._init_from_config(MLP1DConfig(w1=w1, w2=w2, w3=w3, **overrides))

    def _init_from_config(self, config: MLP1DConfig) -> None:
        cfg = config.resolve()
        shape = tuple(cfg.mesh_device.shape)
        if shape not in ccl.ONE_D_MESHES:
            raise ValueError(f"MLP1D runs on 1D meshes {ccl.ONE_D_MESHES}, not {shape}; use MLP2D on Galaxy (8x4, 4x8)")
        check_swiglu_weights(cfg, "MLP1D")
        w1_w3 = dict(dtype=cfg.w1_w3_dtype, memory_config=cfg.w1_w3_memcfg, mesh_mapping=MeshMapping.shard(-1))
        w2 = dict(dtype=cfg.w2_dtype, memory_config=cfg.w2_memcfg, mesh_mapping=MeshMapping.shard(-2))
        common = dict(device=cfg.mesh_device, layout=ttnn.TILE_LAYOUT)
        self.config = cfg
        self.weights = {
            name: resolve_lazy_weight(weight, **kw, **common) for name, weight, kw in padded_weights(cfg, w1_w3, w2)
        }
        self.w1, self.w2, self.w3 = (self.weights[name].get_device_weight() for name in ("w1", "w2", "w3"))
        single = cfg.num_devices == 1
        links = dict(topology=cfg.topology, num_links=cfg.num_reduce_scatter_links)
        dram = ttnn.DRAM_MEMORY_CONFIG
        self._reduce_decode = identity if single else partial(ccl.reduce_scatter_residual_in_place, cfg.tt_ccl, **links)
        self._reduce_prefill = (
            identity if single else partial(ccl.reduce_scatter_residual, cfg.tt_ccl, memory_config=dram, **links)
        )

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """x: [1, 1, batch rows (32), dim] in ``decode_input_memcfg``; consumed. Returns the residual-stream slice."""
        cfg = self.config
        x = load_input_device_tensor(x, memory_config=cfg.decode_input_memcfg, mesh_device=cfg.mesh_device)
        w1_out = self._linear(x, self.w1, cfg.decode_w1_w3_prg_config, cfg.ff1_3_compute_kernel_config)
        w3_out = self._linear(x, self.w3, cfg.decode_w1_w3_prg_config, cfg.ff1_3_compute_kernel_config)
        ttnn.deallocate(x)
        w2_in = swiglu_gate(w1_out, w3_out, cfg.activation, cfg.mul_dtype)
        w2_in = ttnn.to_memory_config(w2_in, cfg.decode_mlp2_input_memcfg)
        w2_out = self._linear(w2_in, self.w2, cfg.decode_w2_prg_config, cfg.ff2_compute_kernel_config)
        ttnn.deallocate(w2_in)
        out = self._reduce_decode(w2_out)
        return ttnn.to_memory_config(out, cfg.decode_residual_memcfg)

    def prefill_forward(self, x: ttnn.Tensor | LazyWeight, seq_len: int) -> ttnn.Tensor:
        """x: [1, 1, seq_len, dim] in DRAM; consumed. Returns [1, 1, seq_len, dim / devices] in DRAM."""
        cfg = self.config
        x = load_input_device_tensor(x, memory_config=cfg.prefill_input_memcfg, mesh_device=cfg.mesh_device)
        if seq_len >= cfg.prefill_len_cutoff:  # runtime: long sequences run as chunks of cutoff rows
            if seq_len % cfg.prefill_len_cutoff:
                raise ValueError(f"prefill seq_len {seq_len} must be a multiple of {cfg.prefill_len_cutoff}")
            x = ttnn.reshape(x, [1, seq_len // cfg.prefill_len_cutoff, cfg.prefill_len_cutoff, -1])
        dram = ttnn.DRAM_MEMORY_CONFIG
        pc13, pc2 = cfg.prefill_w1_w3_prg_config(seq_len), cfg.prefill_w2_prg_config(seq_len)
        w1_out = self._linear(x, self.w1, pc13, cfg.ff1_3_compute_kernel_config, dram)
        w3_out = self._linear(x, self.w3, pc13, cfg.ff1_3_compute_kernel_config, dram)
        ttnn.deallocate(x)
        w2_in = swiglu_gate(w1_out, w3_out, cfg.activation, cfg.mul_dtype)
        w2_out = self._linear(w2_in, self.w2, pc2, cfg.ff2_compute_kernel_config, dram)
        ttnn.deallocate(w2_in)
        w2_out = ttnn.reshape(w2_out, [1, 1, seq_len, w2_out.shape[-1]])
        return self._reduce_prefill(w2_out)

    def forward(self, x, mode: str, seq_len: int | None = None) -> ttnn.Tensor:
        """TTTv1-style entry point: ``mode`` is "decode" or "prefill"."""
        return self.decode_forward(x) if mode == "decode" else self.prefill_forward(x, seq_len or x.shape[-2])

    # --- factories -------------------------------------------------------------------------------------------
    @classmethod
    def from_model_args(cls, *positional, **keywords) -> "MLP1D":
        """TTTv1's MLP from a ModelArgs; takes MLP1DConfig.from_model_args's arguments (mesh_device, tt_ccl, args,
        state_dict, weight_cache_path, layer_num, state_dict_prefix=None)."""
        return cls.from_config(MLP1DConfig.from_model_args(*positional, **keywords))

    # --- ops shared by both forwards -------------------------------------------------------------------------
    def _linear(self, x, weight: ttnn.Tensor, program_config, compute_kernel_config, memory_config=None):
        return ttnn.linear(
            x,
            weight,
            dtype=self.config.linear_dtype,
            program_config=program_config,
            compute_kernel_config=compute_kernel_config,
            memory_config=memory_config or ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
        )


def default_prefill_len_cutoff(dim: int, num_devices: int) -> int:
    """Rows per prefill matmul call (TTTv1 ModelArgs.prefill_len_cutoff, including its L1 exceptions)."""
    if ttnn.device.is_blackhole():
        return BLACKHOLE_PREFILL_LEN_CUTOFF
    if (dim, num_devices) in SHORT_PREFILL_LEN_CUTOFF_SHAPES:
        return SHORT_PREFILL_LEN_CUTOFF
    return WORMHOLE_PREFILL_LEN_CUTOFF


def check_swiglu_weights(cfg: SwiGLUConfig, module: str) -> None:
    """One clear error for mismatched weight shapes or a ``padded_hidden_dim`` the hidden dim cannot pad to."""
    expected = {"w1": (cfg.dim, cfg.hidden_dim), "w3": (cfg.dim, cfg.hidden_dim), "w2": (cfg.hidden_dim, cfg.dim)}
    for name, shape in expected.items():
        got = getattr(cfg, name).shape
        if got != shape:
            raise ValueError(
                f"{module} {name} has shape {got}, expected {shape} (w1/w3: (dim, hidden), w2: transposed)"
            )
    if cfg.padded_hidden_dim < cfg.hidden_dim or cfg.padded_hidden_dim % (cfg.hidden_pieces * TILE_SIZE):
        raise ValueError(
            f"{module} padded_hidden_dim {cfg.padded_hidden_dim} must be >= hidden {cfg.hidden_dim} and split into "
            f"whole tiles over {cfg.hidden_pieces} pieces; leave it None for TTTv1's padding"
        )


def padded_weights(cfg: SwiGLUConfig, w1_w3: dict, w2: dict):
    """(name, weight zero-padded to ``padded_hidden_dim`` on upload, conversion fields) for w1, w3, w2."""
    hidden = cfg.padded_hidden_dim
    return (
        ("w1", zero_padded(cfg.w1, -1, hidden), w1_w3),
        ("w3", zero_padded(cfg.w3, -1, hidden), w1_w3),
        ("w2", zero_padded(cfg.w2, -2, hidden), w2),
    )


def swiglu_gate(w1_out, w3_out, activation, dtype):
    """act(w1_out) * w3_out with the activation fused on the first input; consumes both inputs."""
    out = ttnn.mul(
        w1_out, w3_out, input_tensor_a_activations=[activation], dtype=dtype, memory_config=w1_out.memory_config()
    )
    ttnn.deallocate(w1_out)
    ttnn.deallocate(w3_out)
    return out
