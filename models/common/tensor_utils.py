# SPDX-License-Identifier: Apache-2.0
"""Host-side tensor helpers for TTTv2 modules: tile padding, mesh-mapper construction, content fingerprints.

The only place in ``models/common`` below ``modules/`` that touches torch: modules call these helpers for
default configurations, so a user with another host tensor library overrides them in one spot.
"""

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor

import torch
import ttnn

TILE_SIZE = 32  # ttnn tile edge (ttnn.TILE_SIZE); every tiled dimension is padded to a multiple of it


def nearest_multiple(value: int, multiple: int) -> int:
    """Round ``value`` up to a multiple of ``multiple``."""
    return math.ceil(value / multiple) * multiple


def get_padded_hidden_dim(hidden_dim: int, num_devices: int, tile_size: int = TILE_SIZE) -> int:
    """Pad ``hidden_dim`` so each of ``num_devices`` shards is whole tiles (14336 on 8 → 14336; 5504 on 8 → 5632)."""
    return nearest_multiple(math.ceil(hidden_dim / num_devices), tile_size) * num_devices


def pad_dim_to_size(x: torch.Tensor, dim: int, size: int, value: float = 0.0) -> torch.Tensor:
    """Pad dimension ``dim`` of ``x`` at its end up to ``size``."""
    current = x.shape[dim]
    if size < current:
        raise ValueError(f"cannot pad dim {dim} of size {current} down to {size}")
    if size == current:
        return x
    target = list(x.shape)
    target[dim] = size
    return pad_to_shape(x, target, value)


def pad_to_shape(x: torch.Tensor, shape, value: float = 0.0) -> torch.Tensor:
    """Pad every dimension of ``x`` at its end up to ``shape`` (same rank)."""
    shape = tuple(shape)
    if len(shape) != x.dim() or any(t < s for t, s in zip(shape, x.shape, strict=True)):
        raise ValueError(f"cannot pad a tensor of shape {tuple(x.shape)} to {shape}")
    if shape == tuple(x.shape):
        return x
    padding = []
    for target, size in zip(reversed(shape), reversed(x.shape), strict=True):
        padding += [0, target - size]
    return torch.nn.functional.pad(x, padding, value=value)


FINGERPRINT_CHUNK_BYTES = 1 << 24  # 16 MiB: large enough to amortise per-chunk overhead, small enough to spread


def content_fingerprint(x: torch.Tensor) -> str:
    """SHA-1 over a tensor's dtype, shape and bytes (the identity of a weight's host source).

    The bytes are hashed in fixed-size chunks on all cores (hashlib releases the GIL), then the chunk digests are
    hashed together, so the result does not depend on the number of threads.
    """
    data = x.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy()
    chunks = [data[i : i + FINGERPRINT_CHUNK_BYTES] for i in range(0, len(data), FINGERPRINT_CHUNK_BYTES)]
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        digests = list(pool.map(lambda chunk: hashlib.sha1(chunk).digest(), chunks))
    total = hashlib.sha1(f"{x.dtype}:{tuple(x.shape)}".encode())
    for digest in digests:
        total.update(digest)
    return total.hexdigest()


def from_host(
    x: torch.Tensor,
    *,
    dtype: ttnn.DataType,
    layout: ttnn.Layout,
    mesh_mapper=None,
    device=None,
    memory_config: ttnn.MemoryConfig | None = None,
) -> ttnn.Tensor:
    """``ttnn.from_torch`` behind a single seam, so modules never import torch themselves."""
    return ttnn.from_torch(
        x, dtype=dtype, layout=layout, mesh_mapper=mesh_mapper, device=device, memory_config=memory_config
    )
