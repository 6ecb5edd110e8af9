# SPDX-License-Identifier: Apache-2.0
"""LMHead1D: the normed hidden state → logits, the vocabulary split over the devices of a 1D mesh (1x1, 1x2, 1x8).

    logits = x @ lm_head.weight.T      (HF lm_head.weight (vocab, dim); the embedding table when tied)

decode:  x [1, 1, 32, dim] width-sharded (decode_input_memcfg) → per split: DRAM-sharded linear → L1 interleaved
         → concat the splits → [1, 1, 32, padded vocab / N] per device
prefill: x [1, 1, rows, dim] in DRAM → slice the 32-row tile holding ``last_token`` → shard → as decode

Device d holds vocabulary columns [d·V/N, (d+1)·V/N) of the padded vocabulary V, uploaded as DRAM-sharded pieces of
at most ``max_columns_per_device`` columns ("too many columns per device lead to L1 OOM"), one matmul each; every
device returns its own slice; ``gather_logits`` all-gathers the slices and untilizes them on device and reads one
device into [32, vocab] (upstream TTTv1's decode: all_gather_async + untilize, then device 0). Defaults are TTTv1's
(models/tt_transformers/tt/lm_head.py + model_config.py): lm_head_core_grid, LM_HEAD_INPUT_MEMCFG, HiFi2 without
fp32 accumulation, bfloat8_b weights and logits.
"""

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, load_input_device_tensor, resolve_lazy_weight
from models.common.modules.lightweight_module import LightweightModule
from models.common.modules.module_config import DecodeBatchRows, ResolvableConfig, VocabTable
from models.common.tensor_utils import TILE_SIZE, nearest_multiple

WEIGHT_KEY = "output.weight"  # TTTv1 (Meta) name of HF lm_head.weight
# TTTv1 ModelArgs: "128256 / 4 was experimentally the maximum columns per device; on 48 cores that is 668 columns
# per core" (Wormhole); Blackhole takes 128256 / 8 columns per device.
WORMHOLE_COLUMNS_PER_CORE = 668
BLACKHOLE_COLUMNS_PER_DEVICE = 128256 // 8
LOGITS_GATHER_LINKS = 1  # upstream TTTv1 ttnn_decode_forward: the logits all-gather takes 1 link (2 on Galaxy)


@dataclass(frozen=True)
class LMHeadConfig(ResolvableConfig, DecodeBatchRows, VocabTable):
    """What LMHead1DConfig and LMHead2DConfig share; ``None`` fields are derived by the ``default_*`` methods.
    The weights are uploaded in splits: ``split_sizes[i]`` vocabulary columns per device, each with its weight
    memory config and program config."""

    weight: LazyWeight  # (vocab, dim): HF lm_head.weight (embed_tokens.weight when tied)
    mesh_device: Any = None
    tt_ccl: Any = None
    max_batch_size: int = pc.MAX_DECODE_BATCH
    padded_vocab_size: int | None = None
    weight_dtype: ttnn.DataType | None = None
    output_dtype: ttnn.DataType | None = None
    compute_kernel_config: Any = None
    core_grid: ttnn.CoreGrid | None = None  # cores the decode input is width-sharded over
    decode_input_memcfg: ttnn.MemoryConfig | None = None
    max_columns_per_device: int | None = None  # widest split (1D; Galaxy uploads one split)
    split_sizes: tuple[int, ...] | None = None
    weight_memcfgs: tuple[ttnn.MemoryConfig, ...] | None = None
    program_configs: tuple[Any, ...] | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"tt_ccl"})  # made when the module needs one
    WEIGHT_MAPPING: ClassVar[MeshMapping] = MeshMapping.shard(-1)  # of the (dim, vocab) splits

    @property
    def vocab_pieces(self) -> int:
        """Devices the vocabulary is split over (the others hold copies)."""
        return self.mesh_device.get_num_devices()

    @property
    def input_width(self) -> int:
        """Width of each device's decode input (dim, or its slice where dim is split)."""
        return self.dim

    @property
    def vocab_per_device(self) -> int:
        return self.padded_vocab_size // self.vocab_pieces

    def default_mesh_device(self):
        return self.weight.device or ttnn.GetDefaultDevice()

    def default_weight_dtype(self):
        return ttnn.bfloat8_b  # TTTv1 Transformer builds the LM head with the model dtype (bfloat8_b)

    def default_output_dtype(self):
        return ttnn.bfloat8_b  # TTTv1 lm_head.py: ttnn.linear(..., dtype=ttnn.bfloat8_b)

    def default_compute_kernel_config(self):
        return pc.hifi2_fp16_compute_kernel_config()  # TTTv1 lm_head.py: HiFi2, no fp32 accumulation, packer L1 acc

    def default_decode_input_memcfg(self):
        # TTTv1 LM_HEAD_INPUT_MEMCFG: [32, nearest_32(input width / cores)] on the core grid
        width = nearest_multiple(self.input_width // self.core_grid.num_cores, TILE_SIZE)
        return pc.width_sharded_l1_memcfg((self.tile_padded_batch_rows, width), self.core_grid)

    def split_source(self, index: int):
        """Host source of split ``index``: [dim, pieces · split] (zero columns past the vocabulary)."""
        start, size = sum(self.split_sizes[:index]), self.split_sizes[index]
        pieces, per_device = self.vocab_pieces, self.vocab_per_device
        return lambda: tensor_utils.lm_head_split(self.weight.host_tensor(), pieces, per_device, start, size)


@dataclass(frozen=True)
class LMHead1DConfig(LMHeadConfig):
    """Everything LMHead1D decides (TTTv1's choices by default)."""

    @classmethod
    def from_model_args(
        cls, args, mesh_device, tt_ccl, dtype, state_dict, state_dict_prefix, weight_cache_path, max_columns_per_device
    ) -> "LMHead1DConfig":
        """TTTv1's LMHead settings from a ModelArgs, same arguments (the only place LMHead1D touches TTTv1; retires
        with it). Host-side: nothing is uploaded."""
        return cls(
            **lm_head_model_args(args, mesh_device, tt_ccl, dtype, state_dict, state_dict_prefix, weight_cache_path),
            max_columns_per_device=max_columns_per_device,
        )

    def default_padded_vocab_size(self):
        # TTTv1 needs vocab % devices == 0 (whole tiles per device for the shipped models); padding to whole tiles
        # per device leaves those vocabularies as they are and lets the others run
        return tensor_utils.get_padded_hidden_dim(self.vocab_size, self.vocab_pieces)

    def default_core_grid(self):
        return pc.lm_head_core_grid(self.dim, galaxy=False)

    def default_max_columns_per_device(self):
        if ttnn.device.is_blackhole():
            return BLACKHOLE_COLUMNS_PER_DEVICE
        return WORMHOLE_COLUMNS_PER_CORE * self.core_grid.num_cores

    def default_split_sizes(self):
        # TTTv1 lm_head.py: full splits of max_columns_per_device, then the remaining columns
        full, rest = divmod(self.vocab_per_device, self.max_columns_per_device)
        return (self.max_columns_per_device,) * full + ((rest,) if rest else ())

    def default_weight_memcfgs(self):
        grid = self.mesh_device.dram_grid_size()
        return tuple(pc.create_dram_sharded_mem_config(self.dim, size, grid) for size in self.split_sizes)

    def default_program_configs(self):
        rows, cores = self.tile_padded_batch_rows, self.core_grid.num_cores
        return tuple(pc.dram_matmul_config(rows, self.dim, size, cores) for size in self.split_sizes)


class LMHeadModule(LightweightModule):
    """The LM head on a mesh; LMHead1D and LMHead2D set the config class, the meshes taken and the reduction."""

    CONFIG: ClassVar[type] = LMHeadConfig
    MESHES: ClassVar[tuple] = ()
    WRONG_MESH: ClassVar[str] = ""
    INPUT_MAPPING: ClassVar[MeshMapping] = MeshMapping.replicate()
    VOCAB_AXIS: ClassVar[int | None] = None  # the mesh axis the vocabulary slices lie along (None: the whole 1D mesh)
    LOGITS_GATHER_LINKS: ClassVar[int] = LOGITS_GATHER_LINKS

    def __init__(self, weight: LazyWeight, **overrides):
        self._init_from_config(self.CONFIG(weight=weight, **overrides))

    def _init_from_config(self, config: LMHeadConfig) -> None:
        cfg = config.resolve()
        shape = tuple(cfg.mesh_device.shape)
        if shape not in self.MESHES:
            raise ValueError(f"{type(self).__name__} runs on meshes {self.MESHES}, not {shape}; {self.WRONG_MESH}")
        if len(cfg.weight.shape) != 2:
            raise ValueError(f"LM head weight must be (vocab, dim) as HF lm_head.weight, got {cfg.weight.shape}")
        if not cfg.vocab_size <= cfg.padded_vocab_size == cfg.vocab_per_device * cfg.vocab_pieces:
            raise ValueError(
                f"padded_vocab_size {cfg.padded_vocab_size} must hold the vocabulary ({cfg.vocab_size}) and split "
                f"evenly over {cfg.vocab_pieces} devices; pass a larger multiple of {cfg.vocab_pieces * TILE_SIZE}"
            )
        if sum(cfg.split_sizes) != cfg.vocab_per_device:
            raise ValueError(f"split_sizes {cfg.split_sizes} must add up to {cfg.vocab_per_device} columns per device")
        self.config = cfg
        self.weights = {
            f"split_{i}": resolve_lazy_weight(
                LazyWeight(cfg.split_source(i), **_split_cache(cfg.weight, len(cfg.split_sizes), i)),
                dtype=cfg.weight_dtype,
                layout=ttnn.TILE_LAYOUT,
                memory_config=memcfg,
                mesh_mapping=cfg.WEIGHT_MAPPING,
                device=cfg.mesh_device,
            )
            for i, memcfg in enumerate(cfg.weight_memcfgs)
        }
        self.splits = [
            (weight.get_device_weight(), program_config)
            for weight, program_config in zip(self.weights.values(), cfg.program_configs, strict=True)
        ]
        self._reduce = self._build_reduce()
        self._gather_vocab = _identity
        if cfg.vocab_pieces > 1:  # the slices are gathered on device for gather_logits' one read
            self._gather_vocab = partial(self._all_gather_vocab, cfg.tt_ccl or ccl.get_tt_ccl(cfg.mesh_device))

    def _build_reduce(self):
        return _identity  # 1D: every device keeps its own vocabulary slice

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, x: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """x: [1, 1, 32, input width] normed, in ``decode_input_memcfg``; consumed. Returns the logits
        [1, 1, 32, vocab slice] per device in L1 (``gather_logits`` composes them)."""
        cfg = self.config
        x = self._load(x, cfg.decode_input_memcfg)
        outputs = []
        for weight, program_config in self.splits:
            out = ttnn.linear(
                x,
                weight,
                compute_kernel_config=cfg.compute_kernel_config,
                program_config=program_config,
                memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
                dtype=cfg.output_dtype,
            )
            outputs.append(ttnn.sharded_to_interleaved(out, ttnn.L1_MEMORY_CONFIG))
        ttnn.deallocate(x)
        logits = ttnn.concat(outputs, dim=-1, memory_config=ttnn.L1_MEMORY_CONFIG)
        return self._reduce(logits)

    def prefill_forward(self, x: ttnn.Tensor | LazyWeight, last_token: int) -> ttnn.Tensor:
        """x: [1, 1, rows, input width] normed prompt in DRAM (kept). Returns decode_forward's logits for the 32-row
        tile holding row ``last_token`` (its logits are row ``last_token % 32``)."""
        cfg = self.config
        x = self._load(x, ttnn.DRAM_MEMORY_CONFIG)
        if not 0 <= last_token < x.shape[-2]:
            raise ValueError(f"last_token {last_token} is not a row of the {x.shape[-2]}-row prefill input")
        start = last_token // TILE_SIZE * TILE_SIZE
        tile = ttnn.slice(x, (0, 0, start, 0), (1, 1, start + TILE_SIZE, x.shape[-1]))
        return self.decode_forward(ttnn.interleaved_to_sharded(tile, cfg.decode_input_memcfg))

    def forward(self, x: ttnn.Tensor) -> ttnn.Tensor:
        """TTTv1's call: x already in ``decode_input_memcfg`` (both modes)."""
        return self.decode_forward(x)

    @classmethod
    def from_model_args(cls, *positional, **keywords):
        """Drop-in for TTTv1's LMHead at its call site; takes the config's from_model_args arguments (args,
        mesh_device, tt_ccl, dtype, state_dict, state_dict_prefix, weight_cache_path, max_columns_per_device)."""
        return cls.from_config(cls.CONFIG.from_model_args(*positional, **keywords))

    def gather_logits(self, logits: ttnn.Tensor):
        """``decode_forward``'s logits (consumed) on the host, [32, vocab] (bfloat16 by default), padding dropped:
        ``read_rows(gather_rows(logits))``, the device rows freed."""
        rows = self.gather_rows(logits)
        host = self.read_rows(rows)
        ttnn.deallocate(rows)
        return host

    def gather_rows(self, logits: ttnn.Tensor) -> ttnn.Tensor:
        """The device part of ``gather_logits`` (upstream TTTv1's decode): the vocabulary slices (consumed)
        all-gathered and untilized, [1, 1, 32, padded vocab] row-major in DRAM on every device (a traced decode keeps
        them: 8 MB for a 128k vocabulary, which L1 cannot spare)."""
        whole = self._gather_vocab(logits)
        rows = ttnn.untilize(whole, memory_config=ttnn.DRAM_MEMORY_CONFIG, use_multicore=True)
        ttnn.deallocate(whole)
        return rows

    def read_rows(self, rows: ttnn.Tensor):
        """``gather_rows``' result (kept) on the host from one device, [32, vocab], padding dropped."""
        return tensor_utils.first_device_to_host(rows)[0, 0, :, : self.config.vocab_size]

    def _all_gather_vocab(self, tt_ccl, logits):
        """Every device's vocabulary slice, side by side on every device (DRAM); consumes ``logits``."""
        out = ccl.all_gather(
            tt_ccl,
            logits,
            dim=ccl.WIDTH_DIM,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            topology=ccl.default_topology(self.config.mesh_device),
            num_links=self.LOGITS_GATHER_LINKS,
            cluster_axis=self.VOCAB_AXIS,
        )
        ttnn.deallocate(logits)
        return out

    def _load(self, x, memory_config):
        if isinstance(x, LazyWeight):
            x = resolve_lazy_weight(x, mesh_mapping=self.INPUT_MAPPING)
        return load_input_device_tensor(x, memory_config=memory_config, mesh_device=self.config.mesh_device)


class LMHead1D(LMHeadModule):
    """LM head on a 1D mesh. ``LMHead1D(weight)``, ``from_config(cfg)``, ``from_model_args(...)``."""

    CONFIG = LMHead1DConfig
    MESHES = ccl.ONE_D_MESHES
    WRONG_MESH = "use LMHead2D on Galaxy (8x4, 4x8)"


def lm_head_model_args(args, mesh_device, tt_ccl, dtype, state_dict, state_dict_prefix, weight_cache_path) -> dict:
    """LMHeadConfig fields as TTTv1's LMHead takes them from a ModelArgs (shared by LMHead1D and LMHead2D)."""
    cached = weight_cache_path is not None and not args.dummy_weights
    cache = dict(cache_dir=weight_cache_path, cache_name="output_lm_head") if cached else {}
    return dict(
        weight=LazyWeight(state_dict[f"{state_dict_prefix}{WEIGHT_KEY}"], **cache),
        mesh_device=mesh_device,
        tt_ccl=tt_ccl,
        max_batch_size=args.max_batch_size,
        weight_dtype=dtype,
        core_grid=args.lm_head_core_grid,
        decode_input_memcfg=args.model_config["LM_HEAD_INPUT_MEMCFG"],
    )


def _split_cache(weight: LazyWeight, splits: int, index: int) -> dict:
    """Cache fields of split ``index``: TTTv1's name for it under the weight's own cache folder."""
    if weight.cache_dir is None:
        return {}
    key = None if weight.source_key is None else f"{weight.source_key}:lm_head_split_{index}_of_{splits}"
    return dict(
        cache_dir=weight.cache_dir, cache_name=f"{weight.cache_name}_{splits}_split_shard_{index}", source_key=key
    )


def _identity(x):
    return x
