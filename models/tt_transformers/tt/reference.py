# SPDX-License-Identifier: Apache-2.0
"""HF reference modules for tests, built from a ModelArgs' config and holding exactly its weights.

The weights are ``args.hf_state_dict()`` (checkpoint or seeded random), the same tensors ``args.load_state_dict()``
converts for TTTv1, so TT modules and references see identical weights. Modules are built on the meta device and
then materialised with those weights (no random init is paid for). Layer ``i``'s reference is the HF layer-0
module holding layer ``i``'s weights.
"""

import torch
from transformers import AutoModelForCausalLM, DynamicCache
from transformers.models.mllama.modeling_mllama import MllamaForCausalLM

MLLAMA_TEXT_MODEL_TYPE = "mllama_text_model"  # Llama vision text config: no AutoModelForCausalLM mapping


def meta_model(config):
    """The HF causal LM for ``config`` on the meta device (shapes only)."""
    with torch.device("meta"):
        if config.model_type == MLLAMA_TEXT_MODEL_TYPE:
            return MllamaForCausalLM(config)
        return AutoModelForCausalLM.from_config(config)


def _materialise(module: torch.nn.Module, state_dict: dict, prefix: str, dtype) -> torch.nn.Module:
    weights = {key.removeprefix(prefix): state_dict[key] for key in state_dict if key.startswith(prefix)}
    module = module.to(dtype).to_empty(device="cpu")
    module.load_state_dict(weights, strict=True)
    return module.eval()


def _layer_prefix(layer: int) -> str:
    return f"model.layers.{layer}."


def reference_model(args, dtype=torch.bfloat16):
    """The whole HF causal LM with args.n_layers layers (kept on ``args.cached_hf_model`` when cache_hf)."""
    if args.cached_hf_model is not None:
        return args.cached_hf_model
    config = args.reference_config()
    model = meta_model(config)
    state_dict = dict(args.hf_state_dict())
    if config.tie_word_embeddings:
        state_dict.pop("lm_head.weight", None)
    model = model.to(dtype).to_empty(device="cpu")
    model.load_state_dict(state_dict, strict=False)
    model.model.rotary_emb = type(model.model.rotary_emb)(config)  # buffers are not in the state dict
    model.tie_weights()
    if args.cache_hf_flag:
        args.cached_hf_model = model
    return model.eval()


def _layer_module(args, layer: int, attribute: str | None, dtype):
    config = args.reference_config()
    module = meta_model(config).model.layers[0]
    prefix = _layer_prefix(layer)
    if attribute:
        module = getattr(module, attribute)
        prefix += f"{attribute}."
    return _materialise(module, args.hf_state_dict(), prefix, dtype)


def reference_mlp(args, layer: int = 0, dtype=torch.bfloat16):
    return _layer_module(args, layer, "mlp", dtype)


def reference_rms_norm(args, layer: int = 0, dtype=torch.bfloat16):
    """The layer's input (attention) RMSNorm."""
    return _layer_module(args, layer, "input_layernorm", dtype)


def reference_decoder(args, layer: int = 0, dtype=torch.bfloat16):
    return HfWithRope(_layer_module(args, layer, None, dtype), args.reference_config())


def reference_attention(args, layer: int = 0, dtype=torch.bfloat16):
    return HfWithRope(_layer_module(args, layer, "self_attn", dtype), args.reference_config())


class HfWithRope:
    """Runs an HF attention or decoder layer at absolute positions with its own KV cache.

    ``forward(x, start_pos, mask=None)``: x is (batch, seq, dim); positions start_pos .. start_pos + seq - 1.
    """

    def __init__(self, layer: torch.nn.Module, config):
        rotary = meta_model(config).model.rotary_emb
        self.layer = layer
        self.rotary_emb = type(rotary)(config)
        self.cache = DynamicCache(config=config)

    def forward(self, x, start_pos: int, mask=None):
        positions = torch.arange(start_pos, start_pos + x.shape[1]).expand(x.shape[0], -1)
        position_embeddings = self.rotary_emb(x, positions)
        with torch.no_grad():
            out = self.layer(
                x,
                position_embeddings=position_embeddings,
                attention_mask=mask,
                cache=self.cache,
                use_cache=True,
                position_ids=positions,
            )
        return out[0] if isinstance(out, tuple) else out

    __call__ = forward
