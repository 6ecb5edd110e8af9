# SPDX-License-Identifier: Apache-2.0
"""Build the decoder layer on the device at hand, run prefill and decode steps while recording their ops, and
collect everything the report shows (``run_report``).

Prefill runs twice (the first compiles kernels; the second is the one reported); decode step 0 compiles, the later
steps are the warm ones timed. Prefill fills user 0's KV cache with the prompt; each decode step feeds all 32 users
one token at the next position. Rotary tables and positions are made outside the layer (once per model step).

Numbers: each module's output and the layer's are compared (PCC, user 0) with the HF decoder layer holding the same
weights, for the prefill and every decode step. On hardware and the simulator the outputs are read back from the
device. On the mock tier read-back is zeros, so the run is shadowed (``models/common/testing/shadow``): every ttnn
call also runs as a host golden on per-device torch tensors, and the numbers are those goldens' (labelled as such);
``numerics=False`` skips them. While shadowed, host times are the sum of the ops' own dispatch times (the goldens'
host work excluded).
"""

import contextlib
import math
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial

import torch
import ttnn
from tqdm import tqdm

from models.common import devices
from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.rmsnorm.rmsnorm_1d import GAMMA_DTYPE
from models.common.report import estimates, precision, standin
from models.common.report.compare import compare
from models.common.report.describe import describe, same
from models.common.report.layer import INPUT_SEED, USERS, ReportLayer, cache_len
from models.common.report.model import Model
from models.common.report.recorder import OpRecorder
from models.common.report.summary import KV_CACHE_ATTRIBUTES, RESIDUAL, WEIGHT_ATTRIBUTES, device_tensors, module_entry
from models.common.testing.numerics import pcc
from models.common.testing.shadow.session import shadow_execution

ON_DEVICE, HOST_GOLDEN = "device", "host golden"
NUMERICS_STATUS = {
    ON_DEVICE: "read back from the device",
    HOST_GOLDEN: "host-golden numbers: the same ttnn calls shadowed on host per device, in their dtypes; math "
    "fidelity not modelled (mock read-back is zeros)",
}
NOT_MEASURED = "not measured (mock tier with --no-numerics)"
LAYER = "layer"
NORMS = ("attention_norm", "ffn_norm")  # the layer's residual norms
DEFAULT_DTYPE = ttnn.bfloat8_b  # Attention1D/2D configs' default_*_dtype for weights and KV cache
# The PCC each part must reach, from the module tests: norms 0.999 (test_rmsnorm_1d), attention 0.99
# (attention/hf_reference.py), MLP 0.98 (test_mlp_1d / test_mlp_2d, bfloat8_b weights), the layer 0.99
# (test_decoder_layer_matches_hf).
MIN_PCC = {"attention_norm": 0.999, "attention": 0.99, "ffn_norm": 0.999, "mlp": 0.98, LAYER: 0.99}
HF_SUBMODULES = {  # the HF decoder layer's submodule whose output each report module's output is compared with
    "attention_norm": "input_layernorm",
    "attention": "self_attn",
    "ffn_norm": "post_attention_layernorm",
    "mlp": "mlp",
}


def run_report(
    model: Model,
    mesh_shape,
    tier: str,
    seq_len: int,
    decode_steps: int,
    compare_tttv1: bool,
    numerics: bool = True,
    recipes: list[precision.Recipe] | None = None,
    layers: int = 1,
) -> dict:
    chip = estimates.WORMHOLE_N150
    timings = {}
    start = time.perf_counter()
    weights = model.layer_state_dict()
    stack_weights = [model.layer_state_dict(index) for index in range(1, layers)]
    timings["weights_s"] = time.perf_counter() - start
    length = cache_len(seq_len, decode_steps)
    source = ON_DEVICE if tier != devices.MOCK else HOST_GOLDEN if numerics else None
    mesh = devices.open_mesh(mesh_shape)
    try:
        # the shadow is entered inside the recorder: it wraps the recorder's wrappers, which time only device calls
        shadowed = shadow_execution() if source == HOST_GOLDEN else contextlib.nullcontext()
        with OpRecorder() as recorder, shadowed:
            start = time.perf_counter()
            with tqdm(total=layers, unit="layer", desc="building", file=sys.stderr, leave=False) as bar:
                layer, *stack = (_build(model, w, mesh, length, bar) for w in (weights, *stack_weights))
            timings["build_s"] = time.perf_counter() - start
            measured = _Measured(source, model, weights, layer, recorder, stack_weights)
            prefill_runs = _prefill(layer, recorder, model, seq_len, timings, measured, stack)
            decode_runs = _decode(layer, recorder, model, seq_len, decode_steps, timings, measured, stack)
            if recipes:
                start = time.perf_counter()
                side_by_side = _recipes(recipes, _Run(model, weights, length, seq_len, decode_steps), layer, measured)
                timings["recipes_s"] = time.perf_counter() - start
        parts = (*layer.modules.items(), (RESIDUAL, None))
        modules = [module_entry(name, module, seq_len, decode_runs, prefill_runs, chip) for name, module in parts]
        report = {
            "model": _model_entry(model),
            "device": _device_entry(tier, mesh_shape),
            "run": {
                "seq_len": seq_len,
                "decode_steps": decode_steps,
                "users": USERS,
                "kv_cache_positions": length,
                "layers": layers,
            },
            "layer": layer.structure,
            "chip": chip.entry(),
            "modules": modules,
            "totals": _totals(modules, timings),
            "measured": measured.entry(),
            "timings_s": timings,
            "scaling": _scaling(model, layer, chip, tuple(mesh_shape)),
        }
        if recipes:
            report["precision"] = side_by_side
        if compare_tttv1:
            report["tttv1_comparison"] = compare(layer, model, weights, length, seq_len)
        return report
    finally:
        devices.close_mesh(mesh)


def _build(model, weights, mesh, length, progress) -> ReportLayer:
    """One layer with TTTv2's defaults; ``progress`` advances by one."""
    layer = ReportLayer(model, model.unfused(weights), mesh, length)
    progress.update()
    return layer


@dataclass(frozen=True)
class _Run:
    """What every recipe's run shares: the model, its layer weights, the cache length, prefill and decode steps."""

    model: Model
    weights: dict
    length: int
    seq_len: int
    decode_steps: int


def _recipes(recipes: list, run: _Run, layer: ReportLayer, measured: "_Measured") -> dict:
    """One row per recipe (the layer built with its precision fields, run as the report's layer is). Where TTTv2's
    defaults differ from TTTv1's choice (its default recipe) for this model, both rows are shown and the fields
    listed."""
    tttv1 = precision.NAMED[precision.TTTV1_DEFAULT]
    try:
        chosen = precision.overrides(tttv1, layer, run.model, run.weights, run.length)
    except ValueError as error:
        chosen, unavailable = {}, str(error)
    else:
        unavailable = None
    differences = [
        {
            "field": f"{name}.{field}",
            "tttv1": describe(value),
            "tttv2": describe(getattr(layer.modules[name].config, field)),
        }
        for name, fields in _changes(chosen, layer).items()
        for field, value in fields.items()
    ]
    wanted = [*recipes, *(precision.NAMED[n] for n in (precision.TTTV2, precision.TTTV1_DEFAULT))]
    shown = [r for r in dict.fromkeys(wanted) if r in recipes or differences]
    rows = []
    for recipe in shown:
        if recipe.optimizations is None:
            rows.append(_recipe_row(recipe, {}, run, layer, measured))
            continue
        try:
            given = (
                chosen if recipe == tttv1 else precision.overrides(recipe, layer, run.model, run.weights, run.length)
            )
        except ValueError as error:
            rows.append({"recipe": recipe.name, "description": recipe.description, "unavailable": str(error)})
            continue
        rows.append(_recipe_layer_row(recipe, given, _changes(given, layer), run, layer.mesh_device, measured))
    return {
        "tttv1_default": precision.TTTV1_DEFAULT,
        "tttv1_unavailable": unavailable,
        "tttv2_differs_from_tttv1": differences,
        "rows": rows,
    }


def _changes(given: dict, layer: ReportLayer) -> dict:
    """Of the fields a recipe gives, those that differ from the TTTv2 layer's resolved config, per module."""
    return {
        name: {
            field: value
            for field, value in fields.items()
            if not same(value, getattr(layer.modules[name].config, field))
        }
        for name, fields in given.items()
    }


def _recipe_layer_row(recipe, given: dict, changes: dict, run: _Run, mesh, main: "_Measured") -> dict:
    """Build the layer with the recipe's fields and run prefill and decode steps, numbers as the main run's;
    ``changes``: the fields that differ from TTTv2's defaults (shown)."""
    unfused = run.model.unfused(run.weights)
    layer = ReportLayer(run.model, unfused, mesh, run.length, overrides=given)
    measured = _Measured(main.source, run.model, run.weights, layer, main.recorder)
    _prefill(layer, main.recorder, run.model, run.seq_len, {}, measured)
    _decode(layer, main.recorder, run.model, run.seq_len, run.decode_steps, {}, measured)
    return _recipe_row(recipe, changes, run, layer, measured)


def _recipe_row(recipe, changes: dict, run: _Run, layer: ReportLayer, measured: "_Measured") -> dict:
    modules = layer.modules.values()
    mesh = tuple(layer.mesh_device.shape)
    [scaling] = estimates.mesh_scaling(partial(layer_parameters, run.model, layer), estimates.WORMHOLE_N150, [mesh])
    numbers = measured.entry()
    return {
        "recipe": recipe.name,
        "description": recipe.description,
        "changes": {
            name: {field: describe(v) for field, v in fields.items()} for name, fields in changes.items() if fields
        },
        "pcc": numbers["pcc"],
        "min_pcc": numbers.get("min_pcc"),
        "below_threshold": numbers.get("below_threshold"),
        "weight_bytes_per_device": sum(t["bytes"] for m in modules for t in device_tensors(m, WEIGHT_ATTRIBUTES)),
        "kv_cache_bytes_per_device": sum(t["bytes"] for m in modules for t in device_tensors(m, KV_CACHE_ATTRIBUTES)),
        "decode_roofline_us": scaling["decode_us"],
    }


class _Measured:
    """PCC per module and for the layer against the HF decoder layer (``source``: read back from the device, host
    goldens, or None: not measured), and on hardware / the simulator the device time."""

    def __init__(self, source, model: Model, weights: dict, layer: ReportLayer, recorder: OpRecorder, stack=()):
        """``stack``: the HF weights of the layers run after ``layer`` (``--layers``)."""
        self.source, self.layer, self.recorder = source, layer, recorder
        self.reference = None if source is None else model.hf_reference(weights)
        self.stack_references = [] if source is None else [model.hf_reference(w) for w in stack]
        self.stack_label = f"{len(stack) + 1} layers"
        self.layer_expected = None
        self.expected: dict[str, torch.Tensor] = {}
        if self.reference is not None:
            for name, submodule in HF_SUBMODULES.items():
                getattr(self.reference.layer, submodule).register_forward_hook(self._hook(name))
        self.actual: dict[str, torch.Tensor] = {}
        self.tap_s = 0.0  # time spent reading module outputs back, taken out of the run's host time
        self.prefill_s = None
        self.decode_s: list[float] = []
        self.pcc: dict[str, dict[str, float]] = {}

    @property
    def timed_on_device(self) -> bool:
        return self.source == ON_DEVICE

    def _hook(self, name: str):
        def keep(module, inputs, output):
            self.expected[name] = output[0] if isinstance(output, tuple) else output

        return keep

    def tap(self, rows: slice):
        """A ReportLayer tap keeping each module output's ``rows`` (user 0) on host, outside the recording."""

        def keep(name: str, output: ttnn.Tensor) -> None:
            if self.source is not None and name in HF_SUBMODULES:
                start = time.perf_counter()
                with self.recorder.paused():
                    self.actual[name] = self.layer.to_host(output)[0, 0, rows]
                self.tap_s += time.perf_counter() - start

        return keep

    def compare(self, label: str, layer_input: torch.Tensor, start_pos: int, layer_output: ttnn.Tensor) -> None:
        """Run the HF layer on ``layer_input`` (batch, seq, dim) and compare each tapped module output and the
        layer's with it."""
        if self.source is None:
            return
        layer_expected = self.reference(layer_input, start_pos)  # the hooks keep the submodules' outputs
        self.layer_expected = layer_expected
        expected = {**self.expected, LAYER: layer_expected}
        rows = slice(0, layer_input.shape[1])
        with self.recorder.paused():
            actual = {**self.actual, LAYER: self.layer.to_host(layer_output)[0, 0, rows]}
        self.pcc[label] = {name: pcc(expected[name][0], actual[name]) for name in (*HF_SUBMODULES, LAYER)}
        self.actual.clear()

    def compare_stack(self, label: str, start_pos: int, stack_output: ttnn.Tensor) -> None:
        """Run the HF layers after the first on its output and compare the stack's output with theirs."""
        if not self.stack_references:
            return
        expected = self.layer_expected
        for reference in self.stack_references:
            expected = reference(expected, start_pos)
        rows = slice(0, expected.shape[1])
        with self.recorder.paused():
            actual = self.layer.to_host(stack_output)[0, 0, rows]
        self.pcc[label][self.stack_label] = pcc(expected[0], actual)

    def take_tap_s(self) -> float:
        """Time the taps spent reading back since the last call (taken out of host times)."""
        tapped, self.tap_s = self.tap_s, 0.0
        return tapped

    def entry(self) -> dict:
        if self.source is None:
            return {"source": None, "status": NOT_MEASURED, "prefill_us": None, "decode_us": None, "pcc": None}
        thresholds = {**MIN_PCC, **({self.stack_label: MIN_PCC[LAYER]} if self.stack_references else {})}
        parts = tuple(thresholds)
        lowest = {name: min(step[name] for step in self.pcc.values()) for name in parts}
        entry = {
            "source": self.source,
            "status": NUMERICS_STATUS[self.source],
            "pcc": self.pcc,
            "min_pcc": lowest,
            "thresholds": thresholds,
            "below_threshold": [name for name in parts if lowest[name] < thresholds[name]],
            "prefill_us": None,
            "decode_us": None,
        }
        if self.timed_on_device:
            entry["time"] = "simulator time, not device time" if devices.detect_tier() == devices.TTSIM else "wall"
            entry["prefill_us"] = self.prefill_s * 1e6
            entry["decode_us"] = statistics.median(self.decode_s) * 1e6
        return entry


def _host_time(calls: list, elapsed: float, shadowed: bool) -> float:
    """Host time of one run: its wall time, or while shadowed the sum of its ops' dispatch times."""
    return sum(call.host_s for call in calls) if shadowed else elapsed


def _stack(stack: list, recorder: OpRecorder, forward: str, x, *args):
    """``x`` through the layers after the first (``--layers``), unrecorded: the ops shown are the first layer's."""
    with recorder.paused():
        for layer in stack:
            x = getattr(layer, forward)(x, *args, recorder.module)
    return x


def _prefill(layer, recorder, model, seq_len, timings, measured, stack=()) -> list[list]:
    prompt = torch.randn(1, 1, seq_len, model.dim, generator=torch.Generator().manual_seed(INPUT_SEED))
    rot_mats = layer.rope.prefill_forward(seq_len)
    shadowed = measured.source == HOST_GOLDEN
    runs, wall = [], []
    for run in ("cold", "warm"):
        x = layer.upload(prompt, ttnn.DRAM_MEMORY_CONFIG)
        tap = measured.tap(slice(None)) if run == "warm" else None
        with recorder.recording() as calls:
            start = time.perf_counter()
            out = layer.prefill(x, seq_len, rot_mats, recorder.module, tap)
            ttnn.synchronize_device(layer.mesh_device)
            wall.append(_host_time(calls, time.perf_counter() - start - measured.take_tap_s(), shadowed))
        runs.append(calls)
        if run == "warm":
            measured.compare("prefill", prompt[0], 0, out)
        out = _stack(stack, recorder, "prefill", out, seq_len, rot_mats)
        if run == "warm":
            measured.compare_stack("prefill", 0, out)
    timings["prefill_cold_s"], timings["prefill_warm_s"] = wall
    measured.prefill_s = wall[-1]
    return runs[1:]


def _decode(layer, recorder, model, seq_len, steps, timings, measured, stack=()) -> list[list]:
    """Returns the warm steps' op calls; timings get the cold step and the warm steps' host dispatch times."""
    generator = torch.Generator().manual_seed(INPUT_SEED + 1)
    shadowed = measured.source == HOST_GOLDEN
    runs, host, wall = [], [], []
    for step in range(steps):
        tokens = torch.randn(1, 1, USERS, model.dim, generator=generator)
        positions = [seq_len + step] * USERS
        x = layer.upload(tokens, layer.residual_memcfg)
        current_pos, rot_mats = layer.positions(positions), layer.rope.decode_forward(positions)
        with recorder.recording() as calls:
            start = time.perf_counter()
            out = layer.decode(x, current_pos, rot_mats, recorder.module, measured.tap(slice(0, 1)))
            dispatched = time.perf_counter() - start
            tapped = measured.take_tap_s()
            host.append(_host_time(calls, dispatched - tapped, shadowed))
            ttnn.synchronize_device(layer.mesh_device)
            wall.append(_host_time(calls, time.perf_counter() - start - tapped, shadowed))
        runs.append(calls)
        measured.compare(f"decode step {step}", tokens[0, :, :1], seq_len + step, out)  # user 0
        out = _stack(stack, recorder, "decode", out, current_pos, rot_mats)
        measured.compare_stack(f"decode step {step}", seq_len + step, out)
    timings["decode_cold_s"] = wall[0]
    timings["decode_warm_host_s"] = host[1:]
    measured.decode_s = wall[1:]
    return runs[1:]


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


def planned_parameters(model: Model, length: int, mesh) -> estimates.LayerParameters:
    """The analytic estimate's inputs on ``mesh`` before anything is built: attention in the dtype every TTTv2
    attention config defaults to for weights and KV cache (``DEFAULT_DTYPE``), the MLP and norms as their configs
    resolve on a stand-in ``mesh`` (weights of the model's shapes, no data), the report's decode batch and cache."""
    qkv_size = model.head_dim * (model.n_heads + 2 * model.n_kv_heads)
    split = {
        "wqkv": (model.dim * qkv_size, DEFAULT_DTYPE),
        "wo": (model.n_heads * model.head_dim * model.dim, DEFAULT_DTYPE),
    }
    w1_w3 = LazyWeight(torch.empty(model.dim, model.hidden_dim, device="meta"))
    mlp = standin.mlp_config(mesh, w1_w3, LazyWeight(torch.empty(model.hidden_dim, model.dim, device="meta")), w1_w3)
    norm = standin.norm_config(mesh, LazyWeight(torch.empty(model.dim, device="meta")))
    return estimates.LayerParameters(
        split={**split, **_mlp_weights(mlp)},
        per_device=_norm_weights([norm] * len(NORMS), mesh),
        n_heads=model.n_heads,
        n_kv_heads=model.n_kv_heads,
        head_dim=model.head_dim,
        kv_dtype=DEFAULT_DTYPE,
        users=USERS,
        context=length,
        n_layers=model.n_layers,
        dim=model.dim,
    )


def _mlp_weights(mlp) -> dict:
    """A resolved MLP config's weights as uploaded: the hidden dim padded to ``padded_hidden_dim``."""
    return {
        "w1 w3": (2 * mlp.dim * mlp.padded_hidden_dim, mlp.w1_w3_dtype),
        "w2": (mlp.padded_hidden_dim * mlp.dim, mlp.w2_dtype),
    }


def _norm_weights(norms, mesh) -> dict:
    """Gamma elements on each device: every copy each resolved norm config uploads, over the devices its mapping
    splits it into."""
    elements = sum(n.dim // math.prod(m.pieces(tuple(mesh)).values()) for n in norms for m in n.gamma_mappings)
    return {"norm weights": (elements, GAMMA_DTYPE)}


def check_fits(model: Model, mesh_shape, length: int, meshes, chip=estimates.WORMHOLE_N150) -> None:
    """ValueError (one line: the figures and those of ``meshes`` that would fit) when the layer cannot run on
    ``mesh_shape`` or the whole model does not fit its devices' DRAM."""
    rows = estimates.mesh_scaling(partial(planned_parameters, model, length), chip, meshes)
    here = next(row for row in rows if row["mesh"] == _name(mesh_shape))
    if estimates.runnable(here):
        return
    fitting = ", ".join(row["mesh"] for row in rows if estimates.runnable(row)) or "none of " + ", ".join(
        row["mesh"] for row in rows
    )
    problems = [here["reason"]] if "reason" in here else []
    if "model_fits_dram" in here and not here["model_fits_dram"]:
        problems.append(
            f"{model.n_layers} layers x (weights {here['weight_bytes_per_device'] / 1e9:.2f} GB + KV cache "
            f"{here['kv_cache_bytes_per_device'] / 1e9:.3f} GB) = {here['model_bytes_per_device'] / 1e9:.1f} GB per "
            f"device ({DEFAULT_DTYPE.name.lower()} weights and KV cache) > {chip.dram_bytes / 1e9:.1f} GB DRAM of a "
            f"{chip.name}"
        )
    raise ValueError(f"does not fit: {'; '.join(problems)}; meshes that would: {fitting}")


def _name(mesh_shape) -> str:
    return f"{mesh_shape[0]}x{mesh_shape[1]}"


def layer_parameters(model: Model, layer: ReportLayer, mesh) -> estimates.LayerParameters:
    """The analytic estimate's inputs on ``mesh``, read from the layer's resolved configs (sizes, dtypes, padding,
    gamma layout, decode batch, cache length); on another mesh than the layer's, its MLP and norm configs are
    resolved again there on a stand-in mesh (``standin``), so the analytic figures describe what would run."""
    attention, mlp = layer.modules["attention"].config, layer.modules["mlp"].config
    norms = [layer.modules[name].config for name in NORMS]
    if tuple(mesh) != tuple(layer.mesh_device.shape):
        dtypes = dict(w1_w3_dtype=mlp.w1_w3_dtype, w2_dtype=mlp.w2_dtype)
        mlp = standin.mlp_config(mesh, mlp.w1, mlp.w2, mlp.w3, **dtypes)
        norms = [standin.norm_config(mesh, norm.weight) for norm in norms]
    split = {
        "wqkv": (attention.dim * attention.qkv_size, attention.wqkv_dtype),
        "wo": (attention.n_heads * attention.head_dim * attention.dim, attention.wo_dtype),
        **_mlp_weights(mlp),
    }
    return estimates.LayerParameters(
        split=split,
        per_device=_norm_weights(norms, mesh),
        n_heads=attention.n_heads,
        n_kv_heads=attention.n_kv_heads,
        head_dim=attention.head_dim,
        kv_dtype=attention.kv_cache_dtype,
        users=attention.max_batch_size,
        context=attention.max_seq_len,
        n_layers=model.n_layers,
        dim=attention.dim,
    )


def _scaling(model: Model, layer: ReportLayer, chip, mesh_shape) -> dict:
    """Analytic decode estimate on the plotted meshes and this run's, in its dtypes (estimates.mesh_scaling)."""
    return {
        "basis": "analytic: parameters / devices x bytes per parameter (this run's dtypes; MLP padding and norm "
        "gamma copies from the module configs, resolved on a stand-in of each mesh not run) + each device's "
        f"KV-cache slice, / {chip.dram_bytes_per_s / 1e9:.0f} GB/s; computed, not run, on each mesh",
        "meshes": estimates.mesh_scaling(
            partial(layer_parameters, model, layer), chip, sorted({*estimates.PLOT_MESHES, mesh_shape})
        ),
    }
