# SPDX-License-Identifier: Apache-2.0
"""MLP1D: TTTv1 defaults worked out by hand, forwards on 1x1/1x2/1x8, rejections and bad input."""

import types

import pytest
import torch
import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_1d import MLP1D, MLP1DConfig

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


def _reference(x, w1, w2, w3):
    return (torch.nn.functional.silu(x @ w1) * (x @ w3)) @ w2


def _to_host(tensor, mesh):
    """Compose the width-fractured residual slice of every device back into one tensor."""
    return ttnn.to_torch(tensor, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()


MESHES_1D = [(1, 1), (1, 2), (1, 8)]
IDS_1D = ["1x1", "1x2", "1x8"]


@pytest.mark.parametrize("ttnn_mesh_device", MESHES_1D, ids=IDS_1D, indirect=True)
@pytest.mark.parametrize("mode, seq_len", [("decode", 32), ("prefill", 128), ("prefill", 2048)])
def test_mlp_1d_forward(ttnn_mesh_device, mode, seq_len, reference_check):
    mesh = ttnn_mesh_device
    dim, hidden = LLAMA_1B
    w1, w2, w3 = _weights(dim, hidden)
    mlp = MLP1D(LazyWeight(w1), LazyWeight(w2), LazyWeight(w3), mesh_device=mesh)
    x = torch.randn(1, 1, seq_len, dim)
    forward = mlp.decode_forward if mode == "decode" else lambda t: mlp.prefill_forward(t, seq_len)
    out = forward(LazyWeight(x))
    entries = mesh.num_program_cache_entries()
    out_again = forward(LazyWeight(x))
    assert mesh.num_program_cache_entries() == entries, "the second call must hit the program cache"
    devices = mesh.get_num_devices()
    assert tuple(out.shape) == (1, 1, seq_len, dim // devices)
    assert out.dtype == ttnn.bfloat16
    expected_memcfg = mlp.config.decode_residual_memcfg if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
    assert out_again.memory_config() == expected_memcfg
    reference_check(_reference(x, w1, w2, w3), _to_host(out, mesh), min_pcc=0.99)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_bad_inputs_get_one_clear_error(ttnn_mesh_device):
    mlp = MLP1D(*(LazyWeight(w) for w in _weights(*LLAMA_1B)), mesh_device=ttnn_mesh_device)
    dram_input = ttnn.from_torch(torch.randn(1, 1, 32, LLAMA_1B[0]), layout=ttnn.TILE_LAYOUT, device=ttnn_mesh_device)
    with pytest.raises(ValueError, match=r"input memory config .* is not the configured"):
        mlp.decode_forward(dram_input)
    with pytest.raises(ValueError, match="prefill seq_len 1536 must be a multiple of 1024"):
        mlp.prefill_forward(LazyWeight(torch.randn(1, 1, 1536, LLAMA_1B[0])), 1536)
    with pytest.raises(ValueError, match=r"w2 has \(padded\) shape \(2048, 8192\), expected \(8192, 2048\)"):
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
    shapes = [(args.dim, args.hidden_dim), (args.hidden_dim, args.dim), (args.dim, args.hidden_dim)]
    w1, w2, w3 = (LazyWeight(torch.empty(shape)) for shape in shapes)
    cfg = MLP1DConfig(w1=w1, w2=w2, w3=w3, mesh_device=host_mesh, tt_ccl=object(), topology=None).resolve()
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
    assert cfg.prefill_len_cutoff == args.prefill_len_cutoff


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
