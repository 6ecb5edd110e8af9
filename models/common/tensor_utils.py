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


# --- attention weights and rotary tables (HF → TTNN layouts) ----------------------------------------------------
def hf_to_meta_rows(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder each head's rows (dim 0) from HF's rotate-half layout [x0..x(D/2-1), y0..] to the interleaved pairs
    [x0, y0, x1, y1, ...] that ttnn's rotary_embedding_llama rotates (TTTv1 load_checkpoints.reverse_permute)."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def fuse_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, groups: int) -> torch.Tensor:
    """TTTv1's fused QKV layout: q, k, v (rows = output features, HF nn.Linear order) are each cut into ``groups``
    row blocks and concatenated as [q_0 | k_0 | v_0 | q_1 | k_1 | v_1 | ...] along the last dim of the transposed
    weight, so splitting the result into ``groups`` column blocks gives each device group its own heads. Works for
    weights (out, in) → (in, qkv) and biases (out,) → (qkv,)."""
    blocks = [torch.cat(parts, dim=0) for parts in zip(*(t.chunk(groups, dim=0) for t in (q, k, v)), strict=True)]
    return torch.cat(blocks, dim=0).T.contiguous() if q.dim() == 2 else torch.cat(blocks, dim=0)


def rope_cos_sin(
    head_dim: int, length: int, theta: float, llama3_scaling: tuple[float, float, float, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """[1, 1, length, head_dim] cos and sin tables with each frequency repeated for its interleaved pair (TTTv1
    common.precompute_freqs + gather_cos_sin). ``llama3_scaling`` = (factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings) applies Llama-3's frequency scaling (TTTv1 apply_scaling, HF rope_type llama3)."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    if llama3_scaling is not None:
        factor, low_freq_factor, high_freq_factor, original_len = llama3_scaling
        wavelen = 2 * math.pi / freqs
        smooth = (original_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        mid = (1 - smooth) * freqs / factor + smooth * freqs
        scaled = torch.where(wavelen > original_len / low_freq_factor, freqs / factor, mid)
        freqs = torch.where(wavelen < original_len / high_freq_factor, freqs, scaled)
    angles = torch.outer(torch.arange(length).float(), freqs)
    cos, sin = (torch.stack([t, t], dim=-1).flatten(-2)[None, None] for t in (torch.cos(angles), torch.sin(angles)))
    return cos, sin


def rot_transformation_mat(rows: int = TILE_SIZE) -> torch.Tensor:
    """[1, 1, rows, 32]: ``rows / 32`` copies of the 32x32 tile that maps each interleaved pair (x, y) to (-y, x)
    (TTTv1 common.get_rot_transformation_mat; rotary_embedding_llama works one tile at a time)."""
    mat = torch.zeros(1, 1, TILE_SIZE, TILE_SIZE)
    mat[..., torch.arange(0, TILE_SIZE, 2), torch.arange(1, TILE_SIZE, 2)] = 1
    mat[..., torch.arange(1, TILE_SIZE, 2), torch.arange(0, TILE_SIZE, 2)] = -1
    return mat.repeat(1, 1, rows // TILE_SIZE, 1)


def int_rows(values, columns: int) -> torch.Tensor:
    """[1, columns] int32 row of ``values`` zero-padded at the end (positions for embedding lookups)."""
    row = torch.zeros(1, columns, dtype=torch.int32)
    row[0, : len(values)] = torch.as_tensor(list(values), dtype=torch.int32)
    return row


def int_row_groups(values, groups: int, columns: int) -> torch.Tensor:
    """[1, groups · columns] int32: ``values`` split into ``groups`` equal consecutive groups, each zero-padded to
    ``columns`` (per-mesh-column positions for embedding lookups)."""
    values = list(values)
    size = len(values) // groups
    return torch.cat([int_rows(values[g * size : (g + 1) * size], columns) for g in range(groups)], dim=1)


def int_vector(values) -> torch.Tensor:
    """1D int32 tensor of ``values`` (e.g. decode positions per user)."""
    return torch.as_tensor(list(values), dtype=torch.int32)


def repeat_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """A 1D tensor repeated into [1, 1, rows, len] (e.g. a bias for every decode row)."""
    return x.reshape(1, 1, 1, -1).expand(1, 1, rows, x.shape[-1]).contiguous()


def user_slice_matrices(groups: int, users: int) -> torch.Tensor:
    """[1, groups, users, 32]: block g, left-multiplied onto a tile of 32 user rows, keeps rows g·users ..
    (g+1)·users - 1 (a device group's own decode users; TTTv1 TG slice_mat)."""
    out = torch.zeros(1, groups, users, TILE_SIZE)
    for g in range(groups):
        out[0, g, :, g * users : (g + 1) * users] = torch.eye(users)
    return out


def user_gather_matrix(groups: int, users: int) -> torch.Tensor:
    """[1, 1, 32, groups · 32]: onto the groups' tiles stacked by an all-gather (each tile's first ``users`` rows
    real), puts group g's users back at rows g·users .. (g+1)·users - 1 (TTTv1 TG user_selection_matrix)."""
    block = torch.nn.functional.pad(torch.eye(users), (0, TILE_SIZE - users))  # (users, 32)
    out = torch.zeros(1, 1, TILE_SIZE, groups * TILE_SIZE)
    out[0, 0, : groups * users] = torch.block_diag(*[block] * groups)
    return out


def one_hot(size: int, index: int) -> torch.Tensor:
    """[1, size, 1, 1]: 1 at ``index``, 0 elsewhere (split over devices: one scalar mask each)."""
    out = torch.zeros(1, size, 1, 1)
    out[0, index] = 1
    return out


def zeros(shape) -> torch.Tensor:
    """A bfloat16 host tensor of zeros (e.g. an empty KV cache to upload)."""
    return torch.zeros(shape, dtype=torch.bfloat16)


# --- token embedding and LM head (host side) ----------------------------------------------------------------------
def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Refuse token ids that are not integers in [0, vocab_size) with one error naming the offenders."""
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"token ids must be an integer tensor, got {ids.dtype}; pass them as torch.int64 / int32")
    bad = ids[(ids < 0) | (ids >= vocab_size)]
    if bad.numel():
        raise ValueError(
            f"token ids must be in [0, {vocab_size}) (the vocabulary), got {bad.unique()[:8].tolist()}; "
            "check the tokenizer matches the model"
        )


def lm_head_split(weight: torch.Tensor, num_devices: int, per_device: int, start: int, size: int) -> torch.Tensor:
    """[dim, num_devices · size]: columns [start, start + size) of each device's ``per_device`` vocabulary slice of
    ``weight`` ((vocab, dim), HF lm_head.weight; zero rows past the vocabulary), side by side so a split of the last
    dim over the devices hands device d its own columns (TTTv1 lm_head.py's per-split weights)."""
    padded = pad_dim_to_size(weight, 0, num_devices * per_device)
    rows = [padded[d * per_device + start : d * per_device + start + size] for d in range(num_devices)]
    return torch.cat(rows, dim=0).T.contiguous()


def first_device_to_host(tensor: ttnn.Tensor) -> torch.Tensor:
    """The first device's shard of a mesh tensor (a tensor whole on every device) on the host, in its own dtype."""
    return ttnn.to_torch(ttnn.get_device_tensors(tensor)[0])
