# SPDX-License-Identifier: Apache-2.0
"""The whole model's weight cache (``CausalLM(..., weight_cache=folder)``, the demo's ``--weight-cache``): a warm
build loads every weight instead of converting it and gives the cold build's logits; another dtype or mesh converts
its own entries instead of loading the cached ones."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
import ttnn

from models.common.models import hf_loading
from models.common.models.causal_lm import CausalLM
from models.common.models.decoder_block import DecoderBlock
from models.common.models.hf_loading import HFModel
from models.common.modules.lazy_weight import LazyWeight
from models.common.tests.models.test_causal_lm import (
    PCC,
    SMALL_DIMS,
    SMALL_FAMILIES,
    _cli,
    hf_model,
    hf_next_logits,
    idle_batch,
    random_ids,
)

MAX_SEQ_LEN = 256
FAMILY = "qwen2"  # Q/K/V biases: the attention also caches weights it derives (the biases for decode and prefill)
READ_ON_WARM_BUILD = re.compile(r"self_attn\.|norm\.weight$")  # fused by the attention / hashed for the norms' gamma
WRITTEN = re.compile(r": (\d+) converted weights written\)")


@pytest.fixture
def small_model(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**SMALL_DIMS, **SMALL_FAMILIES[FAMILY]}))
    return folder


@pytest.fixture
def events(monkeypatch):
    """Counts of what LazyWeights and the random-weight reader do: ``converted`` and ``loaded`` weights (by cache
    folder name and cache name; None: not cached), ``drawn`` HF tensor names."""
    seen = {"converted": Counter(), "loaded": Counter(), "drawn": Counter()}
    convert, load, draw = LazyWeight._convert, LazyWeight._load_cached, hf_loading._random_tensor

    def counted_convert(weight):
        seen["converted"][_name(weight)] += 1
        return convert(weight)

    def counted_load(weight):
        host = load(weight)
        if host is not None:
            seen["loaded"][_name(weight)] += 1
        return host

    def counted_draw(key, *args):
        seen["drawn"][key] += 1
        return draw(key, *args)

    monkeypatch.setattr(LazyWeight, "_convert", counted_convert)
    monkeypatch.setattr(LazyWeight, "_load_cached", counted_load)
    monkeypatch.setattr(hf_loading, "_random_tensor", counted_draw)
    return seen


def _name(weight: LazyWeight) -> tuple[str, str] | None:
    return None if weight.cache_dir is None else (Path(weight.cache_dir).name, weight.cache_name)


def _reset(events):
    for counter in events.values():
        counter.clear()


def _files(folder) -> dict:
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*.tensorbin")}


def _logits(lm: CausalLM, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    prefill = lm.prefill_forward(ids, user_id=0)
    decode = lm.decode_forward(*idle_batch(lm, {0: (int(prefill.argmax()), len(ids))}))[0]
    lm.release(0)
    return prefill, decode


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_warm_build_loads_every_weight_and_gives_the_cold_logits(
    ttnn_mesh_device, small_model, tmp_path, events, reference_check
):
    cache = tmp_path / "cache"
    cold = CausalLM(HFModel.load(small_model), ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN, weight_cache=cache)
    converted = dict(events["converted"])
    files = _files(cache)
    assert None not in converted, "every weight of the model is cached"
    assert set(converted.values()) == {1} and len(files) == len(converted) and not events["loaded"]
    assert {p.parent.name for p in files} == {"cache", "layers.0", "layers.1"}
    ids = random_ids(40, SMALL_DIMS["vocab_size"], seed=8)
    cold_prefill, cold_decode = _logits(cold, ids)
    del cold

    _reset(events)
    warm = CausalLM(HFModel.load(small_model), ttnn_mesh_device, max_seq_len=MAX_SEQ_LEN, weight_cache=cache)
    assert not events["converted"], f"the warm build converted {dict(events['converted'])}"
    assert dict(events["loaded"]) == converted
    assert _files(cache) == files, "the warm build rewrote cache files"
    assert all(READ_ON_WARM_BUILD.search(key) for key in events["drawn"]), dict(events["drawn"])
    assert not any("embed_tokens" in key or "mlp." in key for key in events["drawn"])
    warm_prefill, warm_decode = _logits(warm, ids)
    assert torch.equal(warm_prefill, cold_prefill) and torch.equal(warm_decode, cold_decode)

    model = HFModel.load(small_model)  # the numbers are the model's: the cold build against HF's
    reference_check(hf_next_logits(hf_model(small_model, model), ids), cold_prefill, min_pcc=PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_another_dtype_converts_its_own_entries(ttnn_mesh_device, small_model, tmp_path, events):
    """A block built again with the MLP's w1/w3 in bfloat4_b converts exactly those two weights (written beside
    the bfloat8_b ones) and loads the rest."""
    model = HFModel.load(small_model, n_layers=1)
    cache = tmp_path / "cache"

    def block(**overrides):
        weights = model.weights("layers.0.")
        kw = dict(max_seq_len=MAX_SEQ_LEN, weight_cache=cache, overrides=overrides)
        return DecoderBlock(model.description, weights, ttnn_mesh_device, **kw)

    default = block()
    assert default.mlp.config.w1_w3_dtype == ttnn.bfloat8_b  # MLP1D's default (TTTv1's)
    files = _files(cache)
    _reset(events)
    bfp4 = block(mlp={"w1_w3_dtype": ttnn.bfloat4_b})
    assert dict(events["converted"]) == {("cache", f"mlp.{n}_proj.weight.T"): 1 for n in ("gate", "up")}
    assert bfp4.mlp.weights["w1"].get_device_weight().dtype == ttnn.bfloat4_b
    new = set(_files(cache)) - set(files)
    assert len(new) == 2 and set(_files(cache)) >= set(files)


def test_demo_weight_cache_is_per_mesh(small_model, tmp_path):
    """``--weight-cache``: the first run writes every weight, a second run on the same mesh writes none and
    generates the same tokens, a run on another mesh writes every weight again (it loads none of the first mesh's)."""
    cache = tmp_path / "cache"
    args = ("--model", str(small_model), "--ids", "1,2,3", "--max-new-tokens", "2", "--weight-cache", str(cache))
    runs = {}
    for name, mesh in (("cold", "1x1"), ("warm", "1x1"), ("other mesh", "1x2")):
        result = _cli(*args, "--mesh", mesh)
        assert result.returncode == 0, result.stderr
        tokens = next(line for line in result.stdout.splitlines() if line.startswith("tokens: "))
        runs[name] = (int(WRITTEN.search(result.stdout).group(1)), tokens)
    assert runs["cold"][0] > 0 and runs["warm"] == (0, runs["cold"][1])
    assert runs["other mesh"][0] == runs["cold"][0]
