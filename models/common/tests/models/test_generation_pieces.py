# SPDX-License-Identifier: Apache-2.0
"""The host pieces of generation (no device): sampling, stop tokens, the tokenizer look-up, the KV-cache block
allocator and the prefill lengths."""

import json

import pytest
import torch

from models.common.models.causal_lm import prefill_length
from models.common.models.generation import Sampling, load_tokenizer, sample, stop_tokens
from models.common.models.hf_loading import ModelDescription
from models.common.models.paged_cache import BlockAllocator
from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR


def test_greedy_is_argmax():
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample(logits, Sampling(), torch.Generator()), logits.argmax(-1))


def test_top_k_and_top_p_keep_only_the_likely_tokens_and_are_seeded():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    draw = lambda s: sample(logits, s, torch.Generator().manual_seed(s.seed))  # noqa: E731
    top_k = draw(Sampling(temperature=1.0, top_k=2, seed=1))
    assert set(top_k.tolist()) == {0, 1}
    top_p = draw(Sampling(temperature=1.0, top_p=0.8, seed=1))  # 0.5 + 0.3 reach 0.8: tokens 0 and 1
    assert set(top_p.tolist()) == {0, 1}
    assert (top_p == 0).float().mean() == pytest.approx(0.5 / 0.8, abs=0.05)
    assert torch.equal(draw(Sampling(temperature=1.0, seed=3)), draw(Sampling(temperature=1.0, seed=3)))
    assert set(draw(Sampling(temperature=1.0, seed=3)).tolist()) == {0, 1, 2, 3}


def test_bad_sampling_is_refused():
    with pytest.raises(ValueError, match="top_p"):
        Sampling(top_p=0)


def test_stop_tokens_prefer_generation_config(tmp_path):
    description = ModelDescription.from_folder(MODEL_PARAMS_DIR / "Llama-3.2-1B-Instruct")
    assert stop_tokens(tmp_path, description) == {128001, 128008, 128009}
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": 7}))
    assert stop_tokens(tmp_path, description) == {7}
    assert load_tokenizer(tmp_path) is None


def test_block_allocator_grows_rows_and_recycles_blocks():
    cache = BlockAllocator(max_batch_size=2, max_seq_len=256, block_size=64)
    assert cache.config.max_num_blocks == 2 * 4 + 1 and cache.table.eq(cache.scratch).all()
    cache.reserve(0, 65)
    cache.reserve(1, 1)
    cache.reserve(0, 128)  # already covered
    assert cache.table[0, :2].tolist() == [0, 1] and cache.table[1, 0] == 2 and cache.table[0, 2] == cache.scratch
    assert cache.user_row(0, 128).tolist() == [[0, 1]]
    cache.release(0)
    assert cache.table[0].eq(cache.scratch).all()
    cache.reserve(1, 256)
    assert sorted(cache.table[1].tolist()) == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="exceed"):
        cache.reserve(1, 257)


@pytest.mark.parametrize("tokens, length", [(1, 128), (128, 128), (129, 256), (1025, 2048), (2049, 4096), (5000, 6144)])
def test_prefill_lengths_follow_the_attention_rules(tokens, length):
    assert prefill_length(tokens) == length
