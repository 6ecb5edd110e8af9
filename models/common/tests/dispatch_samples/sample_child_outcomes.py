# SPDX-License-Identifier: Apache-2.0
"""Not collected by default (no test_ prefix): run by test_cluster_dispatch.py to see how child outcomes surface."""

import os

import pytest


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_passes_on_its_cluster(ttnn_mesh_device):
    assert tuple(ttnn_mesh_device.shape) == (1, 2)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_fails_on_its_cluster(ttnn_mesh_device):
    assert tuple(ttnn_mesh_device.shape) == (9, 9), "deliberate failure"


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_child_dies(ttnn_mesh_device):
    os._exit(3)


@pytest.mark.parametrize("ttnn_mesh_device", [(3, 3)], ids=["3x3"], indirect=True)
def test_mesh_no_system_has(ttnn_mesh_device):
    raise AssertionError("must be skipped before reaching here")


def test_device_free():
    assert True
