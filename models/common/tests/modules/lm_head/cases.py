# SPDX-License-Identifier: Apache-2.0
"""LM head test cases."""

import pytest

# (mesh, vocab, dim, mode). The large-vocabulary case (three splits, the last a short one) runs decode only: prefill
# reaches the same matmuls through one slice and reshard, and each Qwen2.5-7B case takes minutes on the shadow.
LM_HEAD_1D_CASES = [
    pytest.param((1, 1), 128256, 2048, "decode", id="1x1-Llama-3.2-1B-decode"),
    pytest.param((1, 1), 128256, 2048, "prefill", id="1x1-Llama-3.2-1B-prefill"),
    pytest.param((1, 8), 128256, 2048, "decode", id="1x8-Llama-3.2-1B-decode"),
    pytest.param((1, 8), 128256, 2048, "prefill", id="1x8-Llama-3.2-1B-prefill"),
    pytest.param((1, 2), 152064, 3584, "decode", id="1x2-Qwen2.5-7B-decode"),
]
LM_HEAD_2D_CASES = [
    pytest.param((8, 4), 128256, 2048, id="8x4-Llama-3.2-1B"),
    pytest.param((4, 8), 128256, 2048, id="4x8-Llama-3.2-1B"),
]
