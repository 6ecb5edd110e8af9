# SPDX-License-Identifier: Apache-2.0
"""Which device tier this process runs on, and opening/closing meshes on it.

Tiers: ``hardware`` (a Tenstorrent device is present), ``ttsim`` (``TT_METAL_SIMULATOR`` is set), else ``mock``:
the real ttnn validates and dispatches every op on a mock cluster described by a descriptor in
``models/common/mock_device/clusters`` (read-back is zeros). A process serves one mock cluster, fixed when ttnn
first initialises it, so :func:`configure_mock_cluster` must run before the first device open.

Import this module before ``ttnn`` when you want its quiet-log and cache defaults to apply.
"""

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MOCK_CLUSTER_DIR = REPO_ROOT / "models" / "common" / "mock_device" / "clusters"
JIT_CACHE_DIR = REPO_ROOT / "build" / "tt-metal-cache"  # build_metal.sh clears it when the mock toolchain changes

HARDWARE, TTSIM, MOCK = "hardware", "ttsim", "mock"
MOCK_DESCRIPTOR_ENV = "TT_METAL_MOCK_CLUSTER_DESC_PATH"
TIER_ENV = "TTTV2_DEVICE_TIER"
RING_DEVICE_COUNT = 8  # 1x8 T3K meshes run CCLs on a fabric ring (TTTv1 ccl_topology: Ring for 8 devices)


@dataclass(frozen=True)
class MockCluster:
    name: str
    system_shape: tuple[int, int]
    mesh_shapes: tuple[tuple[int, int], ...]  # meshes a test may ask for on this cluster

    @property
    def descriptor(self) -> Path:
        return MOCK_CLUSTER_DIR / f"{self.name}.yaml"


# Each mesh shape maps to the smallest real system that has it, so its worker grid and CCL topology are that
# system's (N150/N300/T3K chips: 8x8 workers; Galaxy: 8x9; see models/common/mock_device/README.md).
MOCK_CLUSTERS = (
    MockCluster("n150", (1, 1), ((1, 1),)),
    MockCluster("n300", (1, 2), ((1, 2),)),
    MockCluster("t3k", (1, 8), ((1, 8), (2, 4), (1, 4))),
    MockCluster("galaxy", (8, 4), ((8, 4), (4, 8))),
)


def apply_environment_defaults() -> None:
    """Quiet logs and a project-local JIT cache unless the user chose otherwise (set before importing ttnn)."""
    os.environ.setdefault("TT_METAL_LOGGER_LEVEL", "error")
    os.environ.setdefault("LOGURU_LEVEL", "WARNING")
    os.environ.setdefault("TT_METAL_CACHE", str(JIT_CACHE_DIR))


def detect_tier() -> str:
    """``TTTV2_DEVICE_TIER`` if set (e.g. ``mock`` on a machine with hardware), else what the machine has."""
    forced = os.environ.get(TIER_ENV)
    if forced:
        if forced not in (HARDWARE, TTSIM, MOCK):
            raise ValueError(f"{TIER_ENV}={forced!r}: use one of {HARDWARE}, {TTSIM}, {MOCK}")
        return forced
    if os.environ.get("TT_METAL_SIMULATOR"):
        return TTSIM
    if Path("/dev/tenstorrent").exists() and any(Path("/dev/tenstorrent").iterdir()):
        return HARDWARE
    return MOCK


def mock_cluster_for(mesh_shape) -> MockCluster:
    """The mock system a mesh of this shape runs on; ValueError (listing the supported shapes) if none has it."""
    shape = tuple(mesh_shape)
    for cluster in MOCK_CLUSTERS:
        if shape in cluster.mesh_shapes:
            return cluster
    supported = ", ".join(f"{r}x{c}" for cluster in MOCK_CLUSTERS for r, c in cluster.mesh_shapes)
    raise ValueError(f"no mock cluster has a {shape[0]}x{shape[1]} mesh; supported mesh shapes: {supported}")


def configure_mock_cluster(cluster: MockCluster) -> None:
    """Select the mock descriptor for this process (before ttnn initialises the cluster)."""
    current = os.environ.get(MOCK_DESCRIPTOR_ENV)
    if current and Path(current).resolve() != cluster.descriptor.resolve():
        raise RuntimeError(
            f"this process already uses mock cluster {current}; a process serves one cluster. "
            f"Run {cluster.name} meshes in their own process (the test suite does this by itself)."
        )
    os.environ[MOCK_DESCRIPTOR_ENV] = str(cluster.descriptor)


def current_mock_cluster() -> MockCluster | None:
    path = os.environ.get(MOCK_DESCRIPTOR_ENV)
    if not path:
        return None
    for cluster in MOCK_CLUSTERS:
        if Path(path).resolve() == cluster.descriptor.resolve():
            return cluster
    return MockCluster(Path(path).stem, (0, 0), ())


def mesh_fits(requested, system_shape) -> bool:
    """Whether a mesh of ``requested`` shape can be opened on a system of ``system_shape`` (as upstream's fixture)."""
    (r0, r1), (s0, s1) = tuple(requested), tuple(system_shape)
    if r0 * r1 == s0 * s1 and 1 in (r0, r1):
        return True  # a line over every device, e.g. 1x8 on a 2x4 T3K
    return (r0 <= s0 and r1 <= s1) or (r0 <= s1 and r1 <= s0)


def fabric_config_for(mesh_shape):
    """Fabric for CCLs: none on one device, a ring for an 8-device line (T3K), 1-D otherwise."""
    import ttnn

    num_devices = mesh_shape[0] * mesh_shape[1]
    if num_devices == 1:
        return None
    if num_devices == RING_DEVICE_COUNT and 1 in mesh_shape:
        return ttnn.FabricConfig.FABRIC_1D_RING
    return ttnn.FabricConfig.FABRIC_1D


def system_mesh_shape(tier: str) -> tuple[int, int]:
    """Shape of the whole system this process can open meshes on."""
    if tier == MOCK:
        cluster = current_mock_cluster()
        if cluster is None:
            raise RuntimeError(f"mock tier without {MOCK_DESCRIPTOR_ENV}: call configure_mock_cluster first")
        return cluster.system_shape
    import ttnn

    return tuple(ttnn._ttnn.multi_device.SystemMeshDescriptor().shape())


def open_mesh(mesh_shape, **open_kwargs):
    """Set the fabric the mesh's CCLs need and open it. Close with :func:`close_mesh`."""
    import ttnn

    fabric = fabric_config_for(mesh_shape)
    if fabric is not None:
        ttnn.set_fabric_config(fabric)
    return ttnn.open_mesh_device(ttnn.MeshShape(*mesh_shape), **open_kwargs)


def close_mesh(mesh_device) -> None:
    import ttnn

    from models.common.modules.tt_ccl import clear_tt_ccl_cache

    fabric_used = mesh_device.get_num_devices() > 1
    clear_tt_ccl_cache()
    ttnn.close_mesh_device(mesh_device)
    if fabric_used:
        ttnn.set_fabric_config(ttnn.FabricConfig.DISABLED)
