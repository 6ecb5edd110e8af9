# SPDX-License-Identifier: Apache-2.0
"""MLP2D: defaults, upstream's collected cases on Galaxy 8x4 / 4x8 against the HF MLP, rejections and bad input."""

import types
from functools import partial

import pytest
import torch
import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_2d import MLP2D, MLP2DConfig
from models.common.testing import numerics
from models.tt_transformers.tt.load_checkpoints import shipped_models

LLAMA_8B = (4096, 14336)  # (dim, hidden_dim) of Llama-3.1-8B


def _weights(dim, hidden, seed=0):
    generator = torch.Generator().manual_seed(seed)
    w1, w3 = torch.randn(dim, hidden, generator=generator), torch.randn(dim, hidden, generator=generator)
    return w1, torch.randn(hidden, dim, generator=generator), w3


def test_defaults_follow_upstream_mlp2d():
    mesh = types.SimpleNamespace(shape=(8, 4), get_num_devices=lambda: 32)
    w1, w2, w3 = (LazyWeight(w) for w in _weights(256, 1024))
    cfg = MLP2DConfig(w1=w1, w2=w2, w3=w3, mesh_device=mesh, tt_ccl=object(), topology=None).resolve()
    assert (cfg.w1_w3_dtype, cfg.w2_dtype, cfg.ccl_dtype, cfg.mul_dtype) == (ttnn.bfloat8_b,) * 4
    assert cfg.decode_input_memcfg == ttnn.L1_MEMORY_CONFIG and cfg.prefill_input_memcfg == ttnn.DRAM_MEMORY_CONFIG
    assert cfg.decode_w1_w3_prg_config is None and cfg.prefill_w2_prg_config(4096) is None, "ttnn picks"
    assert cfg.prefill_len_cutoff == 1024


# --- Collected cases: upstream's MLP2D lists ----------------------------------------------------------------------
# Upstream tt-metal models/common/tests/modules/mlp/test_mlp_2d.py (commit e22a32a), test_mlp_2d_vs_reference: on 4x8
# and 8x4, Llama-3.1-8B's MLP (4096, 14336) from its HF config, bfloat8_b weights, batch 1, prefill 512 and decode
# 32 rows, PCC 0.99.
# Upstream .../mlp/test_mlp_2d_wh_galaxy.py (commit 5595e56): on 8x4, "llama" (8192, 28672) with bfloat8_b weights
# and "qwen" (5120, 25600) with bfloat16 weights, bfloat8_b activations, CCL and multiply (MLP2D's defaults), decode
# 32 rows, prefill 128 and 2048, PCC 0.99 (its _mlp_2d_galaxy.MLP_PCC_THRESHOLD). They are named here after the
# shipped model whose config has that (dim, hidden_dim): Llama-3.1-70B and Qwen3-32B.
# Per model: (dim, hidden_dim) as upstream states them, weight dtype, meshes, lengths (a prefill seq_len or DECODE).
DECODE = "decode"
DECODE_ROWS = 32
MIN_PCC = 0.99
UPSTREAM_CASES = {
    "Llama-3.1-8B-Instruct": ((4096, 14336), ttnn.bfloat8_b, ((4, 8), (8, 4)), (512, DECODE)),
    "Llama-3.1-70B-Instruct": ((8192, 28672), ttnn.bfloat8_b, ((8, 4),), (DECODE, 128, 2048)),
    "Qwen3-32B": ((5120, 25600), ttnn.bfloat16, ((8, 4),), (DECODE, 128, 2048)),
}


def _collected_cases():
    """(mesh, case): the case's values in one tuple, so that the module-scoped parametrization groups the cases by mesh
    alone (pytest orders module-scoped params to share equal values) and keeps their listed order."""
    params = []
    for model, (dims, weight_dtype, meshes, lengths) in UPSTREAM_CASES.items():
        for mesh in meshes:
            for length in lengths:
                mode, seq_len = (DECODE, DECODE_ROWS) if length == DECODE else ("prefill", length)
                case_id = f"{mesh[0]}x{mesh[1]}-{mode}-{seq_len}-{model}"
                params.append(pytest.param(mesh, (dims, weight_dtype, mode, seq_len), id=case_id))
    return params


def test_upstream_mlps_are_shipped_configs():
    from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR, load_hf_config, text_config

    for model, (dims, *_) in UPSTREAM_CASES.items():
        config = text_config(load_hf_config(MODEL_PARAMS_DIR / model))
        assert (config.hidden_size, config.intermediate_size) == dims, model


_BUILT: dict = {}  # (dims, weight dtype) -> (mesh, MLP2D, host weights): one model at a time


def _mlp_for(mesh, dims, weight_dtype):
    """One MLP2D of seeded weights per mesh and model, shared by that mesh's cases of the model."""
    built = _BUILT.get((dims, weight_dtype))
    if built is None or built[0] is not mesh:
        _BUILT.clear()
        weights = _weights(*dims)
        mlp = MLP2D(*map(LazyWeight, weights), mesh_device=mesh, w1_w3_dtype=weight_dtype, w2_dtype=weight_dtype)
        built = _BUILT[(dims, weight_dtype)] = mesh, mlp, weights
    return built[1:]


def _reference(x, w1, w2, w3):
    """The HF SwiGLU MLP (LlamaMLP, Qwen3MLP: down(silu(gate(x)) * up(x))) with w1 = gate, w3 = up, w2 = down."""
    return (torch.nn.functional.silu(x @ w1) * (x @ w3)) @ w2


# scope="module": a mesh stays open over its cases (pytest reopens an indirect fixture per param set otherwise)
@pytest.mark.parametrize("ttnn_mesh_device, case", _collected_cases(), indirect=["ttnn_mesh_device"], scope="module")
def test_mlp_2d_vs_reference(ttnn_mesh_device, case, reference_check):
    """Upstream's collected cases against the HF MLP; every device's output shape, the second call hits the program
    cache. Cases whose host golden is too costly for CI run dispatched only (meta weights, every op validated)."""
    mesh, (dims, weight_dtype, mode, seq_len) = ttnn_mesh_device, case
    rows, cols = tuple(mesh.shape)
    dim, hidden = dims
    compare = reference_check.compares(numerics.shadow_affordable(dim=dim, mode=mode, seq_len=seq_len))
    x = torch.randn(1, 1, seq_len, dim) if compare else torch.empty(1, 1, seq_len, dim, device="meta")
    with reference_check.running(compare):
        if compare:
            mlp, weights = _mlp_for(mesh, dims, weight_dtype)
        else:
            meta = (LazyWeight(torch.empty(s, device="meta")) for s in ((dim, hidden), (hidden, dim), (dim, hidden)))
            mlp = MLP2D(*meta, mesh_device=mesh, w1_w3_dtype=weight_dtype, w2_dtype=weight_dtype)
        cfg = mlp.config
        assert (cfg.w1_w3_dtype, cfg.w2_dtype) == (weight_dtype, weight_dtype)
        assert (cfg.ccl_dtype, cfg.mul_dtype) == (ttnn.bfloat8_b, ttnn.bfloat8_b)
        out = mlp.forward(LazyWeight(x), mode, seq_len)
        entries = mesh.num_program_cache_entries()
        mlp.forward(LazyWeight(x), mode, seq_len)
        assert mesh.num_program_cache_entries() == entries, "the second call must hit the program cache"
        per_device = [tuple(t.shape) for t in ttnn.get_device_tensors(out)]
        assert per_device == [(1, 1, seq_len, dim // cols)] * (rows * cols)
        if compare:
            composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=(rows, cols), dims=(0, -1))
            per_row = ttnn.to_torch(out, mesh_composer=composer).float()  # every mesh row holds the whole output
    if compare:
        reference_check(_reference(x, *weights), per_row[:1], min_pcc=MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_mlp_2d_rejects_1d_meshes(ttnn_mesh_device):
    with pytest.raises(ValueError, match="use MLP1D on 1D meshes"):
        MLP2D(*(LazyWeight(w) for w in _weights(*LLAMA_8B)), mesh_device=ttnn_mesh_device)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_mlp_2d_bad_input(ttnn_mesh_device):
    mlp = MLP2D(*(LazyWeight(w) for w in _weights(*LLAMA_8B)), mesh_device=ttnn_mesh_device)
    with pytest.raises(ValueError, match="prefill seq_len 1536 must be a multiple of 1024"):
        mlp.prefill_forward(LazyWeight(torch.randn(1, 1, 1536, LLAMA_8B[0])), 1536)


# --- TTTv1 parity and the from_model_args bridge ----------------------------------------------------------------
def _host_args(model, mesh=(8, 4)):
    """TTTv1 ModelArgs for ``model`` on a host-only mesh of this shape."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import ModelArgs

    return ModelArgs(HostMesh.for_shape(mesh), hf_model=model, max_batch_size=32)


def _meta_mlp_weights(args) -> dict:
    """Layer 0's Meta-named MLP weights as shapes only (TTTv1 (out, in) layout, unpadded hidden)."""
    hidden, prefix = args.unpadded_hidden_dim, args.get_state_dict_prefix("MLP", 0)
    shapes = {"w1": (hidden, args.dim), "w2": (args.dim, hidden), "w3": (hidden, args.dim)}
    return {f"{prefix}.{name}.weight": torch.empty(shape, device="meta") for name, shape in shapes.items()}


def _check_equals_tttv1(args):
    """MLP2DConfig.from_model_args (and MLP2DConfig's own defaults) against TTTv1's TG MLP for one model on 8x4."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import OpGroup, TensorGroup

    mesh, mc = HostMesh.for_shape((8, 4)), args.model_config
    precision = mc["DECODERS_OPTIMIZATIONS"]
    cfg = MLP2DConfig.from_model_args(mesh, object(), args, _meta_mlp_weights(args), None, 0).resolve()
    assert (cfg.dim, cfg.padded_hidden_dim) == (args.dim, args.hidden_dim), args.model_name  # as TTTv1 pads
    tg_configs = args.dim >= 4096  # TTTv1 mlp.py: the TG decode program configs from dim 4096 on
    assert repr(cfg.decode_w1_w3_prg_config) == repr(mc["FF1_3_TG_PROGCFG"] if tg_configs else None), args.model_name
    assert repr(cfg.decode_w2_prg_config) == repr(mc["FF2_TG_PROGCFG"] if tg_configs else None)
    for seq_len in (128, 1024, 4096):
        assert repr(cfg.prefill_w1_w3_prg_config(seq_len)) == repr(mc["PREFILL_MLP_W1_W3_PRG_CONFIG"](seq_len))
        assert repr(cfg.prefill_w2_prg_config(seq_len)) == repr(mc["PREFILL_MLP_W2_PRG_CONFIG"](seq_len))
    dtype = partial(precision.get_tensor_dtype, 0)
    assert (cfg.w1_w3_dtype, cfg.w2_dtype, cfg.activation_dtype) == (
        dtype(tensor=TensorGroup.FF1_FF3),
        dtype(tensor=TensorGroup.FF2),
        dtype(tensor=TensorGroup.ACTIVATION),
    )
    assert cfg.ff1_3_compute_kernel_config is precision.get_math_fidelity(0, OpGroup.LI_FF1_FF3, configuration=args)
    assert cfg.ff2_compute_kernel_config is precision.get_math_fidelity(0, OpGroup.LI_FF2, configuration=args)
    assert cfg.activation == args.mlp_activation_type
    shapes = [(args.dim, args.hidden_dim), (args.hidden_dim, args.dim), (args.dim, args.hidden_dim)]
    own = MLP2DConfig(*(LazyWeight(torch.empty(s, device="meta")) for s in shapes), mesh_device=mesh, tt_ccl=object())
    for config in (cfg, own.resolve()):
        assert (config.ccl_dtype, config.prefill_len_cutoff) == (args.ccl_dtype, args.prefill_len_cutoff)
        assert (config.num_all_gather_links, config.num_reduce_scatter_links) == (
            args.num_all_gather_links,
            args.num_reduce_scatter_links,
        )


def test_from_model_args_equals_tttv1_on_8x4():
    """Host-side, every shipped model TTTv1 runs on Galaxy: from_model_args resolves to what TTTv1's MLP uses on TG
    (its dtypes, fidelities, program configs, CCL dtype and links, prefill cutoff), and MLP2D's own defaults agree
    with TTTv1 wherever they are not left to ttnn."""
    checked = []
    for model in shipped_models():
        try:
            args = _host_args(model)
        except ValueError:  # TTTv1 rejects it on Galaxy (e.g. phi-4: 10 KV heads over 4 mesh columns)
            continue
        _check_equals_tttv1(args)
        checked.append(model)
    assert "Llama-3.1-70B-Instruct" in checked and "Llama-3.2-1B-Instruct" in checked, checked


def test_from_model_args_takes_only_the_8x4_tttv1_lays_out():
    """TTTv1's TG configs assume 4 mesh columns (its TG_COLS): on 4x8 they would not fit MLP2D's per-device
    weights; 1D meshes belong to MLP1D. Both are refused before any device is touched."""
    for mesh in [(4, 8), (1, 8)]:
        with pytest.raises(ValueError, match=rf"laid out for a 8x4 mesh, not {mesh[0]}x{mesh[1]}: use MLP1D"):
            MLP2D.from_model_args(None, None, _host_args("Llama-3.2-1B-Instruct", mesh), {}, None, 0)


def _hf_mlp_and_tttv1_weights(args):
    """Layer 0's HF MLP holding TTTv1's seeded random weights, and those weights in TTTv1 (Meta) naming; drawn for
    the MLP alone (each weight is seeded by its name, so they equal the whole model's)."""
    from models.common.models.hf_loading import RANDOM_WEIGHT_SEED, random_weights
    from models.tt_transformers.tt import reference
    from models.tt_transformers.tt.load_checkpoints import hf_to_meta

    config, prefix = args.reference_config(), "model.layers.0.mlp."
    mlp = reference.meta_model(config).model.layers[0].mlp
    shapes = {prefix + key: tuple(t.shape) for key, t in mlp.state_dict().items()}
    hf_weights = random_weights(shapes, config.initializer_range, RANDOM_WEIGHT_SEED)
    mlp = mlp.to(torch.bfloat16).to_empty(device="cpu")
    mlp.load_state_dict({key.removeprefix(prefix): t for key, t in hf_weights.items()})
    return mlp.eval(), hf_to_meta(hf_weights, args.head_dim, args.n_heads, args.n_kv_heads)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_mlp_2d_vs_reference_from_model_args(ttnn_mesh_device, reference_check):
    """One small model through TTTv1's ModelArgs on Galaxy, decode and a 128-row prefill (one build: Galaxy weight
    uploads are slow under shadow), against the HF MLP holding the same weights."""
    from models.common.modules.tt_ccl import get_tt_ccl
    from models.tt_transformers.tt.model_config import ModelArgs

    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model="Llama-3.2-1B-Instruct", max_batch_size=32)
    hf_mlp, state_dict = _hf_mlp_and_tttv1_weights(args)
    mlp = MLP2D.from_model_args(mesh, get_tt_ccl(mesh), args, state_dict, None, layer_num=0)
    composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=tuple(mesh.shape), dims=(0, -1))
    for mode, seq_len in [("decode", 32), ("prefill", 128)]:
        x = torch.randn(1, 1, seq_len, args.dim)
        out = mlp.forward(LazyWeight(x), mode, seq_len)
        per_row = ttnn.to_torch(out, mesh_composer=composer).float()  # every mesh row holds the whole output
        with torch.no_grad():
            expected = hf_mlp(x.bfloat16()).float()
        reference_check(expected, per_row[:1], min_pcc=0.98)
