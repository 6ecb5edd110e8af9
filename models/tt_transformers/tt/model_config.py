# SPDX-License-Identifier: Apache-2.0
"""TTTv1 ModelArgs: model hyper-parameters, device facts, precision settings and the ``model_config`` dict.

Names, keys and formulas are upstream tt-metal's (models/tt_transformers/tt/model_config.py); the formulas live
once in models/common/modules/program_configs.py. The model comes from ``hf_model`` or the HF_MODEL env var (a
checkpoint folder or a shipped config, see load_checkpoints.py). ``mesh_device`` is a ttnn.MeshDevice or, for
host-only use, a HostMesh. Left out from upstream: vision / Mixtral / MoE configs, tokenizers, prefill-chunk and
trace tables, and the per-model decoder-precision JSON overrides.
"""

import math
import os
import re
from enum import Enum
from functools import lru_cache
from pathlib import Path

import torch
import ttnn

from models.common.models import hf_loading
from models.common.models.hf_loading import RANDOM_WEIGHT_SEED
from models.common.modules import program_configs as pc
from models.common.modules.tt_ccl import default_topology
from models.common.tensor_utils import TILE_SIZE, nearest_multiple
from models.tt_transformers.tt import load_checkpoints as ckpt
from models.tt_transformers.tt import tg_program_configs as tg_pc

TILE = TILE_SIZE
SUPPORTED_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
GALAXY_DEVICES = 32
PREFILL_LEN_CUTOFF = {True: 512, False: 1024}  # is_blackhole -> rows per prefill MLP matmul ("512 if BH, 1024 if WH")
# Upstream lowers the cutoff to 512 where L1 runs out: {device_name: base model names}
SHORT_PREFILL_CUTOFF_MODELS = {
    "N150": ("Llama-3.1-8B", "Llama-3.2-11B", "Mistral-7B"),
    "N300": ("Qwen2.5-7B",),
    "T3K": ("Mixtral-8x7B",),
}
WORMHOLE_DEVICE_NAMES = {1: "N150", 2: "N300", 4: "N150x4", 8: "T3K", 32: "TG"}
BLACKHOLE_DEVICE_NAMES = {2: "P300", 4: "P150x4", 8: "P150x8", 32: "BHGLX"}
P100_DRAM_BANKS = 7  # a single Blackhole with 7 DRAM banks is a P100, with 8 a P150
WORMHOLE_DRAM_SHARD_GRID_WIDTH = 8  # prefill per_core_N matches the DRAM shard width: 8 on WH, dram_grid.x on BH
PREFILL_GRID_ROWS = 8  # "set the prefill grid row to 8, even if it can fit in a smaller grid"
# PAD_MLP_CORES default per base model: pad hidden_dim to a multiple of cores * 32 * num_devices
DEFAULT_PAD_MLP_CORES = {"Qwen2.5-VL-72B": 32, "Qwen2.5-VL-32B": 16, "Qwen2.5-72B": 32, "Qwen2.5-7B": 16, "QwQ-32B": 16}
QWEN25_7B_DEVICE_COUNTS = (0, 2, 4)  # upstream supports Qwen2.5-7B(-VL) only on 2 or 4 devices (0: CPU)
GALAXY_PADDED_VOCAB = 128 * 1024
KV_SHARD_CORES = 8 * 8  # min_kv_prefill_shard_seqlen: the KV prefill shard spreads over an 8x8 block
LARGE_DIM = 8192  # dim == 8192 (70B-class) models take the composite CCL / dedicated memory-config paths
MLP_ACT_MIN_DIM = 4096  # MLP_ACT_MEMCFG / CREATE_HEAD_INPUT_MEMCFG are sharded from dim 4096 on
# TTTv1 hard-codes 4 mesh columns and 8 mesh rows of a Galaxy (8x4) in its TG memory configs
TG_COLS, TG_ROWS = 4, 8
TG_FF1_OUT_CORES = 28  # FF1_OUT_REDUCE_SCATTER_MEMCFG: 7x4 cores (0,0)-(6,3)
TG_QKV_GATHER_CORES = {8192: 40, 4096: 24, 3072: 20}  # QKV_OUT_GATHERED_MEMCFG cores by dim (else 12)
TG_QKV_GATHER_CORES_OTHER = 12
TG_HEAD_INPUT_CORES = 40  # CREATE_HEAD_INPUT_MEMCFG: [32, 32] shards on 40 cores
TG_XQKV_ROWS_70B = 5  # XQKV_DECODE_PROGCFG grid (8, 5) and in0_block_w 2 for Llama 70B/90B on Galaxy
TG_MLP_1D_GRID = ttnn.CoreGrid(x=8, y=2)  # FF1_3_TG_PROGCFG / FF2_TG_PROGCFG grid
TG_SELF_OUT_DIM_8192_WIDTH = 2048  # SELF_OUT_REDUCE_SCATTER_MEMCFG for dim 8192: [32, 2048 / 8 / 8]
# "128256 / 4 was experimentally the maximum columns per device; on 48 cores that is 668 columns per core"
LM_HEAD_COLUMNS_PER_CORE = 668
BLACKHOLE_LM_HEAD_COLUMNS = 128256 // 8
FULL_GRID_SHARD_WIDTH = 56  # FULL_GRID_MEMCFG: [32, nearest_32(56)] on the 8x8 block
QKV_HEADS_DECODE_CORES = ttnn.CoreGrid(y=4, x=8)  # CREATE_QKV_DECODE_SHARD on Blackhole
OP_KEYS = (
    "EMB_WEIGHTS",
    "MLP_WEIGHTS",
    "FF1_OUTPUT",
    "FF3_OUTPUT",
    "FF2_OUTPUT",
    "MLP_W_LAYOUT",
    "ATTN_WEIGHTS",
    "XQKV_MM_OUTPUT",
    "QKV_HEADS_OUTPUT",
    "QV_ROT_EMB_OUTPUT",
    "KV_UNPAD_OUTPUT",
    "QK_MM_OUTPUT",
    "QKV_MM_OUTPUT",
    "CONCAT_HEADS_OUTPUT",
    "ATTN_OUTPUT",
    "ATTN_W_LAYOUT",
    "DECODE_RESIDUAL",
    "OUTPUT_MM",
    "GATE_W_LAYOUT",
    "GATE_WEIGHTS",
    "GATE_MM_OUTPUT",
)
TEXT_MODULE_PREFIX = {"MLP": "feed_forward", "Attention": "attention", "TransformerBlock": "", "": ""}
WEIGHT_CACHE_DIRS = {ttnn.bfloat16: "tensor_cache_bf16", ttnn.bfloat8_b: "tensor_cache_bfp8"}
INSTRUCT_WEIGHT_CACHE_DIRS = {ttnn.bfloat16: "tensor_cache_instruct_bf16", ttnn.bfloat8_b: "tensor_cache_instruct_bfp8"}


class TensorGroup(Enum):
    FF1_FF3 = "ff1_3"
    FF2 = "ff2"
    WQKV = "wqkv"
    WO = "wo"
    KV_CACHE = "kv_cache"
    ACTIVATION = "activation"


class PrecisionSetting(Enum):
    BFP4 = "bfp4"
    BFP8 = "bfp8"
    BF16 = "bf16"


class OpGroup(Enum):
    """LI_* are linear operator groups, SDPA_* scaled_dot_product_attention; ACCURACY is not an op."""

    LI_FF1_FF3 = "li_ff1_3"
    LI_FF2 = "li_ff2"
    LI_QKV_DECODE = "li_qkv_decode"
    LI_O_DECODE = "li_o_decode"
    SDPA_DECODE = "sdpa_decode"
    LI_QKV_PREFILL = "li_qkv_prefill"
    LI_O_PREFILL = "li_o_prefill"
    SDPA_PREFILL = "sdpa_prefill"
    ACCURACY = "accuracy"


class MathFidelitySetting(Enum):
    LOFI = "lofi"
    HIFI2 = "hifi2"
    HIFI2_NA = "hifi2na"  # packer_l1_acc=False and fp32_dest_acc_en=False
    HIFI2_FP16 = "hifi2fp16"  # fp32_dest_acc_en=False
    HIFI4 = "hifi4"
    HIFI4_FP32 = "hifi4fp32"


PRECISION_DTYPES = {
    PrecisionSetting.BFP4: ttnn.bfloat4_b,
    PrecisionSetting.BFP8: ttnn.bfloat8_b,
    PrecisionSetting.BF16: ttnn.bfloat16,
}
# MathFidelitySetting -> pc.COMPUTE_KERNEL_CONFIGS key, also ModelArgs.compute_kernel_config_<key>
FIDELITY_CONFIG_NAMES = {
    MathFidelitySetting.LOFI: "lofi",
    MathFidelitySetting.HIFI2: "hifi2",
    MathFidelitySetting.HIFI2_NA: "hifi2_na",
    MathFidelitySetting.HIFI2_FP16: "hifi2_fp16",
    MathFidelitySetting.HIFI4: "hifi4",
    MathFidelitySetting.HIFI4_FP32: "hifi4_fp32",
}
# ModelOptimizations.accuracy: >70B models "test insensitive" to precision keep BFP4 MLPs
LARGE_BFP4_MODELS = ("Llama-3.1-70B", "Llama-3.2-90B", "DeepSeek-R1-Distill-Llama-70B", "Qwen2.5-72B")
# "Llama 3, Mistral 7B and Phi3-mini models test insensitive to attention precision": BFP8 attention in accuracy mode
BFP8_ATTENTION_PREFIXES = ("Llama-3", "Mistral-7B", "Phi-3-mini", "phi-4")
BF16_ATTENTION_PERFORMANCE_MODELS = ("Qwen2.5-7B", "Qwen2.5-VL-7B")  # degraded by BFP8 attention in performance mode
BF16_ATTENTION = {
    "TensorPrecision": {t: PrecisionSetting.BF16 for t in (TensorGroup.WQKV, TensorGroup.KV_CACHE, TensorGroup.WO)},
    "OpFidelity": {
        op: MathFidelitySetting.HIFI4
        for op in (
            OpGroup.LI_QKV_DECODE,
            OpGroup.LI_QKV_PREFILL,
            OpGroup.SDPA_DECODE,
            OpGroup.SDPA_PREFILL,
            OpGroup.LI_O_DECODE,
            OpGroup.LI_O_PREFILL,
        )
    },
}
BFP4_MLP = {
    "TensorPrecision": {TensorGroup.FF1_FF3: PrecisionSetting.BFP4},
    "OpFidelity": {OpGroup.LI_FF1_FF3: MathFidelitySetting.LOFI},
}


def get_base_model_name(model_name: str) -> str:
    """Cut the suffix after the size: "Llama-3.1-70B-Instruct" -> "Llama-3.1-70B" (upstream common.py)."""
    match = re.search(r"(.*?\d+[bB])-", model_name)
    return match.group(1) if match else model_name


class ModelOptimizations:
    """Tensor precisions and op fidelities of one decoder: BFP8 / HiFi2 by default (see _default_settings)."""

    @classmethod
    def accuracy(cls, model_name):
        base = get_base_model_name(model_name)
        if base in LARGE_BFP4_MODELS:
            inst = cls(BFP4_MLP)
        elif base.startswith(BFP8_ATTENTION_PREFIXES):
            settings = {
                "TensorPrecision": {
                    t: PrecisionSetting.BFP8 for t in (TensorGroup.WQKV, TensorGroup.KV_CACHE, TensorGroup.WO)
                },
                "OpFidelity": {
                    OpGroup.LI_FF1_FF3: MathFidelitySetting.HIFI2_FP16,
                    OpGroup.LI_FF2: MathFidelitySetting.HIFI2_FP16,
                },
            }
            if model_name.startswith("Phi-3-mini"):  # runs out of L1: FP16 accumulation in prefill QKV
                settings["OpFidelity"][OpGroup.LI_QKV_PREFILL] = MathFidelitySetting.HIFI2_FP16
            inst = cls(settings)
        else:
            inst = cls(BF16_ATTENTION)
        inst.__name__ = "accuracy"
        return inst

    @classmethod
    def performance(cls, model_name):
        if get_base_model_name(model_name) in BF16_ATTENTION_PERFORMANCE_MODELS:
            inst = cls(BF16_ATTENTION)
        else:
            settings = {key: dict(value) for key, value in BFP4_MLP.items()}
            if model_name.startswith("Phi-3-mini"):
                settings["OpFidelity"][OpGroup.LI_QKV_PREFILL] = MathFidelitySetting.HIFI2_FP16
            inst = cls(settings)
        inst.__name__ = "performance"
        return inst

    def __init__(self, settings: dict | None = None):
        settings = settings or {}
        self._validate(settings)
        self._opt_settings = self._default_settings()
        for key in ("TensorPrecision", "OpFidelity"):
            self._opt_settings[key].update(settings.get(key, {}))
        tensors = ", ".join(f"{t.value}: {v.value if v else 'mixed'}" for t, v in self.tensor_dtype_settings.items())
        ops = ", ".join(f"{op.value}: {v.value}" for op, v in self.op_fidelity_settings.items())
        self._full_name = f"precision_cfg = {{{tensors}}}, fidelity_cfg = {{{ops}}}"
        self.__name__ = self._full_name

    @staticmethod
    def _validate(settings: dict):
        unknown = set(settings) - {"TensorPrecision", "OpFidelity"}
        if unknown:
            raise ValueError(f"Invalid settings keys: {unknown}. Must be TensorPrecision and/or OpFidelity")
        for key, value in settings.get("TensorPrecision", {}).items():
            if not isinstance(key, TensorGroup) or not isinstance(value, PrecisionSetting):
                raise ValueError(f"TensorPrecision {key}: {value} must map a TensorGroup to a PrecisionSetting")
        for key, value in settings.get("OpFidelity", {}).items():
            if not isinstance(key, OpGroup) or not isinstance(value, MathFidelitySetting):
                raise ValueError(f"OpFidelity {key}: {value} must map an OpGroup to a MathFidelitySetting")

    @staticmethod
    def _default_settings():
        """BFP8 / HiFi2 everywhere; MLPs accumulate in FP16 to save L1; prefill SDPA in HiFi4; activations keep
        the input dtype (None)."""
        return {
            "TensorPrecision": {
                TensorGroup.FF1_FF3: PrecisionSetting.BFP8,
                TensorGroup.FF2: PrecisionSetting.BFP8,
                TensorGroup.WQKV: PrecisionSetting.BFP8,
                TensorGroup.WO: PrecisionSetting.BFP8,
                TensorGroup.KV_CACHE: PrecisionSetting.BFP8,
                TensorGroup.ACTIVATION: None,
            },
            "OpFidelity": {
                OpGroup.LI_FF1_FF3: MathFidelitySetting.HIFI2_FP16,
                OpGroup.LI_FF2: MathFidelitySetting.HIFI2_FP16,
                OpGroup.LI_QKV_DECODE: MathFidelitySetting.HIFI2,
                OpGroup.SDPA_DECODE: MathFidelitySetting.HIFI2,
                OpGroup.LI_O_DECODE: MathFidelitySetting.HIFI2,
                OpGroup.LI_QKV_PREFILL: MathFidelitySetting.HIFI2,
                OpGroup.SDPA_PREFILL: MathFidelitySetting.HIFI4,
                OpGroup.LI_O_PREFILL: MathFidelitySetting.HIFI2,
                OpGroup.ACCURACY: MathFidelitySetting.HIFI4_FP32,
            },
        }

    @property
    def tensor_dtype_settings(self):
        return self._opt_settings["TensorPrecision"]

    @property
    def op_fidelity_settings(self):
        return self._opt_settings["OpFidelity"]


class DecodersPrecision:
    """One ModelOptimizations per decoder layer."""

    @classmethod
    def from_string(cls, optimizations: str):
        if optimizations not in ("accuracy", "performance"):
            raise ValueError(f"Invalid optimization configuration {optimizations!r}: use 'performance' or 'accuracy'")
        return getattr(cls, optimizations)

    @classmethod
    def accuracy(cls, num_decoders, model_name):
        inst = cls(num_decoders, model_name, ModelOptimizations.accuracy(model_name))
        inst.__name__ = "accuracy"
        return inst

    @classmethod
    def performance(cls, num_decoders, model_name):
        inst = cls(num_decoders, model_name, ModelOptimizations.performance(model_name))
        inst.__name__ = "performance"
        return inst

    def __init__(self, num_decoders, model_name, decoder_conf: ModelOptimizations | None = None):
        decoder_conf = decoder_conf or ModelOptimizations.accuracy(model_name)
        self.decoder_optimizations = dict.fromkeys(range(num_decoders), decoder_conf)
        self._update_full_name()

    def set_decoder_conf(self, decoder_id, conf: ModelOptimizations):
        self.decoder_optimizations[decoder_id] = conf
        self._update_full_name()

    def get_tensor_dtype(self, decoder_id, tensor: TensorGroup):
        """The ttnn dtype for ``tensor`` in decoder ``decoder_id``; None means keep the original dtype."""
        conf = self.decoder_optimizations.get(decoder_id)
        setting = conf.tensor_dtype_settings.get(tensor) if conf else None
        return PRECISION_DTYPES.get(setting)

    def get_math_fidelity(self, decoder_id, op: OpGroup, configuration):
        """The compute kernel config (an attribute of ``configuration``, a ModelArgs) for ``op``."""
        setting = self.decoder_optimizations[decoder_id].op_fidelity_settings[op]
        return getattr(configuration, f"compute_kernel_config_{FIDELITY_CONFIG_NAMES[setting]}")

    def _update_full_name(self):
        self._full_name = " | ".join(
            f"Decoder {decoder_id}: {conf._full_name}" for decoder_id, conf in self.decoder_optimizations.items()
        )


def determine_device_name(mesh_device) -> str:
    """N150/N300/N150x4/T3K/TG on Wormhole; P100/P150/P300/P150x4/P150x8/BHGLX on Blackhole."""
    num_devices = mesh_device.get_num_devices()
    if mesh_device.arch() == ttnn.Arch.BLACKHOLE:
        if num_devices == 1:
            return "P100" if mesh_device.dram_grid_size().x == P100_DRAM_BANKS else "P150"
        names = BLACKHOLE_DEVICE_NAMES
    else:
        names = WORMHOLE_DEVICE_NAMES
    if num_devices not in names:
        raise ValueError(f"Unsupported number of devices: {num_devices} on {mesh_device.arch()}")
    return names[num_devices]


class ModelArgs:
    """TTTv1 model arguments for ``mesh_device`` (a ttnn.MeshDevice or a HostMesh).

    ``hf_model`` overrides the HF_MODEL env var. A shipped config (no checkpoint) or ``dummy_weights`` gives seeded
    random weights; ``load_state_dict()`` returns weights in TTTv1 (Meta) naming for the first ``n_layers`` layers
    (set ``n_layers`` lower before loading to load fewer).
    """

    MAX_QKV_MM_SEQ_LEN = pc.MAX_QKV_MM_SEQ_LEN
    OP_KEYS = OP_KEYS

    def __init__(
        self,
        mesh_device,
        instruct=False,
        dummy_weights=False,
        max_batch_size=1,
        max_seq_len=1024 * 128,
        optimizations=None,
        cache_hf=False,
        hf_model: str | None = None,
    ):
        if mesh_device is None:
            raise ValueError("ModelArgs needs a mesh device: pass a ttnn.MeshDevice, or HostMesh.for_shape(shape)")
        if max_batch_size not in SUPPORTED_BATCH_SIZES:
            raise ValueError(f"Batch size {max_batch_size} not supported: use one of {SUPPORTED_BATCH_SIZES}")
        self.mesh_device = mesh_device
        self.num_devices = mesh_device.get_num_devices()
        self.cluster_shape = list(mesh_device.shape)
        self.is_galaxy = self.num_devices == GALAXY_DEVICES
        self.is_multichip = self.num_devices > 1
        self.is_blackhole = mesh_device.arch() == ttnn.Arch.BLACKHOLE
        self.dram_grid_size = mesh_device.dram_grid_size()
        self.device_name = determine_device_name(mesh_device)
        self.max_seq_len = max_seq_len
        self.max_batch_size = max_batch_size
        self.tile_size = TILE
        self.tile_padded_batch_rows = TILE * math.ceil(max_batch_size / TILE)
        self.prefill_len_cutoff = PREFILL_LEN_CUTOFF[self.is_blackhole]
        self.cache_hf_flag = cache_hf
        self.cached_hf_model = None  # the HF reference model, kept when cache_hf (see reference.py)
        self.num_reduce_scatter_links = 1
        self.num_all_gather_links = 2 if self.is_galaxy else 1
        self.ccl_dtype = ttnn.bfloat8_b

        # Model selection
        self.source = ckpt.resolve_model(hf_model)
        self.dummy_weights = dummy_weights or self.source.checkpoint_dir is None
        self.CKPT_DIR = str(self.source.name)
        self.model_name = self.CKPT_DIR.strip("/").split("/")[-1]
        # Upstream quirk kept: any checkpoint name containing "instruct" or "it" counts as instruct
        self.instruct = instruct or any(word in self.CKPT_DIR.lower() for word in ("instruct", "it"))
        cache_root = os.environ.get("TT_CACHE_PATH") or os.path.join("model_cache", self.CKPT_DIR)
        self.model_cache_path = Path(cache_root) / self.device_name
        self.hf_config = ckpt.load_hf_config(self.source.config_dir)
        self._set_params_from_hf_config()

        if self.base_model_name in SHORT_PREFILL_CUTOFF_MODELS.get(self.device_name, ()):
            self.prefill_len_cutoff = PREFILL_LEN_CUTOFF[True]

        optimizations = optimizations(self) if callable(optimizations) else optimizations
        self.optimizations = optimizations or DecodersPrecision.accuracy(self.n_layers, self.model_name)

        for name in FIDELITY_CONFIG_NAMES.values():
            setattr(self, f"compute_kernel_config_{name}", pc.compute_kernel_config(name))
        self.compute_kernel_config_sdpa = pc.compute_kernel_config("sdpa")
        self._set_device_params()
        self.model_config = self._build_model_config()

    # ---- model parameters ------------------------------------------------------------------------------------

    def _set_params_from_hf_config(self):
        config = ckpt.text_config(self.hf_config)
        self.is_multimodal = config is not self.hf_config
        self.dim = config.hidden_size
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_key_value_heads
        # multimodal llama counts its cross-attention layers in num_hidden_layers
        self.n_layers = config.num_hidden_layers - len(getattr(config, "cross_attention_layers", None) or ())
        self.full_model_n_layers = self.n_layers
        self.norm_eps = config.rms_norm_eps
        self.vocab_size = config.vocab_size
        self.padded_vocab_size = GALAXY_PADDED_VOCAB if self.is_galaxy else None
        self.head_dim = getattr(config, "head_dim", None) or self.dim // self.n_heads
        self.max_context_len = config.max_position_embeddings
        self.hidden_dim = config.intermediate_size
        self.unpadded_hidden_dim = self.hidden_dim
        # transformers 5 keeps rope_theta and the scaling in rope_parameters; older configs at the top level
        rope = dict(getattr(config, "rope_parameters", None) or {})
        self.rope_theta = rope.get("rope_theta", getattr(config, "rope_theta", None))
        scaling = getattr(config, "rope_scaling", None) or rope
        self.rope_scaling = scaling if scaling.get("rope_type", "default") != "default" else None
        self.orig_context_len = (self.rope_scaling or {}).get("original_max_position_embeddings")
        self.qk_norm = self.hf_config.model_type == "qwen3"  # Qwen3: per-head RMSNorm on q and k
        # attention.py: query scaling (Gemma), sliding-window layers (HF layer_types), unit-offset q/k norms
        self.query_pre_attn_scalar = getattr(config, "query_pre_attn_scalar", None)
        self.sliding_window = getattr(config, "sliding_window", None)
        self.layer_types = getattr(config, "layer_types", None)
        self.rms_norm_add_unit_offset = False
        # decode: fused Q/K rotary embedding and paged cache update. Not on a Galaxy: there TTTv1's RotarySetup splits
        # the doubled users over the mesh columns and then rejects every batch's positions (upstream asserts the same)
        self.use_qk_fused = not self.is_multimodal and not self.is_galaxy
        self.mlp_activation_type = _activation_type(config.hidden_act)

        # Llama vision models: upstream drops "-Vision" and marks 70B/90B for the Galaxy XQKV config
        self.is_70b = "3.1-70B" in self.CKPT_DIR
        self.is_90b = "3.2-90B" in self.CKPT_DIR
        for size in ("3.2-11B", "3.2-90B"):
            if "llama" in self.model_name.lower() and size in self.CKPT_DIR:
                self.model_name = f"Llama-{size}" + ("-Instruct" if self.instruct else "")

        if self.base_model_name in ("Qwen2.5-7B", "Qwen2.5-VL-7B") and self.num_devices not in QWEN25_7B_DEVICE_COUNTS:
            raise ValueError(
                f"{self.model_name} is only supported on 2 or 4 devices (got {self.num_devices}): run on an N300 (1x2)"
            )
        pad_cores = int(os.environ.get("PAD_MLP_CORES", DEFAULT_PAD_MLP_CORES.get(self.base_model_name, 0)))
        if pad_cores > 0:
            self.hidden_dim = nearest_multiple(self.hidden_dim, pad_cores * TILE * self.num_devices)

    @property
    def base_model_name(self):
        return get_base_model_name(self.model_name)

    @property
    def use_scaled_rope(self):
        return self.rope_scaling is not None

    def _set_device_params(self):
        if self.n_heads % self.cluster_shape[1]:
            raise ValueError(
                f"n_heads ({self.n_heads}) must be divisible by the mesh columns ({self.cluster_shape[1]})"
            )
        if self.n_kv_heads % self.cluster_shape[1]:
            raise ValueError(
                f"n_kv_heads ({self.n_kv_heads}) must be divisible by the mesh columns ({self.cluster_shape[1]}): "
                f"{self.model_name} does not run on a {self.cluster_shape[0]}x{self.cluster_shape[1]} mesh"
            )
        self.n_local_heads = self.n_heads // self.cluster_shape[1]
        grid = self.mesh_device.compute_with_storage_grid_size()
        self.max_grid_size = ttnn.CoreGrid(x=grid.x, y=grid.y)
        last = ttnn.CoreCoord(self.dram_grid_size.x - 1, self.dram_grid_size.y - 1)
        self.dram_weight_grid = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), last)})
        self.qkv_size = self.head_dim * (2 * self.n_kv_heads + self.n_heads)
        self.min_kv_prefill_shard_seqlen = (TILE * KV_SHARD_CORES) / (self.n_kv_heads // self.cluster_shape[1])
        self.dram_shard_grid_width = self.dram_grid_size.x if self.is_blackhole else WORMHOLE_DRAM_SHARD_GRID_WIDTH
        self.lm_head_core_grid = self._lm_head_core_grid()
        self.max_columns_per_device_lm_head = (
            BLACKHOLE_LM_HEAD_COLUMNS
            if self.is_blackhole
            else LM_HEAD_COLUMNS_PER_CORE * self.lm_head_core_grid.num_cores
        )

    def _lm_head_core_grid(self) -> ttnn.CoreGrid:
        try:
            return pc.lm_head_core_grid(self.dim, self.is_galaxy)
        except ValueError as error:
            raise ValueError(
                f"{error}: {self.model_name} does not run on a {self.cluster_shape[0]}x{self.cluster_shape[1]} mesh"
            ) from error

    # ---- model_config ----------------------------------------------------------------------------------------

    def _build_model_config(self) -> dict:
        mc = {
            f"{key}_MEMCFG": ttnn.DRAM_MEMORY_CONFIG if "WEIGHTS" in key else ttnn.L1_MEMORY_CONFIG for key in OP_KEYS
        }
        mc.update({f"{key}_TILE": ttnn.TILE_LAYOUT for key in OP_KEYS if "LAYOUT" in key})
        mc["DECODERS_OPTIMIZATIONS"] = self.optimizations
        mc["COMPUTE_KERNEL_CONFIG_HIFI2"] = self.compute_kernel_config_hifi2
        mc.update(self._decode_configs())
        mc.update(self._prefill_configs(mc["USE_FUSED_ALL_GATHER_MATMUL"]))
        mc.update(self._tg_mlp_configs())
        mc.update(self._tg_attention_configs())
        return mc

    def _decode_configs(self) -> dict:
        B, N, dim = self.tile_padded_batch_rows, self.num_devices, self.dim
        residual_grid = pc.dram_shard_core_grid_for_k(dim // N)
        mlp_core_grid = (
            pc.dram_shard_core_grid_for_k(dim)
            if self.is_galaxy
            else pc.dram_shard_core_grid_for_k_and_n(dim, self.hidden_dim // N)
        )
        mlp2_core_grid = (
            ttnn.CoreGrid(y=1, x=8)
            if self.is_galaxy
            else pc.dram_shard_core_grid_for_k_and_n(self.hidden_dim // N, dim)
        )
        attn_input_grid = pc.dram_shard_core_grid_for_k(dim)
        lm_rows = self.lm_head_core_grid.y
        fused_ag_mm = N == 8 and os.getenv("ACTUAL_DEVICE", "") != "TG" and (dim // TILE // N) % N == 0
        mc = {
            # FIXME upstream: L1 interleaved on Galaxy until residual add typecasts sharded tensors
            "DECODE_RESIDUAL_MEMCFG": (
                ttnn.L1_MEMORY_CONFIG
                if self.is_galaxy
                else pc.width_sharded_l1_memcfg((B, dim // residual_grid.num_cores // N), residual_grid)
            ),
            # "Note: for some models (e.g. Mistral-Small) n_heads * head_dim != dim"
            "ATTN_OUTPUT_PROGCFG": (
                None
                if self.is_galaxy
                else pc.dram_matmul_config(B, self.n_heads * self.head_dim // N, dim, self.n_heads // N)
            ),
            "USE_FUSED_ALL_GATHER_MATMUL": fused_ag_mm,
            "ATTN_ALL_GATHER_MATMUL_PROGCFG": self._all_gather_matmul_config() if fused_ag_mm else None,
            "LM_HEAD_INPUT_MEMCFG": pc.width_sharded_l1_memcfg(
                (B, _nearest_32((dim // (TG_COLS if self.is_galaxy else 1)) // self.lm_head_core_grid.num_cores)),
                self.lm_head_core_grid,
            ),
            "CREATE_QKV_DECODE_SHARD": (
                pc.height_sharded_l1_memcfg((TILE, self.head_dim), QKV_HEADS_DECODE_CORES)
                if self.is_blackhole
                else ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG
            ),
            "SDPA_DECODE_PROGCFG": pc.sdpa_decode_config(),
            "SDPA_DECODE_COMPUTE_PROGCFG": pc.compute_kernel_config("sdpa_decode"),
            "SCORES_BATCHED_MM_OUTPUT_MEMCFG": lambda batch: pc.scores_memcfg(batch, self.n_local_heads, self.head_dim),
            "SHARDED_MLP_INPUT_MEMCFG": pc.width_sharded_l1_memcfg((B, dim // mlp_core_grid.num_cores), mlp_core_grid),
            "DECODE_MLP_W1_W3_PRG_CONFIG": pc.dram_matmul_config(
                B, dim, self.hidden_dim // self.cluster_shape[1], mlp_core_grid.num_cores
            ),
            "SHARDED_MLP2_INPUT_MEMCFG": pc.width_sharded_l1_memcfg(
                (TILE if self.is_galaxy else B, self.hidden_dim // self.cluster_shape[1] // mlp2_core_grid.num_cores),
                mlp2_core_grid,
            ),
            "DECODE_MLP_W2_PRG_CONFIG": pc.dram_matmul_config(
                B, self.hidden_dim // self.cluster_shape[1], dim, mlp2_core_grid.num_cores
            ),
            "SHARDED_ATTN_INPUT_MEMCFG": (
                pc.width_sharded_l1_memcfg(
                    (TILE, _nearest_32(dim // (pc.CORES_PER_ROW * lm_rows) // TG_COLS)),
                    ttnn.CoreGrid(y=lm_rows, x=8),
                )
                if self.is_galaxy
                else pc.width_sharded_l1_memcfg((B, dim // attn_input_grid.num_cores), attn_input_grid)
            ),
            # Galaxy has no DRAM-sharded matmuls yet
            "XQKV_DECODE_PROGCFG": (
                self._tg_xqkv_decode_config(lm_rows)
                if self.is_galaxy
                else pc.dram_matmul_config(B, dim, self.qkv_size // N, attn_input_grid.num_cores)
            ),
            "SHARDED_NORM_ATTN_PRGM_CFG": pc.create_sharded_norm_config(attn_input_grid, dim, B),
            "SHARDED_NORM_MLP_PRGM_CFG": pc.create_sharded_norm_config(mlp_core_grid, dim, B),
            "SHARDED_NORM_LM_HEAD_PRGM_CFG": pc.create_sharded_norm_config(self.lm_head_core_grid, dim, B),
            # All-gather matmuls (T3K only) need the output sharded on num_devices cores
            "ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG": ttnn.MemoryConfig(
                ttnn.TensorMemoryLayout.WIDTH_SHARDED,
                ttnn.BufferType.L1,
                ttnn.ShardSpec(
                    ttnn.CoreRangeSet({pc.num_to_corerange(N)}), [B, dim // N], ttnn.ShardOrientation.ROW_MAJOR
                ),
            ),
        }
        full_grid = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(7, 7))})
        mc["FULL_GRID_MEMCFG"] = ttnn.MemoryConfig(
            ttnn.TensorMemoryLayout.WIDTH_SHARDED,
            ttnn.BufferType.L1,
            ttnn.ShardSpec(full_grid, [TILE, _nearest_32(FULL_GRID_SHARD_WIDTH)], ttnn.ShardOrientation.ROW_MAJOR),
        )
        mc["MLP_ACT_MEMCFG"] = (
            pc.width_sharded_l1_memcfg((TILE, dim // TG_COLS // TG_MLP_1D_GRID.num_cores), TG_MLP_1D_GRID)
            if dim >= MLP_ACT_MIN_DIM
            else mc["FULL_GRID_MEMCFG"]
        )
        return mc

    def _all_gather_matmul_config(self):
        """ATTN_ALL_GATHER_MATMUL_PROGCFG: [32 x dim] x [dim x dim/N] on an 8x1 grid (fused AG+MM supports num x 1)."""
        cores = 8
        per_core_n = self.dim // self.num_devices // TILE // cores
        return ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig(
            compute_with_storage_grid_size=(cores, 1),
            in0_block_w=self.dim // TILE // cores,
            out_subblock_h=1,
            out_subblock_w=pc.get_out_subblock_w(per_core_n, 1),
            per_core_M=self.tile_padded_batch_rows // TILE,
            per_core_N=per_core_n,
            fuse_batch=True,
            fused_activation=None,
            mcast_in0=True,
        )

    def _tg_xqkv_decode_config(self, lm_rows: int):
        large = self.is_70b or self.is_90b
        return ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig(
            compute_with_storage_grid_size=(8, TG_XQKV_ROWS_70B if large else lm_rows),
            in0_block_w=2 if large else 1,
            out_subblock_h=1,
            out_subblock_w=1,
            per_core_M=1,
            per_core_N=1,
            fuse_batch=True,
            fused_activation=None,
            mcast_in0=True,
        )

    def _prefill_configs(self, fused_ag_mm: bool) -> dict:
        dim, hidden, rows_shape, cols_shape = self.dim, self.hidden_dim, *self.cluster_shape
        galaxy, width = self.is_galaxy, self.dram_shard_grid_width

        def galaxy_grid(seq_len):  # (8, min(min(seq_len, 1024) // 32, 4)) on Galaxy
            return (8, min(min(seq_len, pc.MAX_MM_SEQ_LEN) // TILE, TG_COLS))

        def mlp1_3_grid(seq_len):
            return galaxy_grid(seq_len) if galaxy else pc.find_prefill_grid(PREFILL_GRID_ROWS, dim // TILE)

        def mlp2_grid(seq_len):
            return galaxy_grid(seq_len) if galaxy else pc.find_prefill_grid(PREFILL_GRID_ROWS, hidden // TILE)

        subblock_w = 1 if galaxy else None  # TG hang workaround
        n_w1_w3 = hidden // cols_shape

        @lru_cache
        def w1_w3(seq_len):
            return pc.matmul_config(
                m=min(seq_len, self.prefill_len_cutoff),
                k=dim // rows_shape,
                n=n_w1_w3,
                grid_size=mlp1_3_grid(seq_len),
                per_core_N=None if galaxy else math.ceil(n_w1_w3 / (TILE * width)),
                out_subblock_w=subblock_w,
            )

        @lru_cache
        def w2(seq_len):
            return pc.matmul_config(
                m=min(seq_len, self.prefill_len_cutoff),
                k=hidden // (cols_shape if galaxy else 1),
                n=dim,
                grid_size=mlp2_grid(seq_len),
                per_core_N=None if galaxy else math.ceil(dim / (TILE * width)),
                out_subblock_w=subblock_w,
            )

        # Attention output is not necessarily dim wide (e.g. Mistral); the fused all-gather case splits N to 1024
        k_dim = self.n_heads * self.head_dim // (rows_shape if galaxy else self.num_devices)
        if galaxy:
            n_dim = dim // cols_shape
        elif (
            self.num_devices == 8 and os.getenv("ACTUAL_DEVICE", "") != "TG" and pc.FUSED_WO_PREFILL_N % (dim / 8) == 0
        ):
            n_dim = pc.FUSED_WO_PREFILL_N
        else:
            n_dim = dim
        dram_sharded_wo = not (fused_ag_mm or galaxy)

        @lru_cache
        def wo(seq_len):
            return pc.matmul_config(
                m=min(seq_len, pc.MAX_MM_SEQ_LEN),
                k=k_dim,
                n=n_dim,
                grid_size=pc.find_prefill_grid(PREFILL_GRID_ROWS, k_dim // TILE),
                in0_block_w=1 if galaxy else None,
                fuse_batch=seq_len <= pc.MAX_MM_SEQ_LEN,
                per_core_N=math.ceil(n_dim / (TILE * width)) if dram_sharded_wo else None,
                out_subblock_w=subblock_w,
            )

        return {
            "PREFILL_MLP_W1_W3_PRG_CONFIG": w1_w3,
            "PREFILL_MLP_W2_PRG_CONFIG": w2,
            "WO_PREFILL_PROGCFG": wo,
            "SDPA_PROGCFG": pc.sdpa_prefill_config,
            "XQKV_PREFILL_PROGCFG": lru_cache(
                lambda seq_len: pc.xqkv_prefill_config(seq_len, self.qkv_size // cols_shape, width)
            ),
            "KV_PREFILL_MEM_CFG": self.get_xqkv_prefill_mem_cfg,
        }

    def _tg_mlp_configs(self) -> dict:
        dim, hidden = self.dim, self.hidden_dim
        mc = {}
        if self.is_galaxy:
            mc["FF1_3_TG_PROGCFG"] = tg_pc.matmul_1d_config_from_tensor_shapes(
                (1, 1, TILE, dim // TG_COLS),
                (1, 1, dim // TG_COLS, hidden // TG_ROWS),
                grid=TG_MLP_1D_GRID,
                overwrite_subblock_h=1,
                overwrite_subblock_w=1,
            )
            mc["FF2_TG_PROGCFG"] = tg_pc.matmul_1d_config_from_tensor_shapes(
                (1, 1, TILE, hidden // TG_ROWS),
                (1, 1, hidden // TG_ROWS, dim // TG_COLS),
                grid=TG_MLP_1D_GRID,
                overwrite_subblock_h=1,
                overwrite_subblock_w=1,
            )
        first_row = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(7, 0))})
        ff1_cores = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(6, 3))})
        row_of_8 = ttnn.CoreGrid(y=1, x=8)
        mc["FF1_OUT_REDUCE_SCATTER_MEMCFG"] = pc.width_sharded_l1_memcfg(
            (TILE, hidden // TG_FF1_OUT_CORES // TG_ROWS), ff1_cores
        )
        mc["FF1_OUT_GATHERED_MEMCFG"] = pc.width_sharded_l1_memcfg((TILE * TG_COLS, hidden // TG_ROWS // 8), row_of_8)
        mc["FF2_OUT_REDUCE_SCATTER_MEMCFG"] = (
            pc.width_sharded_l1_memcfg((TILE, dim // 8 // TG_COLS), first_row)
            if dim == LARGE_DIM
            else pc.width_sharded_l1_memcfg((TILE * TG_ROWS, dim // TG_COLS // 8), row_of_8)
        )
        mc["SELF_OUT_REDUCE_SCATTER_MEMCFG"] = (
            pc.width_sharded_l1_memcfg((TILE, TG_SELF_OUT_DIM_8192_WIDTH // 8 // 8), row_of_8)
            if dim == LARGE_DIM
            else pc.width_sharded_l1_memcfg(
                (TILE * TG_ROWS, _nearest_32(dim // TG_COLS // 32)), ttnn.CoreGrid(y=4, x=8)
            )
        )
        mc["FF2_OUT_GATHERED_MEMCFG"] = pc.width_sharded_l1_memcfg((TILE * TG_ROWS, dim // TG_COLS // 8), row_of_8)
        return mc

    def _tg_attention_configs(self) -> dict:
        """TTTv1 set_tg_attention_config (Galaxy and 1D variants of the gather memory configs)."""
        dim = self.dim
        head_cores = ttnn.CoreRangeSet({pc.num_to_corerange(TG_HEAD_INPUT_CORES)})
        mc = {
            "CREATE_HEAD_INPUT_MEMCFG": (
                None
                if dim < MLP_ACT_MIN_DIM
                else ttnn.MemoryConfig(
                    ttnn.TensorMemoryLayout.WIDTH_SHARDED,
                    ttnn.BufferType.L1,
                    ttnn.ShardSpec(head_cores, [TILE, TILE], ttnn.ShardOrientation.ROW_MAJOR),
                )
            )
        }
        if self.is_galaxy:
            qkv_grid = tg_pc.num_to_coregrid(TG_QKV_GATHER_CORES.get(dim, TG_QKV_GATHER_CORES_OTHER))
            self_out_cores = min(32, dim // TG_COLS // TILE)
            users_grid = tg_pc.num_to_coregrid(min(32, dim // 8 // TILE))
            mc["QKV_OUT_GATHERED_MEMCFG"] = lambda mesh_cols: pc.width_sharded_l1_memcfg(
                (TILE * mesh_cols, TILE), qkv_grid
            )
            mc["SELF_OUT_GATHERED_MEMCFG"] = lambda mesh_rows: pc.width_sharded_l1_memcfg(
                (TILE * mesh_rows, dim // TG_COLS // self_out_cores), tg_pc.num_to_coregrid(self_out_cores)
            )
            mc["GATHER_USERS_MEMCFG"] = lambda mesh_cols: pc.width_sharded_l1_memcfg(
                (TILE * mesh_cols, TILE), users_grid
            )
        else:
            qkv_grid = pc.dram_shard_core_grid_for_k(dim)
            gather_grid = pc.dram_shard_core_grid_for_k(dim // TG_COLS)
            users_grid = pc.dram_shard_core_grid_for_k(dim // 8)
            mc["QKV_OUT_GATHERED_MEMCFG"] = lambda mesh_rows: pc.width_sharded_l1_memcfg(
                (TILE * mesh_rows, dim // qkv_grid.num_cores), qkv_grid
            )
            mc["SELF_OUT_GATHERED_MEMCFG"] = lambda mesh_rows: pc.width_sharded_l1_memcfg(
                (TILE * mesh_rows, dim // TG_COLS // gather_grid.num_cores), gather_grid
            )
            mc["GATHER_USERS_MEMCFG"] = lambda mesh_cols: pc.width_sharded_l1_memcfg(
                (TILE * mesh_cols, dim // 8 // users_grid.num_cores), users_grid
            )
        return mc

    # ---- upstream methods ------------------------------------------------------------------------------------

    def get_model_config(self):
        return self.model_config

    def get_xqkv_prefill_mem_cfg(self, seq_len):
        return pc.kv_prefill_memcfg(seq_len, self.n_kv_heads // self.cluster_shape[1], self.head_dim)

    def create_dram_sharded_mem_config(self, k, n):
        return pc.create_dram_sharded_mem_config(k, n, self.dram_grid_size)

    def dram_shard_core_grid_for_k(self, k):
        return pc.dram_shard_core_grid_for_k(k)

    def dram_shard_core_grid_for_k_and_n(self, k, n):
        return pc.dram_shard_core_grid_for_k_and_n(k, n)

    def dram_matmul_config(self, m, k, n, num_cores=None, fused_activation=None):
        return pc.dram_matmul_config(m, k, n, num_cores, fused_activation)

    def matmul_config(self, m, k, n, grid_size, in0_block_w=None, fuse_batch=False, fused_activation=None, **kw):
        out_subblock_w = 1 if self.is_galaxy else None  # TG hang workaround
        return pc.matmul_config(
            m, k, n, grid_size, in0_block_w, fuse_batch, fused_activation, out_subblock_w=out_subblock_w, **kw
        )

    def create_sharded_norm_config(self, grid):
        return pc.create_sharded_norm_config(grid, self.dim, self.tile_padded_batch_rows)

    def ccl_topology(self):
        """Ring on an 8-device T3K/Galaxy ring, Linear on other multi-device meshes, None on one device."""
        return default_topology(self.mesh_device)

    def is_distributed_norm(self, mode):
        """Distributed RMSNorm on 2D meshes, and in prefill for dim > 4096 ("WH runs out of L1 if not distributed")."""
        if not self.is_multichip:
            return False
        if all(d > 1 for d in self.cluster_shape):
            return True
        return self.dim > MLP_ACT_MIN_DIM and mode == "prefill"

    def weight_cache_path(self, dtype):
        """Separate caches for instruct and base weights, per dtype."""
        dirs = INSTRUCT_WEIGHT_CACHE_DIRS if self.instruct else WEIGHT_CACHE_DIRS
        return self.model_cache_path / dirs[dtype]

    def get_state_dict_prefix(self, module_name, layer_num):
        """e.g. ("MLP", 3) -> "layers.3.feed_forward"; layer None -> no layer prefix."""
        layer = f"layers.{layer_num}." if layer_num is not None else ""
        return layer + TEXT_MODULE_PREFIX[module_name]

    def prepare_residual_tensor_decode(self, x, input_mem_cfg, force_replicated=False, on_host=False):
        """(batch, 1, dim) host tensor -> [1, 1, 32, dim] (batch zero-padded to 32) fractured on the mesh columns."""
        batch, seq_len, dim = x.shape
        if seq_len != 1 or dim != self.dim:
            raise ValueError(f"decode input must be (batch, 1, {self.dim}), got {tuple(x.shape)}")
        x = x.transpose(0, 1).unsqueeze(1)  # [seq_len, 1, batch, dim]
        padded = torch.zeros(1, seq_len, self.tile_padded_batch_rows, dim, dtype=x.dtype)
        padded[:, :, :batch] = x
        return ttnn.from_torch(
            padded,
            device=None if on_host else self.mesh_device,
            dtype=ttnn.bfloat16,
            layout=ttnn.TILE_LAYOUT,
            mesh_mapper=self._residual_mapper(force_replicated),
            memory_config=None if on_host else input_mem_cfg,
        )

    def prepare_residual_tensor_prefill(self, x_bsh, force_replicated=False):
        """(batch, seq, dim) host tensor -> [1, batch, seq, dim] in DRAM, fractured on the mesh columns."""
        return ttnn.from_torch(
            x_bsh.unsqueeze(0),
            device=self.mesh_device,
            dtype=ttnn.bfloat16,
            layout=ttnn.TILE_LAYOUT,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            mesh_mapper=self._residual_mapper(force_replicated),
        )

    def _residual_mapper(self, force_replicated):
        dims = (None, None) if force_replicated else (None, -1)
        return ttnn.ShardTensor2dMesh(self.mesh_device, dims=dims, mesh_shape=self.cluster_shape)

    # ---- weights ---------------------------------------------------------------------------------------------

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """HF-named weights of the first n_layers layers: the checkpoint's, or seeded random ones (dummy weights)."""
        if not self.dummy_weights:
            if self.is_multimodal:
                raise NotImplementedError(
                    f"{self.CKPT_DIR}: loading Llama vision checkpoints is not supported; select the shipped config "
                    "for random weights"
                )
            return hf_loading.read_safetensors(self.source.checkpoint_dir, self.n_layers)
        return _random_state_dict(self.reference_config())

    def load_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights in TTTv1 (Meta) naming and rotary layout, layers 0..n_layers-1 (see load_checkpoints.py)."""
        return ckpt.hf_to_meta(self.hf_state_dict(), self.head_dim, self.n_heads, self.n_kv_heads)

    def reference_config(self):
        """The HF config of the text model with n_layers layers (Llama vision: its self-attention layers only)."""
        config = ckpt.text_config(self.hf_config).__class__.from_dict(ckpt.text_config(self.hf_config).to_dict())
        config.num_hidden_layers = self.n_layers
        if self.is_multimodal:
            config.cross_attention_layers = []
        return config


def _random_state_dict(config) -> dict[str, torch.Tensor]:
    from models.tt_transformers.tt.reference import meta_model

    # a tied LM head is the embedding (hf_to_meta copies it), as in HF checkpoints: no weight of its own
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    shapes = {key: tuple(t.shape) for key, t in meta_model(config).state_dict().items() if key not in tied}
    return hf_loading.random_weights(shapes, config.initializer_range, RANDOM_WEIGHT_SEED)


def _nearest_32(x) -> int:
    return math.ceil(x / TILE) * TILE


def _activation_type(hidden_act: str | None):
    """HF hidden_act -> the ttnn activation TTTv1 fuses into the MLP (SiLU when unset)."""
    activations = {
        "gelu": ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU, 0.0),
        "gelu_pytorch_tanh": ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU, 1.0),
        "relu": ttnn.UnaryOpType.RELU,
        "silu": ttnn.UnaryOpType.SILU,
        "swish": ttnn.UnaryOpType.SILU,
    }
    if not hidden_act:
        return ttnn.UnaryOpType.SILU
    if hidden_act.lower() not in activations:
        raise NotImplementedError(f"Unsupported activation {hidden_act!r}: use one of {', '.join(activations)}")
    return activations[hidden_act.lower()]
