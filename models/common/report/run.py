# SPDX-License-Identifier: Apache-2.0
"""Build the decoder layer on the device at hand, run prefill and decode steps while recording their ops, and
collect everything the report shows (``run_report``).

Prefill runs twice (the first compiles kernels; the second is the one reported); decode step 0 compiles, the later
steps are the warm ones timed. Prefill fills user 0's KV cache with the prompt; each decode step feeds all 32 users
one token at the next position. Rotary tables and positions are made outside the layer (once per model step).
On hardware and the simulator, outputs are read back and compared with the HF decoder layer holding the same
weights; on the mock tier read-back is zeros, so nothing is measured.
"""

import statistics
import sys
import time

import torch
import ttnn
from tqdm import tqdm

from models.common import devices
from models.common.report import estimates
from models.common.report.compare import compare
from models.common.report.layer import INPUT_SEED, USERS, DecoderLayer, cache_len
from models.common.report.model import Model
from models.common.report.recorder import OpRecorder
from models.common.report.summary import RESIDUAL, module_entry

NOT_MEASURED_MOCK = "not measured (mock: read-back is zeros)"


def run_report(model: Model, mesh_shape, tier: str, seq_len: int, decode_steps: int, compare_tttv1: bool) -> dict:
    chip = estimates.WORMHOLE_N150
    timings = {}
    start = time.perf_counter()
    weights = model.layer_state_dict()
    timings["weights_s"] = time.perf_counter() - start
    length = cache_len(seq_len, decode_steps)
    mesh = devices.open_mesh(mesh_shape)
    try:
        with OpRecorder() as recorder:
            start = time.perf_counter()
            layer = _build(model, weights, mesh, length)
            timings["build_s"] = time.perf_counter() - start
            measured = _Measured(tier, model, weights)
            prefill_runs = _prefill(layer, recorder, model, seq_len, timings, measured)
            decode_runs = _decode(layer, recorder, model, seq_len, decode_steps, timings, measured)
        parts = (*layer.modules.items(), (RESIDUAL, None))
        modules = [module_entry(name, module, seq_len, decode_runs, prefill_runs, chip) for name, module in parts]
        report = {
            "model": _model_entry(model),
            "device": _device_entry(tier, mesh_shape),
            "run": {"seq_len": seq_len, "decode_steps": decode_steps, "users": USERS, "kv_cache_positions": length},
            "layer": layer.structure,
            "chip": chip.entry(),
            "modules": modules,
            "totals": _totals(modules, timings),
            "measured": measured.entry(),
            "timings_s": timings,
            "scaling": _scaling(model, layer, length, chip, tuple(mesh_shape)),
        }
        if compare_tttv1:
            report["tttv1_comparison"] = compare(layer, model, weights, length, seq_len)
        return report
    finally:
        devices.close_mesh(mesh)


def _build(model, weights, mesh, length) -> DecoderLayer:
    unfused = model.unfused(weights)
    total = sum(t.numel() for t in unfused.values())
    with tqdm(
        total=total, unit="param", unit_scale=True, desc="converting weights", file=sys.stderr, leave=False
    ) as bar:
        return DecoderLayer(model, unfused, mesh, length, bar)


class _Measured:
    """Device time and PCC against the HF decoder layer, on hardware and the simulator (not on mock)."""

    def __init__(self, tier: str, model: Model, weights: dict):
        self.tier = tier
        self.reference = None if tier == devices.MOCK else model.hf_reference(weights)
        self.prefill_s = None
        self.decode_s: list[float] = []
        self.pcc: dict[str, float] = {}

    def compare(self, label: str, expected: torch.Tensor, actual: torch.Tensor) -> None:
        self.pcc[label] = _pcc(expected, actual)

    def entry(self) -> dict:
        if self.tier == devices.MOCK:
            return {"status": NOT_MEASURED_MOCK, "prefill_us": None, "decode_us": None, "pcc": None}
        note = "simulator time, not device time" if self.tier == devices.TTSIM else "wall time incl. host dispatch"
        return {
            "status": note,
            "prefill_us": self.prefill_s * 1e6,
            "decode_us": statistics.median(self.decode_s) * 1e6,
            "pcc": self.pcc,
            "min_pcc": min(self.pcc.values()),
        }


def _prefill(layer, recorder, model, seq_len, timings, measured) -> list[list]:
    prompt = torch.randn(1, 1, seq_len, model.dim, generator=torch.Generator().manual_seed(INPUT_SEED))
    rot_mats = layer.rope.prefill_forward(seq_len)
    runs, wall = [], []
    for _ in ("cold", "warm"):
        x = layer.upload(prompt, ttnn.DRAM_MEMORY_CONFIG)
        with recorder.recording() as calls:
            start = time.perf_counter()
            out = layer.prefill(x, seq_len, rot_mats, recorder.module)
            ttnn.synchronize_device(layer.mesh_device)
            wall.append(time.perf_counter() - start)
        runs.append(calls)
    timings["prefill_cold_s"], timings["prefill_warm_s"] = wall
    if measured.reference is not None:
        measured.prefill_s = wall[-1]
        measured.compare("prefill", measured.reference(prompt[0], 0), layer.to_host(out)[0])
    return runs[1:]


def _decode(layer, recorder, model, seq_len, steps, timings, measured) -> list[list]:
    """Returns the warm steps' op calls; timings get the cold step and the warm steps' host dispatch times."""
    generator = torch.Generator().manual_seed(INPUT_SEED + 1)
    runs, host, wall = [], [], []
    for step in range(steps):
        tokens = torch.randn(1, 1, USERS, model.dim, generator=generator)
        positions = [seq_len + step] * USERS
        x = layer.upload(tokens, layer.residual_memcfg)
        current_pos, rot_mats = layer.positions(positions), layer.rope.decode_forward(positions)
        with recorder.recording() as calls:
            start = time.perf_counter()
            out = layer.decode(x, current_pos, rot_mats, recorder.module)
            host.append(time.perf_counter() - start)
            ttnn.synchronize_device(layer.mesh_device)
            wall.append(time.perf_counter() - start)
        runs.append(calls)
        if measured.reference is not None:
            expected = measured.reference(tokens[0, :, :1], seq_len + step)  # user 0, as (batch, seq, dim)
            measured.compare(f"decode step {step}", expected[0], layer.to_host(out)[0, 0, :1])
    timings["decode_cold_s"] = wall[0]
    timings["decode_warm_host_s"] = host[1:]
    measured.decode_s = wall[1:]
    return runs[1:]


def _pcc(expected: torch.Tensor, actual: torch.Tensor) -> float:
    stacked = torch.stack([expected.flatten().double(), actual.flatten().double()])
    return torch.corrcoef(stacked)[0, 1].item()


def _model_entry(model: Model) -> dict:
    return {
        "name": model.name,
        "weights": model.weights_description,
        "dim": model.dim,
        "n_heads": model.n_heads,
        "n_kv_heads": model.n_kv_heads,
        "head_dim": model.head_dim,
        "hidden_dim": model.hidden_dim,
        "n_layers": model.n_layers,
    }


def _device_entry(tier: str, mesh_shape) -> dict:
    entry = {"tier": tier, "mesh": f"{mesh_shape[0]}x{mesh_shape[1]}", "devices": mesh_shape[0] * mesh_shape[1]}
    if tier == devices.MOCK:
        entry["system"] = devices.current_mock_cluster().name
    return entry


def _totals(modules: list[dict], timings: dict) -> dict:
    warm = timings["decode_warm_host_s"]
    return {
        "weight_bytes_per_device": sum(m["weight_bytes_per_device"] for m in modules),
        "kv_cache_bytes_per_device": sum(m["kv_cache_bytes_per_device"] for m in modules),
        "decode_dram_read_bytes": sum(m["decode"]["dram_read_bytes"] for m in modules),
        "decode_roofline_us": sum(m["decode"]["roofline_us"] for m in modules),
        "decode_host_us": statistics.median(warm) * 1e6,
        "decode_host_us_per_step": [s * 1e6 for s in warm],
        "prefill_flops": sum(m["prefill"]["flops"] for m in modules),
        "prefill_compute_us": sum(m["prefill"]["compute_us"] for m in modules),
        "prefill_host_us": sum(m["prefill"]["host_us"] for m in modules),
    }


def _scaling(model: Model, layer: DecoderLayer, length: int, chip, mesh_shape) -> dict:
    """Analytic decode estimate on the plotted meshes and this run's, in its dtypes (estimates.mesh_scaling)."""
    attention, mlp = layer.modules["attention"], layer.modules["mlp"]
    dim, hidden, head_dim = model.dim, model.hidden_dim, model.head_dim
    split = {
        "wqkv": (dim * head_dim * (model.n_heads + 2 * model.n_kv_heads), attention.wqkv.dtype),
        "wo": (model.n_heads * head_dim * dim, attention.wo.dtype),
        "w1": (dim * hidden, mlp.w1.dtype),
        "w2": (hidden * dim, mlp.w2.dtype),
        "w3": (dim * hidden, mlp.w3.dtype),
    }
    params = estimates.LayerParameters(
        split=split,
        replicated={"norm weights": (2 * dim, ttnn.bfloat16)},
        n_heads=model.n_heads,
        n_kv_heads=model.n_kv_heads,
        head_dim=head_dim,
        kv_dtype=attention.keys.dtype,
        users=USERS,
        context=length,
        n_layers=model.n_layers,
    )
    return {
        "basis": "analytic: parameters / devices x bytes per parameter (this run's dtypes) + each device's KV-cache "
        f"slice, / {chip.dram_bytes_per_s / 1e9:.0f} GB/s; computed, not run, on each mesh",
        "meshes": estimates.mesh_scaling(params, chip, sorted({*estimates.PLOT_MESHES, mesh_shape})),
    }
