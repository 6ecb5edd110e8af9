# SPDX-License-Identifier: Apache-2.0
"""The model a report is about: a shipped config name or a checkpoint folder, its HF text config, and the weights of
decoder layer 0 (the checkpoint's, or seeded random ones from ModelArgs' seed and recipe, so a TTTv1 run of the same
model sees the same layer).

transformers' model classes take seconds to import and are needed only for weights and the HF reference, so they
are imported where used: a bad ``--model`` is reported without them.
"""

import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from models.common.models import hf_loading
from models.common.models.hf_loading import RANDOM_WEIGHT_SEED
from models.common.modules.attention.attention_steps import check_head_split
from models.common.modules.rope.rope_1d import Llama3RopeScaling
from models.common.modules.tt_ccl import TWO_D_MESHES
from models.tt_transformers.tt import load_checkpoints as ckpt


def layer_prefix(index: int) -> str:
    """HF name prefix of decoder layer ``index``."""
    return f"model.layers.{index}."


LAYER_PREFIX = layer_prefix(0)  # HF names of the layer the report details
SUPPORTED_ACTIVATION = "silu"  # MLP1D / MLP2D compute SwiGLU with SiLU
LLAMA3_ROPE = "llama3"
LLAMA3_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
# config.json fields the layer is built from (transformers would fill a missing one with its class default)
REQUIRED_CONFIG_FIELDS = ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers")
TEXT_CONFIG = "text_config"  # Llama vision configs nest the language model's fields here
WEIGHT_FILES = (hf_loading.SAFETENSORS_INDEX, hf_loading.SAFETENSORS_SINGLE)


def check_config_file(path: Path) -> None:
    """ValueError naming ``path`` and the field when config.json is not JSON or lacks a field the layer needs."""
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} holds a JSON {type(config).__name__}, not an object of config fields")
    text = config.get(TEXT_CONFIG, config)
    where = f"{path} ({TEXT_CONFIG})" if TEXT_CONFIG in config else str(path)
    if "model_type" not in config:
        raise ValueError(f'{path} has no model_type field (e.g. "llama")')
    for field in REQUIRED_CONFIG_FIELDS:
        value = text.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problem = "has no" if value is None else f"has {value!r} for"
            raise ValueError(f"{where} {problem} field {field}: it needs a positive integer")


def is_2d(mesh_shape) -> bool:
    return tuple(mesh_shape) in TWO_D_MESHES


@dataclass(frozen=True)
class Model:
    """A model the report can build: a shipped config name or a checkpoint folder, and its HF text config."""

    name: str
    source: ckpt.ModelSource
    config: object

    @classmethod
    def load(cls, name: str) -> "Model":
        """ValueError / FileNotFoundError (one line each) for unknown models or unsupported architectures."""
        source = ckpt.resolve_model(name)
        check_config_file(source.config_dir / "config.json")
        if source.checkpoint_dir is not None and not any((source.checkpoint_dir / f).is_file() for f in WEIGHT_FILES):
            source = replace(source, checkpoint_dir=None)  # config.json only: seeded random weights
        config = ckpt.text_config(ckpt.load_hf_config(source.config_dir))
        model = cls(name, source, config)
        if config.hidden_act != SUPPORTED_ACTIVATION:
            raise ValueError(f"{name} uses {config.hidden_act}; the TTTv2 MLPs compute SwiGLU with SiLU only")
        rope_type = model.rope_parameters.get("rope_type", "default")
        if rope_type not in ("default", LLAMA3_ROPE):
            raise ValueError(f"{name} uses {rope_type} rotary scaling; Rope1D has none or llama3 scaling only")
        return model

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    @property
    def n_heads(self) -> int:
        return self.config.num_attention_heads

    @property
    def n_kv_heads(self) -> int:
        return self.config.num_key_value_heads

    @property
    def head_dim(self) -> int:
        return getattr(self.config, "head_dim", None) or self.dim // self.n_heads

    @property
    def hidden_dim(self) -> int:
        return self.config.intermediate_size

    @property
    def n_layers(self) -> int:
        """Decoder layers with self-attention (a Llama vision model also counts its cross-attention layers)."""
        return self.config.num_hidden_layers - len(getattr(self.config, "cross_attention_layers", None) or ())

    @property
    def rope_parameters(self) -> dict:
        return dict(self.config.rope_parameters)

    @property
    def rope_scaling(self) -> Llama3RopeScaling | None:
        params = self.rope_parameters
        if params.get("rope_type") != LLAMA3_ROPE:
            return None
        return Llama3RopeScaling(*(params[name] for name in LLAMA3_SCALING_KEYS))

    @property
    def weights_description(self) -> str:
        if self.source.checkpoint_dir is None:
            origin = "shipped config" if self.source.config_dir.parent == ckpt.MODEL_PARAMS_DIR else "config.json only"
            return f"{origin} ({self.source.config_dir}), seeded random weights (seed {RANDOM_WEIGHT_SEED})"
        return f"checkpoint {self.source.checkpoint_dir}"

    def check_split(self, mesh_shape: tuple[int, int]) -> None:
        """The attention heads split over the mesh's head groups (devices on 1D, rows on 2D); ValueError if not."""
        groups = mesh_shape[0] if is_2d(mesh_shape) else mesh_shape[0] * mesh_shape[1]
        check_head_split(self, groups)

    def layer_state_dict(self, index: int = 0) -> dict[str, torch.Tensor]:
        """HF weights of decoder layer ``index`` (names without the layer prefix), from the checkpoint or seeded
        random (each tensor seeded by its name: layer 0 is the same whatever the number of layers)."""
        prefix = layer_prefix(index)
        if self.source.checkpoint_dir is None:
            from models.tt_transformers.tt.reference import meta_model

            config = copy.deepcopy(self.config)
            config.num_hidden_layers = index + 1
            layer = meta_model(config).state_dict().items()  # shapes only (meta device)
            shapes = {k: tuple(t.shape) for k, t in layer if k.startswith(prefix)}
            weights = hf_loading.random_weights(shapes, config.initializer_range, RANDOM_WEIGHT_SEED)
        else:
            loaded = hf_loading.read_safetensors(self.source.checkpoint_dir, index + 1)
            weights = {k: t for k, t in loaded.items() if k.startswith(prefix)}
        if not any(".self_attn." in k for k in weights):
            where = self.source.checkpoint_dir or self.source.config_dir
            raise ValueError(f"{where}: layer {index} has no {prefix}self_attn.* weights (not a self-attention layer)")
        return {k.removeprefix(prefix): t for k, t in weights.items()}

    def unfused(self, weights: dict) -> dict:
        """Phi-3-style fused ``qkv_proj`` / ``gate_up_proj`` split into q/k/v and gate/up weights (HF order)."""
        out = {}
        sizes = [self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim, self.n_kv_heads * self.head_dim]
        for key, tensor in weights.items():
            if "qkv_proj" in key:
                for name, part in zip(("q_proj", "k_proj", "v_proj"), torch.split(tensor, sizes), strict=True):
                    out[key.replace("qkv_proj", name)] = part
            elif "gate_up_proj" in key:
                for name, part in zip(("gate_proj", "up_proj"), torch.chunk(tensor, 2), strict=True):
                    out[key.replace("gate_up_proj", name)] = part
            else:
                out[key] = tensor
        return out

    def hf_reference(self, weights: dict):
        """The HF decoder layer holding ``weights`` (layer_state_dict's, in float32), with its own KV cache
        (reference.HfWithRope)."""
        from models.tt_transformers.tt.reference import HfWithRope, meta_model

        config = copy.deepcopy(self.config)
        config.num_hidden_layers = 1
        layer = meta_model(config).model.layers[0].to(torch.float32).to_empty(device="cpu")
        layer.load_state_dict({k: t.float() for k, t in weights.items()})
        return HfWithRope(layer.eval(), config)
