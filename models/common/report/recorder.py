# SPDX-License-Identifier: Apache-2.0
"""Records the ttnn calls a decoder layer makes: op name, the module that made it, its configuration keywords,
input / output tensors (per-device shape, dtype, memory config, buffer bytes) and its host time.

While an ``OpRecorder`` is entered, every public callable of ``ttnn``, ``ttnn.experimental`` and ``ttnn.transformer``
is replaced by a thin wrapper (restored on exit). Modules built inside the block bind the wrappers (e.g. in
``functools.partial``), which pass straight through whenever nothing is being recorded. Inside
``recorder.recording()``, each outermost call under ``recorder.module(name)`` becomes an ``OpCall``; calls a ttnn
op makes internally are part of it; calls that neither read nor write a device tensor (helpers such as dtype maps,
which shadow execution calls while computing its goldens) are not ops and are dropped. Tensor details are read right
away: a later ``ttnn.deallocate`` frees buffers.
"""

import contextlib
import functools
import time
import types
from dataclasses import dataclass, field

import ttnn

NAMESPACES = ("ttnn", "ttnn.experimental", "ttnn.transformer")
IGNORED = frozenset({"ttnn.deallocate"})  # bookkeeping, not an op
_PATCHABLE = (ttnn.decorators.FastOperation, types.FunctionType, types.BuiltinFunctionType)


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as one device holds it."""

    shape: tuple[int, ...]
    dtype: ttnn.DataType
    memory_config: ttnn.MemoryConfig
    buffer_bytes: int  # bytes of its buffer on each device (0 for host tensors)

    @classmethod
    def of(cls, tensor: ttnn.Tensor) -> "TensorInfo":
        on_device = tensor.storage_type() == ttnn.StorageType.DEVICE and tensor.is_allocated()
        size = tensor.buffer_num_pages() * tensor.buffer_page_size() if on_device else 0
        memory_config = tensor.memory_config() if on_device else None
        return cls(tuple(tensor.shape), tensor.dtype, memory_config, size)

    @property
    def on_device(self) -> bool:
        return self.memory_config is not None

    @property
    def in_dram(self) -> bool:
        return self.memory_config is not None and self.memory_config.buffer_type == ttnn.BufferType.DRAM


@dataclass
class OpCall:
    name: str  # e.g. "ttnn.linear"
    module: str  # the report's name of the module that made the call
    inputs: list[TensorInfo]  # tensor arguments in call order (positional, then keyword)
    options: dict  # the non-tensor keyword arguments (program / memory / compute-kernel configs, dtype, ...)
    outputs: list[TensorInfo] = field(default_factory=list)
    host_s: float = 0.0


class OpRecorder:
    """``with OpRecorder() as rec: ... with rec.recording("decode") as calls, rec.module("mlp"): mlp(x)``."""

    def __init__(self):
        self._patches: list[tuple] = []
        self._calls: list[OpCall] | None = None
        self._module = "-"
        self._depth = 0

    def __enter__(self):
        for dotted in NAMESPACES:
            namespace = _namespace(dotted)
            for name in dir(namespace):
                value = getattr(namespace, name)
                if not name.startswith("_") and (isinstance(value, _PATCHABLE) or type(value).__name__ == "nb_func"):
                    self._patches.append((namespace, name, value))
                    setattr(namespace, name, _recorded(self, f"{dotted}.{name}", value))
        return self

    def __exit__(self, *exc):
        for namespace, name, value in reversed(self._patches):
            setattr(namespace, name, value)
        self._patches.clear()

    @contextlib.contextmanager
    def recording(self):
        """Collect the calls made inside the block into the yielded list."""
        calls: list[OpCall] = []
        self._calls = calls
        try:
            yield calls
        finally:
            self._calls = None

    @contextlib.contextmanager
    def module(self, name: str):
        """Attribute the calls made inside the block to module ``name``."""
        previous, self._module = self._module, name
        try:
            yield
        finally:
            self._module = previous

    @contextlib.contextmanager
    def paused(self):
        """Calls made inside the block pass through unrecorded (the report reading values back mid-run)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def _record(self, name: str, original, args, kwargs):
        if self._calls is None or self._depth or name in IGNORED:
            return original(*args, **kwargs)
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, ttnn.Tensor)]
        options = {_option_name(a, i): a for i, a in enumerate(args) if not isinstance(a, ttnn.Tensor)}
        options.update({k: v for k, v in kwargs.items() if not isinstance(v, ttnn.Tensor)})
        record = OpCall(name, self._module, [TensorInfo.of(t) for t in tensors], options)
        self._depth += 1
        start = time.perf_counter()
        try:
            result = original(*args, **kwargs)
        finally:
            record.host_s = time.perf_counter() - start
            self._depth -= 1
        outputs = result if isinstance(result, list | tuple) else [result]
        record.outputs = [TensorInfo.of(t) for t in outputs if isinstance(t, ttnn.Tensor)]
        if any(t.on_device for t in (*record.inputs, *record.outputs)):  # helpers (dtype maps, ...) are not ops
            self._calls.append(record)
        return result


def _recorded(recorder: OpRecorder, name: str, original):
    """Stands in for one ttnn callable. A plain function, so shadow execution (models/common/testing/shadow), entered
    inside the recorder, wraps it like any ttnn op and the recorder sees (and times) only the device call; the
    original's attributes (``golden_function``, ...) are copied onto it."""

    def call(*args, **kwargs):
        return recorder._record(name, original, args, kwargs)

    return functools.update_wrapper(call, original)


def _option_name(value, position: int) -> str:
    """Name a positional configuration argument by its type (e.g. ``ttnn.to_memory_config(x, memory_config)``)."""
    if type(value).__name__ == "MemoryConfig":
        return "memory_config"
    if type(value).__name__ == "DataType":
        return "dtype"
    return f"arg{position}"


def _namespace(dotted: str):
    namespace = ttnn
    for part in dotted.split(".")[1:]:
        namespace = getattr(namespace, part)
    return namespace
