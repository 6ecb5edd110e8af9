# SPDX-License-Identifier: Apache-2.0
"""Embedding test cases collected from TTTv1: the rows of embedding_1d_performance.csv left by

    TTTV1_CASES_DIR=<dir> ./run_tttv1_simple_demos.sh --models "Llama-3.2-1B-Instruct Qwen2.5-7B-Instruct" \\
        --meshes "1x1 1x2 1x8 8x4"          (1 layer, mock tier, branch h15b, 2026-12-06)

as (mesh, tokens, vocab, dim, model). TTTv1's Transformer embeds 32 tokens (one per user) in decode and the padded
prompt (128 tokens) in prefill.
"""

import pytest

COLLECTED = [
    ((1, 1), 128, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((1, 1), 32, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((1, 2), 128, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((1, 2), 32, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((1, 8), 128, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((1, 8), 32, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((8, 4), 128, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((8, 4), 32, 128256, 2048, "Llama-3.2-1B-Instruct"),
    ((1, 2), 128, 152064, 3584, "Qwen2.5-7B-Instruct"),
    ((1, 2), 32, 152064, 3584, "Qwen2.5-7B-Instruct"),
]
DECODE_TOKENS = 32  # TTTv1 decode: one token per user of the tile


def _param(mesh, tokens, vocab, dim, model):
    mode = "decode" if tokens == DECODE_TOKENS else "prefill"
    return pytest.param(mesh, mode, tokens, vocab, dim, id=f"{mesh[0]}x{mesh[1]}-{model}-{mode}")


EMBEDDING_1D_CASES = [_param(*case) for case in COLLECTED if case[0][0] == 1]
# Galaxy: the table is replicated over the mesh rows, so the shadow holds it 8 (4) times; the vocabulary is cut to
# the collected case's first 16384 rows (the layout does not depend on it). 4x8 is not a TTTv1 mesh: the 8x4 cases
# transposed.
GALAXY_VOCAB = 16384
EMBEDDING_2D_CASES = [
    _param(mesh, tokens, GALAXY_VOCAB, dim, model)
    for mesh in ((8, 4), (4, 8))
    for collected_mesh, tokens, _, dim, model in COLLECTED
    if collected_mesh == (8, 4)
]
