# SPDX-License-Identifier: Apache-2.0
"""Attention2D: Galaxy defaults, forwards on 8x4 / 4x8 against the HF attention layer (standard, paged,
paged-chunked), rejections both ways and bad input."""

import dataclasses
import types

import pytest
import torch
import ttnn

from models.common.modules.attention.attention_2d import Attention2D, Attention2DConfig
from models.common.modules.lazy_weight import LazyWeight
from models.common.testing import numerics
from models.common.tests.modules.attention.hf_reference import (
    CHUNKED,
    DECODE_BATCH,
    MODELS,
    PAGED,
    STANDARD,
    build,
    check_decode,
    check_model_args_forwards,
    check_prefill,
    check_tttv1_configs,
    device_int,
    hf_layer,
    page_table,
)


def _config(dims, shape, mesh=None, **overrides):
    """A config on ``mesh`` (default: a stand-in with only the mesh shape and device count)."""
    dim, n_heads, n_kv_heads, head_dim = dims
    mesh = mesh or types.SimpleNamespace(shape=shape, get_num_devices=lambda: shape[0] * shape[1])
    qkv = head_dim * (n_heads + 2 * n_kv_heads)
    wqkv, wo = LazyWeight(torch.zeros(dim, qkv)), LazyWeight(torch.zeros(n_heads * head_dim, dim))
    return Attention2DConfig(
        wqkv, wo, n_heads, n_kv_heads, head_dim, 4096, mesh_device=mesh, tt_ccl=object(), **overrides
    )


def test_galaxy_defaults_split_heads_over_rows():
    cfg = _config((8192, 64, 8, 128), (8, 4)).resolve()
    # TTTv1 TG: one KV head group per mesh row (8 rows → 8 q heads and 1 kv head per device)
    assert (cfg.n_local_heads, cfg.n_local_kv_heads) == (8, 1)
    assert (cfg.wqkv_dtype, cfg.wo_dtype, cfg.kv_cache_dtype, cfg.ccl_dtype) == (ttnn.bfloat8_b,) * 4
    assert cfg.wqkv_memcfg == cfg.wo_memcfg == ttnn.DRAM_MEMORY_CONFIG  # TTTv1 TG weights: DRAM interleaved
    # SHARDED_ATTN_INPUT_MEMCFG: dim / 4 columns = 2048 = 1024 * 2 → 4 rows of 8 cores, shards [32, 2048 / 32]
    assert cfg.decode_input_memcfg.shard_spec.shape == [32, 64] and cfg.decode_input_core_grid.num_cores == 32
    # XQKV_DECODE_PROGCFG (70B): 128 * 80 / 8 rows / 32 = 40 output tiles → grid (8, 5), in0_block_w = 64 / 32 = 2
    p = cfg.decode_xqkv_prg_config
    assert (p.compute_with_storage_grid_size.y, p.in0_block_w, p.per_core_N) == (5, 2, 1)
    # XQKV_PREFILL_PROGCFG: per_core_N = ceil(10240 / 4 columns / 32 / 8) = 10
    assert cfg.prefill_xqkv_prg_config(128).per_core_N == 10
    # WO_PREFILL_PROGCFG (Galaxy): in0_block_w 1, out_subblock_w 1, fused batch up to 1024 rows
    short, long = cfg.prefill_wo_prg_config(128), cfg.prefill_wo_prg_config(4096)
    assert (short.in0_block_w, short.out_subblock_w, short.fuse_batch, long.fuse_batch) == (1, 1, True, False)
    assert cfg.decode_wo_prg_config is None and cfg.decode_residual_memcfg == ttnn.L1_MEMORY_CONFIG
    assert cfg.prefill_input_memcfg == ttnn.DRAM_MEMORY_CONFIG
    assert cfg.num_all_gather_links == 2  # TTTv1 num_all_gather_links on Galaxy
    # the 1D-only choices (T3K's fused all-gather matmul, the sharded K/V cache fill) are no Galaxy fields
    assert not {"use_fused_all_gather_matmul", "min_kv_prefill_shard_seqlen"} & {
        f.name for f in dataclasses.fields(cfg)
    }
    # 4x8: 4 rows → 16 q heads and 2 kv heads per device; dim / 8 columns = 1024 → 4 rows of 8 cores, [32, 32]
    wide = _config((8192, 64, 8, 128), (4, 8)).resolve()
    assert wide.n_local_kv_heads == 2 and wide.decode_input_memcfg.shard_spec.shape == [32, 32]
    # Qwen3-32B on 4x8: 5120 / 8 = 640 fills no row of 8 cores with whole tiles → 1D grid find_grid(20) = 20 cores
    assert _config((5120, 64, 8, 128), (4, 8)).resolve().decode_input_core_grid.num_cores == 20


def test_galaxy_rejects_heads_that_do_not_split_over_rows():
    with pytest.raises(ValueError, match=r"n_heads \(28\) and n_kv_heads \(4\) must both divide over 8"):
        _config((3584, 28, 4, 128), (8, 4)).resolve()
    # decode users split over the mesh columns: 8 per column on 8x4, 4 on 4x8; a single user is column 0's
    assert [_config((2048, 32, 8, 64), shape).resolve().decode_users for shape in ((8, 4), (4, 8))] == [8, 4]
    assert _config((2048, 32, 8, 64), (4, 8), max_batch_size=1).resolve().decode_users == 1
    for batch in (6, 64):
        with pytest.raises(ValueError, match=f"max_batch_size {batch} must be 1 or a multiple of the 4 mesh columns"):
            _config((2048, 32, 8, 64), (8, 4), max_batch_size=batch).resolve()


MESHES_2D = [(8, 4), (4, 8)]
# --- Collected cases: upstream's Attention2D lists, then ours -------------------------------------------------------
# Upstream tt-metal models/common/tests/modules/attention/test_attention_2d.py (commit 9816a6a),
# test_attention_2d_vs_reference: Llama-3.1-8B (dim 4096, 32 / 8 heads, head_dim 128), bfloat8_b weights, batch 32,
# max_seq_len 2048: prefill 512 rows of one user; decode of the 32 users after a 128-token prefill. Upstream runs
# only 8x4 prefill (it skips 4x8, "sharding mismatch", and decode, "SDPA collapses ...") and asserts shapes and finite
# values; Attention2D runs all four against the HF layer.
# Upstream .../attention/test_attention_2d_wh_galaxy.py (commit 5595e56): on 8x4, "llama-70b" (8192, 64 / 8 heads)
# and "qwen3-32b" (5120, 8 KV heads, q/k norms, eps 1e-6), batch 32, max_seq_len 2048: decode at positions 127 and
# 128, then prefill 128 and 2048 of one user, PCC 0.99. Here Llama-3.3-70B and Qwen3-32B from their configs
# (hf_reference.MODELS; Qwen3-32B has 64 query heads where upstream's spec says 40). Decode prefills its users with
# whole multiples of 128 tokens, so it decodes at position 128 (and on), not 127.
DECODE_PROMPT = 128
UPSTREAM_CASES = [
    *[
        (mesh, "Llama-3.1-8B", mode, length)
        for mesh in MESHES_2D
        for mode, length in (("prefill", 512), ("decode", 128))
    ],
    *[
        ((8, 4), model, mode, length)
        for model in ("Llama-3.3-70B", "Qwen3-32B")
        for mode, length in (("decode", DECODE_PROMPT), ("prefill", 128), ("prefill", 2048))
    ],
]
# Ours: the paged and paged-chunked variants upstream's 2D lists lack. The DISPATCHED_IN_CI mark is kept from the
# earlier list (there, host goldens of this size measured 30-170 s each on the shared 2-core machine).
OUR_CASES = [
    pytest.param((4, 8), "Llama-3.1-8B", "prefill", 256, CHUNKED),
    pytest.param((4, 8), "Llama-3.1-8B", "decode", 128, PAGED, marks=numerics.DISPATCHED_IN_CI),
    pytest.param((8, 4), "Llama-3.3-70B", "prefill", 2048, PAGED),
    pytest.param((4, 8), "Llama-3.3-70B", "prefill", 4096, CHUNKED),
]
CASES = [pytest.param(*case, STANDARD) for case in UPSTREAM_CASES] + OUR_CASES


def _case_id(case):
    mesh, model, mode, length, variant = case.values
    return f"{mesh[0]}x{mesh[1]}-{model}-{mode}-{length}-{variant}"


def _to_host(tensor, mesh):
    """Every mesh row holds the whole output, split along dim over the columns: compose and keep one row."""
    rows, cols = tuple(mesh.shape)
    composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=(rows, cols), dims=(0, -1))
    return ttnn.to_torch(tensor, mesh_composer=composer).float()[:1]


@pytest.mark.parametrize(
    "ttnn_mesh_device, model, mode, length, variant",
    CASES,
    ids=[_case_id(c) for c in CASES],
    indirect=["ttnn_mesh_device"],
)
def test_attention_2d_vs_reference(ttnn_mesh_device, model, mode, length, variant, reference_check, request):
    """Numbers through the shadow where numerics.shadow_affordable says so (and the case is not marked
    DISPATCHED_IN_CI), dispatched only otherwise."""
    dim = MODELS[model][1]["hidden_size"]
    affordable = numerics.shadow_affordable(dim=dim, mode=mode, seq_len=length) and numerics.unmarked(request)
    check = check_prefill if mode == "prefill" else check_decode
    check(Attention2D, ttnn_mesh_device, model, length, variant, _to_host, reference_check, affordable)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_qk_norm_add_unit_offset(ttnn_mesh_device, mode, reference_check):
    """The composed q/k norm config is honoured whole: Gemma-style offsets (HF weight - 1, far from 1) with
    add_unit_offset scale Q and K as the HF layer's weights do; ignoring the offset would scale by ~0."""
    check = check_prefill if mode == "prefill" else check_decode
    check(Attention2D, ttnn_mesh_device, "Qwen3-small", 128, STANDARD, _to_host, reference_check, unit_offset=True)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_attention_2d_bad_input_and_dispatcher(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    config, layer, _ = hf_layer("Llama-3.2-1B")
    attention, rope = build(Attention2D, mesh, config, layer, DECODE_BATCH, 256, paged=False)
    with pytest.raises(ValueError, match="seq_len 64 must be a positive multiple of 128"):
        attention.prefill_forward(LazyWeight(torch.randn(1, 1, 64, 2048)), 64, rope.prefill_forward(64))
    with pytest.raises(ValueError, match="decode position 300 is past max_seq_len 256"):
        attention.decode_forward(LazyWeight(torch.zeros(1, 1, 32, 2048)), [300] * DECODE_BATCH, None)
    out = attention.forward(LazyWeight(torch.randn(1, 1, 128, 2048)), None, rope.prefill_forward(128), mode="prefill")
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, 128, 512)] * 32
    positions = [128] * DECODE_BATCH
    out = attention.forward(LazyWeight(torch.zeros(1, 1, 32, 2048)), positions, rope.decode_forward(positions))
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, 32, 512)] * 32
    # a paged decode takes each column's rows of the page table (users_mapping), not the whole table
    paged, _ = build(Attention2D, mesh, config, layer, DECODE_BATCH, 256, paged=True)
    host_table, whole = page_table(mesh, DECODE_BATCH, 256)
    with pytest.raises(ValueError, match=r"page_table of shape \(8, blocks per user\) on each device, got \(32, 4\)"):
        paged.decode_forward(LazyWeight(torch.zeros(1, 1, 32, 2048)), positions, rope.decode_forward(positions), whole)
    split = device_int(mesh, host_table, paged.users_mapping)
    out = paged.decode_forward(
        LazyWeight(torch.zeros(1, 1, 32, 2048)), positions, rope.decode_forward(positions), split
    )
    assert [tuple(t.shape) for t in ttnn.get_device_tensors(out)] == [(1, 1, 32, 512)] * 32


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_attention_2d_rejects_1d_meshes(ttnn_mesh_device):
    config, layer, _ = hf_layer("Llama-3.2-1B")
    with pytest.raises(ValueError, match="use Attention1D"):
        build(Attention2D, ttnn_mesh_device, config, layer, 1, 128, paged=False)


# --- TTTv1 parity and the from_model_args bridge ----------------------------------------------------------------
def _model_args_cases():
    """(model, mesh) for every shipped model TTTv1 accepts on a Galaxy mesh whose heads split over its rows."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.load_checkpoints import shipped_models
    from models.tt_transformers.tt.model_config import ModelArgs

    cases = []
    for model in shipped_models():
        for mesh in MESHES_2D:
            try:
                args = ModelArgs(HostMesh.for_shape(mesh), hf_model=model, max_batch_size=32)
            except ValueError:  # TTTv1 rejects this model on this mesh (e.g. phi-4's 10 KV heads over 4 columns)
                continue
            if args.n_kv_heads % mesh[0] == 0:
                cases.append(pytest.param(model, mesh, id=f"{model}-{mesh[0]}x{mesh[1]}"))
    return cases


@pytest.mark.parametrize("model, mesh", _model_args_cases())
def test_defaults_equal_tttv1_model_config(model, mesh):
    """Attention2D's own defaults (no ModelArgs involved) reproduce TTTv1's Galaxy model_config keys and its default
    dtypes and fidelities. TTTv1's input grid, XQKV_DECODE_PROGCFG and XQKV_PREFILL_PROGCFG assume 4 mesh columns
    (and name Llama 70B/90B): they are compared on 8x4 where TTTv1's config holds its output; ours must always
    cover the device's tensors."""
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import (
        DecodersPrecision,
        ModelArgs,
        ModelOptimizations,
        OpGroup,
        TensorGroup,
    )

    host_mesh = HostMesh.for_shape(mesh)
    args = ModelArgs(host_mesh, hf_model=model, max_batch_size=32)
    mc = args.model_config
    # TTTv1's default precision (per-model overrides, e.g. bf16 Qwen attention, come in through from_model_args)
    precision = DecodersPrecision(1, model, ModelOptimizations())
    dims = (args.dim, args.n_heads, args.n_kv_heads, args.head_dim)
    cfg = _config(dims, mesh, host_mesh).resolve()
    pairs = {
        "CREATE_QKV_DECODE_SHARD": cfg.decode_create_qkv_heads_memcfg,
        "SDPA_DECODE_PROGCFG": cfg.decode_sdpa_prg_config,
        "ATTN_OUTPUT_PROGCFG": cfg.decode_wo_prg_config,
        "DECODE_RESIDUAL_MEMCFG": cfg.decode_residual_memcfg,
    }
    check_tttv1_configs(cfg, mc, pairs)
    dtypes = {TensorGroup.WQKV: cfg.wqkv_dtype, TensorGroup.WO: cfg.wo_dtype, TensorGroup.KV_CACHE: cfg.kv_cache_dtype}
    for group, ours in dtypes.items():
        assert ours == precision.get_tensor_dtype(0, group), group
    assert cfg.ccl_dtype == args.ccl_dtype and cfg.num_all_gather_links == args.num_all_gather_links
    fidelities = {
        OpGroup.LI_QKV_DECODE: cfg.li_qkv_decode_compute_kernel_config,
        OpGroup.SDPA_DECODE: cfg.sdpa_decode_compute_kernel_config,
        OpGroup.LI_O_DECODE: cfg.li_o_decode_compute_kernel_config,
        OpGroup.LI_QKV_PREFILL: cfg.li_qkv_prefill_compute_kernel_config,
        OpGroup.SDPA_PREFILL: cfg.sdpa_prefill_compute_kernel_config,
        OpGroup.LI_O_PREFILL: cfg.li_o_prefill_compute_kernel_config,
    }
    for op, ours in fidelities.items():
        assert _kernel(ours) == _kernel(precision.get_math_fidelity(0, op, configuration=args)), op
    # decode input and QKV matmuls: ours always cover this device's dim / columns and qkv / rows
    rows, cols = mesh
    shard = cfg.decode_input_memcfg.shard_spec
    assert shard.shape[1] * shard.grid.num_cores() == args.dim // cols
    n_tiles = args.qkv_size // rows // 32
    assert _output_tiles(cfg.decode_xqkv_prg_config) >= n_tiles
    prefill_xqkv = cfg.prefill_xqkv_prg_config(128)
    assert prefill_xqkv.per_core_N * prefill_xqkv.compute_with_storage_grid_size.x >= n_tiles
    if mesh == (8, 4):
        for seq_len in (128, 1024, 4096):
            assert repr(cfg.prefill_xqkv_prg_config(seq_len)) == repr(mc["XQKV_PREFILL_PROGCFG"](seq_len))
    if mesh == (8, 4) and _output_tiles(mc["XQKV_DECODE_PROGCFG"]) >= n_tiles:
        assert repr(cfg.decode_input_memcfg) == repr(mc["SHARDED_ATTN_INPUT_MEMCFG"])
        assert repr(cfg.decode_xqkv_prg_config) == repr(mc["XQKV_DECODE_PROGCFG"])


def _kernel(config):
    return (config.math_fidelity, config.math_approx_mode, config.fp32_dest_acc_en, config.packer_l1_acc)


def _output_tiles(program_config):
    grid = program_config.compute_with_storage_grid_size
    return grid.x * grid.y * program_config.per_core_N


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_attention_2d_vs_reference_from_model_args(ttnn_mesh_device, reference_check):
    """One small model through TTTv1's Galaxy ModelArgs (default Llama-3.2-1B-Instruct; HF_MODEL overrides): prefill
    one user, then a decode step of the batch."""
    import os

    from models.common.modules.tt_ccl import get_tt_ccl
    from models.tt_transformers.tt.model_config import ModelArgs

    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model=os.environ.get("HF_MODEL", "Llama-3.2-1B-Instruct"), max_batch_size=32)
    args.n_layers, args.max_seq_len = 1, 256
    attention = Attention2D.from_model_args(mesh, get_tt_ccl(mesh), args, args.load_state_dict(), None, layer_num=0)
    assert repr(attention.config.decode_xqkv_prg_config) == repr(args.model_config["XQKV_DECODE_PROGCFG"])
    check_model_args_forwards(attention, args, mesh, _to_host, reference_check)


def test_from_model_args_takes_only_tttv1_galaxy_meshes():
    for shape in ([1, 8], [4, 8]):
        with pytest.raises(ValueError, match=f"laid out for an 8x4 mesh, not {shape[0]}x{shape[1]}"):
            Attention2D.from_model_args(None, None, types.SimpleNamespace(cluster_shape=shape), {}, None, 0)
