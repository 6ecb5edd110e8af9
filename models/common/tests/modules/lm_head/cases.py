# SPDX-License-Identifier: Apache-2.0
"""LM head test cases collected from TTTv1: the rows of lm_head_1d_performance.csv (and the final norm's rows of
rmsnorm_1d_performance.csv, for its eps) left by

    TTTV1_CASES_DIR=<dir> ./run_tttv1_simple_demos.sh --models "Llama-3.2-1B-Instruct Qwen2.5-7B-Instruct" \\
        --meshes "1x1 1x2 1x8 8x4"          (1 layer, mock tier, branch h15b, 2026-12-06)

as (mesh, dim, vocab, TTTv1's columns per device of each weight split, final norm eps, model). TTTv1 runs its LM head
on one 32-row tile in both modes (decode: the users; prefill: the tile holding the last prompt token).
"""

import pytest

COLLECTED = [
    ((1, 1), 2048, 128256, (42752, 42752, 42752), 1e-5, "Llama-3.2-1B-Instruct"),
    ((1, 2), 2048, 128256, (42752, 21376), 1e-5, "Llama-3.2-1B-Instruct"),
    ((1, 8), 2048, 128256, (16032,), 1e-5, "Llama-3.2-1B-Instruct"),
    ((8, 4), 2048, 128256, (16384,), 1e-5, "Llama-3.2-1B-Instruct"),
    ((1, 2), 3584, 152064, (37408, 37408, 1216), 1e-6, "Qwen2.5-7B-Instruct"),
]


def _params(meshes, modes):
    return [
        pytest.param(mesh, mode, dim, vocab, splits, eps, id=f"{mesh[0]}x{mesh[1]}-{model}-{mode}")
        for mesh, dim, vocab, splits, eps, model in COLLECTED
        for mode in modes
        if mesh in meshes
    ]


# Each collected case in decode; prefill (the same matmuls behind one slice and reshard) on 1x8 only: every case
# holds the whole vocabulary on the host and in the shadow, the Qwen2.5-7B one takes minutes.
LM_HEAD_1D_CASES = _params([(1, 1), (1, 2), (1, 8)], ["decode"]) + _params([(1, 8)], ["prefill"])
# 4x8 is not a TTTv1 mesh: the 8x4 case with the mesh transposed (4 vocabulary slices of 32768 columns)
LM_HEAD_2D_CASES = _params([(8, 4)], ["decode", "prefill"]) + [
    pytest.param((4, 8), mode, 2048, 128256, (32768,), 1e-5, id=f"4x8-Llama-3.2-1B-Instruct-{mode}")
    for mode in ("decode", "prefill")
]
