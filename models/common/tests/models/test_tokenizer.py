# SPDX-License-Identifier: Apache-2.0
"""Generation with the model folder's tokenizer, offline: a tiny byte-level BPE (Qwen2's tokenizer type, trained here on
a few sentences) beside a small qwen2 config. A text prompt is tokenized with it, generate returns the new ids and their
text, generation_config.json's stop token ends generation, and the demo CLI prints the same text. Nothing may reach
the network (HF_HUB_OFFLINE, and sockets refuse to connect in this process)."""

import json
import socket

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from models.common.models.causal_lm import CausalLM
from models.common.models.generation import GENERATION_CONFIG, generate, load_tokenizer, stop_tokens
from models.common.models.hf_loading import HFModel
from models.common.tests.models.test_causal_lm import SMALL_DIMS, SMALL_FAMILIES, _cli

SENTENCES = ("the cat sat on the mat", "a model built from modules runs on the mesh", "hello world")
TOKENIZER_VOCAB = 300  # byte-level BPE: 256 bytes, one special token, merges; below every model vocab_size here
EOS = "<|endoftext|>"
PROMPT = "the cat sat on the mesh"
NEW_TOKENS = 4
MAX_SEQ_LEN = 256


def write_tokenizer(folder) -> Tokenizer:
    """A Qwen2-type tokenizer (byte-level BPE, as Qwen2's tokenizer.json) trained on SENTENCES, saved in ``folder`` as
    tokenizer.json + tokenizer_config.json (transformers picks the tokenizer class by the folder's model_type)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=[EOS], initial_alphabet=alphabet)
    tokenizer.train_from_iterator(SENTENCES, trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "Qwen2Tokenizer", "eos_token": EOS}))
    return tokenizer


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # also for the demo's process

    def refuse(sock, address):
        raise AssertionError(f"a test tried to reach the network: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**SMALL_DIMS, **SMALL_FAMILIES["qwen2"]}))
    write_tokenizer(tmp_path)
    return tmp_path


def test_the_folder_tokenizer_is_loaded_offline(folder, offline):
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer = load_tokenizer(folder)
    ids = tokenizer(PROMPT).input_ids
    assert ids == raw.encode(PROMPT).ids and max(ids) < SMALL_DIMS["vocab_size"]
    assert tokenizer.decode(ids) == PROMPT


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_text_prompt_generates_ids_and_text_until_the_stop_token(ttnn_mesh_device, folder, offline):
    tokenizer = load_tokenizer(folder)
    model = HFModel.load(folder)
    lm = CausalLM(model, ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN)
    free = generate(lm, [PROMPT], NEW_TOKENS, tokenizer=tokenizer, progress=False).generations[0]
    assert free.prompt == tokenizer(PROMPT).input_ids
    assert len(free.tokens) == NEW_TOKENS and not free.stopped
    assert free.text == tokenizer.decode(free.tokens)

    stop = free.tokens[-1]  # generation_config.json's eos_token_id wins over config.json's
    (folder / GENERATION_CONFIG).write_text(json.dumps({"eos_token_id": [stop]}))
    assert stop_tokens(folder, model.description) == {stop}
    stopped = generate(lm, [PROMPT], NEW_TOKENS, tokenizer=tokenizer, stop=stop_tokens(folder, model.description))
    g = stopped.generations[0]
    assert g.tokens == free.tokens[: free.tokens.index(stop) + 1] and g.stopped
    assert g.text == tokenizer.decode(g.tokens)

    result = _cli("--model", str(folder), "--mesh", "1x1", "--prompt", PROMPT, "--max-new-tokens", str(NEW_TOKENS))
    assert result.returncode == 0, result.stderr
    assert f"tokens: {g.tokens} (stop token)" in result.stdout
    assert f"text: {g.text!r}" in result.stdout
