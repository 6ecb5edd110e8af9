# SPDX-License-Identifier: Apache-2.0
"""CausalLM (modules only) against HF's AutoModelForCausalLM holding the same weights (shadow-checked on the mock):
logits of a 2-layer Llama-3.2-1B (real dims, seeded random weights) over a 128-token prefill and 4 decode steps;
users with different prompt lengths decoding together; a long prompt through chunked prefill; teacher-forced greedy
generation; one small model of each other family; the generate loop and the demo CLI."""

import json
import os
import subprocess
import sys

import pytest
import torch
import ttnn
from transformers import AutoConfig, AutoModelForCausalLM

from models.common import devices
from models.common.models.causal_lm import BLOCK_SIZE, CausalLM
from models.common.models.generation import Sampling, generate
from models.common.models.hf_loading import HFModel, resolve_model

LLAMA = "Llama-3.2-1B-Instruct"
N_LAYERS = 2
PCC = 0.99
MAX_SEQ_LEN = 512
CLI_TIMEOUT_S = 900
# Teacher-forced greedy: random weights give flat logits, so HF's top-1 is only well defined where it leads its
# runner-up clearly. At PCC >= 0.99 one logit errs by at most sqrt(1 - 0.99^2) ~ 0.14 of the row's std, the lead of
# one logit over another by ~ sqrt(2) * 0.14 ~ 0.2 std; a lead above MARGIN_STD is 2.5 times that, so the device must
# reproduce it.
MARGIN_STD = 0.5
TOP_K_CONTAINS = 5


def hf_model(folder, model: HFModel):
    """HF's causal LM for ``folder``'s config with ``model``'s layers and raw weights (float32)."""
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    config.num_hidden_layers = model.n_layers
    with torch.device("meta"):
        hf = AutoModelForCausalLM.from_config(config)
    hf = hf.to_empty(device="cpu")
    missing, unexpected = hf.load_state_dict({k: model.raw[k].float() for k in model.raw}, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    hf.tie_weights()
    hf.model.rotary_emb = type(hf.model.rotary_emb)(config)  # its inverse frequencies, computed on the host
    return hf.float().eval()


def hf_next_logits(hf, ids: list[int]) -> torch.Tensor:
    """HF's logits after the last token of ``ids`` [vocab] (one user, no cache; only the last position's LM head)."""
    with torch.no_grad():
        return hf(torch.tensor([ids]), logits_to_keep=1).logits[0, -1].float()


def random_ids(n: int, vocab: int, seed: int) -> list[int]:
    return torch.randint(vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def idle_batch(model: CausalLM, per_user: dict[int, tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Decode inputs: (token, position) for the given users, token 0 at position 0 for the others."""
    tokens, positions = [0] * model.max_batch_size, [0] * model.max_batch_size
    for user, (token, position) in per_user.items():
        tokens[user], positions[user] = token, position
    return tokens, positions


@pytest.fixture(scope="module")
def llama():
    folder = resolve_model(LLAMA)
    model = HFModel.load(folder, N_LAYERS)
    return model, hf_model(folder, model)


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory) -> HFModel:
    """A config-only Llama at SMALL_DIMS (seeded random weights): for what does not depend on the model's size."""
    folder = tmp_path_factory.mktemp("small_llama")
    (folder / "config.json").write_text(json.dumps({**SMALL_DIMS, "model_type": "llama", "tie_word_embeddings": False}))
    return HFModel.load(folder)


@pytest.mark.parametrize(
    "ttnn_mesh_device", [(1, 1), (1, 2), (1, 8), (8, 4), (4, 8)], ids=["1x1", "1x2", "1x8", "8x4", "4x8"], indirect=True
)
def test_llama_logits_match_hf(ttnn_mesh_device, llama, reference_check):
    """128-token prefill and 4 decode steps (HF's greedy tokens fed back), user 0 of a full batch."""
    model, hf = llama
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN)
    prompt = random_ids(128, model.description.vocab_size, seed=0)
    ids = list(prompt)
    logits = lm.prefill_forward(prompt, user_id=0)
    for _ in range(4):
        expected = hf_next_logits(hf, ids)
        reference_check(expected, logits, min_pcc=PCC)
        ids.append(int(expected.argmax()))
        logits = lm.decode_forward(*idle_batch(lm, {0: (ids[-1], len(ids) - 1)}))[0]
    reference_check(hf_next_logits(hf, ids), logits, min_pcc=PCC)
    assert logits.dtype == torch.bfloat16  # the device's values: no float32 copy of the vocabulary on the host


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 8)], ids=["1x1", "1x8"], indirect=True)
def test_teacher_forced_greedy_matches_hf(ttnn_mesh_device, llama, reference_check):
    """8 steps on HF's own tokens: the model's top-1 is HF's wherever HF's lead is clear, HF's token always in the
    model's top 5."""
    model, hf = llama
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN)
    ids = random_ids(64, model.description.vocab_size, seed=1)
    logits = lm.prefill_forward(ids, user_id=0)
    for _ in range(8):
        expected = hf_next_logits(hf, ids)
        reference_check(expected, logits, min_pcc=PCC)
        top2 = expected.topk(2).values
        hf_token = int(expected.argmax())
        assert hf_token in logits.topk(TOP_K_CONTAINS).indices.tolist()
        if top2[0] - top2[1] > MARGIN_STD * expected.std():
            assert int(logits.argmax()) == hf_token
        ids.append(int(expected.argmax()))
        logits = lm.decode_forward(*idle_batch(lm, {0: (ids[-1], len(ids) - 1)}))[0]


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_users_with_different_prompts_decode_together(ttnn_mesh_device, llama, reference_check):
    """Users 0 and 5 (100 and 200 tokens, the second through chunked prefill in 128-token chunks) decode two steps
    in one batch; each matches HF run on its own sequence alone."""
    model, hf = llama
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN, prefill_chunk_size=128)
    vocab = model.description.vocab_size
    prompts = {0: random_ids(100, vocab, seed=2), 5: random_ids(200, vocab, seed=3)}
    expected = {user: hf_next_logits(hf, ids) for user, ids in prompts.items()}
    for user, ids in prompts.items():
        reference_check(expected[user], lm.prefill_forward(ids, user_id=user), min_pcc=PCC)
    for _ in range(2):
        for user, ids in prompts.items():
            ids.append(int(expected[user].argmax()))
        logits = lm.decode_forward(*idle_batch(lm, {u: (ids[-1], len(ids) - 1) for u, ids in prompts.items()}))
        expected = {user: hf_next_logits(hf, ids) for user, ids in prompts.items()}
        for user in prompts:
            reference_check(expected[user], logits[user], min_pcc=PCC)


SMALL_FAMILIES = {  # one small model per other family (public configs' layouts, dims cut for the host reference)
    "mistral": dict(model_type="mistral", sliding_window=None, tie_word_embeddings=False),
    "qwen2": dict(model_type="qwen2", sliding_window=4096, use_sliding_window=False, tie_word_embeddings=True),
    "qwen3": dict(model_type="qwen3", tie_word_embeddings=True),
    "phi3": dict(model_type="phi3", pad_token_id=0, tie_word_embeddings=False),
}
SMALL_DIMS = dict(
    hidden_size=1024, intermediate_size=2048, num_attention_heads=16, num_key_value_heads=8, head_dim=64,
    num_hidden_layers=2, vocab_size=4096, max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=1e6,
    hidden_act="silu", initializer_range=0.02, eos_token_id=2,
)  # fmt: skip


@pytest.mark.parametrize("family", sorted(SMALL_FAMILIES))
@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_each_family_matches_hf(ttnn_mesh_device, family, tmp_path, reference_check):
    """A config-only folder of the family: its LM (biases, q/k norms, fused projections split at load) against HF."""
    config = {**SMALL_DIMS, **SMALL_FAMILIES[family]}
    if family == "phi3":
        config.pop("head_dim")  # Phi3Config derives it from hidden_size / num_attention_heads
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = HFModel.load(tmp_path)
    hf = hf_model(tmp_path, model)
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN)
    ids = random_ids(128, config["vocab_size"], seed=4)
    expected = hf_next_logits(hf, ids)
    reference_check(expected, lm.prefill_forward(ids, user_id=0), min_pcc=PCC)
    ids.append(int(expected.argmax()))
    logits = lm.decode_forward(*idle_batch(lm, {0: (ids[-1], len(ids) - 1)}))[0]
    reference_check(hf_next_logits(hf, ids), logits, min_pcc=PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_generate_stops_and_reports(ttnn_mesh_device, small_llama):
    """generate() on token ids: greedy and seeded sampling give max_new_tokens tokens, the same for the same seed, and
    a user stops at its stop token."""
    model = small_llama
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN)
    prompts = [random_ids(20, model.description.vocab_size, seed=5), random_ids(40, model.description.vocab_size, 6)]
    greedy = generate(lm, prompts, 4, progress=False)
    assert [len(g.tokens) for g in greedy.generations] == [4, 4] and len(greedy.decode_step_s) == 3
    first = greedy.generations[0].tokens[0]
    stopped = generate(lm, prompts, 4, stop=frozenset({first}), progress=False)
    assert stopped.generations[0].tokens == [first] and stopped.generations[0].stopped
    sampling = Sampling(temperature=1.0, top_k=50, top_p=0.9, seed=7)
    assert generate(lm, prompts, 3, sampling, progress=False).generations[1].tokens == (
        generate(lm, prompts, 3, sampling, progress=False).generations[1].tokens
    )


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_warm_decode_step_reuses_its_buffers(ttnn_mesh_device, small_llama, monkeypatch):
    """Trace-ready decode: each step writes its inputs into the same persistent device tensors, and a warm step
    leaves the device's DRAM and L1 allocations as the previous one did (nothing grows across steps). The page table
    is written only on steps where a user gets a new cache block."""
    model = small_llama
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN)
    addresses = {name: t.buffer_address() for name, t in lm.decode_inputs.items()}
    written, copy = [], ttnn.copy_host_to_device_tensor
    monkeypatch.setattr(
        ttnn, "copy_host_to_device_tensor", lambda host, dev, *a: written.append(dev) or copy(host, dev, *a)
    )
    allocated, table_writes = [], []
    for position in (0, 1, 2, BLOCK_SIZE):  # the first and the last step each give user 0 a new block
        written.clear()
        lm.decode_forward(*idle_batch(lm, {0: (position + 1, position)}))
        views = (ttnn.get_memory_view(ttnn_mesh_device, b) for b in (ttnn.BufferType.DRAM, ttnn.BufferType.L1))
        allocated.append(tuple(v.total_bytes_allocated_per_bank for v in views))
        table_writes.append(sum(t is lm.decode_inputs["page_table"] for t in written))
    assert allocated[1] == allocated[2], allocated
    assert {name: t.buffer_address() for name, t in lm.decode_inputs.items()} == addresses
    assert table_writes == [1, 0, 0, 1]


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 8)], ids=["1x1", "1x8"], indirect=True)
def test_traced_decode_captures_once_then_replays(ttnn_mesh_device, small_llama, monkeypatch):
    """trace_decode: the first step runs the ops once eagerly (compile), then captures them; every step replays the
    trace after writing its inputs (the page table too when a user gets a block), into the same logits, which
    read_logits keeps; a capture that fails is closed and released, and the next step captures anew. ttnn's trace
    calls are recorded, not made: the mock cannot capture (it segfaults; CausalLM refuses trace_decode there) and the
    shadow cannot follow a replay."""
    model = small_llama
    if devices.detect_tier() == devices.MOCK:
        with pytest.raises(ValueError, match="the mock cluster cannot"):
            CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN, trace_decode=True)
    monkeypatch.setattr(devices, "detect_tier", lambda: devices.HARDWARE)  # the trace calls are recorded below
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN, trace_decode=True)
    events = []
    trace_calls = {
        "begin_trace_capture": lambda mesh, cq_id: events.append("begin") or 7,
        "end_trace_capture": lambda mesh, trace_id, cq_id: events.append(("end", trace_id)),
        "execute_trace": lambda mesh, trace_id, cq_id, blocking: events.append(("replay", trace_id, blocking)),
        "release_trace": lambda mesh, trace_id: events.append(("release", trace_id)),
    }
    for name, fake in trace_calls.items():
        monkeypatch.setattr(ttnn, name, fake)
    copy, embed = ttnn.copy_host_to_device_tensor, lm.embedding.decode_forward
    monkeypatch.setattr(ttnn, "copy_host_to_device_tensor", lambda *a: events.append("write") or copy(*a))
    monkeypatch.setattr(lm.embedding, "decode_forward", lambda ids: events.append("ops") or embed(ids))

    def step(position):
        logits = lm.decode_device(*idle_batch(lm, {0: (position + 1, position)}))
        assert lm.read_logits(logits).shape == (lm.max_batch_size, model.description.vocab_size)
        return logits

    outputs = [step(position) for position in (0, 1, BLOCK_SIZE)]  # the first and last steps give user 0 a block
    capture, replay = ["ops", "begin", "ops", ("end", 7)], ("replay", 7, False)
    assert events == ["write"] * 3 + capture + [replay] + ["write"] * 2 + [replay] + ["write"] * 3 + [replay]
    assert outputs[0] is outputs[1] is outputs[2] and outputs[0].is_allocated()
    lm.release_trace()
    lm.release_trace()  # nothing left to release
    assert events[-1] == ("release", 7) and events.count(("release", 7)) == 1

    def fails_in_capture(ids):
        if events[-1] == "begin":
            raise RuntimeError("an op failed")
        return embed(ids)

    monkeypatch.setattr(lm.embedding, "decode_forward", fails_in_capture)
    events.clear()
    with pytest.raises(RuntimeError, match="an op failed"):
        step(2)
    assert events[-3:] == ["begin", ("end", 7), ("release", 7)]
    monkeypatch.setattr(lm.embedding, "decode_forward", lambda ids: events.append("ops") or embed(ids))
    events.clear()
    step(3)
    assert events == ["write"] * 2 + capture + [replay]


# --- the demo CLI -------------------------------------------------------------------------------------------------
def _cli(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop(devices.MOCK_DESCRIPTOR_ENV, None)  # the demo picks the mock system for its mesh itself
    command = [sys.executable, "-m", "models.common.models", *args]
    return subprocess.run(
        command, cwd=devices.REPO_ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "no-such-model", "--ids", "1"], "is neither a folder nor a shipped config"),
        (["--model", LLAMA, "--prompt", "hi"], "needs a tokenizer"),
        (["--model", LLAMA, "--ids", "1,x"], "comma-separated"),
        (["--model", LLAMA, "--ids", "1", "--mesh", "3x3"], "'3x3' is not one of"),
    ],
    ids=["unknown-model", "no-tokenizer", "bad-ids", "bad-mesh"],
)
def test_demo_bad_input_is_one_line_and_exit_code_2(args, message, capsys):
    from models.common.models.__main__ import EXIT_BAD_INPUT, main

    assert main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
