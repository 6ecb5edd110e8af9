# SPDX-License-Identifier: Apache-2.0
"""Dispatch-only runs: a weight allocated from its spec matches the converted one; honest counts; the case policy."""

import pytest
import torch
import ttnn

from models.common import devices
from models.common.modules.lazy_weight import LazyWeight, MeshMapping
from models.common.testing import numerics
from models.common.testing.dispatch_only import dispatch_only
from models.common.testing.shadow import session


def _dram_width_sharded(mesh, shard_shape):
    """A DRAM width-sharded memory config over the mesh's DRAM banks (as MLP1D's weights)."""
    grid = mesh.dram_grid_size()
    banks = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(grid.x - 1, grid.y - 1))})
    spec = ttnn.ShardSpec(banks, shard_shape, ttnn.ShardOrientation.ROW_MAJOR)
    return ttnn.MemoryConfig(ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.BufferType.DRAM, spec)


WEIGHTS = {  # name -> (source shape, LazyWeight fields but device; the memory config is built per mesh)
    "replicated-row-major": ((1, 1, 64, 32), dict(layout=ttnn.ROW_MAJOR_LAYOUT, mesh_mapping=MeshMapping.replicate())),
    "split-rows-row-major": ((1, 1, 64, 32), dict(layout=ttnn.ROW_MAJOR_LAYOUT, mesh_mapping=MeshMapping.shard(2))),
    "split-padded-bfp8": ((2048, 1000), dict(dtype=ttnn.bfloat8_b, mesh_mapping=MeshMapping.shard(-1))),
    "split-rows-bfp4": ((1000, 2048), dict(dtype=ttnn.bfloat4_b, mesh_mapping=MeshMapping.shard(-2))),
    "dram-sharded": ((256, 3072), dict(dtype=ttnn.bfloat8_b, mesh_mapping=MeshMapping.shard(-1))),
}


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 8)], ids=["1x1", "1x8"], indirect=True)
@pytest.mark.parametrize("name", list(WEIGHTS))
def test_allocated_weight_has_the_converted_spec(ttnn_mesh_device, name):
    """Each device's tensor allocated from the spec has the shape, padded shape, dtype, layout and memory config
    of the converted weight's."""
    mesh = ttnn_mesh_device
    shape, fields = WEIGHTS[name]
    fields = dict(dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, memory_config=ttnn.DRAM_MEMORY_CONFIG) | fields
    if name == "dram-sharded":
        banks = mesh.dram_grid_size().x * mesh.dram_grid_size().y
        fields["memory_config"] = _dram_width_sharded(mesh, [shape[0], shape[1] // mesh.get_num_devices() // banks])
    converted = LazyWeight(torch.randn(shape), device=mesh, **fields).get_device_weight()
    with dispatch_only():
        allocated = LazyWeight(torch.empty(shape, device="meta"), device=mesh, **fields).get_device_weight()
        assert not session.is_active(), "dispatch-only runs without the shadow"

    def specs(tensor):
        return [
            (tuple(t.shape), tuple(t.padded_shape), t.dtype, t.layout, t.memory_config())
            for t in ttnn.get_device_tensors(tensor)
        ]

    assert specs(allocated) == specs(converted)
    assert session.is_active(), "the shadow resumes after the block"


def test_dispatched_cases_are_counted_as_such_never_as_compared():
    properties = []
    check = numerics.ReferenceCheck(devices.MOCK, properties)
    with check.running(compare=False), pytest.raises(RuntimeError, match="no numbers to compare"):
        check(torch.ones(2), torch.ones(2), 0.99)
    with pytest.raises(ValueError), check.running(compare=False):  # a case that fails is not counted
        raise ValueError("dispatch failed")
    assert properties == [(numerics.NUMERICS_PROPERTY, {numerics.DISPATCHED: 1})]
    line = numerics.summary_line(properties[0][1])
    assert line == "numerics: 0 compared on device, 0 compared (shadow), 1 dispatched only (no numbers)"


def test_which_cases_compute_numbers():
    mock, hardware = numerics.ReferenceCheck(devices.MOCK, []), numerics.ReferenceCheck(devices.HARDWARE, [])
    sweep = numerics.ReferenceCheck(devices.MOCK, [], full_sweep=True)
    affordable = numerics.shadow_affordable
    assert affordable(dim=4096, mode="decode", seq_len=32) and affordable(dim=4096, mode="prefill", seq_len=2048)
    assert not affordable(dim=4096, mode="prefill", seq_len=4096) and not affordable(
        dim=8192, mode="decode", seq_len=32
    )
    assert (mock.compares(True), mock.compares(False)) == (True, False)
    assert sweep.compares(False) and hardware.compares(False)
