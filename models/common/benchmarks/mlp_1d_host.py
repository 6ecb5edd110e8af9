# SPDX-License-Identifier: Apache-2.0
"""Benchmark: MLP1D host overhead on a 1x8 mesh with Llama-3.1-8B dims.

1. ``decode_forward`` vs the same ttnn calls issued bare with the same configs and weights, alternating call by
   call; median host time of each and their ratio (the module's overhead; target <= 1.10).
2. ``MLP1D.__init__`` (config resolution + weight conversion and upload) with a cold and a warm weight cache.

    python_env/bin/python -m models.common.benchmarks.mlp_1d_host [--calls 200]
"""

import argparse
import statistics
import tempfile
import time

from models.common import devices

devices.apply_environment_defaults()

import torch  # noqa: E402
import ttnn  # noqa: E402

from models.common.modules import tt_ccl as ccl  # noqa: E402
from models.common.modules.lazy_weight import LazyWeight  # noqa: E402
from models.common.modules.mlp.mlp_1d import MLP1D  # noqa: E402

DIM, HIDDEN = 4096, 14336  # Llama-3.1-8B
MESH = (1, 8)
WARMUP_CALLS = 10


def bare_decode(mlp: MLP1D, x):
    """MLP1D.decode_forward's ttnn calls, written out with the module's resolved configs."""
    cfg = mlp.config
    w1_out = ttnn.linear(
        x,
        mlp.w1,
        dtype=cfg.linear_dtype,
        program_config=cfg.decode_w1_w3_prg_config,
        compute_kernel_config=cfg.ff1_3_compute_kernel_config,
        memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
    )
    w3_out = ttnn.linear(
        x,
        mlp.w3,
        dtype=cfg.linear_dtype,
        program_config=cfg.decode_w1_w3_prg_config,
        compute_kernel_config=cfg.ff1_3_compute_kernel_config,
        memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
    )
    ttnn.deallocate(x)
    w2_in = ttnn.mul(
        w1_out,
        w3_out,
        input_tensor_a_activations=[cfg.activation],
        dtype=cfg.mul_dtype,
        memory_config=w1_out.memory_config(),
    )
    ttnn.deallocate(w1_out)
    ttnn.deallocate(w3_out)
    w2_in = ttnn.to_memory_config(w2_in, cfg.decode_mlp2_input_memcfg)
    w2_out = ttnn.linear(
        w2_in,
        mlp.w2,
        dtype=cfg.linear_dtype,
        program_config=cfg.decode_w2_prg_config,
        compute_kernel_config=cfg.ff2_compute_kernel_config,
        memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
    )
    ttnn.deallocate(w2_in)
    out = ttnn.experimental.reduce_scatter_minimal_async(
        w2_out,
        persistent_output_buffers=None,
        dim=3,
        multi_device_global_semaphore=cfg.tt_ccl.get_and_cycle_rs_semaphore_handles(),
        barrier_semaphore=cfg.tt_ccl.get_and_cycle_barrier_semaphore_handle(),
        num_links=cfg.num_reduce_scatter_links,
        memory_config=w2_out.memory_config(),
        intermediate_memory_config=ttnn.DRAM_MEMORY_CONFIG,
        topology=cfg.topology,
        cluster_axis=None,
        chunks_per_sync=ccl.CHUNKS_PER_SYNC,
        num_workers_per_link=ccl.NUM_WORKERS_PER_LINK,
        num_buffers_per_channel=ccl.NUM_BUFFERS_PER_CHANNEL,
    )
    ttnn.deallocate(w2_out)
    return ttnn.to_memory_config(out, cfg.decode_residual_memcfg)


def time_call(fn, x) -> float:
    start = time.perf_counter()
    out = fn(x)
    elapsed = time.perf_counter() - start
    ttnn.deallocate(out)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    tier = devices.detect_tier()
    if tier == devices.MOCK:
        devices.configure_mock_cluster(devices.mock_cluster_for(MESH))
    mesh = devices.open_mesh(MESH)
    try:
        torch.manual_seed(0)
        sources = [torch.randn(DIM, HIDDEN), torch.randn(HIDDEN, DIM), torch.randn(DIM, HIDDEN)]
        with tempfile.TemporaryDirectory() as cache_dir:
            init_times = []
            for _ in ("cold", "warm"):
                weights = [
                    LazyWeight(s, cache_dir=cache_dir, cache_name=n)
                    for s, n in zip(sources, ("w1", "w2", "w3"), strict=True)
                ]
                start = time.perf_counter()
                mlp = MLP1D(*weights, mesh_device=mesh)
                init_times.append(time.perf_counter() - start)
        x_dram = ttnn.from_torch(
            torch.randn(1, 1, 32, DIM),
            dtype=ttnn.bfloat16,
            layout=ttnn.TILE_LAYOUT,
            device=mesh,
            mesh_mapper=ttnn.ReplicateTensorToMesh(mesh),
        )

        def fresh_input():
            return ttnn.to_memory_config(x_dram, mlp.config.decode_input_memcfg)

        module_times, bare_times = [], []
        for i in range(WARMUP_CALLS + args.calls):
            m, b = time_call(mlp.decode_forward, fresh_input()), time_call(lambda x: bare_decode(mlp, x), fresh_input())
            if i >= WARMUP_CALLS:
                module_times.append(m)
                bare_times.append(b)
    finally:
        devices.close_mesh(mesh)

    module, bare = statistics.median(module_times), statistics.median(bare_times)
    print(
        f"MLP1D Llama-3.1-8B dims on {MESH[0]}x{MESH[1]} ({tier} tier), {args.calls} calls after {WARMUP_CALLS} warm-up"
    )
    print(
        f"  decode_forward host time  module {module * 1e6:8.1f} us  bare ttnn {bare * 1e6:8.1f} us"
        f"  module/bare {module / bare:5.3f}"
    )
    cold, warm = init_times
    print(
        f"  __init__ (weights in)     cold cache {cold:6.2f} s  warm cache {warm:6.2f} s  cold/warm {cold / warm:5.1f}x"
    )


if __name__ == "__main__":
    main()
