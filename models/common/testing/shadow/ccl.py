# SPDX-License-Identifier: Apache-2.0
"""Goldens of the collectives, per device: all-gather, reduce-scatter, all-reduce and their async variants.

Semantics are those of ttnn 0.81.1's goldens for ``ttnn.all_gather`` / ``ttnn.reduce_scatter`` /
``ttnn.all_reduce`` (``ttnn/operations/ccl.py``): devices are grouped along ``cluster_axis`` (all devices in
row-major order when None); all-gather concatenates the group's tensors along ``dim`` in group order;
reduce-scatter sums the group's tensors and gives the k-th device of the group the k-th chunk along ``dim``;
all-reduce gives every device the sum. Those goldens return the mesh-composed tensor; the shadow keeps one value
per device, so the grouping is applied here directly. The async variants (no ttnn golden) compute the same
collective (tt-metal ``tests/ttnn/unit_tests/operations/ccl/test_new_all_gather.py``,
``test_reduce_scatter_async.py``, ``test_all_reduce_async.py`` compare them with the same torch references).
Sums are taken in float32; the result is rounded to the output dtype like any other op.
"""

import itertools

import torch

from models.common.testing.shadow.registry import OpSpec, argument, concat_keeps_blocks


def device_groups(mesh_shape: tuple[int, int], cluster_axis: int | None) -> list[list[int]]:
    """Row-major device indices grouped along ``cluster_axis`` (one group of every device when None)."""
    rows, cols = mesh_shape
    if cluster_axis is None:
        return [list(range(rows * cols))]
    if cluster_axis == 0:
        return [[r * cols + c for r in range(rows)] for c in range(cols)]
    return [[r * cols + c for c in range(cols)] for r in range(rows)]


def _dim(args, kwargs) -> int:
    """The collective's ``dim``: by keyword or the first positional int."""
    return argument(args, kwargs, "dim", next((i for i, a in enumerate(args) if isinstance(a, int)), None))


def _collective(per_group) -> callable:
    """A mesh golden applying ``per_group(values of the group, dim) -> values per member`` to every group."""

    def golden(xs, *args, mesh_shape, **kwargs):
        dim = _dim(args, kwargs)
        out = [None] * len(xs)
        for group in device_groups(mesh_shape, kwargs.get("cluster_axis")):
            for index, value in zip(group, per_group([xs[i] for i in group], dim), strict=True):
                out[index] = value
        return out

    return golden


def _gather(values, dim):
    return itertools.repeat(torch.cat(values, dim=dim), len(values))


def _reduce_scatter(values, dim):
    return torch.chunk(torch.stack(values).sum(dim=0), len(values), dim=dim)


def _reduce(values, dim):
    return itertools.repeat(torch.stack(values).sum(dim=0), len(values))


def _all_gather_matmul(xs, weights, *args, mesh_shape, **kwargs):
    """all_gather_matmul_async: (the all-gather of ``xs`` along ``dim``, that gather @ this device's weight)."""
    gathered = _collective(_gather)(xs, *args, mesh_shape=mesh_shape, **kwargs)
    return [(g, g @ w) for g, w in zip(gathered, weights, strict=True)]


def _gather_moves(args, kwargs, shape) -> bool:
    return concat_keeps_blocks(_dim(args[1:], kwargs), [args[0].shape[-1]], shape)


ALL_GATHER = OpSpec(_collective(_gather), mesh=True, moves=_gather_moves)
REDUCE_SCATTER = OpSpec(_collective(_reduce_scatter), mesh=True)
ALL_REDUCE = OpSpec(_collective(_reduce), mesh=True)

TABLE = {
    "ttnn.all_gather": ALL_GATHER,
    "ttnn.experimental.all_gather_async": ALL_GATHER,
    "ttnn.reduce_scatter": REDUCE_SCATTER,
    "ttnn.experimental.reduce_scatter_minimal_async": REDUCE_SCATTER,
    "ttnn.all_reduce": ALL_REDUCE,
    "ttnn.experimental.all_reduce_async": ALL_REDUCE,
    "ttnn.experimental.all_gather_matmul_async": OpSpec(_all_gather_matmul, mesh=True),
}
