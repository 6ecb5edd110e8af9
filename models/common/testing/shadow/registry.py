# SPDX-License-Identifier: Apache-2.0
"""How one ttnn op is shadowed: its golden and the output dtype / layout / padded shape it predicts.

A golden is a small function on torch tensors (floats as float32). ``mesh=False`` (most ops): it is called once per
device with that device's values in place of each shadow tensor (once for devices whose inputs are the very same
tensors). ``mesh=True`` (CCLs): it is called once with a list of every device's values per shadow tensor and
``mesh_shape=``, and returns a list with one result per device.
Rules take ``(args, kwargs, first)``: the call's arguments and the first shadow input's :class:`Golden`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import ttnn

from models.common.testing.shadow.blockfloat import BLOCK
from models.common.testing.shadow.tensor import tile_padded


def argument(args, kwargs, name: str, position: int | None = None, default=None):
    """A call argument given by keyword or at ``position``; ``default`` when absent or None."""
    value = kwargs.get(name)
    if value is None and position is not None and len(args) > position:
        value = args[position]
    return default if value is None else value


def dtype_from(name: str = "dtype", position: int | None = None, default=None) -> Callable:
    """Output dtype: the ``name`` argument, else ``default``, else the first input's dtype."""

    def rule(args, kwargs, first):
        value = argument(args, kwargs, name, position, default)
        return first.dtype if value is None else value

    return rule


def input_dtype(position: int) -> Callable:
    """Output dtype: the dtype of the tensor argument at ``position`` (e.g. embedding's weight)."""
    return lambda args, kwargs, first: args[position].golden.dtype


def layout_from(name: str, position: int | None = None, default=None) -> Callable:
    def rule(args, kwargs, first):
        value = argument(args, kwargs, name, position, default)
        return first.layout if value is None else value

    return rule


DEFAULT_DTYPE = dtype_from()  # ``dtype=`` if given, else the first input's dtype


def same_layout(args, kwargs, first):
    return first.layout


def padded_by_layout(args, kwargs, shape, layout):
    return tile_padded(shape, layout)


def keeps_blocks(args, kwargs, shape) -> bool:
    """A ``moves`` rule for ops that keep every value in its row (memory-config, layout and dtype moves)."""
    return True


def reshape_keeps_blocks(args, kwargs, shape) -> bool:
    """Rows keep their width, or old and new widths are whole blocks: the flat value order is kept."""
    width = args[0].shape[-1]
    return width == shape[-1] or (width % BLOCK == 0 and shape[-1] % BLOCK == 0)


def concat_keeps_blocks(dim: int, widths, shape) -> bool:
    """Pieces joined along ``dim``: rows are untouched unless it is the last dim, then pieces must be whole blocks."""
    return dim % len(shape) != len(shape) - 1 or all(width % BLOCK == 0 for width in widths)


@dataclass(frozen=True)
class OpSpec:
    golden: Callable
    mesh: bool = False  # the golden sees every device at once (collectives)
    dtype: Callable = DEFAULT_DTYPE
    layout: Callable = same_layout
    padded: Callable = padded_by_layout  # (args, kwargs, logical shape, layout) -> padded shape
    # positions of the arguments the op writes into (caches): the golden returns their new values, one tensor or a
    # tuple in this order, which replace their goldens
    inplace: tuple[int, ...] = ()
    # (args, kwargs, logical shape) -> whether every 16-value block of a row stays together, for ops that only move
    # values (None: the op computes new ones). Moved values already stored in the output dtype are not rounded again.
    moves: Callable | None = None
    # (args, kwargs) -> extra keyword arguments for the golden from what only the shadow tensors know (e.g. an
    # input's padded shape); None: none
    context: Callable | None = None
    # (args, kwargs, output dtype) -> whether the golden takes bfloat16-stored inputs (bfloat16, block floats) as
    # stored instead of as float32 (it runs when every float input is stored so); None: always float32
    takes_bfloat16: Callable | None = None


def ttnn_golden(op, *, drop: tuple[str, ...] = ()) -> Callable:
    """ttnn's own golden for ``op`` (``ttnn.get_golden_function``), minus keyword arguments it cannot take and
    ``dtype`` (the shadow rounds every output to its dtype once; block-float rounding is its main host cost)."""
    golden = ttnn.get_golden_function(op)
    dropped = {"dtype", *drop}

    def call(*args, **kwargs):
        return golden(*args, **{k: v for k, v in kwargs.items() if k not in dropped})

    return call
