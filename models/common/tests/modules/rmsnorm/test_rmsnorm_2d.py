# SPDX-License-Identifier: Apache-2.0
"""RMSNorm2D: TTTv1's Galaxy norm defaults worked out by hand, forwards on 8x4 / 4x8 against HF's LlamaRMSNorm
(every device read back), the from_model_args drop-in for TTTv1's DistributedNorm, rejections and bad input."""

import types

import pytest
import torch
import ttnn
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2D, RMSNorm2DConfig
from models.common.testing import numerics

SMALL = "Llama-3.2-1B-Instruct"
MIN_PCC = 0.999


def _host_mesh(shape):
    return types.SimpleNamespace(shape=shape, get_num_devices=lambda: shape[0] * shape[1])


def _resolved(dim, shape, **overrides):
    config = RMSNorm2DConfig(LazyWeight(torch.ones(dim)), mesh_device=_host_mesh(shape), tt_ccl=object(), **overrides)
    return config.resolve()


# Worked out from TTTv1 models/tt_transformers/tt/distributed_norm.py DistributedNorm.__init__ (TG=True), with the
# mesh's real column count where TTTv1 writes 4:
#   core_grid_ln = (min(4, dim / cols / 32 / 8), 8); gather_in_mem_cfg shards [32, dim / cols / cores];
#   ln_prg_cfg block_w = subblock_w = dim / cols / cores / 32, block_h 1; ln_sharded_stats_memcfg [32, 32 * cols] on
#   one core. (dim, mesh) → (grid rows, grid cols, shard width, block_w, stats width)
HAND_WORKED = [
    pytest.param(2048, (8, 4), (2, 8, 32, 1, 128), id="llama-1b-8x4"),  # 512 / 32 / 8 = 2 rows, 16 cores
    pytest.param(2048, (4, 8), (1, 8, 32, 1, 256), id="llama-1b-4x8"),  # 256 / 32 / 8 = 1 row, 8 cores
    pytest.param(4096, (8, 4), (4, 8, 32, 1, 128), id="llama-8b-8x4"),  # 1024 / 32 / 8 = 4 rows, 32 cores
    pytest.param(8192, (8, 4), (4, 8, 64, 2, 128), id="llama-70b-8x4"),  # min(4, 8) rows, 2048 / 32 = 64 wide
    pytest.param(8192, (4, 8), (4, 8, 32, 1, 256), id="llama-70b-4x8"),  # 1024 / 32 / 8 = 4 rows, 32 cores
]


@pytest.mark.parametrize("dim, shape, expected", HAND_WORKED)
def test_decode_defaults_by_hand(dim, shape, expected):
    rows, cols, shard_w, block_w, stats_w = expected
    cfg = _resolved(dim, shape)
    assert (cfg.decode_core_grid.y, cfg.decode_core_grid.x) == (rows, cols)
    assert cfg.decode_memcfg.memory_layout == ttnn.TensorMemoryLayout.WIDTH_SHARDED
    assert cfg.decode_memcfg.shard_spec.shape == [32, shard_w]
    assert cfg.decode_memcfg.shard_spec.grid.num_cores() == rows * cols
    program = cfg.decode_program_config
    assert (program.block_w, program.subblock_w, program.block_h, program.inplace) == (block_w, block_w, 1, False)
    assert (program.compute_with_storage_grid_size.x, program.compute_with_storage_grid_size.y) == (cols, rows)
    assert cfg.decode_stats_memcfg.shard_spec.shape == [32, stats_w]
    assert cfg.decode_stats_memcfg.shard_spec.grid.num_cores() == 1
    # the residual as TTTv1's Galaxy decoder holds it (DECODE_RESIDUAL_MEMCFG: L1) in, the sharded layout out
    assert cfg.decode_input_memcfg == ttnn.L1_MEMORY_CONFIG and cfg.decode_output_memcfg == cfg.decode_memcfg
    assert cfg.prefill_input_memcfg == ttnn.DRAM_MEMORY_CONFIG
    # TTTv1 tt/ccl.py tt_sharded_distributed_rmsnorm / tt_distributed_rmsnorm: Linear, 1 link, cluster_axis 1
    assert (cfg.topology, cfg.num_links, cfg.cluster_axis) == (ttnn.Topology.Linear, 1, 1)
    # TTTv1 DistributedNorm ln_cfg (prefill): HiFi2, no approximation, no fp32 or L1 accumulation; decode: ttnn's
    kernel = cfg.compute_kernel_config
    assert kernel.math_fidelity == ttnn.MathFidelity.HiFi2
    assert (kernel.math_approx_mode, kernel.fp32_dest_acc_en, kernel.packer_l1_acc) == (False, False, False)
    assert cfg.decode_compute_kernel_config is None
    assert (cfg.eps, cfg.add_unit_offset) == (1e-5, False)  # TTTv1 RMSNorm defaults


@pytest.mark.parametrize(
    "shape, expected",
    [
        # 5120 / 4 = 1280 = 40 tiles: TTTv1's 4x8 grid would give 40-wide shards; 1 row of 8 takes 5 tiles each
        pytest.param((8, 4), (1, 8, 160), id="8x4"),
        # 5120 / 8 = 640 = 20 tiles fill no row of 8 cores: find_grid(20) = 20 cores (4 rows of 5), 1 tile each
        pytest.param((4, 8), (4, 5, 32), id="4x8"),
    ],
)
def test_widths_tttv1_cannot_shard_take_whole_tiles(shape, expected):
    """Qwen3-32B's dim 5120: where TTTv1's core_grid_ln would cut tiles, the grid Attention2D's input uses."""
    rows, cols, shard_w = expected
    cfg = _resolved(5120, shape)
    assert (cfg.decode_core_grid.y, cfg.decode_core_grid.x) == (rows, cols)
    assert cfg.decode_memcfg.shard_spec.shape == [32, shard_w]
    assert cfg.decode_program_config.block_w == shard_w // 32


# (dim, n_heads, n_kv_heads, head_dim, hidden): Llama-3.2-1B, Llama-3.1-8B, Llama-3.1-70B
LLAMAS = [(2048, 32, 8, 64, 8192), (4096, 32, 8, 128, 14336), (8192, 64, 8, 128, 28672)]


@pytest.mark.parametrize("shape", [(8, 4), (4, 8)])
@pytest.mark.parametrize("dims", LLAMAS, ids=["llama-1b", "llama-8b", "llama-70b"])
def test_defaults_chain_with_attention_2d_and_mlp_2d(dims, shape):
    """By default the norm takes the residual as Attention2D and MLP2D leave it and writes Attention2D's decode
    input layout; MLP2D takes L1 (its decode_input_memcfg), which a norm in front of it is given."""
    from models.common.modules.attention.attention_2d import Attention2DConfig
    from models.common.modules.mlp.mlp_2d import MLP2DConfig

    dim, n_heads, n_kv_heads, head_dim, hidden = dims
    mesh = _host_mesh(shape)

    def weight(*shape):
        return LazyWeight(torch.empty(shape, device="meta"))

    qkv = head_dim * (n_heads + 2 * n_kv_heads)
    attention = Attention2DConfig(
        weight(dim, qkv), weight(n_heads * head_dim, dim), n_heads, n_kv_heads, head_dim, 4096, mesh_device=mesh,
        tt_ccl=object(),
    ).resolve()  # fmt: skip
    mlp = MLP2DConfig(
        w1=weight(dim, hidden), w2=weight(hidden, dim), w3=weight(dim, hidden), mesh_device=mesh, tt_ccl=object()
    ).resolve()
    norm = _resolved(dim, shape)
    assert norm.decode_input_memcfg == attention.decode_residual_memcfg == mlp.decode_output_memcfg
    assert norm.decode_output_memcfg == attention.decode_input_memcfg
    assert norm.prefill_input_memcfg == attention.prefill_input_memcfg == mlp.prefill_input_memcfg
    assert (
        _resolved(dim, shape, decode_output_memcfg=mlp.decode_input_memcfg).decode_output_memcfg
        == ttnn.L1_MEMORY_CONFIG
    )


def test_defaults_equal_tttv1_distributed_norm():
    """The 8x4 defaults against the objects TTTv1's own DistributedNorm (TG) builds, for each Llama width."""
    from models.tt_transformers.tt.distributed_norm import DistributedNorm

    for dim in (2048, 4096, 8192):
        tttv1 = DistributedNorm(None, types.SimpleNamespace(dim=dim), None, TG=True)
        cfg = _resolved(dim, (8, 4))
        assert cfg.decode_memcfg == tttv1.gather_in_mem_cfg
        assert repr(cfg.decode_program_config) == repr(tttv1.ln_prg_cfg)
        assert cfg.decode_stats_memcfg == tttv1.ln_sharded_stats_memcfg
        kernel_fields = ("math_fidelity", "math_approx_mode", "fp32_dest_acc_en", "packer_l1_acc")
        ours, theirs = cfg.compute_kernel_config, tttv1.ln_cfg
        assert [getattr(ours, f) for f in kernel_fields] == [getattr(theirs, f) for f in kernel_fields]


def test_head_local_for_qk_norms():
    """A whole per-head input (TTTv1's q/k norms, RMSNorm with is_distributed=False): no sharded layout, no
    collective, TTTv1 RMSNorm's compute kernel (HiFi2 with fp32 and L1 accumulation) in both modes."""
    cfg = _resolved(128, (8, 4), input_fractured=False)
    assert cfg.splits == 1 and cfg.slice_dim == 128
    assert cfg.decode_program_config is None and cfg.decode_memcfg is None and cfg.decode_stats_memcfg is None
    assert cfg.decode_input_memcfg == cfg.decode_output_memcfg == ttnn.L1_MEMORY_CONFIG
    kernel = cfg.compute_kernel_config
    assert (kernel.math_fidelity, kernel.fp32_dest_acc_en, kernel.packer_l1_acc) == (
        ttnn.MathFidelity.HiFi2,
        True,
        True,
    )
    assert cfg.decode_compute_kernel_config is kernel


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (1, 8)])
def test_rejects_1d_meshes(shape):
    with pytest.raises(ValueError, match=rf"runs on Galaxy meshes .* not \({shape[0]}, {shape[1]}\); use RMSNorm1D"):
        RMSNorm2D(LazyWeight(torch.ones(2048)), mesh_device=_host_mesh(shape))


def test_takes_only_its_own_config():
    """An RMSNorm1DConfig (e.g. a 1D model's q/k norm handed to Attention2D) is refused, not half-read."""
    from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1DConfig

    one_d = RMSNorm1DConfig.per_head(LazyWeight(torch.ones(128)), mesh_device=_host_mesh((8, 4)))
    with pytest.raises(TypeError, match="RMSNorm2D takes an RMSNorm2DConfig, not RMSNorm1DConfig"):
        RMSNorm2D.from_config(one_d)
    head = RMSNorm2DConfig.per_head(LazyWeight(torch.ones(128)), eps=1e-6, add_unit_offset=True)
    assert (head.input_fractured, head.eps, head.add_unit_offset) == (False, 1e-6, True)


def test_rejects_what_it_cannot_split():
    with pytest.raises(ValueError, match="must be a multiple of 32"):
        RMSNorm2D(LazyWeight(torch.ones(100)), mesh_device=_host_mesh((8, 4)), tt_ccl=object())
    with pytest.raises(ValueError, match="cannot be split into whole tiles over 4 mesh devices"):
        RMSNorm2D(LazyWeight(torch.ones(32 * 6)), mesh_device=_host_mesh((8, 4)), tt_ccl=object())
    with pytest.raises(ValueError, match="over the 16 cores of decode_core_grid"):
        grid = ttnn.CoreGrid(y=2, x=8)
        RMSNorm2D(
            LazyWeight(torch.ones(3 * 1024)), mesh_device=_host_mesh((8, 4)), tt_ccl=object(), decode_core_grid=grid
        )


# --- forwards against HF ------------------------------------------------------------------------------------------
def _hf_norm(weight, eps):
    hf = LlamaRMSNorm(weight.numel(), eps=eps)
    hf.weight.data = weight.float().clone()
    return hf


def _whole(out, mesh):
    """Every device's output: mesh rows stacked on dim 0 (each a copy), mesh columns' slices concatenated on dim 3."""
    composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=tuple(mesh.shape), dims=(0, 3))
    return ttnn.to_torch(out, mesh_composer=composer).float()


# --- Collected cases: upstream's RMSNorm2D lists, then ours -------------------------------------------------------
# Upstream tt-metal models/common/tests/modules/rmsnorm/test_rmsnorm_2d.py (commit e7b9a00),
# test_rmsnorm_2d_vs_reference: on 4x8 and 8x4, Llama-3.1-8B's input_layernorm (dim 4096, eps 1e-5 from its HF
# config), PCC 0.998, inputs decode [1, 1, batch, dim] and prefill [batch, 1, seq_len, dim] for the shapes below.
# Upstream .../rmsnorm/test_rmsnorm_2d_wh_galaxy.py (commit 52def65), on 8x4, eps 1e-6, PCC 0.99: final norms of
# dim 8192 ("llama") and 5120 ("qwen") over x + residual, decode 32 rows (residual add fused) and prefill 128 and
# 2048; head-local q/k norms over head_dim 128 (no residual), decode 32, prefill 128 and 2048 rows (q_norm and
# k_norm differ only in their seeded weights: one case here). RMSNorm2D takes no residual (TTTv1's decoder adds it
# before the norm): the final norms run on the sum's shape without the add.
UPSTREAM_EPS = 1e-6  # test_rmsnorm_2d_wh_galaxy.py's EPS
HEAD_DIM = 128
UPSTREAM_CASES = [
    *[
        pytest.param(mesh, 4096, 1e-5, shape, True, 0.998, id=f"{mesh[0]}x{mesh[1]}-llama-8b-{mode}-{shape_id}")
        for mesh in ((4, 8), (8, 4))
        for mode, shape, shape_id in (
            ("decode", (1, 1, 1, 4096), "b1_s1"),
            ("decode", (1, 1, 32, 4096), "b32_s1"),
            ("prefill", (1, 1, 128, 4096), "b1_s128"),
            ("prefill", (1, 1, 512, 4096), "b1_s512"),
            ("prefill", (2, 1, 128, 4096), "b2_s128"),
            ("prefill", (4, 1, 64, 4096), "b4_s64"),
        )
    ],
    *[
        pytest.param((8, 4), dim, UPSTREAM_EPS, (1, 1, rows, dim), True, 0.99, id=f"8x4-final-{dim}-{rows}")
        for dim in (8192, 5120)
        for rows in (32, 128, 2048)
    ],
    *[
        pytest.param((8, 4), HEAD_DIM, UPSTREAM_EPS, (1, 1, rows, HEAD_DIM), False, 0.99, id=f"8x4-head-local-{rows}")
        for rows in (32, 128, 2048)
    ],
]
DECODE_ROWS = 32  # a decode input up to one tile of users


def _mode(shape):
    return "decode" if shape[0] == 1 and shape[2] <= DECODE_ROWS else "prefill"


@pytest.mark.parametrize(
    "ttnn_mesh_device, dim, eps, shape, fractured, min_pcc", UPSTREAM_CASES, indirect=["ttnn_mesh_device"]
)
def test_rmsnorm_2d_vs_reference(ttnn_mesh_device, dim, eps, shape, fractured, min_pcc, reference_check):
    """Upstream's collected cases against HF's LlamaRMSNorm, every device read back (a distributed norm's output is
    split like its input over the mesh columns, a head-local one whole on every device); the second call hits the
    program cache. Cases whose host golden is too costly for CI run dispatched only (meta weight and input)."""
    mesh = ttnn_mesh_device
    mesh_rows, mesh_cols = tuple(mesh.shape)
    mode = _mode(shape)
    compare = reference_check.compares(numerics.shadow_affordable(dim=dim, mode=mode, seq_len=shape[0] * shape[2]))
    device = "cpu" if compare else "meta"
    weight, x = torch.randn(dim, device=device), torch.randn(shape, device=device)
    with reference_check.running(compare):
        norm = RMSNorm2D(LazyWeight(weight), mesh_device=mesh, eps=eps, input_fractured=fractured)
        forward = norm.decode_forward if mode == "decode" else norm.prefill_forward
        out = forward(LazyWeight(x))
        entries = mesh.num_program_cache_entries()
        forward(LazyWeight(x))
        assert mesh.num_program_cache_entries() == entries, "the second call must hit the program cache"
        width = dim // mesh_cols if fractured else dim
        assert {tuple(t.shape) for t in ttnn.get_device_tensors(out)} == {(*shape[:3], width)}
        expected_memcfg = norm.config.decode_output_memcfg if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
        assert out.memory_config() == expected_memcfg
        if compare:
            composer = ttnn.ConcatMesh2dToTensor(
                mesh, mesh_shape=(mesh_rows, mesh_cols), dims=(0, 3 if fractured else 1)
            )
            whole = ttnn.to_torch(out, mesh_composer=composer).float()
    if compare:
        with torch.no_grad():
            expected = _hf_norm(weight, eps)(x)
        copies = (mesh_rows, 1, 1, 1) if fractured else (mesh_rows, mesh_cols, 1, 1)
        reference_check(expected.repeat(*copies), whole, min_pcc=min_pcc)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4), (4, 8)], ids=["8x4", "4x8"], indirect=True)
@pytest.mark.parametrize("mode, rows", [("decode", 32), ("prefill", 128)])
def test_unit_offset(ttnn_mesh_device, mode, rows, reference_check):
    """Ours (not in upstream's lists): a Gemma-style norm scales by 1 + weight (add_unit_offset)."""
    mesh = ttnn_mesh_device
    weight, x = torch.randn(2048), torch.randn(1, 1, rows, 2048)
    norm = RMSNorm2D(LazyWeight(weight), mesh_device=mesh, eps=1e-6, add_unit_offset=True)
    out = (norm.decode_forward if mode == "decode" else norm.prefill_forward)(LazyWeight(x))
    with torch.no_grad():
        expected = _hf_norm(weight + 1.0, 1e-6)(x)
    reference_check(expected.expand(mesh.shape[0], -1, -1, -1), _whole(out, mesh), min_pcc=MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4), (4, 8)], ids=["8x4", "4x8"], indirect=True)
def test_head_local_norm_on_heads(ttnn_mesh_device, reference_check):
    """The q/k norm shape: [1, users, heads, head_dim] replicated, normalised per head."""
    mesh = ttnn_mesh_device
    mesh_rows, mesh_cols = tuple(mesh.shape)
    weight, x = torch.randn(128), torch.randn(1, 8, 8, 128)
    norm = RMSNorm2D(LazyWeight(weight), mesh_device=mesh, input_fractured=False, add_unit_offset=True)
    for forward, memcfg in ((norm.decode_forward, ttnn.L1_MEMORY_CONFIG), (norm.prefill_forward, None)):
        out = forward(LazyWeight(x))
        assert out.memory_config() == (memcfg or ttnn.DRAM_MEMORY_CONFIG)
        with torch.no_grad():
            expected = _hf_norm(weight + 1.0, 1e-5)(x)
        composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=tuple(mesh.shape), dims=(0, 1))
        whole = ttnn.to_torch(out, mesh_composer=composer).float()  # every device holds the same heads
        reference_check(expected.repeat(mesh_rows, mesh_cols, 1, 1), whole, min_pcc=MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_bad_input(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    norm = RMSNorm2D(LazyWeight(torch.ones(2048)), mesh_device=mesh)
    with pytest.raises(ValueError, match=r"input is \[..., 256\] .* it takes \[..., 512\] \(dim 2048 over 4 mesh"):
        norm.prefill_forward(LazyWeight(torch.randn(1, 1, 32, 1024)))
    ids = ttnn.from_torch(
        torch.zeros(1, 1, 32, 2048, dtype=torch.int32),
        dtype=ttnn.uint32,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        mesh_mapper=ttnn.ShardTensor2dMesh(mesh, dims=(None, 3), mesh_shape=tuple(mesh.shape)),
    )
    with pytest.raises(ValueError, match=r"input is \[..., 512\] DataType.UINT32 per device"):
        norm.prefill_forward(ids)
    with pytest.raises(ValueError, match="is not the configured"):
        norm.decode_forward(ids)  # the residual is in L1 for decode


# --- TTTv1 bridge -------------------------------------------------------------------------------------------------
def test_from_model_args_takes_only_the_8x4_tttv1_lays_out():
    from models.tt_transformers.tt.host_mesh import HostMesh
    from models.tt_transformers.tt.model_config import ModelArgs

    for shape in ((4, 8), (1, 8)):
        args = ModelArgs(HostMesh.for_shape(shape), hf_model=SMALL, max_batch_size=32)
        with pytest.raises(ValueError, match=rf"laid out for an 8x4 mesh, not {shape[0]}x{shape[1]}: use RMSNorm1D"):
            RMSNorm2D.from_model_args(None, None, args, {}, None, 0)
    args = ModelArgs(HostMesh.for_shape((8, 4)), hf_model=SMALL, max_batch_size=32)
    with pytest.raises(ValueError, match=r"RMSNorm2D.from_model_args: unknown weight_key 'input_layernorm'"):
        RMSNorm2DConfig.from_model_args(None, None, args, {}, None, 0, "input_layernorm")


NORM_KEYS = [("attention_norm", 0), ("ffn_norm", 0), ("norm", None)]


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
@pytest.mark.parametrize("weight_key, layer", NORM_KEYS, ids=[key for key, _ in NORM_KEYS])
@pytest.mark.parametrize("mode, rows", [("decode", 32), ("prefill", 128)])
def test_rmsnorm_2d_vs_reference_from_model_args(ttnn_mesh_device, weight_key, layer, mode, rows, reference_check):
    """Drop-in for TTTv1's DistributedNorm on a Galaxy: fed the residual as TTTv1's decoder holds it,
    from_model_args's RMSNorm2D keeps its input, returns what DistributedNorm (TG) returns (same layout, same
    values) and matches HF's RMSNorm."""
    from models.common.modules.tt_ccl import get_tt_ccl
    from models.tt_transformers.tt.distributed_norm import DistributedNorm
    from models.tt_transformers.tt.model_config import ModelArgs
    from models.tt_transformers.tt.rmsnorm import RMSNorm

    mesh, tt_ccl = ttnn_mesh_device, get_tt_ccl(ttnn_mesh_device)
    args = ModelArgs(mesh, hf_model=SMALL, max_batch_size=32)
    weight, prefix = torch.randn(args.dim).bfloat16(), args.get_state_dict_prefix("", layer)
    state_dict = {f"{prefix}{weight_key}.weight": weight}
    norm = RMSNorm2D.from_model_args(mesh, tt_ccl, args, state_dict, None, layer, weight_key)
    assert norm.config.eps == args.norm_eps and norm.config.add_unit_offset == args.rms_norm_add_unit_offset
    tttv1_norm = RMSNorm(
        device=mesh,
        dim=args.dim,
        eps=args.norm_eps,
        state_dict=state_dict,
        state_dict_prefix=prefix,
        weight_key=weight_key,
        is_distributed=args.is_distributed_norm,
        tt_ccl=tt_ccl,
    )
    residual_memcfg = args.model_config["DECODE_RESIDUAL_MEMCFG"] if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
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
    tttv1_out = DistributedNorm(tttv1_norm, args, tt_ccl, TG=True)(residual, mode)
    assert out.memory_config() == tttv1_out.memory_config()
    if mode == "decode":  # what TTTv1's Galaxy attention takes
        assert out.memory_config() == args.model_config["SHARDED_ATTN_INPUT_MEMCFG"]
    whole = _whole(out, mesh)
    assert torch.equal(whole, _whole(tttv1_out, mesh))
    assert torch.equal(_whole(residual, mesh)[:1], x.bfloat16().float()), "the residual must survive the norm"
    with torch.no_grad():
        expected = _hf_norm(weight, args.norm_eps)(x.bfloat16().float())
    reference_check(expected.expand(args.cluster_shape[0], -1, -1, -1), whole, min_pcc=MIN_PCC)
