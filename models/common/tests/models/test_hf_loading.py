# SPDX-License-Identifier: Apache-2.0
"""TTTv2's HF loading: config.json → ModelDescription (shipped configs, a public config the repo does not ship, the
refusals), safetensors → canonical LazyWeights (single file and sharded, every family, only the layers asked for),
seeded random weights for a config-only folder, and TTTv1 reading through the same loader."""

import json
import re
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Phi3Config, Qwen2Config, Qwen3Config

from models.common.models import hf_loading
from models.common.models.hf_loading import HFModel, ModelDescription
from models.common.modules.rope.rope_1d import Llama3RopeScaling
from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR

# Qwen/Qwen2.5-0.5B config.json (huggingface.co/Qwen/Qwen2.5-0.5B): not shipped in model_params/
QWEN25_05B = {
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2",
    "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1", "use_cache": True, "use_mrope": False, "use_sliding_window": False,
    "vocab_size": 151936,
}  # fmt: skip
# (dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, qkv_bias, qk_norm, fused, tied), from the shipped files
SHIPPED = {
    "Llama-3.2-1B-Instruct": (2048, 8192, 16, 32, 8, 64, False, False, False, True),
    "Llama-3.1-8B-Instruct": (4096, 14336, 32, 32, 8, 128, False, False, False, False),
    "Mistral-7B-Instruct-v0.3": (4096, 14336, 32, 32, 8, 128, False, False, False, False),
    "Qwen2.5-7B-Instruct": (3584, 18944, 28, 28, 4, 128, True, False, False, False),
    "Qwen3-32B": (5120, 25600, 64, 64, 8, 128, False, True, False, False),
    "phi-4": (5120, 17920, 40, 40, 10, 128, False, False, True, False),
}
TINY = dict(
    hidden_size=128, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
    vocab_size=320, max_position_embeddings=256,
)  # fmt: skip
TINY_CONFIGS = {
    "llama": LlamaConfig(**TINY, head_dim=32),
    "mistral": MistralConfig(**TINY, head_dim=32, sliding_window=None),
    "qwen2": Qwen2Config(**TINY, tie_word_embeddings=True),
    "qwen3": Qwen3Config(**TINY, head_dim=32),
    "phi3": Phi3Config(**TINY, pad_token_id=0),
}


def _shipped(name: str) -> dict:
    return json.loads((MODEL_PARAMS_DIR / name / "config.json").read_text())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_configs(name):
    d = ModelDescription.from_folder(MODEL_PARAMS_DIR / name)
    fields = (d.dim, d.hidden_dim, d.n_layers, d.n_heads, d.n_kv_heads, d.head_dim)
    assert (*fields, d.qkv_bias, d.qk_norm, d.fused_projections, d.tied_embeddings) == SHIPPED[name]
    assert d.activation == "silu" and not d.norm_unit_offset


def test_llama3_rope_scaling_and_stop_tokens():
    d = ModelDescription.from_folder(MODEL_PARAMS_DIR / "Llama-3.2-1B-Instruct")
    assert d.rope_theta == 500000.0 and d.rope_scaling == Llama3RopeScaling(32.0, 1.0, 4.0, 8192)
    assert d.eos_token_ids == (128001, 128008, 128009) and d.norm_eps == 1e-5 and d.vocab_size == 128256
    mistral = ModelDescription.from_folder(MODEL_PARAMS_DIR / "Mistral-7B-Instruct-v0.3")
    assert mistral.rope_scaling is None and mistral.rope_theta == 1e6 and mistral.eos_token_ids == (2,)


def test_transformers5_rope_parameters():
    config = {**_shipped("Llama-3.2-1B-Instruct"), "rope_parameters": {"rope_theta": 1e4, "rope_type": "default"}}
    d = ModelDescription.from_config({k: v for k, v in config.items() if k not in ("rope_theta", "rope_scaling")})
    assert d.rope_theta == 1e4 and d.rope_scaling is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_type": "gemma2"}, "model_type='gemma2' is not supported"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_scaling.rope_type='yarn' is not supported"),
        ({"sliding_window": 4096}, "sliding_window=4096 is not supported"),
        ({"num_local_experts": 8}, "num_local_experts=8 (mixture of experts) is not supported"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu' is not supported"),
        ({"attention_bias": True}, "attention_bias=True is not supported"),
        ({"partial_rotary_factor": 0.5}, "partial_rotary_factor=0.5 is not supported"),
    ],
    ids=["model_type", "rope_scaling", "sliding_window", "experts", "activation", "attention_bias", "partial_rope"],
)
def test_unsupported_configs_are_refused_naming_the_field(change, message, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**_shipped("Mistral-7B-Instruct-v0.3"), **change}))
    with pytest.raises(ValueError, match=re.escape(f"config.json: {message}")):
        HFModel.load(tmp_path)


def test_llama_vision_is_refused_by_model_type():
    with pytest.raises(ValueError, match="model_type='mllama' is not supported"):
        ModelDescription.from_folder(MODEL_PARAMS_DIR / "Llama-3.2-90B-Vision-Instruct")


def test_public_config_folder_gets_seeded_random_weights(tmp_path):
    """A folder with only Qwen2.5-0.5B's public config.json: qwen2 biases, tied LM head, random weights said so."""
    (tmp_path / "config.json").write_text(json.dumps(QWEN25_05B))
    model = HFModel.load(tmp_path, n_layers=1)
    d = model.description
    assert (d.dim, d.n_heads, d.n_kv_heads, d.head_dim, d.qkv_bias, d.tied_embeddings) == (896, 14, 2, 64, True, True)
    assert model.random and "config.json only" in model.weights_description
    weights = model.weights()
    assert weights["lm_head.weight"].host_tensor().shape == (151936, 896)
    assert torch.equal(weights["lm_head.weight"].host_tensor(), weights["embed_tokens.weight"].host_tensor())
    assert weights["layers.0.self_attn.k_proj.bias"].shape == (128,)
    assert not any(k.startswith("layers.1.") for k in weights)
    again = HFModel.load(tmp_path, n_layers=2).weights("layers.0.")  # a weight does not depend on n_layers
    assert torch.equal(again["mlp.up_proj.weight"].host_tensor(), weights["layers.0.mlp.up_proj.weight"].host_tensor())


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_safetensors_to_canonical_lazy_weights(family, sharded, tmp_path, monkeypatch):
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(TINY_CONFIGS[family]).to(torch.bfloat16)
    hf.save_pretrained(tmp_path, max_shard_size="100KB" if sharded else "1GB")
    assert (tmp_path / hf_loading.SAFETENSORS_INDEX).is_file() == sharded
    reads = []
    monkeypatch.setattr(hf_loading, "_read_tensor", lambda path, key: reads.append(key) or _read(path, key))
    model = HFModel.load(tmp_path, n_layers=1)
    assert not model.random and not reads  # nothing read yet
    layer = model.weights("layers.0.")
    expected = _unfused(hf.state_dict(), "model.layers.0.", TINY_CONFIGS[family])
    assert set(layer) == set(expected)
    assert {k: w.shape for k, w in layer.items()} == {k: tuple(t.shape) for k, t in expected.items()}
    assert not reads  # the shapes come from the headers
    assert all(torch.equal(layer[k].host_tensor(), expected[k]) for k in expected)
    assert all(".layers.0." in key for key in reads)  # layer 1, the embedding and the head were never read
    top = model.weights()
    assert "layers.1.mlp.down_proj.weight" not in top
    assert torch.equal(top["lm_head.weight"].host_tensor(), hf.lm_head.weight)


def test_source_keys_change_with_the_source(tmp_path):
    """A weight's source_key (what its disk cache entry is keyed on) changes when the checkpoint file is rewritten,
    and for random weights when the std or the shape changes; it stays for an unchanged source."""
    config = TINY_CONFIGS["llama"]
    hf = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    hf.save_pretrained(tmp_path)
    keys = {k: w.source_key for k, w in HFModel.load(tmp_path).weights().items()}
    assert keys == {k: w.source_key for k, w in HFModel.load(tmp_path).weights().items()}
    assert len(set(keys.values())) == len(keys) - (1 if config.tie_word_embeddings else 0)
    torch.nn.init.normal_(hf.model.layers[0].mlp.up_proj.weight)
    hf.save_pretrained(tmp_path)  # the same names and shapes, other values
    rewritten = {k: w.source_key for k, w in HFModel.load(tmp_path).weights().items()}
    assert all(rewritten[k] != keys[k] for k in keys)

    def random_key(std=0.02, shape=(256, 128)):
        name = "model.layers.0.mlp.up_proj.weight"
        return hf_loading.random_weights({name: shape}, std).identity(name)

    assert random_key() == random_key()
    assert random_key() != random_key(std=0.01) and random_key() != random_key(shape=(512, 128))


def _read(path, key):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return f.get_tensor(key)


def _unfused(state_dict: dict, prefix: str, config) -> dict:
    """HF's own tensors of one layer under canonical names: phi3's fused weights cut by HF Phi3Attention / Phi3MLP's
    own rule (q rows, then k, then v; gate half, then up half)."""
    out = {k.removeprefix(prefix): t for k, t in state_dict.items() if k.startswith(prefix)}
    if "self_attn.qkv_proj.weight" in out:
        head_dim = config.hidden_size // config.num_attention_heads
        q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
        qkv = out.pop("self_attn.qkv_proj.weight")
        out |= {"self_attn.q_proj.weight": qkv[:q], "self_attn.k_proj.weight": qkv[q : q + kv]}
        out["self_attn.v_proj.weight"] = qkv[q + kv :]
        gate, up = out.pop("mlp.gate_up_proj.weight").chunk(2)
        out |= {"mlp.gate_proj.weight": gate, "mlp.up_proj.weight": up}
    return out


@pytest.mark.parametrize("name", ["Llama-3.2-1B-Instruct", "Qwen3-32B", "phi-4", "Qwen2.5-7B-Instruct"])
def test_random_weights_are_the_ones_tttv1_draws(name, tmp_path, monkeypatch):
    """One loader: a config-only folder gives TTTv2 the tensors TTTv1's ModelArgs draws (same names, shapes, values)."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import ModelArgs
    from models.tt_transformers.tt.reference import meta_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shutil.copy(MODEL_PARAMS_DIR / name / "config.json", tmp_path / "config.json")
    model = HFModel.load(tmp_path, n_layers=1)
    args = ModelArgs(HostMesh.for_shape((1, 2)), hf_model=name)  # Qwen2.5-7B: TTTv1 takes 2 or 4 devices only
    args.n_layers = 1
    tied = {"lm_head.weight"} if model.description.tied_embeddings else set()
    meta = meta_model(args.reference_config()).state_dict()  # TTTv1's shapes: HF's model on the meta device
    assert model.description.hf_shapes(1) == {k: tuple(t.shape) for k, t in meta.items() if k not in tied}
    tttv1 = args.hf_state_dict()
    for key in ("model.layers.0.self_attn.o_proj.weight", "model.layers.0.post_attention_layernorm.weight"):
        assert torch.equal(model.raw[key], tttv1[key])
