# SPDX-License-Identifier: Apache-2.0
"""Tier and mesh helpers, and the set-up scripts' errors (no Python 3.12, no apt) in a scratch copy."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from models.common import devices

REPO = devices.REPO_ROOT


@pytest.mark.parametrize(
    "mesh, cluster",
    [((1, 1), "n150"), ((1, 2), "n300"), ((1, 8), "t3k"), ((2, 4), "t3k"), ((8, 4), "galaxy"), ((4, 8), "galaxy")],
)
def test_each_mesh_runs_on_the_smallest_system_that_has_it(mesh, cluster):
    assert devices.mock_cluster_for(mesh).name == cluster
    assert devices.mock_cluster_for(mesh).descriptor.exists()


def test_unknown_mesh_names_the_supported_ones():
    with pytest.raises(ValueError, match=r"no mock cluster has a 3x3 mesh; supported mesh shapes: 1x1, 1x2, 1x8"):
        devices.mock_cluster_for((3, 3))


def test_a_process_keeps_its_cluster(monkeypatch):
    monkeypatch.setenv(devices.MOCK_DESCRIPTOR_ENV, str(devices.MOCK_CLUSTERS[0].descriptor))
    with pytest.raises(RuntimeError, match="a process serves one cluster"):
        devices.configure_mock_cluster(devices.mock_cluster_for((8, 4)))


@pytest.mark.parametrize(
    "requested, system, fits",
    [
        ((1, 8), (2, 4), True),
        ((4, 8), (8, 4), True),
        ((1, 2), (8, 4), True),
        ((8, 4), (1, 8), False),
        ((1, 2), (1, 1), False),
    ],
)
def test_mesh_fits(requested, system, fits):
    assert devices.mesh_fits(requested, system) is fits


def test_forced_tier_is_validated(monkeypatch):
    monkeypatch.setenv(devices.TIER_ENV, "quantum")
    with pytest.raises(ValueError, match="use one of hardware, ttsim, mock"):
        devices.detect_tier()


def _path_without(tmp_path: Path, excluded: tuple[str, ...]) -> str:
    """A PATH holding every command of /usr/bin and /bin except ``excluded`` (by name prefix)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in (Path("/bin"), Path("/usr/bin")):
        for tool in folder.iterdir():
            target = bin_dir / tool.name
            if not tool.name.startswith(excluded) and not target.exists():
                target.symlink_to(tool)
    return str(bin_dir)


def test_create_venv_without_python_312_says_how_to_get_one(tmp_path):
    scratch = tmp_path / "repo"
    scratch.mkdir()
    shutil.copy(REPO / "create_venv.sh", scratch)
    env = {"PATH": _path_without(tmp_path, ("python3.12", "pyenv")), "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(scratch / "create_venv.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "no Python 3.12 interpreter found" in result.stderr and "pyenv install 3.12" in result.stderr
    assert not (scratch / "python_env").exists(), "nothing half-made is left behind"


def test_build_metal_without_apt_or_binutils_says_what_to_install(tmp_path):
    scratch = tmp_path / "repo"
    shutil.copytree(REPO / "models" / "common" / "mock_device", scratch / "models" / "common" / "mock_device")
    shutil.copy(REPO / "build_metal.sh", scratch)
    env = {"PATH": _path_without(tmp_path, ("riscv64-unknown-elf", "apt")), "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(scratch / "build_metal.sh")], env=env, capture_output=True, text=True)
    if Path("/dev/tenstorrent").exists():
        assert result.returncode == 0 and "Tenstorrent device(s) found" in result.stdout
    else:
        assert result.returncode == 1
        assert "riscv64-unknown-elf binutils are missing and apt-get is unavailable" in result.stderr
        assert not (scratch / "build").exists()


def test_build_metal_rejects_unknown_options():
    result = subprocess.run(["bash", str(REPO / "build_metal.sh"), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown argument '--bogus'" in result.stderr


def test_mock_shim_handles_ttnn_invocations(tmp_path):
    """The four invocation kinds ttnn makes (see the shim's header): version, PCH, compile, link."""
    sfpi = REPO / "build" / "mock_sfpi" / "compiler" / "bin" / "riscv-tt-elf-g++"
    if not sfpi.exists():
        pytest.fail("build/mock_sfpi is missing: run ./build_metal.sh")
    assert "tenstorrent/sfpi" in subprocess.run([sfpi, "--version"], capture_output=True, text=True).stdout
    subprocess.run([sfpi, "-x", "c++-header", "pch.h", "-o", tmp_path / "pch.gch"], check=True)
    subprocess.run([sfpi, "-O3", "-c", "-o", tmp_path / "k.o", "k.cc", "-MF", tmp_path / "k.d"], check=True)
    assert (tmp_path / "pch.gch").exists() and (tmp_path / "k.o").exists()
    assert (tmp_path / "k.d").read_text() == f"{tmp_path / 'k.o'}:\n"
    script = tmp_path / "flat.ld"
    script.write_text("ENTRY(_start) SECTIONS { . = 0xffc00000; .text : { *(.start) *(.text) } }")
    subprocess.run(
        [sfpi, f"-T{script}", "-Wl,-z,max-page-size=16", tmp_path / "k.o", "-o", tmp_path / "k.elf"], check=True
    )
    header = (tmp_path / "k.elf").read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[4] == 1, "a 32-bit ELF"
    assert os.access(tmp_path / "k.elf", os.R_OK)
