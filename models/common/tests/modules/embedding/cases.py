# SPDX-License-Identifier: Apache-2.0
"""Embedding test cases (filled from the TTTv1 case collection)."""

import pytest

EMBEDDING_1D_CASES = [
    pytest.param((1, 1), 128256, 2048, id="1x1-Llama-3.2-1B"),
    pytest.param((1, 8), 128256, 2048, id="1x8-Llama-3.2-1B"),
]
# Galaxy: the table is replicated over the 8 (or 4) mesh rows, so the shadow holds it 8 times; the vocabulary is cut
# to Llama-3.2-1B's first 16384 rows (the layout does not depend on the vocabulary size).
EMBEDDING_2D_CASES = [
    pytest.param((8, 4), 16384, 2048, id="8x4-Llama-3.2-1B-dims"),
    pytest.param((4, 8), 16384, 2048, id="4x8-Llama-3.2-1B-dims"),
]
