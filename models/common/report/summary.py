# SPDX-License-Identifier: Apache-2.0
"""The report's content as plain data (what ``--json`` writes and the text rendering reads): per op, per module,
per layer."""

import statistics
from dataclasses import fields

import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.module_config import ResolvableConfig
from models.common.report import estimates
from models.common.report.describe import describe, is_program_config, program_config_kind, program_config_params
from models.common.report.recorder import TensorInfo

WEIGHT_ATTRIBUTES = ("weight", "weight_distributed", "wqkv", "wo", "w1", "w3", "w2")  # device weights of the modules
KV_CACHE_ATTRIBUTES = ("keys", "values")
SHOWN_OPTIONS = ("program_config", "memory_config", "dtype", "compute_kernel_config")  # have their own columns
RESIDUAL = "residual"  # the layer's two residual adds (not a module)
NOT_CONFIG = frozenset({"mesh_device", "tt_ccl"})  # the mesh itself and its semaphores


def config_fields(config, seq_len: int) -> dict:
    """Field name -> value of a resolved config: weights and the mesh left out, per-sequence-length configs taken
    at ``seq_len``, nested configs (q/k norms) resolved and flattened as ``outer.inner``."""
    values = {}
    for field in fields(config):
        value = getattr(config, field.name)
        if field.name in NOT_CONFIG or isinstance(value, LazyWeight):
            continue
        if isinstance(value, ResolvableConfig):
            nested = config_fields(value.resolve(), seq_len)
            values.update({f"{field.name}.{name}": inner for name, inner in nested.items()})
        elif callable(value):
            values[field.name] = value(seq_len)  # prefill configs: seq_len → config
        else:
            values[field.name] = value
    return values


def tensor_entry(info: TensorInfo) -> dict:
    memory = describe(info.memory_config) if info.memory_config is not None else "host"
    return {"shape": list(info.shape), "dtype": describe(info.dtype), "memory": memory, "bytes": info.buffer_bytes}


def op_entry(call, host_samples: list[float], chip: estimates.ChipFigures, phase: str) -> dict:
    """One op: its configuration keywords described, its tensors, host time (median of ``host_samples``, seconds)
    and its estimate (decode: DRAM roofline, prefill: compute bound)."""
    options = call.options
    program_config = options.get("program_config")
    entry = {
        "op": call.name,
        "program_config": None,
        "memory_config": describe(options["memory_config"]) if "memory_config" in options else None,
        "dtype": describe(options["dtype"]) if options.get("dtype") is not None else None,
        "math_fidelity": describe(options["compute_kernel_config"]) if "compute_kernel_config" in options else None,
        "other_options": {k: describe(v) for k, v in options.items() if k not in SHOWN_OPTIONS and _shown(v)},
        "inputs": [tensor_entry(t) for t in call.inputs],
        "outputs": [tensor_entry(t) for t in call.outputs],
        "host_us": statistics.median(host_samples) * 1e6,
    }
    if is_program_config(program_config):
        entry["program_config"] = {
            "kind": program_config_kind(program_config),
            "summary": describe(program_config),
            "params": {k: _json_value(v) for k, v in program_config_params(program_config).items()},
        }
    if phase == "decode":
        entry["dram_read_bytes"] = estimates.dram_read_bytes(call)
        entry["roofline_us"] = entry["dram_read_bytes"] / chip.dram_bytes_per_s * 1e6
    else:
        entry["flops"] = estimates.flops(call)
        entry["compute_us"] = entry["flops"] / estimates.peak_flops_per_s(call, chip) * 1e6
    return entry


def phase_entry(calls_per_run: list[list], chip, phase: str, module: str) -> dict:
    """A module's ops in one phase: configs from the last run, host time per op the median over the runs."""
    runs = [[c for c in calls if c.module == module] for calls in calls_per_run]
    last = runs[-1]
    ops = [op_entry(call, [run[i].host_s for run in runs], chip, phase) for i, call in enumerate(last)]
    entry = {"ops": ops, "host_us": sum(op["host_us"] for op in ops)}
    if phase == "decode":
        entry["dram_read_bytes"] = sum(op["dram_read_bytes"] for op in ops)
        entry["roofline_us"] = sum(op["roofline_us"] for op in ops)
    else:
        entry["flops"] = sum(op["flops"] for op in ops)
        entry["compute_us"] = sum(op["compute_us"] for op in ops)
    return entry


def device_tensors(module, names) -> list[dict]:
    found = []
    for name in names:
        tensor = getattr(module, name, None)
        if isinstance(tensor, ttnn.Tensor):
            found.append({"name": name, **tensor_entry(TensorInfo.of(tensor))})
    return found


def module_entry(name, module, seq_len, decode_runs, prefill_runs, chip) -> dict:
    """One module (or the residual adds, ``module`` None): weights and KV cache per device, its resolved config (a
    TTTv2 module's), decode and prefill ops."""
    weights, kv_cache = device_tensors(module, WEIGHT_ATTRIBUTES), device_tensors(module, KV_CACHE_ATTRIBUTES)
    config = config_fields(module.config, seq_len) if hasattr(module, "config") else {}
    return {
        "name": name,
        "class": "ttnn.add" if module is None else getattr(module, "LABEL", type(module).__name__),
        "weights": weights,
        "weight_bytes_per_device": sum(w["bytes"] for w in weights),
        "kv_cache": kv_cache,
        "kv_cache_bytes_per_device": sum(t["bytes"] for t in kv_cache),
        "config": {k: describe(v) for k, v in config.items()},
        "decode": phase_entry(decode_runs, chip, "decode", name),
        "prefill": phase_entry(prefill_runs, chip, "prefill", name),
    }


def _shown(value) -> bool:
    """Options worth showing: plain values, ttnn enums and configs, lists of them (not semaphores)."""
    if isinstance(value, list | tuple):
        return bool(value) and all(_shown(v) for v in value)
    plain = isinstance(value, int | float | str | bool)
    return plain or (type(value).__module__.startswith("ttnn") and "semaphore" not in type(value).__name__.lower())


def _json_value(value):
    return value if isinstance(value, int | float | str | bool) else str(value)
