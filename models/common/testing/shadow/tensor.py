# SPDX-License-Identifier: Apache-2.0
"""The tensor a module sees under shadow execution: the real (mock) device tensor plus its host golden.

A :class:`ShadowTensor` holds the device result of a ttnn call and a :class:`Golden`: one torch tensor per
device of the mesh (row-major device order) with the values that device would hold, stored as float32 after
rounding to the tensor's ttnn dtype, together with the dtype, layout and padded shape the shadow predicts.
:func:`check` compares that prediction with what ttnn actually produced.
"""

import math
from dataclasses import dataclass

import torch
import ttnn

from models.common.testing.shadow.blockfloat import BLOCK, CHUNK_BLOCKS, MANTISSA_BITS, round_block_float

TILE = 32  # tile edge of ttnn.TILE_LAYOUT; tiled tensors pad their last two dims to it
BLOCK_FLOATS = tuple(MANTISSA_BITS)  # shared exponent per 16 values of a tile row

# Captured before any patching: the package calls the real conversions, never its own wrappers.
_from_torch, _to_torch, _get_device_tensors = ttnn.from_torch, ttnn.to_torch, ttnn.get_device_tensors


class ShadowError(RuntimeError):
    """Shadow execution cannot give trustworthy values for a call."""


class ShadowUnsupportedOp(ShadowError):
    """A ttnn callable without a shadow golden received a shadow tensor."""

    def __init__(self, name: str):
        super().__init__(f"{name}: no shadow golden for this op; add one in models/common/testing/shadow/")
        self.op_name = name


class ShadowDriftError(ShadowError):
    """The golden's shape, padded shape, dtype or layout differs from ttnn's result."""


def quantize(values: torch.Tensor, dtype) -> torch.Tensor:
    """``values`` as a tensor of ``dtype`` stores them, float32 (integers: in the dtype's torch type)."""
    if not values.is_floating_point():
        return values.to(ttnn.ttnn_dtype_to_torch_dtype(dtype))
    if dtype in BLOCK_FLOATS:
        return round_block_float(values, dtype)
    return values.to(ttnn.ttnn_dtype_to_torch_dtype(dtype)).float()


def quantize_shards(shards: list[torch.Tensor], dtype) -> list[torch.Tensor]:
    """:func:`quantize` of every device's values. Block-float shards of one shape that fit one rounding pass together
    are rounded stacked; larger ones one by one (stacking copies them, which costs more than the calls it saves)."""
    small = sum(s.numel() for s in shards) <= CHUNK_BLOCKS * BLOCK
    if dtype in BLOCK_FLOATS and small and len({tuple(s.shape) for s in shards}) == 1:
        return list(round_block_float(torch.stack([s.float() for s in shards]), dtype).unbind(0))
    return [quantize(s, dtype) for s in shards]


def tile_padded(shape, layout) -> tuple[int, ...]:
    """Padded shape ttnn gives a tensor of logical ``shape``: last two dims to whole tiles when tiled."""
    shape = tuple(int(s) for s in shape)
    if layout != ttnn.TILE_LAYOUT or len(shape) < 2:
        return shape
    return (*shape[:-2], *(math.ceil(s / TILE) * TILE for s in shape[-2:]))


def host_values(host: ttnn.Tensor, num_devices: int) -> list[torch.Tensor]:
    """Per-device values of a host tensor (real data on host); a single tensor is replicated."""
    shards = [_to_torch(t) for t in _get_device_tensors(host)]
    shards = [s.float() if s.is_floating_point() else s for s in shards]
    return shards * num_devices if len(shards) == 1 else shards


@dataclass
class Golden:
    shards: list[torch.Tensor] | None  # one per device, row-major; None once deallocated
    dtype: ttnn.DataType
    layout: ttnn.Layout
    padded_shape: tuple[int, ...]
    mesh_shape: tuple[int, int]

    def to_host(self, for_torch: bool = False) -> ttnn.Tensor:
        """A real host tensor (multi-device when the mesh has several devices) holding the golden values. With
        ``for_torch`` (it is only read by ``ttnn.to_torch``) block floats stay float32, the type ``to_torch`` gives
        them anyway: the values are already rounded, so packing them again would change nothing."""
        if for_torch and self.dtype in BLOCK_FLOATS:
            dtype, layout = ttnn.float32, ttnn.ROW_MAJOR_LAYOUT
        else:
            dtype = self.dtype
            layout = ttnn.TILE_LAYOUT if dtype in BLOCK_FLOATS else ttnn.ROW_MAJOR_LAYOUT
        tensors = [_from_torch(s, dtype=dtype, layout=layout) for s in self.live_shards("to host")]
        return tensors[0] if len(tensors) == 1 else ttnn.from_host_shards(tensors, ttnn.MeshShape(*self.mesh_shape))

    def live_shards(self, use: str) -> list[torch.Tensor]:
        if self.shards is None:
            raise ShadowError(f"{use}: the tensor was deallocated")
        return self.shards


class ShadowTensor:
    """A device tensor with its golden. Attribute access goes to the device tensor; methods that would return a
    new tensor (and lose the golden) raise :class:`ShadowUnsupportedOp`."""

    __slots__ = ("device", "golden")

    def __init__(self, device: ttnn.Tensor, golden: Golden):
        self.device = device
        self.golden = golden

    @property
    def __class__(self):  # isinstance(x, ttnn.Tensor) holds, as for the tensor it stands for
        return ttnn.Tensor

    def __getattr__(self, name):
        value = getattr(self.device, name)
        if not callable(value):
            return value

        def method(*args, **kwargs):
            result = value(*args, **kwargs)
            if isinstance(result, ttnn.Tensor) or (
                isinstance(result, (list, tuple)) and any(isinstance(r, ttnn.Tensor) for r in result)
            ):
                raise ShadowUnsupportedOp(f"ttnn.Tensor.{name}")
            return result

        return method

    def deallocate(self, force: bool = True) -> None:
        self.device.deallocate(force)
        self.golden.shards = None

    def cpu(self, *args, **kwargs) -> ttnn.Tensor:
        return self.golden.to_host()

    def __repr__(self) -> str:
        g = self.golden
        return (
            f"ShadowTensor(shape={tuple(self.device.shape)}, dtype={g.dtype}, layout={g.layout}, mesh={g.mesh_shape})"
        )


def check(op: str, tensor: ShadowTensor) -> ShadowTensor:
    """Assert the golden agrees with ttnn's result on logical shape, padded shape, dtype and layout."""
    device, golden = tensor.device, tensor.golden
    seen = (tuple(device.shape), tuple(device.padded_shape), device.dtype, device.layout)
    shapes = {tuple(s.shape) for s in golden.live_shards(op)}
    predicted = (shapes.pop() if len(shapes) == 1 else shapes, golden.padded_shape, golden.dtype, golden.layout)
    if predicted != seen:
        names = ("shape", "padded shape", "dtype", "layout")
        diff = "; ".join(
            f"{n}: shadow {p} vs ttnn {s}" for n, p, s in zip(names, predicted, seen, strict=True) if p != s
        )
        raise ShadowDriftError(f"{op}: the shadow golden drifted from ttnn's result ({diff})")
    return tensor
