# SPDX-License-Identifier: Apache-2.0
"""LazyWeight: a description of a device weight, converted and uploaded once, on first use.

A LazyWeight holds the host source (a tensor, or a zero-argument callable returning one) and every conversion
parameter: dtype, layout, memory config, mesh mapping, pad value, device, and an optional disk cache
(``cache_dir`` + ``cache_name``). Fields left ``None`` are filled by the module that owns the weight
(``resolve_lazy_weight``), so a user states only what they want to differ from the module's defaults.

Disk cache: ``<cache_dir>/<cache_name>.<key>.tensorbin`` plus a ``.json`` record, where ``key`` is a digest of the
source contents (or the caller's ``source_key``) and every conversion parameter, so changing any of them misses; with a
``source_key`` and a ``source_shape`` a cache hit never makes the source. Files are written to a temporary name and
renamed into place (two processes writing one entry both leave a whole file); an entry whose record does not match, or
that ttnn cannot load, is rebuilt with a warning.
"""

import hashlib
import importlib.metadata
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import ttnn

from models.common import tensor_utils

TTNN_VERSION = importlib.metadata.version("ttnn")  # cache files are ttnn-version specific
CACHE_FORMAT_VERSION = 1  # bump when the cache file layout or key recipe changes
_CONVERSION_FIELDS = ("device", "dtype", "layout", "memory_config", "mesh_mapping")


class LazyWeightCacheWarning(UserWarning):
    """A cache entry could not be used or written; the weight was converted from its source instead."""


@dataclass(frozen=True)
class MeshMapping:
    """How a weight is laid over the mesh.

    ``shard_dims == ()``: replicated on every device. ``(d,)``: tensor dim ``d`` split over all devices in
    row-major device order. ``(d0, d1)``: dim ``d0`` split over mesh rows and ``d1`` over mesh columns
    (``None`` replicates along that mesh axis), as ``ttnn.ShardTensor2dMesh``.
    """

    shard_dims: tuple[int | None, ...] = ()

    @classmethod
    def replicate(cls) -> "MeshMapping":
        return cls(())

    @classmethod
    def shard(cls, dim: int) -> "MeshMapping":
        return cls((dim,))

    @classmethod
    def shard_2d(cls, row_dim: int | None, col_dim: int | None) -> "MeshMapping":
        return cls((row_dim, col_dim))

    def pieces(self, mesh_shape: tuple[int, int]) -> dict[int, int]:
        """Number of pieces each split tensor dim is cut into (keys are the dims as given)."""
        if len(self.shard_dims) == 1:
            return {self.shard_dims[0]: mesh_shape[0] * mesh_shape[1]}
        return {d: n for d, n in zip(self.shard_dims, mesh_shape, strict=False) if d is not None}

    def mapper(self, mesh_device):
        if not self.shard_dims:
            return ttnn.ReplicateTensorToMesh(mesh_device)
        if len(self.shard_dims) == 1:
            return ttnn.ShardTensorToMesh(mesh_device, dim=self.shard_dims[0])
        return ttnn.ShardTensor2dMesh(mesh_device, mesh_shape=tuple(mesh_device.shape), dims=self.shard_dims)


@dataclass(frozen=True)
class LazyWeight:
    """A weight to convert and upload on first use; see the module docstring."""

    source: Any  # torch.Tensor, or a zero-argument callable returning one
    dtype: ttnn.DataType | None = None
    layout: ttnn.Layout | None = None
    memory_config: ttnn.MemoryConfig | None = None
    mesh_mapping: MeshMapping | None = None
    device: Any = None
    pad_value: float = 0.0
    cache_dir: str | Path | None = None
    cache_name: str | None = None
    source_key: str | None = None  # identity of the source contents; skips hashing them (e.g. checkpoint file + name)
    source_shape: tuple[int, ...] | None = None  # the source's shape when known unread (e.g. a checkpoint's header)
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if (self.cache_dir is None) != (self.cache_name is None):
            raise ValueError("LazyWeight: give both cache_dir and cache_name to cache a weight, or neither")
        if self.mesh_mapping is not None and not isinstance(self.mesh_mapping, MeshMapping):
            raise TypeError(f"LazyWeight.mesh_mapping must be a MeshMapping, got {type(self.mesh_mapping).__name__}")

    # --- host side -------------------------------------------------------------------------------------------
    def host_tensor(self):
        """The source tensor (a callable source is called once)."""
        if "host" not in self._memo:
            host = self.source() if callable(self.source) else self.source
            if self.source_shape is not None and tuple(host.shape) != tuple(self.source_shape):
                raise ValueError(
                    f"LazyWeight {self.cache_name or ''}: the source has shape {tuple(host.shape)} but source_shape "
                    f"says {tuple(self.source_shape)}; fix the source or leave source_shape None"
                )
            self._memo["host"] = host
        return self._memo["host"]

    @property
    def shape(self) -> tuple[int, ...]:
        """``source_shape`` when given (nothing is read), else the source tensor's shape."""
        return tuple(self.source_shape) if self.source_shape is not None else tuple(self.host_tensor().shape)

    def padded_shape(self, mesh_shape: tuple[int, int]) -> tuple[int, ...]:
        """Source shape with each split dim padded so every device's piece is whole tiles (tiled dims only)."""
        shape = list(self.shape)
        tiled_dims = {len(shape) - 2, len(shape) - 1} if self.layout == ttnn.TILE_LAYOUT else set()
        for dim, count in (self.mesh_mapping or MeshMapping()).pieces(mesh_shape).items():
            if not -len(shape) <= dim < len(shape):
                raise ValueError(
                    f"LazyWeight {self._name()}: mesh mapping splits dim {dim}, but the source has shape "
                    f"{tuple(shape)}; choose a dim in range or fix the source"
                )
            if count > 1:
                if shape[dim] < count:
                    raise ValueError(
                        f"LazyWeight {self._name()}: dim {dim} of size {shape[dim]} cannot be split over {count} "
                        "devices; replicate it or use a smaller mesh"
                    )
                if dim % len(shape) in tiled_dims:
                    shape[dim] = tensor_utils.get_padded_hidden_dim(shape[dim], count)
        return tuple(shape)

    # --- resolution ------------------------------------------------------------------------------------------
    def get_device_weight(self) -> ttnn.Tensor:
        """Convert (or load from the cache) and upload, once; later calls return the same device tensor."""
        if "device" not in self._memo:
            missing = [name for name in _CONVERSION_FIELDS if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"LazyWeight {self._name()} is not resolved: {', '.join(missing)} not set. Pass them to "
                    "LazyWeight(...) or let the owning module resolve it (resolve_lazy_weight)."
                )
            host = self._load_cached() if self.cache_dir is not None else None
            if host is None:
                host = self._convert()
                if self.cache_dir is not None:
                    self._store(host)
            self._memo["device"] = ttnn.to_device(host, self.device, memory_config=self.memory_config)
        return self._memo["device"]

    # --- conversion and cache --------------------------------------------------------------------------------
    def _name(self) -> str:
        return self.cache_name or f"<{tuple(self.host_tensor().shape)}>"

    def _convert(self) -> ttnn.Tensor:
        mesh_shape = tuple(self.device.shape)
        padded = tensor_utils.pad_to_shape(self.host_tensor(), self.padded_shape(mesh_shape), self.pad_value)
        return tensor_utils.from_host(
            padded, dtype=self.dtype, layout=self.layout, mesh_mapper=self.mesh_mapping.mapper(self.device)
        )

    def cache_key(self) -> str:
        """Digest of the source identity and every conversion parameter (the cache entry's name)."""
        if "key" not in self._memo:
            self._memo["key"] = self._compute_cache_key()
        return self._memo["key"]

    def _compute_cache_key(self) -> str:
        source_id = self.source_key or tensor_utils.content_fingerprint(self.host_tensor())
        parts = [
            f"format={CACHE_FORMAT_VERSION}",
            f"ttnn={TTNN_VERSION}",
            f"source={source_id}",
            f"dtype={self.dtype}",
            f"layout={self.layout}",
            f"memory_config={self.memory_config}",
            f"mesh_mapping={self.mesh_mapping.shard_dims}",
            f"mesh_shape={tuple(self.device.shape)}",
            f"pad_value={self.pad_value}",
        ]
        return hashlib.sha1("|".join(parts).encode()).hexdigest()

    def _paths(self) -> tuple[Path, Path]:
        stem = Path(self.cache_dir) / f"{self.cache_name}.{self.cache_key()}"
        return stem.with_name(stem.name + ".tensorbin"), stem.with_name(stem.name + ".json")

    def _load_cached(self) -> ttnn.Tensor | None:
        tensor_path, record_path = self._paths()
        if not tensor_path.exists() and not record_path.exists():
            return None
        try:
            record = json.loads(record_path.read_text())
            if record.get("file_size") != tensor_path.stat().st_size:
                raise ValueError("file size differs from its record")
            host = ttnn.load_tensor(str(tensor_path))
            seen = {"dtype": str(host.dtype), "layout": str(host.layout), "shape": list(host.shape)}
            expected = {name: record.get(name) for name in seen}
            if seen != expected:
                raise ValueError(f"loaded {seen}, record says {expected}")
            return host
        except (OSError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0]
            warnings.warn(
                f"LazyWeight {self._name()}: cache entry {tensor_path} is corrupt or stale ({reason}); "
                "rebuilding it from the source",
                LazyWeightCacheWarning,
                stacklevel=3,
            )
            return None

    def _store(self, host: ttnn.Tensor) -> None:
        tensor_path, record_path = self._paths()
        try:
            tensor_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(tensor_path, lambda path: ttnn.dump_tensor(path, host))
            record = {
                "dtype": str(host.dtype),
                "layout": str(host.layout),
                "shape": list(host.shape),
                "file_size": tensor_path.stat().st_size,
            }
            _atomic_write(record_path, lambda path: Path(path).write_text(json.dumps(record)))
        except OSError as error:
            warnings.warn(
                f"LazyWeight {self._name()}: cannot write the weight cache in {self.cache_dir} ({error}); "
                "continuing without caching. Point cache_dir at a writable folder to cache it.",
                LazyWeightCacheWarning,
                stacklevel=3,
            )


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write via ``write(tmp_path)`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=path.suffix)  # ttnn checks suffix
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_lazy_weight(weight: LazyWeight, **defaults) -> LazyWeight:
    """A copy of ``weight`` with each field that is ``None`` set from ``defaults``; set fields are kept. A callable
    source is read through ``weight``, so every copy (e.g. a tied embedding and LM head) shares one read."""
    known = {f.name for f in fields(LazyWeight)}
    unknown = set(defaults) - known
    if unknown:
        raise TypeError(f"resolve_lazy_weight: unknown LazyWeight fields {sorted(unknown)}")
    shared = dict(source=weight.host_tensor) if callable(weight.source) else {}
    return replace(
        weight, **shared, **{name: value for name, value in defaults.items() if getattr(weight, name) is None}
    )


def zero_padded(weight: LazyWeight, dim: int, size: int) -> LazyWeight:
    """``weight`` with tensor dim ``dim`` zero-padded at its end to ``size``; the padding happens when the weight
    is converted (a cache hit never pads). ``weight`` itself if that dim already has ``size``."""
    if weight.shape[dim] == size:
        return weight
    source_key = weight.source_key and f"{weight.source_key}|zero-padded dim {dim} to {size}"
    shape = list(weight.shape)
    shape[dim] = size
    source = partial(_zero_padded_source, weight, dim, size)
    return replace(weight, source=source, source_key=source_key, source_shape=weight.source_shape and tuple(shape))


def _zero_padded_source(weight: LazyWeight, dim: int, size: int):
    return tensor_utils.pad_dim_to_size(weight.host_tensor(), dim, size)


def transposed(weight: LazyWeight) -> LazyWeight:
    """``weight``.T (a 2D weight), made when converted; cached beside ``weight`` (``derived_cache``), keyed on its
    source + transpose."""
    source_key = weight.source_key and f"{weight.source_key}|transposed"
    shape = weight.source_shape and tuple(reversed(weight.source_shape))
    source = partial(_transposed_source, weight)
    return replace(weight, source=source, source_key=source_key, source_shape=shape, **derived_cache(weight, "T"))


def _transposed_source(weight: LazyWeight):
    return weight.host_tensor().T


def derived_cache(weight: LazyWeight, suffix: str) -> dict:
    """Cache keywords for a weight a module derives from ``weight`` (e.g. a norm's gamma): cached beside it as
    ``<cache_name>.<suffix>``, or not at all (``{}``) when ``weight`` is not cached."""
    if weight.cache_dir is None:
        return {}
    return {"cache_dir": weight.cache_dir, "cache_name": f"{weight.cache_name}.{suffix}"}


def load_input_device_tensor(x, *, memory_config: ttnn.MemoryConfig, mesh_device, dtype=ttnn.bfloat16) -> ttnn.Tensor:
    """A forward's input: a LazyWeight is uploaded replicated in ``memory_config``; a device tensor must already be
    in ``memory_config`` (one clear error otherwise)."""
    if isinstance(x, LazyWeight):
        defaults = dict(layout=ttnn.TILE_LAYOUT, mesh_mapping=MeshMapping.replicate(), device=mesh_device)
        return resolve_lazy_weight(x, dtype=dtype, memory_config=memory_config, **defaults).get_device_weight()
    if x.memory_config() != memory_config:
        raise ValueError(
            f"input memory config {x.memory_config()} is not the configured {memory_config}; move it with "
            "ttnn.to_memory_config(x, <module>.config.<mode>_input_memcfg) or pass a LazyWeight"
        )
    return x
