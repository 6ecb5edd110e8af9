# SPDX-License-Identifier: Apache-2.0
"""Goldens of the per-device ops: data movement, matmul, eltwise, reduction, normalisation, embedding.

ttnn 0.81.1's own goldens (``ttnn.get_golden_function``) are used wherever they exist; the rest are identities
on values (memory-config, sharding and dtype moves change storage, not numbers; the storage rounding is applied
by the shadow from the predicted output dtype) or the torch references of tt-metal's op tests, cited per golden.
"""

import math
from pathlib import Path

import ttnn

from models.common.testing.shadow.registry import (
    OpSpec,
    argument,
    concat_keeps_blocks,
    dtype_from,
    input_dtype,
    keeps_blocks,
    layout_from,
    reshape_keeps_blocks,
    ttnn_golden,
)
from models.common.testing.shadow.tensor import BLOCK_FLOATS, ShadowError, tile_padded


def identity(x, *args, **kwargs):
    return x


def reshape(x, shape, padded_shape=None, *args, input_padded_shape, **kwargs):
    """``ttnn.reshape(x, shape[, padded_shape])``. With a padded shape whose volume is not the logical one (a decode
    batch of fewer than 32 users kept in a tile of rows: tt-metal models/tt_transformers/tt/attention.py) the op
    reinterprets the padded buffer: the new logical values are the leading part of each dim of the input's padded
    values laid out in ``padded_shape``. The shadow holds no padding values, so that is computed when the input has
    no padding, or when the padded shape stays and the new logical shape lies inside the old one."""
    shape = tuple(shape)
    if padded_shape is None or math.prod(shape) == x.numel():
        return ttnn.get_golden_function(ttnn.reshape)(x, shape)
    padded_shape, leading = tuple(padded_shape), tuple(slice(0, s) for s in shape)
    if tuple(x.shape) == input_padded_shape:
        return x.reshape(padded_shape)[leading].clone()
    inside = len(shape) == x.dim() and all(s <= n for s, n in zip(shape, x.shape, strict=True))
    if padded_shape == input_padded_shape and inside:
        return x[leading].clone()
    raise ShadowError(
        f"ttnn.reshape {tuple(x.shape)} (padded {input_padded_shape}) -> {shape} (padded {padded_shape}): the new "
        "values would include the input's padding, which the shadow does not hold"
    )


def reshape_context(args, kwargs) -> dict:
    return {"input_padded_shape": tuple(args[0].golden.padded_shape)}


def reshape_padded(args, kwargs, shape, layout):
    """``ttnn.reshape(x, shape, padded_shape)`` keeps the padded shape it is given."""
    padded = argument(args, kwargs, "padded_shape", 2)
    return tile_padded(shape, layout) if padded is None else tuple(padded)


def concat(tensors, dim=0, *args, **kwargs):
    return ttnn.get_golden_function(ttnn.concat)(list(tensors), dim)


def concat_moves(args, kwargs, shape) -> bool:
    tensors = argument(args, kwargs, "tensors", 0)
    return concat_keeps_blocks(argument(args, kwargs, "dim", 1, 0), [t.shape[-1] for t in tensors], shape)


def permute_moves(args, kwargs, shape) -> bool:
    """Rows stay whole when the last dim stays last."""
    return argument(args, kwargs, "dims", 1)[-1] % len(shape) == len(shape) - 1


def concat_dtype(args, kwargs, first):
    return argument(args, kwargs, "tensors", 0)[0].golden.dtype


def slice_(x, starts, ends, steps=None, *args, **kwargs):
    return ttnn.get_golden_function(ttnn.slice)(x, list(starts), list(ends), None if steps is None else list(steps))


def embedding(indices, weight, *args, **kwargs):
    return ttnn.get_golden_function(ttnn.embedding)(indices, weight.reshape(-1, weight.shape[-1]))


def embedding_dtype(args, kwargs, first):
    """``dtype=`` if given, else the weight's (not the indices') dtype."""
    dtype = argument(args, kwargs, "dtype")
    return input_dtype(1)(args, kwargs, first) if dtype is None else dtype


def to_memory_config_dtype(args, kwargs, first):
    """``ttnn.to_memory_config(tensor, memory_config, dtype=None, output_tensor=None)``: ``dtype`` (keyword or third
    argument) if given, else the input's; except that without an ``output_tensor`` ttnn returns the input itself
    (same buffer), ignoring ``dtype``, when it already has the requested memory config. With an ``output_tensor`` it
    always copies, into ``dtype`` (ttnn checks the output tensor has it). Measured on ttnn 0.81.1 (the op's C++ is
    not in the wheel) for DRAM / L1 interleaved, width- / height-sharded inputs and targets and bfloat16 / bfloat8_b
    inputs: sharded → interleaved honours ``dtype`` like every other move (L1 bfloat16 → L1 with bfloat8_b stays
    bfloat16; L1 → DRAM with bfloat8_b converts)."""
    unchanged = argument(args, kwargs, "memory_config", 1) == argument(args, kwargs, "tensor", 0).memory_config()
    if unchanged and argument(args, kwargs, "output_tensor", 3) is None:
        return first.dtype
    return dtype_from("dtype", 2)(args, kwargs, first)


def fast_reduce_nc(x, *args, dims, **_):
    """The sum over ``dims`` (N and / or C), each kept with size 1. tt-metal
    tests/tt_eager/python_api_testing/unit_testing/misc/test_fast_reduce_nc.py (``torch.sum(torch_input, dims,
    True)``)."""
    return x.sum(dim=tuple(dims), keepdim=True)


CPU_FLAGS = Path("/proc/cpuinfo")


def _cpu_has(flag: str) -> bool:
    """Whether the CPU reports ``flag`` (Linux's /proc/cpuinfo; False where it cannot be read)."""
    try:
        return flag in CPU_FLAGS.read_text().split()
    except OSError:
        return False


# AVX512-BF16 dot products accumulate in float32 and round once to bfloat16 (Intel's VDPBF16PS); torch's CPU
# bfloat16 GEMM uses them where the CPU has them, and is 2.5x faster than float32 there (1024x4096x14336, measured).
BFLOAT16_DOT_PRODUCTS = _cpu_has("avx512_bf16")


def untilize_dtype(args, kwargs, first):
    """``ttnn.untilize``: row-major output, so a block-float input comes out bfloat16 (measured on ttnn 0.81.1)."""
    return ttnn.bfloat16 if first.dtype in BLOCK_FLOATS else first.dtype


def matmul_in_bfloat16(args, kwargs, dtype) -> bool:
    """A matmul or linear with a bfloat16 output and no bias or activation runs ttnn's golden on the bfloat16-stored
    inputs, a bfloat16 GEMM: the float32 golden rounded to bfloat16 but for float32 summation order (pinned by
    tests/testing/test_shadow.py), where the CPU has bfloat16 dot products."""
    program_config = argument(args, kwargs, "program_config")
    fused = argument(args, kwargs, "bias") is not None or argument(args, kwargs, "activation") is not None
    fused = fused or getattr(program_config, "fused_activation", None) is not None
    return BFLOAT16_DOT_PRODUCTS and dtype == ttnn.bfloat16 and not fused


_ELTWISE_DROP = ("memory_config", "output_tensor", "queue_id", "use_legacy", "sub_core_grids")

TABLE = {
    # storage moves: values unchanged, possibly a new dtype
    "ttnn.to_memory_config": OpSpec(identity, dtype=to_memory_config_dtype, moves=keeps_blocks),
    "ttnn.interleaved_to_sharded": OpSpec(identity, dtype=dtype_from("output_dtype", 3), moves=keeps_blocks),
    "ttnn.sharded_to_interleaved": OpSpec(identity, dtype=dtype_from("output_dtype", 2), moves=keeps_blocks),
    "ttnn.typecast": OpSpec(identity, dtype=dtype_from("dtype", 1), moves=keeps_blocks),
    "ttnn.to_layout": OpSpec(identity, layout=layout_from("layout", 1), moves=keeps_blocks),
    "ttnn.clone": OpSpec(identity, moves=keeps_blocks),
    "ttnn.untilize": OpSpec(
        identity, dtype=untilize_dtype, layout=layout_from("layout", default=ttnn.ROW_MAJOR_LAYOUT), moves=keeps_blocks
    ),
    # shape ops
    "ttnn.reshape": OpSpec(reshape, padded=reshape_padded, moves=reshape_keeps_blocks, context=reshape_context),
    "ttnn.permute": OpSpec(ttnn_golden(ttnn.permute), moves=permute_moves),
    "ttnn.slice": OpSpec(slice_),
    "ttnn.concat": OpSpec(
        concat,
        dtype=concat_dtype,
        layout=lambda args, kwargs, first: args[0][0].golden.layout,
        moves=concat_moves,
    ),
    # math
    "ttnn.linear": OpSpec(ttnn_golden(ttnn.linear), takes_bfloat16=matmul_in_bfloat16),
    "ttnn.matmul": OpSpec(ttnn_golden(ttnn.matmul), takes_bfloat16=matmul_in_bfloat16),
    "ttnn.mul": OpSpec(ttnn_golden(ttnn.mul, drop=_ELTWISE_DROP)),
    "ttnn.multiply": OpSpec(ttnn_golden(ttnn.multiply, drop=_ELTWISE_DROP)),
    "ttnn.add": OpSpec(ttnn_golden(ttnn.add, drop=_ELTWISE_DROP)),
    "ttnn.sub": OpSpec(ttnn_golden(ttnn.sub, drop=_ELTWISE_DROP)),
    "ttnn.subtract": OpSpec(ttnn_golden(ttnn.subtract, drop=_ELTWISE_DROP)),
    "ttnn.silu": OpSpec(ttnn_golden(ttnn.silu, drop=_ELTWISE_DROP)),
    "ttnn.gelu": OpSpec(ttnn_golden(ttnn.gelu, drop=_ELTWISE_DROP)),
    "ttnn.softmax": OpSpec(ttnn_golden(ttnn.softmax)),
    "ttnn.experimental.fast_reduce_nc": OpSpec(fast_reduce_nc),
    "ttnn.rms_norm": OpSpec(ttnn_golden(ttnn.rms_norm)),
    "ttnn.rms_norm_pre_all_gather": OpSpec(
        ttnn_golden(ttnn.rms_norm_pre_all_gather), dtype=dtype_from(default=ttnn.bfloat16)
    ),
    "ttnn.rms_norm_post_all_gather": OpSpec(ttnn_golden(ttnn.rms_norm_post_all_gather)),
    "ttnn.embedding": OpSpec(
        embedding,
        dtype=embedding_dtype,
        layout=lambda args, kwargs, first: argument(args, kwargs, "layout", default=args[1].golden.layout),
    ),
}
