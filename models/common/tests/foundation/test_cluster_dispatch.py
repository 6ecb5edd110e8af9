# SPDX-License-Identifier: Apache-2.0
"""The mock-tier test dispatch: child outcomes, a dying child and unsupported meshes surface in the parent run."""

import os
import subprocess
import sys
from types import SimpleNamespace

from models.common import devices
from models.common.testing.cluster_dispatch import child_groups

SAMPLE = "models/common/tests/dispatch_samples/sample_child_outcomes.py"


def test_child_outcomes_reach_the_parent_summary():
    env = {k: v for k, v in os.environ.items() if k not in (devices.MOCK_DESCRIPTOR_ENV, "TTTV2_CHILD_REPORT_FILE")}
    env[devices.TIER_ENV] = devices.MOCK  # dispatch is a mock-tier mechanism; force it on any machine
    result = subprocess.run(
        [sys.executable, "-m", "pytest", SAMPLE, "-rA", "-p", "no:randomly"],
        cwd=devices.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 1, out
    assert "2 failed, 2 passed, 1 skipped" in out, out
    assert "PASSED " + SAMPLE + "::test_passes_on_its_cluster[1x2]" in out
    assert "deliberate failure" in out
    assert "the n150 child pytest ended (exit code 3) before this test finished" in out
    assert "no mock cluster has a 3x3 mesh" in out


def test_children_per_cluster_and_per_folder_on_galaxy():
    tests = "models/common/tests/"
    items = [
        SimpleNamespace(nodeid=tests + path)
        for path in (
            "modules/mlp/test_mlp_1d.py::a",
            "modules/attention/test_attention_1d.py::b",
            "modules/mlp/test_mlp_2d.py::c",
            "models/test_causal_lm.py::d",
        )
    ]
    by_name = {cluster.name: cluster for cluster in devices.MOCK_CLUSTERS}
    for small in ("n150", "n300", "t3k"):
        assert child_groups(by_name[small], items) == [items]
    assert child_groups(by_name["galaxy"], items) == [[items[0], items[2]], [items[1]], [items[3]]]
