# SPDX-License-Identifier: Apache-2.0
"""LM head test cases."""

import pytest

LM_HEAD_1D_CASES = [
    pytest.param((1, 1), 128256, 2048, id="1x1-Llama-3.2-1B"),
    pytest.param((1, 8), 128256, 2048, id="1x8-Llama-3.2-1B"),
    pytest.param((1, 2), 152064, 3584, id="1x2-Qwen2.5-7B"),
]
LM_HEAD_2D_CASES = [
    pytest.param((8, 4), 128256, 2048, id="8x4-Llama-3.2-1B"),
    pytest.param((4, 8), 128256, 2048, id="4x8-Llama-3.2-1B"),
]
