# SPDX-License-Identifier: Apache-2.0
"""Block-float storage rounding (bfloat8_b, bfloat4_b) in torch, bit for bit what ttnn's host packing stores.

tt-metal ``tt_metal/impl/data_format/blockfloat_common.cpp`` (``pack_fp32_vec_as_bfp_tiles``,
``convert_u32_to_bfp``, ``convert_bfp_to_u32``): a tile is stored as 16x16 faces and each face row, 16
consecutive values of a tile row, shares one exponent: the largest biased float32 exponent among them. Each value
keeps its sign and a magnitude of ``MANTISSA_BITS`` bits: its 24-bit significand (hidden bit included) shifted
right by its exponent's distance to the shared one (truncating), then rounded to nearest, ties to even, on the
bits shifted out next, saturating at the largest magnitude (no carry into the exponent); a zero magnitude loses
its sign. Read back, a magnitude ``m`` is ``m * 2 ** (shared - 127 - (MANTISSA_BITS - 1))``. ttnn 0.81.1 reads
float32 subnormals as zero (observed; ``tests/testing/test_blockfloat.py`` pins it). Tile padding adds zeros, which
never raise a shared exponent, so blocks are 16 consecutive values of a row zero-padded to a multiple of 16.

Here the shift-and-truncate is ``trunc(x * 2 ** (150 - shared))`` and the rounding ``round`` (half to even) of
that integer over ``2 ** (24 - MANTISSA_BITS)``, on signed values (every step is odd-symmetric): a handful of
in-place float ops per value, run on cache-sized chunks. A block holding inf or NaN has the shared exponent 255:
inf and NaN read back as in ttnn (NaN payloads are not modelled), the block's other values stay finite.
"""

import torch
import torch.nn.functional as F
import ttnn

BLOCK = 16  # values sharing an exponent: one row of a 16x16 face
MANTISSA_BITS = {ttnn.bfloat8_b: 7, ttnn.bfloat4_b: 3}  # magnitude bits per value (plus a sign bit)
EXPONENT_BIAS, SIGNIFICAND_BITS = 127, 24  # float32: biased exponent, significand with its hidden bit
FLOAT32_MIN_NORMAL = torch.finfo(torch.float32).tiny
# Blocks whose largest value is below this scale by more than float32's largest power of two (2 ** 127): they are
# scaled in two steps, and subnormals (read as zero) could otherwise round to a nonzero magnitude.
TWO_STEP_BELOW = 2.0 ** (SIGNIFICAND_BITS - 1 - EXPONENT_BIAS)
CHUNK_BLOCKS = 1 << 16  # blocks rounded per pass (4 MiB of float32): measured fastest of 2 ** 12 .. 2 ** 16 here


def round_block_float(values: torch.Tensor, dtype, out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``values`` as ``dtype`` (bfloat8_b or bfloat4_b) stores them, same shape, as ``out_dtype``: float32, or
    bfloat16, which holds every block-float value exactly (at most 7 significant bits, float32's exponent range)
    in half the memory. Rounded one chunk at a time in float32: no full-size float32 copy of ``values``."""
    width = values.shape[-1] if values.dim() else 1
    pad = -width % BLOCK
    rows = values.reshape(-1, width)
    blocks = (F.pad(rows, (0, pad)) if pad else rows).reshape(-1, BLOCK)
    out = torch.empty(blocks.shape, dtype=out_dtype)
    rounded = torch.empty(min(blocks.shape[0], CHUNK_BLOCKS), BLOCK)
    for start in range(0, blocks.shape[0], CHUNK_BLOCKS):
        chunk = blocks[start : start + CHUNK_BLOCKS].float()
        _round_blocks(chunk, rounded[: chunk.shape[0]], MANTISSA_BITS[dtype])
        out[start : start + chunk.shape[0]] = rounded[: chunk.shape[0]]
    if pad:
        out = out.reshape(-1, width + pad)[:, :width]
    return out.reshape(values.shape)


def _round_blocks(x: torch.Tensor, out: torch.Tensor, bits: int) -> None:
    """Round the rows of ``x`` ([n, BLOCK] float32) into ``out``."""
    largest = torch.maximum(x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True).neg_()).abs_()  # abs_: -NaN
    shared = largest.view(torch.int32) >> (SIGNIFICAND_BITS - 1)  # biased exponent of the block's largest value
    to_integer = EXPONENT_BIAS + SIGNIFICAND_BITS - 1 - shared  # x * 2 ** to_integer: the significand, aligned
    to_integer.masked_fill_(largest == 0, 0)  # all-zero blocks (e.g. padded weight columns): 2 ** 150 is inf
    if bool(((largest > 0) & (largest < TWO_STEP_BELOW)).any()):  # tiny blocks: subnormals matter, 2 ** 128+
        out.copy_(x).masked_fill_(x.abs() < FLOAT32_MIN_NORMAL, 0.0)
        half = to_integer // 2
        out.mul_(torch.exp2(half.float())).mul_(torch.exp2((to_integer - half).float()))
    else:
        torch.mul(x, torch.exp2(to_integer.float()), out=out)
    largest_magnitude = 2**bits - 1
    out.trunc_().mul_(2.0 ** (bits - SIGNIFICAND_BITS)).round_().clamp_(-largest_magnitude, largest_magnitude)
    out.mul_(torch.exp2((shared - EXPONENT_BIAS - (bits - 1)).float()))
    out.add_(0.0)  # -0 -> +0: a zero magnitude is stored without its sign
