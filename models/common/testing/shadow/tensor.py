# SPDX-License-Identifier: Apache-2.0
"""The tensor a module sees under shadow execution: the real (mock) device tensor plus its host golden.

A :class:`ShadowTensor` holds the device result of a ttnn call and a :class:`Golden`: one torch tensor per
device of the mesh (row-major device order) with the values that device would hold, rounded to the tensor's ttnn
dtype and stored in the torch dtype that holds them exactly (:func:`storage_dtype`), together with the dtype,
layout and padded shape the shadow predicts. Devices holding the same values (replicated tensors, results of
replicated inputs) share one torch tensor. :func:`check` compares that prediction with what ttnn actually produced.
"""

import math
from dataclasses import dataclass

import torch
import ttnn

from models.common.testing.shadow.blockfloat import MANTISSA_BITS, round_block_float

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


def storage_dtype(dtype) -> torch.dtype:
    """The torch dtype golden values of a ttnn ``dtype`` are kept in: bfloat16 for bfloat16 and the block floats
    (it holds their values exactly), float32 for float32, the matching torch type for integers."""
    return torch.bfloat16 if dtype in BLOCK_FLOATS else ttnn.ttnn_dtype_to_torch_dtype(dtype)


def quantize(values: torch.Tensor, dtype) -> torch.Tensor:
    """``values`` as a tensor of ``dtype`` stores them, in :func:`storage_dtype`."""
    if values.is_floating_point() and dtype in BLOCK_FLOATS:
        return round_block_float(values, dtype, out_dtype=storage_dtype(dtype))
    return values.to(storage_dtype(dtype))


def quantize_shards(shards: list[torch.Tensor], dtype) -> list[torch.Tensor]:
    """:func:`quantize` of every device's values; a tensor several devices share is rounded once and stays shared."""
    unique = {id(s): s for s in shards}
    by_id = {key: quantize(s, dtype) for key, s in unique.items()}
    return [by_id[id(s)] for s in shards]


def written_shards(old: list[torch.Tensor], new: list[torch.Tensor], dtype) -> list[torch.Tensor]:
    """New values of a tensor an op wrote into (a KV cache), stored like :func:`quantize_shards` but, for block
    floats, only rows the op changed are rounded: the rest keep their stored values, as the device leaves them
    (a block never spans rows; rounding a whole cache per written token was most of a decode test's host time)."""
    by_ids = {}
    for before, after in zip(old, new, strict=True):
        key = (id(before), id(after))
        if key not in by_ids:
            by_ids[key] = _written(before, after, dtype)
    return [by_ids[(id(before), id(after))] for before, after in zip(old, new, strict=True)]


def _written(before: torch.Tensor, after: torch.Tensor, dtype) -> torch.Tensor:
    if dtype not in BLOCK_FLOATS or before.shape != after.shape or not after.is_floating_point():
        return quantize(after, dtype)
    width = after.shape[-1]
    after_rows, stored = after.reshape(-1, width), before.reshape(-1, width).clone()
    changed = (after_rows != stored).any(dim=1).nonzero().squeeze(1)  # compared as float32: exact
    stored[changed] = round_block_float(after_rows[changed], dtype, out_dtype=storage_dtype(dtype))
    return stored.reshape(after.shape)


def stored_shards(shards: list[torch.Tensor], dtype) -> list[torch.Tensor]:
    """Values already rounded to ``dtype`` (an op only moved them) in :func:`storage_dtype`, sharing kept."""
    by_id = {id(s): s.to(storage_dtype(dtype)) for s in shards}
    return [by_id[id(s)] for s in shards]


def tile_padded(shape, layout) -> tuple[int, ...]:
    """Padded shape ttnn gives a tensor of logical ``shape``: last two dims to whole tiles when tiled."""
    shape = tuple(int(s) for s in shape)
    if layout != ttnn.TILE_LAYOUT or len(shape) < 2:
        return shape
    return (*shape[:-2], *(math.ceil(s / TILE) * TILE for s in shape[-2:]))


def host_values(host: ttnn.Tensor, num_devices: int) -> list[torch.Tensor]:
    """Per-device values of a host tensor (real data on host), in :func:`storage_dtype`. A single tensor is
    replicated and copies its topology marks replicated are read once: the devices share one torch tensor."""
    tensors = _get_device_tensors(host)
    if len(tensors) == 1:
        return [_to_torch(tensors[0]).to(storage_dtype(host.dtype))] * num_devices
    read: dict[tuple[int, ...], torch.Tensor] = {}
    shards = []
    for key, tensor in zip(_replica_keys(host, len(tensors)), tensors, strict=True):
        if key not in read:
            read[key] = _to_torch(tensor).to(storage_dtype(host.dtype))  # one device at a time: no float32 copy
        shards.append(read[key])
    return shards


def _replica_keys(host: ttnn.Tensor, count: int) -> list[tuple[int, ...]]:
    """Per device tensor of ``host``, its coordinates along the sharded axes of its distribution: devices with one
    key hold the same data (ttnn's TensorTopology: Replicate / Shard per axis, devices in row-major order)."""
    topology = host.tensor_topology()
    shape = tuple(topology.distribution_shape())
    if math.prod(shape) != count:
        return [(index,) for index in range(count)]  # a layout this does not model: nothing shared
    sharded = [isinstance(p, ttnn.PlacementShard) for p in topology.placements()]
    coords = (_row_major_coords(index, shape) for index in range(count))
    return [tuple(c for c, is_sharded in zip(coord, sharded, strict=True) if is_sharded) for coord in coords]


def _row_major_coords(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major coordinates of flat ``index`` in ``shape``."""
    coords = []
    for size in reversed(shape):
        index, coord = divmod(index, size)
        coords.append(coord)
    return tuple(reversed(coords))


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
        shards = self.live_shards("to host")
        if self.dtype in BLOCK_FLOATS:  # stored as bfloat16; ttnn packs block floats from float32
            shards = [s.float() for s in shards]
        tensors = [_from_torch(s, dtype=dtype, layout=layout) for s in shards]
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
