# SPDX-License-Identifier: Apache-2.0
"""Shadow execution: run every ttnn call twice, on the (mock) device and as a host golden per device.

Usage::

    with shadow_execution():
        x = ttnn.from_torch(t, device=mesh, ...)  # a ShadowTensor: device tensor + per-device golden values
        y = module.decode_forward(x)
        ttnn.to_torch(y, mesh_composer=...)        # the golden values, composed like the device result would be

While active, every callable of ``ttnn``, ``ttnn.experimental``, ``ttnn.transformer`` and ``ttnn.kv_cache`` is
replaced by a dispatcher. A call without shadow tensors runs unchanged. A call with one runs the real op on the
device tensors (validation, program cache, output shape/layout/memory config as ttnn decides), then the op's
golden (``registry.OpSpec``) on the host values, rounds them to the output dtype (``blockfloat`` for block floats;
values an op only moves, already in that dtype, are kept) and checks the golden's shape, padded shape, dtype and
layout against ttnn's result. An op without a golden raises ``ShadowUnsupportedOp``.
Inputs enter through ``from_torch`` / ``as_tensor`` / ``to_device`` / ``load_tensor`` (host tensors hold real
data, so a host tensor's values are its golden); values leave through ``to_torch`` / ``from_device``. While
active, reading a device tensor that has no golden raises instead of returning the mock's zeros.
Nesting is allowed (the inner context is a no-op); the patches are undone when the outermost context exits.
``suspended()`` turns shadowing off for a block (dispatch-only runs, ``models/common/testing/dispatch_only.py``).
"""

import collections
import contextlib
import ctypes
import functools
import math
import os
import types

import torch
import ttnn

from models.common.testing.shadow import attention, ccl, ops
from models.common.testing.shadow.tensor import (
    BLOCK_FLOATS,
    Golden,
    ShadowError,
    ShadowTensor,
    ShadowUnsupportedOp,
    check,
    host_values,
    quantize_shards,
    stored_shards,
    written_shards,
)

NAMESPACES = ("ttnn", "ttnn.experimental", "ttnn.transformer", "ttnn.kv_cache")
OPS = {**ops.TABLE, **ccl.TABLE, **attention.TABLE}
_PATCHABLE = (ttnn.decorators.FastOperation, types.FunctionType, types.BuiltinFunctionType)
_state = {"depth": 0, "patches": []}
# Goldens are many large, short-lived torch tensors. glibc maps a large block afresh and unmaps it when freed, so the
# kernel zeroes every page of every golden again: measured, a third of a shadowed test's time went to page faults.
# Keeping freed memory in the heap for reuse (no mapped blocks, no trimming) makes the same test 1.5x faster, at the
# cost of a larger process: ``return_freed_memory`` gives it back between tests.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc <malloc.h> mallopt parameters
TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt takes a C int: the largest, so the heap is trimmed only past 2 GiB free


def is_active() -> bool:
    return _state["depth"] > 0


@contextlib.contextmanager
def shadow_execution():
    """Shadow every ttnn call made inside the block (see the module docstring)."""
    if _state["depth"] == 0:
        _patch()
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            _unpatch()


@contextlib.contextmanager
def suspended():
    """Run the block without shadow execution (ttnn calls go straight to the device); resume it afterwards."""
    depth = _state["depth"]
    if depth:
        _unpatch()
        _state["depth"] = 0
    try:
        yield
    finally:
        if depth:
            _patch()
            _state["depth"] = depth


def _patch() -> None:
    _keep_freed_memory()
    for module_name in NAMESPACES:
        module = _module(module_name)
        for name in dir(module):
            value = getattr(module, name)
            if not name.startswith("_") and (isinstance(value, _PATCHABLE) or type(value).__name__ == "nb_func"):
                _state["patches"].append((module, name, value))
                setattr(module, name, _Dispatcher(f"{module_name}.{name}", value))


def _keep_freed_memory() -> None:
    """Reuse freed goldens' memory (see M_MMAP_MAX above); a no-op where the C library has no mallopt."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_MAX, 0)
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def return_freed_memory() -> None:
    """Give the heap's free pages back to the OS (glibc malloc_trim), e.g. after each test, so a process that keeps
    freed goldens for reuse stays the size of its largest test; a no-op where the C library has no malloc_trim."""
    malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if malloc_trim is not None:
        malloc_trim(0)


def _unpatch() -> None:
    for module, name, value in reversed(_state["patches"]):
        setattr(module, name, value)
    _state["patches"].clear()


def _module(dotted: str):
    module = ttnn
    for part in dotted.split(".")[1:]:
        module = getattr(module, part)
    return module


class _Dispatcher:
    """Stands in for one ttnn callable; attribute access (``golden_function``, ...) reaches the original."""

    def __init__(self, name: str, original):
        self.name, self.original = name, original

    def __getattr__(self, item):
        return getattr(self.original, item)

    def __call__(self, *args, **kwargs):
        handler = _BOUNDARY.get(self.name)
        if handler is not None:
            return handler(self.original, *args, **kwargs)
        if not any(isinstance(t, ShadowTensor) for t in _tensors((args, kwargs))):
            return self.original(*args, **kwargs)
        spec = OPS.get(self.name)
        if spec is None:
            raise ShadowUnsupportedOp(self.name)
        return _run(self.name, spec, self.original, args, kwargs)


# --- the generic shadowed call ---------------------------------------------------------------------------------
def _run(name, spec, original, args, kwargs):
    tensors = list(_tensors((args, kwargs)))
    first = next(t for t in tensors if isinstance(t, ShadowTensor)).golden
    for tensor in tensors:
        if not isinstance(tensor, ShadowTensor) and ttnn.is_tensor_storage_on_device(tensor):
            raise ShadowError(f"{name}: an input is a device tensor without shadow values (made outside the shadow)")
    device_out = original(*_map(args, _device), **_map(kwargs, _device))
    num_devices = math.prod(first.mesh_shape)
    stored = {id(t): _all_values(t) for t in tensors}  # per input: one value per device, or one for all
    context = {} if spec.context is None else spec.context(args, kwargs)
    dtype, layout = spec.dtype(args, kwargs, first), spec.layout(args, kwargs, first)
    floats = [v for values in stored.values() for v in values if v.is_floating_point()]
    as_stored = spec.takes_bfloat16 is not None and spec.takes_bfloat16(args, kwargs, dtype)
    as_stored = as_stored and all(v.dtype == torch.bfloat16 for v in floats)
    if spec.mesh:
        as_float = _as_float32({})
        per_device = spec.golden(
            *_map(args, lambda t: [as_float(v) for v in stored[id(t)]]),
            mesh_shape=first.mesh_shape,
            **_map(kwargs, lambda t: [as_float(v) for v in stored[id(t)]]),
            **context,
        )
    else:
        golden = functools.partial(spec.golden, **context)
        per_device = _per_device_goldens(golden, args, kwargs, stored, num_devices, as_stored)
    if spec.inplace:
        targets = [args[position] for position in spec.inplace]
        updates = per_device if len(targets) > 1 else [(values,) for values in per_device]
        for target, values in zip(targets, zip(*updates, strict=True), strict=True):
            golden = target.golden
            golden.shards = written_shards(golden.live_shards(name), list(values), golden.dtype)
            check(name, target)
        return targets[0] if len(targets) == 1 else tuple(targets)
    if isinstance(device_out, (list, tuple)):
        outputs = zip(device_out, zip(*per_device, strict=True), strict=True)
        return type(device_out)(_wrap(name, spec, args, kwargs, d, list(v), dtype, layout, first) for d, v in outputs)
    return _wrap(name, spec, args, kwargs, device_out, per_device, dtype, layout, first)


def _per_device_goldens(golden, args, kwargs, stored, num_devices, as_stored=False) -> list:
    """The golden on each device's inputs, as float32 (``as_stored``: as stored). Devices whose inputs are the very
    same torch tensors (replicated) share one result: goldens are pure functions of their inputs."""
    results, by_inputs = [], {}
    for index in range(num_devices):
        key = tuple(id(_pick(values, index)) for values in stored.values())
        if key not in by_inputs:
            # this device's copies only: freed before the next device's are made
            as_float = (lambda values: values) if as_stored else _as_float32({})

            def leaf(tensor, index=index, as_float=as_float):
                return as_float(_pick(stored[id(tensor)], index))

            by_inputs[key] = golden(*_map(args, leaf), **_map(kwargs, leaf))
        results.append(by_inputs[key])
    return results


def _pick(values: list, index: int):
    return values[index] if len(values) > 1 else values[0]


def _as_float32(converted: dict):
    """Stored values as goldens take them: floats as float32 (each stored tensor converted once), others as is."""

    def convert(values):
        if not values.is_floating_point() or values.dtype == torch.float32:
            return values
        if id(values) not in converted:
            converted[id(values)] = values.float()
        return converted[id(values)]

    return convert


def _wrap(name, spec, args, kwargs, device, values, dtype, layout, first) -> ShadowTensor:
    shape = tuple(values[0].shape)
    stored = spec.moves is not None and all(t.dtype == dtype for t in _tensors((args, kwargs)))
    if stored and (dtype not in BLOCK_FLOATS or spec.moves(args, kwargs, shape)):
        shards = stored_shards(values, dtype)  # moved values, already rounded to this dtype: not rounded again
    else:
        shards = quantize_shards(values, dtype)
    padded = spec.padded(args, kwargs, shape, layout)
    return check(name, ShadowTensor(device, Golden(shards, dtype, layout, padded, first.mesh_shape)))


def _tensors(obj):
    """Every ttnn.Tensor (shadow or plain) inside nested args / kwargs."""
    if isinstance(obj, ShadowTensor) or type(obj) is ttnn.Tensor:
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _map(obj, leaf):
    """``obj`` with every tensor replaced by ``leaf(tensor)`` (lists, tuples and dicts rebuilt)."""
    if isinstance(obj, ShadowTensor) or type(obj) is ttnn.Tensor:
        return leaf(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(item, leaf) for item in obj)
    if isinstance(obj, dict):
        return {key: _map(item, leaf) for key, item in obj.items()}
    return obj


def _device(tensor):
    return tensor.device if isinstance(tensor, ShadowTensor) else tensor


def _all_values(tensor):
    if isinstance(tensor, ShadowTensor):
        return tensor.golden.live_shards("shadow golden")
    return host_values(tensor, 1)  # a host tensor passed to an op: its data is real


# --- boundary ops: values enter and leave the shadow here ------------------------------------------------------
def _enter(device_tensor: ttnn.Tensor, host: ttnn.Tensor) -> ShadowTensor:
    """Wrap a device tensor uploaded from ``host`` (whose data is real) with the host's values."""
    mesh_shape = tuple(device_tensor.device().shape)
    values = _loaded_values(host, math.prod(mesh_shape))
    golden = Golden(values, host.dtype, host.layout, tuple(host.padded_shape), mesh_shape)
    return check("ttnn.to_device", ShadowTensor(device_tensor, golden))


def _from_torch(original, tensor, *args, device=None, memory_config=None, **kwargs):
    host = original(tensor, *args, **kwargs)  # converted once; its data is real
    if device is None:
        return host
    return _enter(_ORIGINAL_TO_DEVICE(host, device, memory_config=memory_config), host)


def _as_tensor(original, tensor, *args, device=None, memory_config=None, cache_file_name=None, **kwargs):
    result = original(
        tensor, *args, device=device, memory_config=memory_config, cache_file_name=cache_file_name, **kwargs
    )
    if device is None or isinstance(result, ShadowTensor):  # host, or uploaded through the (shadowed) from_torch
        return result
    return _enter(result, original(tensor, *args, **kwargs))


def _to_device(original, tensor, device, *args, **kwargs):
    if isinstance(tensor, ShadowTensor):
        raise ShadowError("ttnn.to_device: the tensor is already on device")
    return _enter(original(tensor, device, *args, **kwargs), tensor)


def _copy_host_to_device_tensor(original, host, device_tensor, *args, **kwargs):
    """A trace-ready step writing new inputs into a persistent device tensor: the host data (real) becomes its
    golden."""
    if not isinstance(device_tensor, ShadowTensor):
        return original(host, device_tensor, *args, **kwargs)
    result = original(host, device_tensor.device, *args, **kwargs)
    device_tensor.golden = _enter(device_tensor.device, host).golden
    return result


def _load_tensor(original, file_name, *args, device=None, **kwargs):
    host = original(file_name, *args, **kwargs)
    stat = os.stat(file_name)
    _loads["last"] = host, (os.path.realpath(file_name), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return host if device is None else _to_device(_ORIGINAL_TO_DEVICE, host, device)


def _loaded_values(host: ttnn.Tensor, num_devices: int) -> list:
    """:func:`host_values`; for the host tensor last loaded from a file (a weight cache entry, uploaded next), the
    values that file gave before, if it is unchanged (see LOADED_VALUES_MAX_BYTES)."""
    last = _loads.pop("last", None)
    if last is None or last[0] is not host:
        return host_values(host, num_devices)
    memo, key = _loads["values"], (last[1], num_devices)
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    memo[key] = host_values(host, num_devices)
    while len(memo) > 1 and sum(_nbytes(values) for values in memo.values()) > LOADED_VALUES_MAX_BYTES:
        memo.popitem(last=False)
    return memo[key]


def _nbytes(values: list) -> int:
    return sum(v.numel() * v.element_size() for v in {id(v): v for v in values}.values())


def _from_device(original, tensor, *args, **kwargs):
    if isinstance(tensor, ShadowTensor):
        return tensor.golden.to_host()
    _refuse_unshadowed("ttnn.from_device", tensor)
    return original(tensor, *args, **kwargs)


def _to_torch(original, tensor, *args, **kwargs):
    if isinstance(tensor, ShadowTensor):
        return original(tensor.golden.to_host(for_torch=True), *args, **kwargs)
    _refuse_unshadowed("ttnn.to_torch", tensor)
    return original(tensor, *args, **kwargs)


def _get_device_tensors(original, tensor):
    if not isinstance(tensor, ShadowTensor):
        return original(tensor)
    golden = tensor.golden
    return [
        ShadowTensor(device, Golden([values], golden.dtype, golden.layout, golden.padded_shape, (1, 1)))
        for device, values in zip(original(tensor.device), golden.live_shards("get_device_tensors"), strict=True)
    ]


def _deallocate(original, tensor, *args, **kwargs):
    if isinstance(tensor, ShadowTensor):
        tensor.deallocate(*args, **kwargs)
    else:
        original(tensor, *args, **kwargs)


def _refuse_trace(original, *args, **kwargs):
    raise ShadowError(
        "ttnn.begin_trace_capture: a trace replay makes no ttnn calls for the shadow to follow; decode eagerly under "
        "the shadow (CausalLM(..., trace_decode=False))"
    )


def _refuse_unshadowed(name: str, tensor) -> None:
    if ttnn.is_tensor_storage_on_device(tensor):
        raise ShadowError(f"{name}: a device tensor without shadow values (its mock read-back would be zeros)")


_ORIGINAL_TO_DEVICE = ttnn.to_device
# Values of weight-cache files, read back once per process while the file is unchanged (path, inode, size, mtime): a
# module's cases load the same files, and reading a block float back costs more than the load (0.8 s per case for
# each bfloat8_b weight of a Llama-3.1-8B MLP, measured on the shared 2-core machine). The latest are kept, up to:
LOADED_VALUES_MAX_BYTES = 1 << 30  # an 8B MLP's weights in both its cases' dtype schemes: 6 x 117 MB as bfloat16
_loads = {"values": collections.OrderedDict()}  # and "last": (host tensor, file identity) of the latest load
_BOUNDARY = {
    "ttnn.from_torch": _from_torch,
    "ttnn.as_tensor": _as_tensor,
    "ttnn.to_device": _to_device,
    "ttnn.load_tensor": _load_tensor,
    "ttnn.copy_host_to_device_tensor": _copy_host_to_device_tensor,
    "ttnn.from_device": _from_device,
    "ttnn.to_torch": _to_torch,
    "ttnn.get_device_tensors": _get_device_tensors,
    "ttnn.deallocate": _deallocate,
    "ttnn.begin_trace_capture": _refuse_trace,
}
