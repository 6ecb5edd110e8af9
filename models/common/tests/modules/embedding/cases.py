# SPDX-License-Identifier: Apache-2.0
"""Embedding test cases (filled from the TTTv1 case collection)."""

import pytest

EMBEDDING_1D_CASES = [
    pytest.param((1, 1), 128256, 2048, id="1x1-Llama-3.2-1B"),
    pytest.param((1, 8), 128256, 2048, id="1x8-Llama-3.2-1B"),
]
