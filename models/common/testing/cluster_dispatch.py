# SPDX-License-Identifier: Apache-2.0
"""pytest plugin: run mock-device tests in child pytest processes, per mock cluster and test folder.

A process can only ever use the mock cluster it first initialised (N150, N300, T3K or Galaxy), yet one
``pytest models/common/tests`` run must cover 1x1, 1x2, 1x8, 8x4 and 4x8 meshes. So on the mock tier the
parent process runs the device-free tests itself and hands each cluster's device tests (those using the
``ttnn_mesh_device`` fixture) to child ``pytest`` runs with that cluster's descriptor: one per cluster, and on a
Galaxy one per test folder (``child_group``), since a process keeps what its tests leave in memory (caches, heap)
and a whole Galaxy run in one process outgrew the 24 GiB machine. Each child costs seconds to start (imports, mock
cluster, coverage), so smaller clusters run in one. A child streams its test reports back (pytest's own report
serialisation, as pytest-xdist does), and the parent feeds them to its reporters, so progress, failures, ``-x``
and the final summary read as one run. A cluster's children write ``generated/test-logs/<cluster>.log`` one after
another; if a child dies, its unfinished tests fail with the log's tail.

On hardware and ttsim (or when ``TT_METAL_MOCK_CLUSTER_DESC_PATH`` is set by hand) nothing is dispatched.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

from models.common.devices import MOCK_DESCRIPTOR_ENV, REPO_ROOT, mock_cluster_for

REPORT_FILE_ENV = "TTTV2_CHILD_REPORT_FILE"
MESH_FIXTURE = "ttnn_mesh_device"
LOG_DIR = REPO_ROOT / "generated" / "test-logs"
POLL_SECONDS = 0.2
LOG_TAIL_LINES = 40
# A Galaxy's tests hold 32 devices' goldens each: its device tests run one child per test folder (see above).
FOLDER_CHILDREN_MIN_DEVICES = 32
# Command-line options forwarded to children (they change how tests run, not which run).
FORWARDED_FLAGS = ("--full-sweep", "-x", "--exitfirst", "-s", "--capture=no")


def child_group(item) -> str:
    """The test folder an item's child runs: ``modules/<module>`` for module tests, else the folder below tests/."""
    parts = Path(item.nodeid.split("::")[0]).parts
    start = parts.index("tests") + 1 if "tests" in parts else 0
    folders = parts[start:-1]
    return "/".join(folders[:2] if folders[:1] == ("modules",) else folders[:1])


def child_groups(cluster, items: list) -> list[list]:
    """The children a cluster's device tests run in: one, or on a Galaxy one per test folder (``child_group``)."""
    if math.prod(cluster.system_shape) < FOLDER_CHILDREN_MIN_DEVICES:
        return [list(items)]
    groups = defaultdict(list)
    for item in items:
        groups[child_group(item)].append(item)
    return list(groups.values())


def mesh_shape_of(item) -> tuple[int, int] | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or MESH_FIXTURE not in callspec.params:
        return None
    param = callspec.params[MESH_FIXTURE]
    return tuple(param["mesh_shape"] if isinstance(param, dict) else param)


class ChildReportWriter:
    """In a child: append every test report, serialised, to the file the parent reads."""

    def __init__(self, config, path: str):
        self._config = config
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the whole session, closed at unconfigure

    def pytest_runtest_logreport(self, report):
        data = self._config.hook.pytest_report_to_serializable(config=self._config, report=report)
        self._file.write(json.dumps(data) + "\n")

    def pytest_unconfigure(self):
        self._file.close()


class ClusterDispatcher:
    """In the parent: run local tests in-process and each mock cluster's device tests in a child pytest."""

    def __init__(self, config):
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly:
            return True
        local, by_cluster = [], defaultdict(list)
        for item in session.items:
            shape = mesh_shape_of(item)
            if shape is None:
                local.append(item)
                continue
            try:
                by_cluster[mock_cluster_for(shape)].append(item)
            except ValueError:  # no mock system has this mesh: the fixture skips it in-process, saying why
                local.append(item)
        for i, item in enumerate(local):
            next_item = local[i + 1] if i + 1 < len(local) else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=next_item)
            if session.shouldfail or session.shouldstop:
                raise session.Failed(session.shouldfail or session.shouldstop)
        for cluster, items in by_cluster.items():
            for index, group in enumerate(child_groups(cluster, items)):
                self._run_child(session, cluster, group, index)
                if session.shouldfail or session.shouldstop:
                    raise session.Failed(session.shouldfail or session.shouldstop)
        return True

    def _child_command(self, args_file: Path) -> list[str]:
        command = [sys.executable, "-m", "pytest", f"@{args_file}", "-p", "no:cacheprovider", "-q"]
        invocation = self.config.invocation_params.args
        command += [arg for arg in invocation if arg in FORWARDED_FLAGS]
        command += [f"-m={self.config.option.markexpr}"] if self.config.option.markexpr else []
        cov = self.config.pluginmanager.get_plugin("_cov")
        if cov is not None and getattr(cov, "options", None) and cov.options.cov_source:
            command += [f"--cov={source}" for source in cov.options.cov_source]
            command += ["--cov-report=", f"--cov-config={cov.options.cov_config}", "--cov-fail-under=0"]
        return command

    def _run_child(self, session, cluster, items, index: int) -> None:
        """Run ``items`` in a child on ``cluster``; ``index``: the cluster's how-manieth child (its log is appended)."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        pending = {item.nodeid: item for item in items}
        with tempfile.TemporaryDirectory(prefix=f"tttv2-{cluster.name}-") as tmp:
            args_file, report_file = Path(tmp) / "args", Path(tmp) / "reports.jsonl"
            args_file.write_text("\n".join(pending) + "\n")
            report_file.touch()
            env = dict(os.environ, **{MOCK_DESCRIPTOR_ENV: str(cluster.descriptor), REPORT_FILE_ENV: str(report_file)})
            cov_file = os.environ.get("COVERAGE_FILE", str(REPO_ROOT / ".coverage"))
            env["COVERAGE_FILE"] = f"{cov_file}.child-{cluster.name}-{index}"
            log_path = LOG_DIR / f"{cluster.name}.log"
            with open(log_path, "a" if index else "w") as log, open(report_file) as reports:
                child = subprocess.Popen(
                    self._child_command(args_file), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
                while True:
                    finished = child.poll() is not None
                    for line in reports:
                        self._forward(session, pending, json.loads(line))
                        if session.shouldfail or session.shouldstop:
                            child.kill()
                    if finished:
                        break
                    time.sleep(POLL_SECONDS)
        for item in pending.values():
            self._fail_unfinished(session, item, cluster.name, child.returncode, log_path)

    def _forward(self, session, pending: dict, data: dict) -> None:
        hook = session.config.hook
        report = hook.pytest_report_from_serializable(config=session.config, data=data)
        if report.when == "setup":
            hook.pytest_runtest_logstart(nodeid=report.nodeid, location=report.location)
        hook.pytest_runtest_logreport(report=report)
        if report.when == "teardown":
            hook.pytest_runtest_logfinish(nodeid=report.nodeid, location=report.location)
            pending.pop(report.nodeid, None)

    def _fail_unfinished(self, session, item, cluster_name: str, returncode, log_path: Path) -> None:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        message = f"the {cluster_name} child pytest ended (exit code {returncode}) before this test finished.\n"
        message += f"Last lines of {log_path}:\n{tail}"
        report = pytest.TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords={},
            outcome="failed",
            longrepr=message,
            when="call",
        )
        hook = session.config.hook
        hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
