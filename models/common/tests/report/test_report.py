# SPDX-License-Identifier: Apache-2.0
"""The decoder-layer report: its estimates and op recorder, the CLI end to end (a subprocess: it opens its own mesh,
so these tests run in the device-free parent process), and one-line errors for bad input."""

import contextlib
import json
import math
import os
import subprocess
import sys
import types
from functools import partial

import pytest
import torch
import ttnn

from models.common import devices
from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_1d import MLP1D
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D
from models.common.report import estimates
from models.common.report.__main__ import EXIT_BAD_INPUT, main
from models.common.report.layer import USERS, ReportLayer, cache_len
from models.common.report.model import Model
from models.common.report.recorder import OpCall, OpRecorder, TensorInfo
from models.common.report.run import NORMS, layer_parameters, planned_parameters
from models.common.report.summary import WEIGHT_ATTRIBUTES, device_tensors

SMALL = "Llama-3.2-1B-Instruct"
MESHES = [(1, 1), (1, 2), (1, 8), (8, 4), (4, 8)]
CLI_TIMEOUT_S = 600
PNG_MAGIC = b"\x89PNG"
MLP_WEIGHTS = ("w1 w3", "w2")  # the MLP's entries in LayerParameters.split
ROOFLINE_AGREEMENT = 0.05  # per-op DRAM reads (buffers as allocated) vs the analytic estimate (no padding)
BFP8_BYTES = 1088 / 1024  # a bfloat8_b tile: 1024 mantissa bytes + 64 shared exponents
# The module tests' thresholds: norms 0.999 (test_rmsnorm_1d), attention 0.99 (attention/hf_reference.py), MLP 0.98
# (test_mlp_1d / test_mlp_2d), the decoder layer 0.99 (test_decoder_layer_matches_hf)
MODULE_MIN_PCC = {"attention_norm": 0.999, "attention": 0.99, "ffn_norm": 0.999, "mlp": 0.98, "layer": 0.99}


# --- estimates and recorder (no device) ---------------------------------------------------------------------------
def test_mesh_scaling_worked_out_by_hand():
    """Llama-3.1-8B in bfloat8_b: weights split over every device, KV heads over devices (1D) or rows (2D)."""
    dim, hidden, heads, kv_heads, head_dim = 4096, 14336, 32, 8, 128
    split = {
        "wqkv": (dim * head_dim * (heads + 2 * kv_heads), ttnn.bfloat8_b),
        "wo": (heads * head_dim * dim, ttnn.bfloat8_b),
        "w1 w2 w3": (3 * dim * hidden, ttnn.bfloat8_b),
    }
    params = estimates.LayerParameters(
        split, {"norms": (2 * dim, ttnn.bfloat16)}, heads, kv_heads, head_dim, ttnn.bfloat8_b, 32, 160, 32, dim
    )
    rows = {row["mesh"]: row for row in estimates.mesh_scaling(lambda mesh: params, estimates.WORMHOLE_N150)}
    layer_params = dim * head_dim * (heads + 2 * kv_heads) + heads * head_dim * dim + 3 * dim * hidden
    weights_1x8 = layer_params / 8 * BFP8_BYTES + 2 * dim * 2
    kv_1x8 = 2 * 32 * 1 * 160 * head_dim * BFP8_BYTES  # one KV head per device, all 32 users
    assert rows["1x8"]["weight_bytes_per_device"] == int(weights_1x8)
    assert rows["1x8"]["kv_cache_bytes_per_device"] == int(kv_1x8)
    assert rows["1x8"]["decode_us"] == pytest.approx((weights_1x8 + kv_1x8) / 288e9 * 1e6)
    # 8 rows: one KV head per device again, but a device caches only its mesh column's 32 / 4 users
    assert rows["8x4"]["decode_users_per_device"] == 8
    assert rows["8x4"]["kv_cache_bytes_per_device"] == int(kv_1x8 / 4)
    assert rows["1x1"]["kv_cache_bytes_per_device"] == int(8 * kv_1x8)
    assert rows["1x1"]["model_fits_dram"] and rows["1x1"]["model_weight_bytes_per_device"] > 7e9  # 32 layers
    weights_1x1 = layer_params * BFP8_BYTES + 2 * dim * 2
    assert rows["1x1"]["model_bytes_per_device"] == int(32 * (weights_1x1 + 8 * kv_1x8))

    odd = estimates.LayerParameters(split, {}, 28, 4, head_dim, ttnn.bfloat8_b, 32, 160, 28, 3584)  # Qwen2.5-7B
    rows = {row["mesh"]: row for row in estimates.mesh_scaling(lambda mesh: odd, estimates.WORMHOLE_N150)}
    assert rows["1x2"]["supported"] and not rows["1x8"]["supported"] and not rows["8x4"]["supported"]
    assert "must both divide over 8 device groups" in rows["1x8"]["reason"]

    wide = estimates.LayerParameters(split, {}, heads, kv_heads, head_dim, ttnn.bfloat8_b, 32, 160, 1, 5120)
    rows = {row["mesh"]: row for row in estimates.mesh_scaling(lambda mesh: wide, estimates.WORMHOLE_N150)}
    assert not rows["1x1"]["supported"] and "prefill RMSNorm of dim 5120 on one device" in rows["1x1"]["reason"]
    assert rows["1x2"]["supported"]


def _tensor(shape, dtype=ttnn.bfloat16, dram=True, size=1000):
    memory = ttnn.DRAM_MEMORY_CONFIG if dram else ttnn.L1_MEMORY_CONFIG
    return TensorInfo(shape, dtype, memory, size)


def test_op_estimates():
    x, w = _tensor((1, 1, 128, 2048), dram=False), _tensor((2048, 512), ttnn.bfloat8_b)
    linear = OpCall("ttnn.linear", "mlp", [x, w], {})
    assert estimates.flops(linear) == 2 * 128 * 2048 * 512
    assert estimates.dram_read_bytes(linear) == w.buffer_bytes  # the L1 activation is not a DRAM read
    assert estimates.peak_flops_per_s(linear, estimates.WORMHOLE_N150) == 148e12  # block-float operand
    cache, k = _tensor((32, 1, 160, 64), size=5000), _tensor((1, 32, 1, 64), size=64)
    update = OpCall("ttnn.experimental.paged_update_cache", "attention", [cache, k], {})
    assert estimates.dram_read_bytes(update) == 64, "the cache an update writes is not read"
    q, kv = _tensor((1, 4, 128, 64)), _tensor((1, 1, 128, 64))
    sdpa = OpCall("ttnn.transformer.scaled_dot_product_attention", "attention", [q, kv, kv], {"is_causal": True})
    assert estimates.flops(sdpa) == 2 * 2 * 4 * 128 * 128 * 64 // 2  # Q·Kᵀ and P·V, half under the causal mask
    assert estimates.peak_flops_per_s(sdpa, estimates.WORMHOLE_N150) == 74e12


def test_recorder_records_outermost_device_calls_and_restores_ttnn(monkeypatch):
    original, golden = ttnn.from_torch, ttnn.get_golden_function(ttnn.add)
    with OpRecorder() as recorder:
        assert ttnn.from_torch is not original
        # plain functions keeping the op's attributes: shadow execution, entered inside, wraps them like ttnn's own
        assert isinstance(ttnn.add, types.FunctionType) and ttnn.get_golden_function(ttnn.add) is golden
        ttnn.from_torch(torch.ones(32, 32), dtype=ttnn.bfloat16)  # not recording: passes through
        with recorder.recording() as calls, recorder.module("norm"):
            ttnn.from_torch(torch.ones(32, 32), dtype=ttnn.bfloat16)  # no device tensor in or out: not an op
            on_device = TensorInfo((32, 32), ttnn.bfloat16, ttnn.L1_MEMORY_CONFIG, 2048)
            monkeypatch.setattr(TensorInfo, "of", classmethod(lambda cls, tensor: on_device))
            ttnn.from_torch(torch.ones(32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT)  # as if uploaded
    assert ttnn.from_torch is original
    assert [(c.name, c.module) for c in calls] == [("ttnn.from_torch", "norm")]  # its inner ttnn calls are its own
    assert calls[0].options["layout"] == ttnn.TILE_LAYOUT and calls[0].outputs == [on_device]


def test_model_weights_from_a_checkpoint_folder(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=256, num_attention_heads=4, num_key_value_heads=2, intermediate_size=512, num_hidden_layers=2,
        vocab_size=512,
    )  # fmt: skip
    hf = LlamaForCausalLM(config).to(torch.bfloat16)
    hf.save_pretrained(tmp_path)
    model = Model.load(str(tmp_path))
    assert (model.dim, model.n_heads, model.n_kv_heads, model.head_dim, model.n_layers) == (256, 4, 2, 64, 2)
    assert model.weights_description == f"checkpoint {tmp_path}"
    weights = model.layer_state_dict()
    expected = {k.removeprefix("model.layers.0."): t for k, t in hf.state_dict().items() if ".layers.0." in k}
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in expected)


def test_fused_projections_are_split_in_hf_order():
    """phi-4 checkpoints fuse q/k/v and gate/up: split by head counts (40 q, 10 kv heads of 128) and in halves."""
    model = Model.load("phi-4")
    qkv, gate_up = torch.arange(60 * 128.0)[:, None], torch.arange(4.0)[:, None]
    parts = model.unfused({"self_attn.qkv_proj.weight": qkv, "mlp.gate_up_proj.weight": gate_up})
    assert [parts[f"self_attn.{n}_proj.weight"].shape[0] for n in "qkv"] == [40 * 128, 10 * 128, 10 * 128]
    assert parts["self_attn.k_proj.weight"][0, 0] == 40 * 128  # k follows q
    assert parts["mlp.gate_proj.weight"].flatten().tolist() == [0, 1] and parts["mlp.up_proj.weight"][0, 0] == 2


def test_config_only_folder_gets_seeded_random_weights(tmp_path):
    """A folder holding only config.json is a model with the shipped config's seeded random weights."""
    shipped = Model.load(SMALL)
    (tmp_path / "config.json").write_text((shipped.source.config_dir / "config.json").read_text())
    model = Model.load(str(tmp_path))
    assert model.source.checkpoint_dir is None
    assert model.weights_description.startswith(f"config.json only ({tmp_path}), seeded random weights")
    weights, expected = model.layer_state_dict(), shipped.layer_state_dict()
    assert weights.keys() == expected.keys() and all(torch.equal(weights[k], expected[k]) for k in expected)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"model_type": "llama", "hidden_size": 2048,', "is not valid JSON (Expecting"),
        ('["llama"]', "holds a JSON list, not an object of config fields"),
        ('{"hidden_size": 2048}', "has no model_type field"),
        (
            '{"model_type": "llama", "hidden_size": 2048, "num_attention_heads": 32, "num_hidden_layers": 2}',
            "has no field intermediate_size: it needs a positive integer",
        ),
        (
            '{"model_type": "llama", "hidden_size": "2048", "num_attention_heads": 32, "intermediate_size": 8192, '
            '"num_hidden_layers": 2}',
            "has '2048' for field hidden_size",
        ),
    ],
    ids=["not-json", "not-an-object", "no-model-type", "missing-field", "wrong-type"],
)
def test_bad_config_json_names_the_file_and_field(tmp_path, capsys, text, message):
    (tmp_path / "config.json").write_text(text)
    assert main(["--model", str(tmp_path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'config.json'}" in err[0] and message in err[0], err


# --- the report's decoder layer against the HF one (shadow-checked on mock) ---------------------------------------
@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8), (8, 4), (4, 8)], ids=["1x8", "8x4", "4x8"], indirect=True)
def test_decoder_layer_matches_hf(ttnn_mesh_device, reference_check):
    """The layer the report runs is a correct decoder layer (TTTv2 modules; on Galaxy meshes RMSNorm2D, Attention2D
    and MLP2D): prefill one user, then a decode step."""
    model = Model.load(SMALL)
    weights = model.layer_state_dict()
    seq_len = 128
    layer = ReportLayer(model, model.unfused(weights), ttnn_mesh_device, cache_len(seq_len, 1))
    reference = model.hf_reference(weights)
    prompt = torch.randn(1, 1, seq_len, model.dim)
    x = layer.upload(prompt, ttnn.DRAM_MEMORY_CONFIG)
    out = layer.prefill(x, seq_len, layer.rope.prefill_forward(seq_len), _no_scope)
    reference_check(reference(prompt[0], 0), layer.to_host(out)[0], min_pcc=0.99)
    tokens = torch.randn(1, 1, USERS, model.dim)
    positions = [seq_len] * USERS
    x = layer.upload(tokens, layer.residual_memcfg)
    out = layer.decode(x, layer.positions(positions), layer.rope.decode_forward(positions), _no_scope)
    assert out.memory_config() == layer.residual_memcfg
    reference_check(reference(tokens[0, :, :1], seq_len)[0], layer.to_host(out)[0, 0, :1], min_pcc=0.99)


@pytest.mark.parametrize(
    "ttnn_mesh_device", MESHES, ids=[f"{r}x{c}" for r, c in MESHES], indirect=True
)  # fmt: skip
def test_analytic_kv_and_weight_bytes_match_the_device(ttnn_mesh_device):
    """The analytic KV bytes per device (read from the resolved configs) are those of the cache attention allocates:
    all 32 users on 1D meshes, a mesh column's share on 2D ones (8 on 8x4, 4 on 4x8). The MLP and norm weight bytes,
    from the layer's configs and from the configs resolved on a stand-in mesh before any device work, are those
    the modules upload (gamma replicated on 1D, split over the mesh columns on 2D)."""
    model = Model.load(SMALL)
    mesh = tuple(ttnn_mesh_device.shape)
    layer = ReportLayer(model, model.unfused(model.layer_state_dict()), ttnn_mesh_device, 160)
    attention = layer.modules["attention"]
    allocated = sum(TensorInfo.of(cache).buffer_bytes for cache in (attention.keys, attention.values))
    [row] = estimates.mesh_scaling(partial(layer_parameters, model, layer), estimates.WORMHOLE_N150, [mesh])
    assert row["decode_users_per_device"] == {(8, 4): 8, (4, 8): 4}.get(mesh, USERS) == attention.keys.shape[0]
    assert row["kv_cache_bytes_per_device"] == allocated
    norms = [layer.modules[name] for name in NORMS]
    for params in (layer_parameters(model, layer, mesh), planned_parameters(model, 160, mesh)):
        assert _analytic_bytes(params.per_device.values()) == _uploaded_bytes(*norms)
        mlp_entries = [params.split[name] for name in MLP_WEIGHTS]
        assert _analytic_bytes(mlp_entries, math.prod(mesh)) == _uploaded_bytes(layer.modules["mlp"])
    tile = ttnn.Tile((32, 32))
    assert all(tile.get_tile_size(dtype) == size for dtype, size in estimates.TILE_BYTES.items())


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_analytic_weight_bytes_match_the_uploaded_mlp_and_norms(ttnn_mesh_device):
    """Qwen2.5-7B on 1x2, where MLP1D pads the hidden dim (18944 to 19456): the analytic MLP and norm weight bytes
    per device, from the configs resolved on a stand-in 1x2 mesh before any device work, are those the modules
    upload (the padded MLP weights; each norm's gamma as its config lays it out)."""
    model = Model.load("Qwen2.5-7B-Instruct")
    mesh = tuple(ttnn_mesh_device.shape)
    params = planned_parameters(model, cache_len(128, 1), mesh)
    w1 = LazyWeight(torch.zeros(model.dim, model.hidden_dim))
    mlp = MLP1D(w1, LazyWeight(torch.zeros(model.hidden_dim, model.dim)), w1, mesh_device=ttnn_mesh_device)
    assert mlp.config.padded_hidden_dim > model.hidden_dim
    mlp_entries = [params.split[name] for name in MLP_WEIGHTS]
    assert _analytic_bytes(mlp_entries, math.prod(mesh)) == _uploaded_bytes(mlp)
    norm = RMSNorm1D(LazyWeight(torch.ones(model.dim)), mesh_device=ttnn_mesh_device)
    assert _analytic_bytes(params.per_device.values()) == len(NORMS) * _uploaded_bytes(norm)


def _analytic_bytes(entries, devices: int = 1) -> float:
    """Bytes per device of analytic (parameters, dtype) entries split over ``devices``."""
    return sum(n * estimates.bytes_per_element(dtype) for n, dtype in entries) / devices


def _uploaded_bytes(*modules) -> int:
    """Bytes per device of the modules' device weights, as the report counts them."""
    return sum(t["bytes"] for m in modules for t in device_tensors(m, WEIGHT_ATTRIBUTES))


def _no_scope(name):
    return contextlib.nullcontext()


# --- the CLI ------------------------------------------------------------------------------------------------------
def _run(*args, cwd) -> subprocess.CompletedProcess:
    """The CLI as a user runs it; on the mock tier it picks the mock system for its mesh itself."""
    env = dict(os.environ)
    env.pop(devices.MOCK_DESCRIPTOR_ENV, None)  # the suite's own choice for this (device-free) process
    command = [sys.executable, "-m", "models.common.report", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def _skip_unless_the_device_has(mesh, device_tier):
    if device_tier != devices.MOCK and not devices.mesh_fits(mesh, devices.system_mesh_shape(device_tier)):
        pytest.skip(f"a {mesh[0]}x{mesh[1]} mesh cannot exist on this {device_tier} system")


def _check_report(report: dict, mesh: str, device_tier: str) -> None:
    """What every report holds, checked against itself: ops, bytes, estimates."""
    assert report["device"] == {**report["device"], "tier": device_tier, "mesh": mesh}
    modules = {m["name"]: m for m in report["modules"]}
    assert list(modules) == ["attention_norm", "attention", "ffn_norm", "mlp", "residual"]
    assert [w["name"] for w in modules["mlp"]["weights"]] == ["w1", "w3", "w2"]
    assert [t["name"] for t in modules["attention"]["kv_cache"]] == ["keys", "values"]
    matmuls = [op for op in modules["mlp"]["decode"]["ops"] if op["op"] == "ttnn.linear"]
    assert len(matmuls) == 3 and {op["program_config"]["kind"] for op in matmuls} == {"DRAM-sharded matmul"}
    assert all(op["math_fidelity"].startswith("HiFi2") for op in matmuls)
    totals = report["totals"]
    # every weight is read once per decode token; the KV cache at most once more, plus small activations
    assert totals["weight_bytes_per_device"] <= totals["decode_dram_read_bytes"]
    assert totals["decode_dram_read_bytes"] <= 1.1 * (
        totals["weight_bytes_per_device"] + totals["kv_cache_bytes_per_device"]
    )
    assert totals["decode_roofline_us"] == pytest.approx(totals["decode_dram_read_bytes"] / 288e3)
    assert totals["prefill_flops"] > 0 and totals["decode_host_us"] > 0
    scaling = {row["mesh"]: row for row in report["scaling"]["meshes"]}
    assert {"1x1", "1x2", "1x8", "8x4"} <= set(scaling)
    analytic = scaling[mesh]["decode_us"]
    assert analytic == pytest.approx(totals["decode_roofline_us"], rel=ROOFLINE_AGREEMENT)
    assert scaling[mesh]["kv_cache_bytes_per_device"] == totals["kv_cache_bytes_per_device"]  # as allocated
    _check_numerics(report, device_tier)


def _check_numerics(report: dict, device_tier: str) -> None:
    """PCC per module and for the layer, for the prefill and every decode step, each at least its threshold."""
    measured = report["measured"]
    assert measured["source"] == ("host golden" if device_tier == devices.MOCK else "device")
    runs = ["prefill", *(f"decode step {step}" for step in range(report["run"]["decode_steps"]))]
    assert list(measured["pcc"]) == runs
    layers = report["run"]["layers"]
    stack = {f"{layers} layers": MODULE_MIN_PCC["layer"]} if layers > 1 else {}  # --layers: the stack's output
    parts = ["attention_norm", "attention", "ffn_norm", "mlp", "layer", *stack]
    assert all(list(measured["pcc"][run]) == parts for run in runs)
    assert measured["thresholds"] == {**MODULE_MIN_PCC, **stack}
    assert all(measured["min_pcc"][part] >= measured["thresholds"][part] for part in parts), measured["pcc"]
    assert measured["below_threshold"] == []


def test_report_1x1_text_and_json(tmp_path, device_tier):
    _skip_unless_the_device_has((1, 1), device_tier)
    result = _run(
        "--model", SMALL, "--mesh", "1x1", "--layers", "2", "--json", str(tmp_path / "r.json"), cwd=devices.REPO_ROOT
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert f"TTTv2 decoder-layer report: {SMALL} on a 1x1 mesh ({device_tier} tier" in text
    assert "RMSNorm1D → Attention1D → + residual → RMSNorm1D → MLP1D → + residual" in text
    assert "DRAM 288 GB/s" in text and estimates.SPEC_SOURCE in text
    for section in ("attention_norm: RMSNorm1D", "attention: Attention1D", "mlp: MLP1D", "decode per token"):
        assert section in text
    assert "PCC vs the HF decoder layer, user 0" in text and "2 layers (ops and module PCCs: the first's)" in text
    if device_tier == devices.MOCK:
        assert "host-golden numbers" in text
    report = json.loads((tmp_path / "r.json").read_text())
    _check_report(report, "1x1", device_tier)
    assert "tttv1_comparison" not in report


def test_default_report_1x8_matches_tttv1_and_plots(tmp_path, device_tier):
    """The README's command (Llama-3.1-8B, the largest mesh: 1x8 on mock) with every output."""
    _skip_unless_the_device_has((1, 8), device_tier)  # where it exists, 1x8 is the largest mesh: the default
    paths = {"json": tmp_path / "r.json", "plot": tmp_path / "r.png"}
    result = _run("--compare-tttv1", "--json", str(paths["json"]), "--plot", str(paths["plot"]), cwd=devices.REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Llama-3.1-8B-Instruct on a 1x8 mesh" in result.stdout
    assert "0 differences in" in result.stdout
    report = json.loads(paths["json"].read_text())
    _check_report(report, "1x8", device_tier)
    comparison = report["tttv1_comparison"]
    assert comparison["differences"] == 0 and comparison["compared"] > 50
    assert {m["name"] for m in comparison["modules"] if m["rows"]} == {"attention_norm", "attention", "ffn_norm", "mlp"}
    assert paths["plot"].read_bytes().startswith(PNG_MAGIC)


def test_report_galaxy_8x4_host_golden_pccs(tmp_path, device_tier):
    """Attention2D / MLP2D on 8x4: PCCs per module and layer, and each device caches its mesh column's 8 users."""
    _skip_unless_the_device_has((8, 4), device_tier)
    result = _run(
        "--model",
        SMALL,
        "--mesh",
        "8x4",
        "--decode-steps",
        "2",
        "--json",
        str(tmp_path / "r.json"),
        cwd=devices.REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TensorTopology" not in result.stdout + result.stderr  # ttnn logs CCL label errors to stdout
    report = json.loads((tmp_path / "r.json").read_text())
    _check_numerics(report, device_tier)
    [kv] = [m for m in report["modules"] if m["name"] == "attention"]
    assert [t["shape"][0] for t in kv["kv_cache"]] == [8, 8]
    scaling = {row["mesh"]: row for row in report["scaling"]["meshes"]}
    assert scaling["8x4"]["kv_cache_bytes_per_device"] == kv["kv_cache_bytes_per_device"]


def test_precision_recipes_side_by_side(tmp_path, device_tier):
    """Named and custom recipes, one row each: bfloat4_b MLP weights cost MLP PCC and save bytes, bfloat16 doubles
    the KV cache; --no-numerics leaves the PCCs out."""
    _skip_unless_the_device_has((1, 1), device_tier)
    recipes = "tttv2,bfp4-mlp,bf16,custom:kv_cache=bf16"
    args = ("--model", SMALL, "--mesh", "1x1", "--decode-steps", "2", "--precision", recipes)
    result = _run(*args, "--json", str(tmp_path / "r.json"), cwd=devices.REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "precision recipes on this 1x1 mesh" in result.stdout
    bfp4_text = result.stdout.split("\n  bfp4-mlp: ")[1].split("\n  bf16: ")[0]  # the recipe's changes
    assert "mlp (vs TTTv2's defaults): " in bfp4_text and "w1_w3_dtype bfloat4_b" in bfp4_text
    rows = {row["recipe"]: row for row in json.loads((tmp_path / "r.json").read_text())["precision"]["rows"]}
    assert list(rows) == ["tttv2", "bfp4-mlp", "bf16", "custom:kv_cache=bf16"]
    tttv2, bfp4, bf16, custom = rows.values()
    assert bfp4["min_pcc"]["mlp"] < tttv2["min_pcc"]["mlp"] and bfp4["min_pcc"]["mlp"] >= MODULE_MIN_PCC["mlp"]
    assert bfp4["changes"]["mlp"]["w1_w3_dtype"] == "bfloat4_b" and "attention" not in bfp4["changes"]
    assert bfp4["weight_bytes_per_device"] < tttv2["weight_bytes_per_device"] < bf16["weight_bytes_per_device"]
    assert bfp4["decode_roofline_us"] < tttv2["decode_roofline_us"] < bf16["decode_roofline_us"]
    assert bf16["kv_cache_bytes_per_device"] == custom["kv_cache_bytes_per_device"]
    assert bf16["kv_cache_bytes_per_device"] == tttv2["kv_cache_bytes_per_device"] * 2048 // 1088  # bf16 / bfp8 tiles
    assert custom["weight_bytes_per_device"] == tttv2["weight_bytes_per_device"]
    assert custom["changes"] == {"attention": {"kv_cache_dtype": "bfloat16"}}

    quiet = _run(*args[:-2], "--no-numerics", "--json", str(tmp_path / "q.json"), cwd=devices.REPO_ROOT)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "PCC vs the HF decoder layer: not measured (mock tier with --no-numerics)" in quiet.stdout
    assert json.loads((tmp_path / "q.json").read_text())["measured"]["pcc"] is None


# --- bad input: one line, exit code 2 -----------------------------------------------------------------------------
def test_bad_input_is_one_line_and_exit_code_2_in_a_real_process():
    result = _run("--model", "No-Such-Model", cwd=devices.REPO_ROOT)
    assert result.returncode == EXIT_BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m models.common.report: error: --model No-Such-Model")
    assert "model 'No-Such-Model' is neither a local checkpoint folder nor a shipped config" in lines[0]
    assert not result.stdout


def test_model_too_large_is_refused_before_work_in_a_real_process():
    """Qwen3-32B on one device: the L1 limit and the DRAM figures, the meshes that fit; no device opened, no
    traceback (the report used to run for a while and end in a TT_THROW)."""
    result = _run("--model", "Qwen3-32B", "--mesh", "1x1", cwd=devices.REPO_ROOT)
    assert result.returncode == EXIT_BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Qwen3-32B on a 1x1 mesh: does not fit" in lines[0], lines
    assert "64 layers x" in lines[0] and lines[0].endswith("meshes that would: 1x8, 8x4, 4x8")
    assert not result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "No-Such-Model"], "is neither a local checkpoint folder nor a shipped config"),
        (
            ["--model", "Qwen2.5-7B-Instruct", "--mesh", "1x8"],
            "n_heads (28) and n_kv_heads (4) must both divide over 8",
        ),
        (["--model", SMALL, "--mesh", "1x1", "--seq-len", "100"], "100 is not a positive multiple of 128"),
        (["--mesh", "2x2"], "'2x2' is not one of 1x1, 1x2, 1x8, 8x4, 4x8"),
        (["--decode-steps", "1"], "need at least 2"),
        (["--model", SMALL, "--layers", "17"], "--layers 17: Llama-3.2-1B-Instruct has 16 decoder layers"),
        (["--json", "/no/such/folder/r.json"], "folder /no/such/folder does not exist"),
        (["--precision", "fast"], "unknown recipe 'fast': use tttv2, accuracy, performance, bf16, bfp4-mlp"),
        (["--precision", "custom:wqkv=fp8"], "custom:wqkv=fp8: wqkv takes one of bfp4, bfp8, bf16"),
        (["--model", SMALL, "--mesh", "1x8"], "does not fit the mock n150 system"),
        (
            ["--model", "Qwen3-32B", "--mesh", "1x1"],
            "the prefill RMSNorm of dim 5120 on one device needs circular buffers beyond L1",
        ),
        (
            ["--model", "Llama-3.1-70B-Instruct", "--mesh", "1x2"],
            "80 layers x (weights 0.45 GB + KV cache 0.006 GB) = 36.8 GB per device (bfloat8_b weights and KV cache) "
            "> 12.9 GB DRAM of a Wormhole n150 (per chip); meshes that would: 1x8, 8x4, 4x8",
        ),
    ],
    ids=[
        "unknown-model",
        "heads-do-not-split",
        "seq-len",
        "unknown-mesh",
        "decode-steps",
        "too-many-layers",
        "json-folder",
        "unknown-recipe",
        "bad-custom-recipe",
        "mesh-absent",
        "l1-limit",
        "dram",
    ],
)
def test_bad_input(argv, message, capsys, monkeypatch):
    """Each fails before any device is opened (checked in this process: no mesh is opened here)."""
    n150 = next(cluster for cluster in devices.MOCK_CLUSTERS if cluster.name == "n150")
    monkeypatch.setenv(devices.TIER_ENV, devices.MOCK)  # the last case: a process already on the mock N150
    monkeypatch.setenv(devices.MOCK_DESCRIPTOR_ENV, str(n150.descriptor))
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
