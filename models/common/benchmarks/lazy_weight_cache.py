# SPDX-License-Identifier: Apache-2.0
"""Benchmark: LazyWeight cold vs warm load of a Llama-3.1-8B w1 (4096x14336) as bfloat8_b sharded over a 1x8 mesh.

cold = convert from the host source (pad, block-float quantise, shard) + write the cache + upload;
warm = a new LazyWeight with the same parameters finds the cache entry and uploads it.
Two sources: an in-memory tensor (the cache key hashes its contents) and a checkpoint-style callable with a
``source_key`` (warm never reads the source). Rounds alternate cold/warm; medians and their ratio are printed.

    python_env/bin/python -m models.common.benchmarks.lazy_weight_cache [--rounds 5]
"""

import argparse
import statistics
import tempfile
import time

from models.common import devices

devices.apply_environment_defaults()

import torch  # noqa: E402
import ttnn  # noqa: E402

from models.common.modules.lazy_weight import LazyWeight, MeshMapping  # noqa: E402

DIM, HIDDEN = 4096, 14336  # Llama-3.1-8B hidden size and MLP intermediate size
MESH = (1, 8)


def _weight(mesh, source, cache_dir, **kwargs) -> LazyWeight:
    return LazyWeight(
        source,
        dtype=ttnn.bfloat8_b,
        layout=ttnn.TILE_LAYOUT,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        mesh_mapping=MeshMapping.shard(-1),
        device=mesh,
        cache_dir=cache_dir,
        cache_name="layers.0.feed_forward.w1",
        **kwargs,
    )


def _seconds(weight: LazyWeight) -> float:
    start = time.perf_counter()
    tensor = weight.get_device_weight()
    elapsed = time.perf_counter() - start
    ttnn.deallocate(tensor)
    return elapsed


def measure(mesh, make_source, rounds: int, **kwargs) -> tuple[float, float]:
    cold, warm = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache_dir:
            cold.append(_seconds(_weight(mesh, make_source(), cache_dir, **kwargs)))
            warm.append(_seconds(_weight(mesh, make_source(), cache_dir, **kwargs)))
    return statistics.median(cold), statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    tier = devices.detect_tier()
    if tier == devices.MOCK:
        devices.configure_mock_cluster(devices.mock_cluster_for(MESH))
    mesh = devices.open_mesh(MESH)
    try:
        torch.manual_seed(0)
        in_memory = torch.randn(DIM, HIDDEN, dtype=torch.bfloat16)
        with tempfile.TemporaryDirectory() as checkpoint_dir:
            checkpoint = f"{checkpoint_dir}/w1.pt"
            torch.save(in_memory, checkpoint)
            cases = {
                "in-memory tensor (contents hashed)": measure(mesh, lambda: in_memory, args.rounds),
                "checkpoint callable + source_key": measure(
                    mesh, lambda: lambda: torch.load(checkpoint), args.rounds, source_key=f"{checkpoint}:w1"
                ),
            }
    finally:
        devices.close_mesh(mesh)

    print(f"LazyWeight {DIM}x{HIDDEN} bfloat8_b sharded on {MESH[0]}x{MESH[1]} ({tier} tier), median of {args.rounds}")
    for name, (cold, warm) in cases.items():
        print(f"  {name:40s} cold {cold * 1e3:8.1f} ms   warm {warm * 1e3:8.1f} ms   cold/warm {cold / warm:6.1f}x")


if __name__ == "__main__":
    main()
