# SPDX-License-Identifier: Apache-2.0
"""RMSNorm1D: variant selection, upstream's collected cases against HF's LlamaRMSNorm, TTTv1 parity, bad input."""

import math
import types

import pytest
import torch
import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D, RMSNorm1DConfig
from models.common.testing import numerics
from models.tt_transformers.tt.load_checkpoints import shipped_models


def _host_mesh(shape):
    return types.SimpleNamespace(shape=shape, get_num_devices=lambda: shape[0] * shape[1])


def _resolved(dim, shape, **overrides):
    config = RMSNorm1DConfig(LazyWeight(torch.ones(dim)), mesh_device=_host_mesh(shape), tt_ccl=object(), **overrides)
    return config.resolve()


@pytest.mark.parametrize(
    "dim, shape, fractured, distributed",
    [(2048, (1, 1), False, False), (4096, (1, 8), True, False), (5120, (1, 8), True, True), (8192, (1, 2), True, True)],
)
def test_variants_follow_tttv1_distributed_norm(dim, shape, fractured, distributed):
    cfg = _resolved(dim, shape)
    assert (cfg.input_fractured, cfg.prefill_distributed) == (fractured, distributed)


def test_sharded_decode_config_by_hand():
    cfg = _resolved(4096, (1, 1))
    # grid = find_grid(4096 / 32 = 128 tiles): 32 cores (4 rows x 8 cols); block_w = 4096 / 32 / 32 = 4
    assert (cfg.decode_core_grid.y, cfg.decode_core_grid.x) == (4, 8)
    pc = cfg.decode_program_config
    assert (pc.block_w, pc.block_h, pc.subblock_w) == (4, 1, 4)
    assert cfg.decode_memcfg.shard_spec.shape == [32, 128]
    assert cfg.compute_kernel_config.math_fidelity == ttnn.MathFidelity.HiFi2


def test_interleaved_decode_for_qk_norms():
    cfg = _resolved(128, (1, 8), input_fractured=False, decode_sharded=False)
    assert cfg.decode_program_config is None and cfg.decode_memcfg == ttnn.L1_MEMORY_CONFIG
    assert cfg.decode_input_memcfg == ttnn.L1_MEMORY_CONFIG and not cfg.prefill_distributed


def test_takes_only_its_own_config():
    from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2DConfig

    two_d = RMSNorm2DConfig.per_head(LazyWeight(torch.ones(128)), mesh_device=_host_mesh((1, 8)))
    with pytest.raises(TypeError, match="RMSNorm1D takes an RMSNorm1DConfig, not RMSNorm2DConfig"):
        RMSNorm1D.from_config(two_d)
    head = RMSNorm1DConfig.per_head(LazyWeight(torch.ones(128)), mesh_device=_host_mesh((1, 8)), tt_ccl=object())
    head = head.resolve()
    assert (head.input_fractured, head.decode_sharded, head.prefill_distributed) == (False, False, False)


# --- Collected cases: upstream's RMSNorm1D sweep, against HF's LlamaRMSNorm, every device read back -------------
# Upstream tt-metal models/common/tests/modules/rmsnorm/test_rmsnorm_1d.py (commit 1a6b64e), the rows of
# test_rmsnorm_1d_vs_reference (_list_rmsnorm_1d_test_cases, _list_rmsnorm_2d_unique_test_cases: 1x4,
# _list_rmsnorm_1d_test_cases_from_distnorm), regrouped. A norm is its (dim, eps): rows of models with the same
# pair (Llama-3.1-8B, Llama-3.2-11B-Vision's text model, Mistral-7B, Mixtral-8x7B; Llama-3.3-70B and
# Llama-3.2-90B-Vision) are one case here, named after the first model below. Upstream's weights are randn(dim)
# (seed 1234) and its PCC is 0.999 on every row.
DECODE = "decode"  # one tile of batch rows (upstream's (1, 1, 32, dim) decode rows)
UP_TO_4K = (32, 128, 1024, 2048, 4096)
UP_TO_8K = (*UP_TO_4K, 8192)
UP_TO_32K = (*UP_TO_8K, 16384, 32768)
RESIDUAL_NORMS = {  # upstream model: (dim, eps, {mesh: prefill lengths and DECODE})
    "Llama-3.2-1B": (
        2048,
        1e-5,
        {(1, 1): (*UP_TO_32K, DECODE), (1, 2): (*UP_TO_32K, DECODE), (1, 8): (*UP_TO_32K, DECODE)},
    ),
    "Llama-3.2-3B": (
        3072,
        1e-5,
        {(1, 1): (*UP_TO_8K, DECODE), (1, 2): (*UP_TO_32K, DECODE), (1, 8): (*UP_TO_32K, DECODE)},
    ),
    "Llama-3.1-8B": (  # also Llama-3.2-11B-Vision (1x2, 1x8: up to 32K), Mistral-7B, Mixtral-8x7B (up to 4K)
        4096,
        1e-5,
        {
            (1, 1): (*UP_TO_4K, DECODE),
            (1, 2): (*UP_TO_32K, DECODE),
            (1, 4): (*UP_TO_4K, DECODE),
            (1, 8): (*UP_TO_32K, DECODE),
        },
    ),
    "Qwen2.5-7B": (3584, 1e-6, {(1, 2): (*UP_TO_32K, DECODE)}),  # also Qwen2-7B (up to 4K)
    "DeepSeek-R1-Distill-Qwen-14B": (5120, 1e-5, {(1, 2): (*UP_TO_8K, DECODE)}),
    "Qwen3-32B": (5120, 1e-6, {(1, 8): (*UP_TO_4K, 16384, DECODE)}),  # also Qwen2.5-Coder-32B (up to 4K)
    "Llama-3.3-70B": (8192, 1e-5, {(1, 8): (*UP_TO_4K, DECODE)}),  # also Llama-3.2-90B-Vision (32, 128)
    "Qwen2.5-72B": (8192, 1e-6, {(1, 8): (*UP_TO_8K, 16384, DECODE)}),
}
# Per-head and vision-encoder norms (dim 128, input neither sharded nor split over devices): (mesh, eps, mode,
# input shape) rows of the same upstream lists, by model.
HEAD_NORMS = {
    "Llama-3.2-11B-Vision": [
        ((1, 1), 1e-5, "decode", (1, 4, 6528, 128)),
        ((1, 1), 1e-5, "prefill", (1, 16, 128, 128)),
        ((1, 2), 1e-5, "decode", (1, 4, 6528, 128)),
        ((1, 2), 1e-5, "decode", (1, 16, 16, 128)),
        ((1, 2), 1e-5, "decode", (1, 4, 16, 128)),
        ((1, 2), 1e-5, "prefill", (1, 16, 128, 128)),
        ((1, 8), 1e-5, "decode", (1, 1, 6528, 128)),
        ((1, 8), 1e-5, "decode", (1, 1, 4, 128)),
        ((1, 8), 1e-5, "decode", (1, 32, 4, 128)),
        ((1, 8), 1e-5, "decode", (1, 4, 4, 128)),
        ((1, 8), 1e-5, "prefill", (1, 4, 128, 128)),
    ],
    "Llama-3.2-90B-Vision": [
        ((1, 8), 1e-5, "decode", (1, 1, 8, 128)),
        ((1, 8), 1e-5, "prefill", (1, 8, 128, 128)),
    ],  # and (1, 1, 6528, 128) decode, as 11B's
    "Qwen3-32B": [
        *(
            ((1, 8), 1e-6, "prefill", (1, heads, rows, 128))
            for rows in (128, 1024, 2048, 4096, 16384)
            for heads in (8, 1)
        ),
        ((1, 8), 1e-6, "decode", (1, 1, 8, 128)),
        ((1, 8), 1e-6, "decode", (1, 1, 1, 128)),
    ],
}
DECODE_ROWS = 32
NORM_PCC = 0.999  # upstream's threshold on every row
NORM_SEED = 1234


def _norm_cases():
    cases = []
    for model, (dim, eps, meshes) in RESIDUAL_NORMS.items():
        for mesh, lengths in meshes.items():
            for length in lengths:
                mode, rows = ("decode", DECODE_ROWS) if length == DECODE else ("prefill", length)
                case_id = f"{mesh[0]}x{mesh[1]}-{mode}-{rows}-{model}"
                cases.append(pytest.param(mesh, dim, eps, mode, (1, 1, rows, dim), True, id=case_id))
    for model, rows in HEAD_NORMS.items():
        for mesh, eps, mode, shape in rows:
            case_id = f"{mesh[0]}x{mesh[1]}-{mode}-{'x'.join(map(str, shape[1:3]))}-heads-{model}"
            cases.append(pytest.param(mesh, shape[-1], eps, mode, shape, False, id=case_id))
    return cases


def _every_device(tensor, mesh):
    """Every device's output stacked on dim 0 (each device holds the whole normalised tensor)."""
    return ttnn.to_torch(tensor, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=0)).float()


@pytest.mark.parametrize(
    "ttnn_mesh_device, dim, eps, mode, shape, residual", _norm_cases(), indirect=["ttnn_mesh_device"]
)
def test_rmsnorm_1d_vs_reference(ttnn_mesh_device, dim, eps, mode, shape, residual, reference_check):
    """Upstream's collected cases against transformers' LlamaRMSNorm holding the same weight, every device's output
    read back. A residual norm takes its input split over the devices (TTTv1's fractured residual) with RMSNorm1D's
    defaults (distributed prefill where TTTv1 has it, as upstream's rows say: dim > 4096 on more than one device); a
    head norm takes it whole and interleaved. A repeated forward reuses its programs."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    mesh, devices = ttnn_mesh_device, ttnn_mesh_device.get_num_devices()
    rows = math.prod(shape[:-1])
    # a norm's decode golden is a few rows: affordable at any width
    compare = reference_check.compares(mode == "decode" or numerics.shadow_affordable(dim=dim, mode=mode, seq_len=rows))
    generator = torch.Generator().manual_seed(NORM_SEED)
    if compare:
        weight = torch.randn(dim, generator=generator).bfloat16()
        x = torch.randn(shape, generator=generator).bfloat16()
    else:
        weight, x = torch.empty(dim, device="meta"), torch.empty(shape, device="meta")
    config = (RMSNorm1DConfig if residual else RMSNorm1DConfig.per_head)(LazyWeight(weight), mesh_device=mesh, eps=eps)
    with reference_check.running(compare):
        norm = RMSNorm1D.from_config(config)
        assert norm.config.prefill_distributed == (residual and devices > 1 and dim > 4096)
        out = norm.forward(LazyWeight(x), mode)
        entries = mesh.num_program_cache_entries()
        norm.forward(LazyWeight(x), mode)
        assert mesh.num_program_cache_entries() == entries, "the second call must hit the program cache"
        assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [shape] * devices
        assert out.memory_config() == (norm.config.decode_memcfg if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG)
    if compare:
        hf_norm = LlamaRMSNorm(dim, eps=eps)
        hf_norm.weight.data = weight.float()
        with torch.no_grad():
            expected = hf_norm(x.float())
        reference_check(expected.expand(devices, *shape[1:]), _every_device(out, mesh), min_pcc=NORM_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_bad_input(ttnn_mesh_device):
    with pytest.raises(ValueError, match="must be a multiple of 32"):
        RMSNorm1D(LazyWeight(torch.ones(100)), mesh_device=ttnn_mesh_device)
    with pytest.raises(ValueError, match="cannot be width-split into whole tiles over 2 devices"):
        RMSNorm1D(LazyWeight(torch.ones(96)), mesh_device=ttnn_mesh_device)
    norm = RMSNorm1D(LazyWeight(torch.ones(2048)), mesh_device=ttnn_mesh_device)
    wrong = ttnn.from_torch(
        torch.ones(1, 1, 32, 1024),
        layout=ttnn.TILE_LAYOUT,
        device=ttnn_mesh_device,
        mesh_mapper=ttnn.ReplicateTensorToMesh(ttnn_mesh_device),
    )
    with pytest.raises(ValueError, match="is not the configured"):
        norm.decode_forward(wrong)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_rmsnorm_1d_rejects_galaxy(ttnn_mesh_device):
    with pytest.raises(ValueError, match="use RMSNorm2D on Galaxy"):
        RMSNorm1D(LazyWeight(torch.ones(8192)), mesh_device=ttnn_mesh_device)


# --- TTTv1 parity and the from_model_args bridge ----------------------------------------------------------------
ONE_D = [(1, 1), (1, 2), (1, 8)]
RESIDUAL_NORMS = [  # (weight key, layer, program config key, output memory config key) as TTTv1's decoder / model
    ("attention_norm", 0, "SHARDED_NORM_ATTN_PRGM_CFG", "SHARDED_ATTN_INPUT_MEMCFG"),
    ("ffn_norm", 0, "SHARDED_NORM_MLP_PRGM_CFG", "SHARDED_MLP_INPUT_MEMCFG"),
    ("norm", None, "SHARDED_NORM_LM_HEAD_PRGM_CFG", "LM_HEAD_INPUT_MEMCFG"),
]


def _model_args(model, mesh):
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import ModelArgs

    return ModelArgs(HostMesh.for_shape(mesh), hf_model=model, max_batch_size=32)


def _on_1d_meshes(model):
    """(mesh, TTTv1 ModelArgs) for each 1D mesh TTTv1 accepts ``model`` on (e.g. Qwen2.5-7B only on 1x2)."""
    accepted = []
    for mesh in ONE_D:
        try:
            accepted.append((mesh, _model_args(model, mesh)))
        except ValueError:
            continue
    assert accepted, f"TTTv1 runs {model} on no 1D mesh"
    return accepted


def _norm_weights(args) -> dict:
    """The norm weights TTTv1 reads for layer 0 and the final norm (q/k norms where the model has them)."""
    weights = {
        f"{args.get_state_dict_prefix('', layer)}{key}.weight": torch.randn(args.dim)
        for key, layer, *_ in RESIDUAL_NORMS
    }
    if args.qk_norm:
        prefix = args.get_state_dict_prefix("Attention", 0)
        weights |= {f"{prefix}.{key}.weight": torch.randn(args.head_dim) for key in ("q_norm", "k_norm")}
    return weights


@pytest.fixture
def t3k_cluster(monkeypatch):
    """ccl_topology() asks the live cluster for its type; a host-only process answers as a T3K (Ring on 1x8)."""
    monkeypatch.setattr(ttnn.cluster, "get_cluster_type", lambda: ttnn.cluster.ClusterType.T3K)


def _check_norms_equal_tttv1(host_mesh, args):
    """Every norm TTTv1 builds for layer 0 and the final norm, bridged and by RMSNorm1D's own defaults."""
    from models.common.modules.mlp.mlp_1d import MLP1DConfig

    mc, weights = args.model_config, _norm_weights(args)
    hidden = (LazyWeight(torch.empty(shape, device="meta")) for shape in [(args.dim, args.hidden_dim)] * 3)
    consumer_grids = {  # the core grid of the module each norm feeds
        "attention_norm": None,  # RMSNorm1D's own default: TTTv1's attention input grid
        # TTTv1's MLP (its hidden dim: MLP1D's own padding differs for Qwen2-7B on 1x2, see test_mlp_1d)
        "ffn_norm": MLP1DConfig(
            *hidden, mesh_device=host_mesh, tt_ccl=object(), padded_hidden_dim=args.hidden_dim
        ).decode_input_core_grid,
        "norm": args.lm_head_core_grid,
    }
    for key, layer, program_key, memcfg_key in RESIDUAL_NORMS:
        bridged = RMSNorm1DConfig.from_model_args(host_mesh, object(), args, weights, None, layer, key).resolve()
        assert bridged.weight.host_tensor() is weights[f"{args.get_state_dict_prefix('', layer)}{key}.weight"]
        own = RMSNorm1DConfig(
            LazyWeight(torch.ones(args.dim)),
            mesh_device=host_mesh,
            tt_ccl=object(),
            decode_core_grid=consumer_grids[key],
        ).resolve()
        for cfg in (bridged, own):
            assert repr(cfg.decode_program_config) == repr(mc[program_key]), key
            assert cfg.decode_memcfg == mc[memcfg_key], key
            assert cfg.decode_input_memcfg == mc["DECODE_RESIDUAL_MEMCFG"], key
            assert (cfg.input_fractured, cfg.prefill_distributed) == (
                args.is_multichip,
                args.is_distributed_norm("prefill"),
            )
            assert cfg.topology == args.ccl_topology()
        assert bridged.eps == args.norm_eps and not bridged.add_unit_offset
    for key in ("q_norm", "k_norm") if args.qk_norm else ():
        head = RMSNorm1DConfig.from_model_args(host_mesh, object(), args, weights, None, 0, key).resolve()
        assert head.weight.host_tensor() is weights[f"layers.0.attention.{key}.weight"] and head.dim == args.head_dim
        assert (head.input_fractured, head.decode_sharded, head.prefill_distributed) == (False, False, False)
        assert head.decode_memcfg == ttnn.L1_MEMORY_CONFIG and head.eps == args.norm_eps


@pytest.mark.parametrize("model", shipped_models())
def test_from_model_args_and_defaults_equal_tttv1(model, t3k_cluster):
    """Host-side, every shipped model on every 1D mesh: from_model_args resolves to the arguments TTTv1's decoder
    gives RMSNorm + DistributedNorm, and RMSNorm1D's own defaults (given the consumer's core grid) equal them."""
    from models.tt_transformers.tt.host_mesh import HostMesh

    for mesh, args in _on_1d_meshes(model):
        _check_norms_equal_tttv1(HostMesh.for_shape(mesh), args)


def test_from_model_args_rejects_what_it_cannot_build(t3k_cluster):
    args = _model_args("Llama-3.2-1B-Instruct", (1, 1))
    with pytest.raises(ValueError, match=r"unknown weight_key 'input_layernorm'; use one of \('attention_norm'"):
        RMSNorm1DConfig.from_model_args(None, None, args, {}, None, 0, "input_layernorm")
    with pytest.raises(ValueError, match="distributed decode norm on a \\[2, 4\\] mesh"):
        RMSNorm1DConfig.from_model_args(None, None, _model_args("Llama-3.2-1B-Instruct", (2, 4)), {}, None, 0)
    with pytest.raises(ValueError, match="cannot be used on Galaxy"):
        RMSNorm1D.from_model_args(None, None, types.SimpleNamespace(is_galaxy=True), {}, None, 0)


NORMS = {key: (layer, program_key, memcfg_key) for key, layer, program_key, memcfg_key in RESIDUAL_NORMS}
FROM_MODEL_ARGS_CASES = [  # each residual norm once; 1B: local prefill, phi-4 (dim 5120 > 4096): distributed prefill
    pytest.param((1, 1), "Llama-3.2-1B-Instruct", "ffn_norm", id="1x1-llama-1b-ffn_norm"),
    pytest.param((1, 2), "Llama-3.2-1B-Instruct", "attention_norm", id="1x2-llama-1b-attention_norm"),
    pytest.param((1, 8), "Llama-3.2-1B-Instruct", "norm", id="1x8-llama-1b-norm"),
    pytest.param((1, 2), "phi-4", "attention_norm", id="1x2-phi-4-attention_norm"),
]


@pytest.mark.parametrize("ttnn_mesh_device, model, weight_key", FROM_MODEL_ARGS_CASES, indirect=["ttnn_mesh_device"])
@pytest.mark.parametrize("mode, rows", [("decode", 32), ("prefill", 128)])
def test_rmsnorm_1d_vs_reference_from_model_args(ttnn_mesh_device, model, weight_key, mode, rows, reference_check):
    """Drop-in for TTTv1's DistributedNorm: fed the residual as TTTv1's decoder holds it, from_model_args's
    RMSNorm1D keeps its input, returns what DistributedNorm returns (same layout, same values) and matches HF's
    RMSNorm."""
    from models.common.modules.tt_ccl import get_tt_ccl
    from models.tt_transformers.tt import reference
    from models.tt_transformers.tt.distributed_norm import DistributedNorm
    from models.tt_transformers.tt.model_config import ModelArgs
    from models.tt_transformers.tt.rmsnorm import RMSNorm

    mesh, tt_ccl = ttnn_mesh_device, get_tt_ccl(ttnn_mesh_device)
    args = ModelArgs(mesh, hf_model=model, max_batch_size=32)
    mc, (layer, program_key, memcfg_key) = args.model_config, NORMS[weight_key]
    weight, prefix = torch.randn(args.dim).bfloat16(), args.get_state_dict_prefix("", layer)
    state_dict = {f"{prefix}{weight_key}.weight": weight}
    norm = RMSNorm1D.from_model_args(mesh, tt_ccl, args, state_dict, None, layer, weight_key)
    tttv1_norm = RMSNorm(
        device=mesh,
        dim=args.dim,
        eps=args.norm_eps,
        state_dict=state_dict,
        state_dict_prefix=prefix,
        weight_key=weight_key,
        is_distributed=args.is_distributed_norm,
        sharded_program_config=mc[program_key],
        sharded_output_config=mc[memcfg_key],
        ccl_topology=args.ccl_topology(),
        tt_ccl=tt_ccl,
    )
    kernel_fields = ("math_fidelity", "math_approx_mode", "fp32_dest_acc_en", "packer_l1_acc")
    ours, tttv1s = norm.config.compute_kernel_config, tttv1_norm.compute_kernel_config_hifi2
    assert [getattr(ours, f) for f in kernel_fields] == [getattr(tttv1s, f) for f in kernel_fields]
    residual_memcfg = mc["DECODE_RESIDUAL_MEMCFG"] if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
    x = torch.randn(1, 1, rows, args.dim)
    residual = ttnn.from_torch(
        x,
        dtype=ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        memory_config=residual_memcfg,
        mesh_mapper=ttnn.ShardTensor2dMesh(mesh, dims=(None, 3), mesh_shape=args.cluster_shape),
    )
    out = norm(residual, mode)
    tttv1_out = DistributedNorm(tttv1_norm, args, tt_ccl)(residual, mode)
    assert (
        out.memory_config()
        == tttv1_out.memory_config()
        == (mc[memcfg_key] if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG)
    )
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, rows, args.dim)] * args.num_devices
    every_device = _every_device(out, mesh)
    assert torch.equal(every_device, _every_device(tttv1_out, mesh))
    kept = ttnn.to_torch(residual, mesh_composer=ttnn.ConcatMesh2dToTensor(mesh, args.cluster_shape, dims=(0, 3)))
    assert torch.equal(kept[:1].float(), x.bfloat16().float()), "the residual must survive the norm"
    hf_norm = reference.meta_model(args.reference_config()).model.norm.to_empty(device="cpu").float()
    hf_norm.load_state_dict({"weight": weight.float()})
    with torch.no_grad():
        expected = hf_norm(x.bfloat16().float())
    reference_check(expected.expand(args.num_devices, -1, -1, -1), every_device, min_pcc=0.999)
