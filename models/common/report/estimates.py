# SPDX-License-Identifier: Apache-2.0
"""Device-time estimates: a DRAM roofline for decode and a compute bound for prefill, per op and per mesh.

Decode is bandwidth-bound: a decode step reads each device's weights and KV-cache slice from DRAM once, so its time
is at least (bytes each device reads) ÷ (DRAM bandwidth). Per op, the bytes are the DRAM-resident tensors the op
reads (their buffers as allocated, padding included); the KV-cache update ops write their cache (not counted), and
decode SDPA is counted as reading the whole cache, which the report sizes to the run (prompt + decode steps).
Prefill is compute-bound: matmul and SDPA FLOPs per device ÷ the chip's peak (BLOCKFP8 peak when an operand is
block-float, FP16 otherwise); elementwise, norm, data-movement and CCL ops are not counted. Both are lower bounds.

``mesh_scaling`` extends the decode roofline to meshes the report did not run, analytically: parameters ÷ devices ×
bytes per parameter of this run's dtypes (the MLP's padded hidden dim and the norms' gamma copies as the module
configs resolve them on that mesh, ``report/standin.py``), plus the KV-cache slice of each device (no padding): its
decode users (all of them on 1D; on 2D its mesh column's share, as Attention2D caches) × its head group's KV heads ×
positions × head_dim. The same rows say whether all layers' weights and KV caches fit a device's DRAM and name
known L1 limits; the report refuses a mesh where they do not fit before it starts.
"""

import math
from dataclasses import dataclass

import ttnn

from models.common.modules.attention.attention_steps import check_head_split
from models.common.modules.rmsnorm.rmsnorm_1d import DISTRIBUTED_PREFILL_MIN_DIM
from models.common.modules.rope.rope_2d import users_per_column
from models.common.modules.tt_ccl import TWO_D_MESHES

SPEC_SOURCE = "docs.tenstorrent.com/aibs/wormhole/specifications.html"


@dataclass(frozen=True)
class ChipFigures:
    name: str
    dram_bytes_per_s: float
    fp16_flops_per_s: float
    blockfp8_flops_per_s: float
    dram_bytes: int
    source: str = SPEC_SOURCE

    def entry(self) -> dict:
        return {
            "name": self.name,
            "dram_GBps": self.dram_bytes_per_s / 1e9,
            "fp16_TFLOPS": self.fp16_flops_per_s / 1e12,
            "blockfp8_TFLOPS": self.blockfp8_flops_per_s / 1e12,
            "dram_GiB": self.dram_bytes / 2**30,
            "source": self.source,
        }


# Wormhole n150 (one chip): 288 GB/s GDDR6, 74 TFLOPS FP16, 148 TFLOPS BLOCKFP8, 12 GB (spec table, n150s/n150d).
# Used for every mesh: n300 / T3K chips have the same 288 GB/s each (576 GB/s per two-chip n300) and 64 cores, so
# their per-chip compute is lower (131 / 2 = 65.5 TFLOPS FP16).
WORMHOLE_N150 = ChipFigures("Wormhole n150 (per chip)", 288e9, 74e12, 148e12, 12 * 2**30)
TILE_ELEMENTS = 32 * 32
# Bytes of a 32x32 tile (ttnn.Tile.get_tile_size, which needs an initialised cluster: the report estimates before
# one): bfloat8_b / bfloat4_b hold 1024 mantissas of 8 / 4 bits and one shared exponent byte per 16 values.
TILE_BYTES = {ttnn.bfloat16: 2048, ttnn.float32: 4096, ttnn.bfloat8_b: 1088, ttnn.bfloat4_b: 576}
BLOCK_FLOATS = (ttnn.bfloat8_b, ttnn.bfloat4_b)
MATMUL_OPS = frozenset({"ttnn.linear", "ttnn.matmul", "ttnn.experimental.all_gather_matmul_async"})
SDPA_PREFILL_OPS = frozenset({"ttnn.transformer.scaled_dot_product_attention"})
# KV-cache fills / updates: the first argument is the cache they write into, not an input they read
CACHE_WRITE_OPS = frozenset(
    {
        "ttnn.fill_cache",
        "ttnn.update_cache",
        "ttnn.experimental.paged_update_cache",
        "ttnn.experimental.paged_fill_cache",
    }
)
CAUSAL_FRACTION = 0.5  # causal attention computes half of the score matrix
MATMUL_FLOPS_PER_MAC = 2
SDPA_MATMULS = 2  # Q·Kᵀ and P·V
PLOT_MESHES = ((1, 1), (1, 2), (1, 8), (8, 4))
KV_TENSORS = 2  # keys and values


def dram_read_bytes(call) -> int:
    """Bytes of DRAM-resident tensors the op reads, per device."""
    inputs = call.inputs[1:] if call.name in CACHE_WRITE_OPS else call.inputs
    return sum(t.buffer_bytes for t in inputs if t.in_dram)


def flops(call) -> int:
    """Matmul and prefill-SDPA FLOPs per device (0 for other ops)."""
    if call.name in MATMUL_OPS:
        a, b = call.inputs[:2]
        k, n = b.shape[-2:]
        return MATMUL_FLOPS_PER_MAC * math.prod(a.shape[:-1]) * k * n
    if call.name in SDPA_PREFILL_OPS:
        q, k = call.inputs[:2]
        batch, heads, rows, head_dim = q.shape
        causal = CAUSAL_FRACTION if call.options.get("is_causal", True) else 1.0
        return int(MATMUL_FLOPS_PER_MAC * SDPA_MATMULS * batch * heads * rows * k.shape[-2] * head_dim * causal)
    return 0


def peak_flops_per_s(call, chip: ChipFigures) -> float:
    block_float = any(t.dtype in BLOCK_FLOATS for t in call.inputs[:2])
    return chip.blockfp8_flops_per_s if block_float else chip.fp16_flops_per_s


def bytes_per_element(dtype) -> float:
    """Storage per element in tiles (block floats share an exponent per 16 values)."""
    return TILE_BYTES[dtype] / TILE_ELEMENTS


@dataclass(frozen=True)
class LayerParameters:
    """What the analytic decode estimate needs: parameters per weight and their dtypes, and the KV-cache shape."""

    split: dict  # weight name -> (parameters, dtype), split over every device
    per_device: dict  # weight name -> (parameters on each device, dtype), as the resolved config lays it out
    n_heads: int
    n_kv_heads: int
    head_dim: int
    kv_dtype: object
    users: int  # the decode batch; each device caches its share (all of it on 1D, its mesh column's on 2D)
    context: int  # KV positions a decode step reads
    n_layers: int
    dim: int


def head_groups(mesh) -> int:
    """Device groups the heads split over: every device (Attention1D), the mesh rows (Attention2D)."""
    return mesh[0] if tuple(mesh) in TWO_D_MESHES else mesh[0] * mesh[1]


def users_per_device(users: int, mesh) -> int:
    """Decode users whose KV cache a device holds: all (Attention1D), its mesh column's (Attention2D)."""
    return users_per_column(users, mesh[1]) if tuple(mesh) in TWO_D_MESHES else users


def l1_limit(params: LayerParameters, mesh) -> str | None:
    """A known L1 limit of the layer on ``mesh`` (found on the mock, where ttnn allocates L1 as on hardware)."""
    if mesh[0] * mesh[1] == 1 and params.dim > DISTRIBUTED_PREFILL_MIN_DIM:
        return (
            f"the prefill RMSNorm of dim {params.dim} on one device needs circular buffers beyond L1 (dims above "
            f"{DISTRIBUTED_PREFILL_MIN_DIM} are normed distributed, over 2 or more devices)"
        )
    return None


def mesh_scaling(parameters, chip: ChipFigures, meshes=PLOT_MESHES) -> list[dict]:
    """Estimated decode time per layer and token on each mesh (analytic; see the module docstring), and whether
    the whole model (weights and KV cache of every layer) fits each device's DRAM. ``parameters(mesh)``: the
    LayerParameters on ``mesh`` (a ValueError marks the mesh unsupported)."""
    rows = []
    for mesh in meshes:
        devices = mesh[0] * mesh[1]
        groups = head_groups(mesh)
        row = {"mesh": f"{mesh[0]}x{mesh[1]}", "devices": devices}
        try:
            params = parameters(mesh)
            check_head_split(params, groups)
        except ValueError as error:
            rows.append({**row, "supported": False, "reason": str(error)})
            continue
        weights = sum(n * bytes_per_element(dtype) for n, dtype in params.split.values()) / devices
        weights += sum(n * bytes_per_element(dtype) for n, dtype in params.per_device.values())
        users = users_per_device(params.users, mesh)
        kv_elements = KV_TENSORS * users * (params.n_kv_heads // groups) * params.context * params.head_dim
        kv = kv_elements * bytes_per_element(params.kv_dtype)
        model_bytes = params.n_layers * (weights + kv)
        limit = l1_limit(params, mesh)
        rows.append(
            {
                **row,
                "supported": limit is None,
                **({"reason": limit} if limit else {}),
                "decode_users_per_device": users,
                "weight_bytes_per_device": int(weights),
                "kv_cache_bytes_per_device": int(kv),
                "decode_us": (weights + kv) / chip.dram_bytes_per_s * 1e6,
                "model_weight_bytes_per_device": int(params.n_layers * weights),
                "model_bytes_per_device": int(model_bytes),
                "model_fits_dram": model_bytes <= chip.dram_bytes,
            }
        )
    return rows


def runnable(row: dict) -> bool:
    """The layer runs on the row's mesh and the whole model fits its DRAM."""
    return row["supported"] and row["model_fits_dram"]
