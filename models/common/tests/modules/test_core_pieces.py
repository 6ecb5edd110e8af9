# SPDX-License-Identifier: Apache-2.0
"""ResolvableConfig, LightweightModule, tt_ccl and tensor_utils."""

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
import ttnn

from models.common import tensor_utils
from models.common.modules import tt_ccl
from models.common.modules.lightweight_module import LightweightModule
from models.common.modules.module_config import ResolvableConfig


@dataclass(frozen=True)
class _Config(ResolvableConfig):
    width: int
    doubled: int | None = None
    label: str | None = None
    note: str | None = None

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"note"})

    def default_doubled(self):
        return 2 * self.width

    def default_label(self):
        return f"w{self.width}-d{self.doubled}"  # reads a field resolved above it


def test_resolve_fills_defaults_in_field_order_and_keeps_given_values():
    assert _Config(4).resolve() == _Config(4, 8, "w4-d8")
    assert _Config(4, doubled=5).resolve().label == "w4-d5"


def test_a_subclass_changes_one_decision():
    @dataclass(frozen=True)
    class Tripled(_Config):
        def default_doubled(self):
            return 3 * self.width

    assert Tripled(4).resolve().label == "w4-d12"


def test_resolve_names_fields_without_value_or_default():
    @dataclass(frozen=True)
    class Incomplete(ResolvableConfig):
        width: int | None = None

    with pytest.raises(ValueError, match="Incomplete: no value and no default for width"):
        Incomplete().resolve()


def test_lightweight_module_calls_forward():
    class Twice(LightweightModule):
        def forward(self, x):
            return 2 * x

    assert Twice()(21) == 42


def test_tensor_padding_helpers():
    x = torch.ones(2, 3)
    assert tensor_utils.pad_dim_to_size(x, -1, 5).shape == (2, 5)
    assert tensor_utils.pad_dim_to_size(x, 0, 2) is x
    assert tensor_utils.pad_to_shape(x, (4, 3), value=7.0)[3, 0] == 7.0
    with pytest.raises(ValueError, match="cannot pad dim"):
        tensor_utils.pad_dim_to_size(x, 0, 1)
    with pytest.raises(ValueError, match="cannot pad a tensor of shape"):
        tensor_utils.pad_to_shape(x, (2,))
    assert tensor_utils.get_padded_hidden_dim(14336, 8) == 14336
    assert tensor_utils.get_padded_hidden_dim(5504, 8) == 5632
    assert tensor_utils.nearest_multiple(33, 32) == 64


@pytest.mark.parametrize(
    "ttnn_mesh_device, topology",
    [((1, 1), None), ((1, 2), ttnn.Topology.Linear), ((1, 8), ttnn.Topology.Ring), ((8, 4), ttnn.Topology.Linear)],
    ids=["1x1", "1x2", "1x8", "8x4"],
    indirect=["ttnn_mesh_device"],
)
def test_default_topology_and_semaphore_cycling(ttnn_mesh_device, topology):
    assert tt_ccl.default_topology(ttnn_mesh_device) == topology
    ccl = tt_ccl.get_tt_ccl(ttnn_mesh_device)
    assert tt_ccl.get_tt_ccl(ttnn_mesh_device) is ccl, "one TT_CCL per mesh"
    first, second, third = (ccl.get_and_cycle_rs_semaphore_handles(1) for _ in range(3))
    assert len(first) == tt_ccl.RS_SEMAPHORES_PER_CALL and first is not second and first is third
    ag = ccl.get_and_cycle_ag_semaphore_handles()
    assert len(ag) == tt_ccl.AG_SEMAPHORES_PER_CALL
    assert ccl.get_and_cycle_barrier_semaphore_handle(0) is not ccl.get_and_cycle_barrier_semaphore_handle(0)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4), (4, 8)], ids=["8x4", "4x8"], indirect=True)
def test_all_reduce_over_rows_of_a_width_split_tensor(ttnn_mesh_device, capfd):
    """As Attention2D's WO output: partial sums on the rows, the width split over the columns. The sum reaches every
    row, the result is labelled as it is held (replicated on the rows, width split on the columns), and ttnn has no
    TensorTopology error to log about the composite's intermediate."""
    rows, cols = tuple(ttnn_mesh_device.shape)
    partials = torch.randn(rows, 1, 32, 64 * cols)
    mapper = ttnn.ShardTensor2dMesh(ttnn_mesh_device, mesh_shape=(rows, cols), dims=(0, -1))
    x = ttnn.from_torch(
        partials, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=ttnn_mesh_device, mesh_mapper=mapper
    )
    out = tt_ccl.all_reduce(
        tt_ccl.get_tt_ccl(ttnn_mesh_device),
        x,
        cluster_axis=0,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        topology=ttnn.Topology.Linear,
        num_reduce_scatter_links=1,
        num_all_gather_links=1,
    )
    assert [str(p) for p in out.tensor_topology().placements()] == ["PlacementReplicate()", "PlacementShard(-1)"]
    composer = ttnn.ConcatMesh2dToTensor(ttnn_mesh_device, mesh_shape=(rows, cols), dims=(0, -1))
    summed = ttnn.to_torch(out, mesh_composer=composer).float()  # every row holds the sum (shadow golden on mock)
    assert torch.allclose(summed, partials.sum(0, keepdim=True).expand(rows, -1, -1, -1), atol=0.1, rtol=0.02)
    logged = capfd.readouterr()
    assert "TensorTopology" not in logged.out + logged.err
