# SPDX-License-Identifier: Apache-2.0
"""Block-float rounding (ttnn's packing of the values with leading dims folded into rows) equals ttnn's host packing
of the tensor as shaped (the round trip through a bfloat8_b / bfloat4_b host tensor) bit for bit, also stored as
bfloat16: random data, wide and tiny magnitudes, ties, edge values, shapes that need tile padding."""

import pytest
import torch
import ttnn

from models.common.testing.shadow.blockfloat import MANTISSA_BITS, round_block_float

SIGNIFICAND_BITS = 24  # float32's significand, its hidden bit included

DTYPES = [pytest.param(dtype, id=str(dtype).split(".")[-1].lower()) for dtype in MANTISSA_BITS]
SHAPES = [(32, 32), (1, 1, 64, 128), (3, 5), (2, 33, 47), (1, 17), (40, 16), (5, 1), (2, 3, 40, 200), (7, 1000)]


def _ttnn_round_trip(x: torch.Tensor, dtype) -> torch.Tensor:
    return ttnn.to_torch(ttnn.from_torch(x, dtype=dtype, layout=ttnn.TILE_LAYOUT)).float()


def _assert_bit_equal(x: torch.Tensor, dtype) -> None:
    """As float32, and as bfloat16 (the shadow's storage), which must hold every value exactly."""
    expected = _ttnn_round_trip(x, dtype)
    for out_dtype in (torch.float32, torch.bfloat16):
        actual = round_block_float(x, dtype, out_dtype=out_dtype)
        assert actual.shape == expected.shape and actual.dtype == out_dtype
        actual = actual.float()
        nan = expected.isnan()
        assert torch.equal(actual.isnan(), nan), "NaN positions differ"
        same = expected.view(torch.int32) == actual.view(torch.int32)
        if not bool(same[~nan].all()):
            where = (~same & ~nan).nonzero()[0].tolist()
            index = tuple(where)
            raise AssertionError(f"{x[index]} at {where}: ttnn {expected[index]}, torch {out_dtype} {actual[index]}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "x".join(map(str, shape)))
def test_random_data(shape, dtype):
    generator = torch.Generator().manual_seed(len(shape) * 1000 + shape[-1])
    x = torch.randn(shape, generator=generator)
    _assert_bit_equal(x, dtype)
    _assert_bit_equal(x.bfloat16().float(), dtype)
    _assert_bit_equal(x * torch.exp(torch.randn(shape, generator=generator) * 10), dtype)  # wide range per block
    _assert_bit_equal(x * 1e-37, dtype)  # tiny blocks: subnormal values and scales beyond one float's range
    _assert_bit_equal(x * 1e37, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_values(dtype):
    x = torch.randn(32, 64)
    x[0, :16] = 0  # an all-zero block
    x[1, 3] = -0.0
    x[2] = 1e-40  # a block of subnormals
    x[3, :4] = torch.tensor([2.0**-120, 2.0**-127, 2.0**-130, -1.5 * 2.0**-127])  # subnormals beside a tiny normal
    x[4, :3] = torch.tensor([2.0**-125, 1.75 * 2.0**-126, 2.0**-126])
    x[5, :3] = torch.tensor([3.4e38, 1.0, -3.3e38])  # huge: rounding up must saturate, not overflow
    x[6, :3] = torch.tensor([float("inf"), 2.0**127, -5.0])
    x[7, :3] = torch.tensor([float("-inf"), float("nan"), 1.0])
    x[8, :2] = torch.tensor([-1e-30, 1.0])  # underflows to zero, which is stored without its sign
    x[9, :2] = torch.tensor([1.0, 1.0 - 2.0**-10])  # rounds up to the saturated magnitude
    x[10] = torch.finfo(torch.float32).max
    x[11, :5] = torch.tensor([1e-45, 1e-44, 1e-39, 2.0**-127, 2.0**-125])
    _assert_bit_equal(x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties(dtype):
    """Ties round to even, also when the shift to the shared exponent truncated nonzero bits below the tie."""
    bits = MANTISSA_BITS[dtype]
    shift = SIGNIFICAND_BITS - bits  # significand bits rounded away at the shared exponent
    generator = torch.Generator().manual_seed(1)
    sign = torch.where(torch.rand(64, 32, generator=generator) > 0.5, 1.0, -1.0)
    kept = torch.randint(0, 2 ** (bits - 1), (64, 32), generator=generator)
    tie = (kept * 2**shift + 2 ** (shift - 1)) * 2.0 ** (1 - SIGNIFICAND_BITS) * sign  # below 1.0: exact ties
    above_tie = torch.nextafter(tie, tie * 2)  # plus the lowest bit of the value, which the shift drops
    for x in (tie, above_tie):
        x[:, ::16] = 1.0  # every block's shared exponent is that of 1.0
        _assert_bit_equal(x, dtype)
