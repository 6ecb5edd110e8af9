# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: ``ttnn_mesh_device`` on hardware / ttsim / mock, ``reference_check``, ``device_tier``.

Use a mesh by indirect parametrisation::

    @pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 2), (1, 8)], ids=["1x1", "1x2", "1x8"], indirect=True)
    def test_x(ttnn_mesh_device): ...

A param is a mesh shape tuple, or a dict ``{"mesh_shape": (r, c), **open_mesh_device kwargs}``. On the mock tier
each mesh runs on the mock system that has it (N150, N300, T3K, Galaxy), one child pytest per system (see
``models/common/testing/cluster_dispatch.py``). A mesh that the device at hand cannot hold is skipped: the
only skip this suite allows. Slow cases (``@pytest.mark.slow``) run with ``--full-sweep``, which also computes
numbers for the cases CI runs dispatched only (``numerics.shadow_affordable``). On the mock tier the
fixture also turns on shadow execution (``models/common/testing/shadow``) while the mesh is open, so
``reference_check`` compares host-golden values instead of the mock's zeros.
"""

import contextlib
import os

from models.common import devices

devices.apply_environment_defaults()  # before ttnn is imported anywhere in this process

import pytest  # noqa: E402

from models.common.testing import cluster_dispatch, numerics  # noqa: E402
from models.common.testing.shadow.session import return_freed_memory, shadow_execution  # noqa: E402

TIER = devices.detect_tier()
IS_CHILD = bool(os.environ.get(cluster_dispatch.REPORT_FILE_ENV))
DISPATCH = TIER == devices.MOCK and not IS_CHILD and not os.environ.get(devices.MOCK_DESCRIPTOR_ENV)
if DISPATCH:
    # This process runs only device-free tests, but ttnn initialises a cluster for some host conversions
    # (block-float tiles): give it the smallest one. Device tests go to per-cluster children.
    devices.configure_mock_cluster(devices.MOCK_CLUSTERS[0])
_numeric_totals: dict[str, int] = {}  # comparison outcome -> count, over this run's reports (children's included)


def pytest_addoption(parser):
    parser.addoption(
        "--full-sweep",
        action="store_true",
        help="also run the slow cases, and compute numbers for every case (none dispatched only)",
    )


def pytest_configure(config):
    if IS_CHILD:
        config.pluginmanager.register(
            cluster_dispatch.ChildReportWriter(config, os.environ[cluster_dispatch.REPORT_FILE_ENV]), "tttv2-child"
        )
    elif DISPATCH:
        config.pluginmanager.register(cluster_dispatch.ClusterDispatcher(config), "tttv2-dispatch")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--full-sweep"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After the test's fixtures are torn down: the shadow keeps freed memory for reuse within a test, not across."""
    if TIER == devices.MOCK:
        return_freed_memory()


def pytest_runtest_logreport(report):
    if report.when != "call":  # every phase's report carries the test's properties; count them once
        return
    for key, counts in report.user_properties:
        if key == numerics.NUMERICS_PROPERTY:
            for outcome, count in counts.items():
                _numeric_totals[outcome] = _numeric_totals.get(outcome, 0) + count


def pytest_terminal_summary(terminalreporter):
    if not IS_CHILD:
        terminalreporter.write_line(f"device tier: {TIER}; " + numerics.summary_line(_numeric_totals))


@pytest.fixture(scope="session")
def device_tier() -> str:
    return TIER


@pytest.fixture(scope="module")
def ttnn_mesh_device(request):
    if not hasattr(request, "param"):
        pytest.fail("ttnn_mesh_device needs indirect parametrisation with a mesh shape, e.g. (1, 8)")
    param = request.param if isinstance(request.param, dict) else {"mesh_shape": request.param}
    open_kwargs = dict(param)
    mesh_shape = tuple(open_kwargs.pop("mesh_shape"))
    if TIER == devices.MOCK:
        try:
            devices.mock_cluster_for(mesh_shape)
        except ValueError as unsupported:
            pytest.skip(str(unsupported))
    system_shape = devices.system_mesh_shape(TIER)
    if not devices.mesh_fits(mesh_shape, system_shape):
        pytest.skip(f"a {mesh_shape[0]}x{mesh_shape[1]} mesh cannot exist on this {TIER} system {system_shape}")
    mesh = devices.open_mesh(mesh_shape, **open_kwargs)
    with shadow_execution() if TIER == devices.MOCK else contextlib.nullcontext():
        yield mesh
    devices.close_mesh(mesh)


@pytest.fixture
def reference_check(request) -> numerics.ReferenceCheck:
    """``reference_check(reference, output, min_pcc)``: PCC on real devices and on shadowed mock meshes;
    ``compares`` / ``running`` choose and run a case with numbers or dispatched only (``testing/numerics.py``)."""
    full_sweep = request.config.getoption("--full-sweep")
    return numerics.ReferenceCheck(TIER, request.node.user_properties, full_sweep=full_sweep)
