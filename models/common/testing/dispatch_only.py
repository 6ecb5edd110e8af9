# SPDX-License-Identifier: Apache-2.0
"""Dispatch-only runs: a module's weights and inputs allocated on the device from their spec, no host data.

Inside ``dispatch_only()`` a ``LazyWeight`` is never converted: ``get_device_weight`` allocates, on every device of
its mesh, an uninitialised tensor of the per-device shape its mesh mapping gives (padded as a conversion would
pad it), in its dtype, layout and memory config (``ttnn.allocate_tensor_on_device``). Its source is read only for
its shape, so a ``torch.empty(shape, device="meta")`` source costs nothing. Shadow execution is suspended, so ops
run on the device tensors alone. Everything ttnn checks at dispatch is still checked on the real mesh (program
configs, shard specs, L1/DRAM budgets, CCLs); the output holds no numbers (on a mock device, zeros).

Use it for cases whose numbers are too costly to compute on the host; ``numerics.ReferenceCheck.running`` enters
it and counts the case as *dispatched only*.
"""

import contextlib

import ttnn

from models.common.modules.lazy_weight import _CONVERSION_FIELDS as CONVERSION_FIELDS
from models.common.modules.lazy_weight import LazyWeight, MeshMapping
from models.common.testing.shadow import session as shadow

_state = {"active": False}  # dispatch_only() does not nest: the inner exit would restore the conversion early


def per_device_shape(weight: LazyWeight) -> tuple[int, ...]:
    """The shape each device holds once ``weight`` is converted: padded as the conversion pads, then split."""
    mesh_shape = tuple(weight.device.shape)
    shape = list(weight.padded_shape(mesh_shape))
    for dim, count in (weight.mesh_mapping or MeshMapping()).pieces(mesh_shape).items():
        shape[dim] //= count
    return tuple(shape)


def _allocate_from_spec(weight: LazyWeight) -> ttnn.Tensor:
    """Stands in for ``LazyWeight.get_device_weight``: the same device tensor spec, no host conversion."""
    if "device" not in weight._memo:
        missing = [name for name in CONVERSION_FIELDS if getattr(weight, name) is None]
        if missing:
            raise ValueError(f"dispatch-only: LazyWeight {weight.shape} is not resolved ({', '.join(missing)} not set)")
        weight._memo["device"] = ttnn.allocate_tensor_on_device(
            ttnn.Shape(per_device_shape(weight)), weight.dtype, weight.layout, weight.device, weight.memory_config
        )
    return weight._memo["device"]


@contextlib.contextmanager
def dispatch_only():
    """Allocate LazyWeights from their spec and suspend shadow execution inside the block (see the docstring)."""
    if _state["active"]:
        raise RuntimeError("dispatch_only() is already active; it does not nest")
    original = LazyWeight.get_device_weight
    LazyWeight.get_device_weight = _allocate_from_spec
    _state["active"] = True
    try:
        with shadow.suspended():
            yield
    finally:
        LazyWeight.get_device_weight = original
        _state["active"] = False
