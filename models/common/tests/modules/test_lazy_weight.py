# SPDX-License-Identifier: Apache-2.0
"""LazyWeight: resolution, padding, device upload and the disk cache (hit, miss, corruption, races)."""

import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import pytest
import torch
import ttnn

from models.common import tensor_utils
from models.common.modules.lazy_weight import LazyWeight, LazyWeightCacheWarning, MeshMapping, resolve_lazy_weight

HOST_1X1 = types.SimpleNamespace(shape=(1, 1))  # stands in for a device where only the mesh shape matters


def _weight(source, cache_dir=None, device=None, **overrides):
    params = dict(
        dtype=ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        mesh_mapping=MeshMapping.replicate(),
        device=device,
        cache_dir=cache_dir,
        cache_name="w" if cache_dir is not None else None,
    )
    params.update(overrides)
    return LazyWeight(source, **params)


# --- device-free ---------------------------------------------------------------------------------------------
def test_resolve_fills_only_unset_fields():
    weight = LazyWeight(torch.zeros(32, 32), dtype=ttnn.bfloat8_b)
    resolved = resolve_lazy_weight(weight, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT)
    assert resolved.dtype == ttnn.bfloat8_b and resolved.layout == ttnn.TILE_LAYOUT
    assert weight.layout is None, "resolution returns a copy"
    with pytest.raises(TypeError, match="unknown LazyWeight fields"):
        resolve_lazy_weight(weight, dtypo=ttnn.bfloat16)


def test_cache_needs_dir_and_name_together():
    with pytest.raises(ValueError, match="both cache_dir and cache_name"):
        LazyWeight(torch.zeros(2), cache_dir="/tmp")


def test_mesh_mapping_must_be_a_mesh_mapping():
    with pytest.raises(TypeError, match="MeshMapping"):
        LazyWeight(torch.zeros(2), mesh_mapping=(None, -1))


def test_callable_source_is_called_once():
    calls = []
    weight = LazyWeight(lambda: calls.append(1) or torch.ones(4, 64))
    assert weight.shape == (4, 64) and weight.shape == (4, 64)
    assert calls == [1]


@pytest.mark.parametrize(
    "mapping, mesh, expected",
    [
        (MeshMapping.replicate(), (1, 8), (4096, 5504)),
        (MeshMapping.shard(-1), (1, 8), (4096, 5632)),  # 5504 / 8 = 688 → 704 (22 tiles) per device
        (MeshMapping.shard(-1), (1, 1), (4096, 5504)),  # one piece: never padded
        (MeshMapping.shard_2d(-1, -2), (8, 4), (4096, 5632)),  # rows split dim -1 in 8, cols split 4096 in 4
        (MeshMapping.shard_2d(None, -1), (8, 4), (4096, 5504)),  # 5504 / 4 = 1376 = 43 tiles: unchanged
    ],
)
def test_padded_shape(mapping, mesh, expected):
    weight = LazyWeight(torch.zeros(4096, 5504), mesh_mapping=mapping, layout=ttnn.TILE_LAYOUT)
    assert weight.padded_shape(mesh) == expected


def test_row_major_pieces_are_not_padded():
    gamma = LazyWeight(torch.zeros(1, 1, 160, 32), mesh_mapping=MeshMapping.shard(2), layout=ttnn.ROW_MAJOR_LAYOUT)
    assert gamma.padded_shape((1, 8)) == (1, 1, 160, 32)  # 20 rows per device, as rms_norm's gamma wants


def test_mapping_that_does_not_fit_the_source_is_rejected():
    with pytest.raises(ValueError, match="splits dim 2"):
        LazyWeight(torch.zeros(64, 64), mesh_mapping=MeshMapping.shard(2)).padded_shape((1, 8))
    with pytest.raises(ValueError, match="cannot be split over 8 devices"):
        LazyWeight(torch.zeros(4, 64), mesh_mapping=MeshMapping.shard(0)).padded_shape((1, 8))


def test_unresolved_weight_says_what_is_missing():
    with pytest.raises(ValueError, match="not resolved: device, dtype, layout, memory_config, mesh_mapping"):
        LazyWeight(torch.zeros(32, 32)).get_device_weight()


def test_cache_key_follows_contents_and_every_parameter():
    source = torch.randn(64, 64)
    base = _weight(source, cache_dir="/tmp/unused", device=HOST_1X1)
    assert base.cache_key() == _weight(source.clone(), cache_dir="/tmp/unused", device=HOST_1X1).cache_key()
    changed = source.clone()
    changed[17, 3] += 1.0
    variants = [
        _weight(changed, cache_dir="/tmp/unused", device=HOST_1X1),
        _weight(source, cache_dir="/tmp/unused", device=HOST_1X1, dtype=ttnn.bfloat8_b),
        _weight(source, cache_dir="/tmp/unused", device=HOST_1X1, layout=ttnn.ROW_MAJOR_LAYOUT),
        _weight(source, cache_dir="/tmp/unused", device=HOST_1X1, memory_config=ttnn.L1_MEMORY_CONFIG),
        _weight(source, cache_dir="/tmp/unused", device=HOST_1X1, mesh_mapping=MeshMapping.shard(-1)),
        _weight(source, cache_dir="/tmp/unused", device=types.SimpleNamespace(shape=(1, 2))),
        _weight(source, cache_dir="/tmp/unused", device=HOST_1X1, pad_value=1.0),
        _weight(source, cache_dir="/tmp/unused", device=HOST_1X1, source_key="ckpt:layers.0.w1"),
    ]
    keys = {base.cache_key()} | {variant.cache_key() for variant in variants}
    assert len(keys) == 1 + len(variants)


def test_content_fingerprint_is_independent_of_chunking(monkeypatch):
    x = torch.randn(1000, 1000)
    whole = tensor_utils.content_fingerprint(x)
    monkeypatch.setattr(tensor_utils, "FINGERPRINT_CHUNK_BYTES", 4096)
    assert tensor_utils.content_fingerprint(x) != whole  # chunk size is part of the recipe...
    monkeypatch.undo()
    assert tensor_utils.content_fingerprint(x.clone()) == whole  # ...but contents decide it for a given recipe


def test_two_processes_writing_one_entry_leave_a_whole_file(tmp_path):
    """Both writers race on the same key; the entry must load cleanly and no temporary file may remain."""
    worker = textwrap.dedent(
        f"""
        import sys, time, types, torch, ttnn
        sys.path.insert(0, {str(Path.cwd())!r})
        from models.common.modules.lazy_weight import LazyWeight, MeshMapping
        torch.manual_seed(0)
        w = LazyWeight(torch.randn(256, 1024), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT,
                       memory_config=ttnn.DRAM_MEMORY_CONFIG, mesh_mapping=MeshMapping.replicate(),
                       device=types.SimpleNamespace(shape=(1, 1)), cache_dir={str(tmp_path)!r}, cache_name="w")
        host = ttnn.from_torch(w.host_tensor(), dtype=w.dtype, layout=w.layout)
        while time.time() < float(sys.argv[1]):
            pass
        for _ in range(20):
            w._store(host)
        """
    )
    start = subprocess.run([sys.executable, "-c", "import time; print(time.time() + 8)"], capture_output=True)
    procs = [subprocess.Popen([sys.executable, "-c", worker, start.stdout.decode()]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    torch.manual_seed(0)
    reader = _weight(torch.randn(256, 1024), cache_dir=tmp_path, device=HOST_1X1, dtype=ttnn.bfloat8_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LazyWeightCacheWarning)
        loaded = reader._load_cached()
    assert loaded is not None and tuple(loaded.shape) == (256, 1024) and loaded.dtype == ttnn.bfloat8_b
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".tensorbin"], "temporary files were left"


# --- on a device ---------------------------------------------------------------------------------------------
MESHES = [(1, 1), (1, 8)]


@pytest.fixture
def no_conversion(monkeypatch):
    """Make converting from the source fail, so a passing load proves the cache was used."""

    def refuse(*args, **kwargs):
        raise AssertionError("converted from the source although a valid cache entry exists")

    monkeypatch.setattr(tensor_utils, "from_host", refuse)


@pytest.mark.parametrize("ttnn_mesh_device", MESHES, ids=["1x1", "1x8"], indirect=True)
def test_upload_places_the_weight_as_asked(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    devices = mesh.get_num_devices()
    weight = _weight(torch.randn(256, 160 * devices), device=mesh, mesh_mapping=MeshMapping.shard(-1))
    tensor = weight.get_device_weight()
    assert tensor is weight.get_device_weight(), "uploaded once, then memoised"
    assert tensor.dtype == ttnn.bfloat16 and tensor.layout == ttnn.TILE_LAYOUT
    assert tensor.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    per_device = [tuple(t.shape) for t in ttnn.get_device_tensors(tensor)]
    assert per_device == [(256, 160)] * devices


@pytest.mark.parametrize("ttnn_mesh_device", MESHES, ids=["1x1", "1x8"], indirect=True)
def test_cache_hit_and_miss(ttnn_mesh_device, tmp_path, monkeypatch):
    mesh, source = ttnn_mesh_device, torch.randn(64, 512)
    _weight(source, tmp_path, mesh, dtype=ttnn.bfloat8_b).get_device_weight()
    assert len(list(tmp_path.glob("*.tensorbin"))) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("converted although a valid cache entry exists")

    with monkeypatch.context() as patch:
        patch.setattr(tensor_utils, "from_host", refuse)
        hit = _weight(source.clone(), tmp_path, mesh, dtype=ttnn.bfloat8_b).get_device_weight()
    assert hit.dtype == ttnn.bfloat8_b and tuple(hit.shape) == (64, 512)

    _weight(source, tmp_path, mesh, dtype=ttnn.bfloat16).get_device_weight()  # a changed parameter misses
    assert len(list(tmp_path.glob("*.tensorbin"))) == 2


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
@pytest.mark.parametrize("damage", ["garbage", "truncated", "record"])
def test_corrupt_or_stale_entry_is_rebuilt(ttnn_mesh_device, tmp_path, damage):
    source = torch.randn(64, 64)
    first = _weight(source, tmp_path, ttnn_mesh_device)
    first.get_device_weight()
    tensor_path, record_path = first._paths()
    if damage == "garbage":
        tensor_path.write_bytes(b"not a tensor" * 100)
    elif damage == "truncated":
        tensor_path.write_bytes(tensor_path.read_bytes()[:100])
    else:
        record_path.write_text(record_path.read_text().replace("64", "65"))
    with pytest.warns(LazyWeightCacheWarning, match="corrupt or stale"):
        rebuilt = _weight(source, tmp_path, ttnn_mesh_device).get_device_weight()
    assert tuple(rebuilt.shape) == (64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LazyWeightCacheWarning)
        assert _weight(source, tmp_path, ttnn_mesh_device)._load_cached() is not None, "the entry was repaired"


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_unwritable_cache_dir_falls_back_to_no_cache(ttnn_mesh_device, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.warns(LazyWeightCacheWarning, match="cannot write the weight cache"):
        tensor = _weight(torch.randn(32, 32), blocker / "cache", ttnn_mesh_device).get_device_weight()
    assert tuple(tensor.shape) == (32, 32)
