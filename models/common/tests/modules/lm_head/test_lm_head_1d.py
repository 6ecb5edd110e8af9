# SPDX-License-Identifier: Apache-2.0
"""LMHead1D: TTTv1's vocabulary splits and configs by hand, final norm + LM head on 1x1/1x2/1x8 against HF's, the
TTTv1 bridge, tied embeddings, bad input."""

import math

import pytest
import torch
import ttnn
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from models.common.modules.embedding.embedding_1d import Embedding1D
from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.lm_head.lm_head_1d import LMHead1D, LMHead1DConfig
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D
from models.common.modules.tt_ccl import get_tt_ccl
from models.common.testing import numerics
from models.common.tests.modules.lm_head.cases import (
    LM_HEAD_1D_CASES,
    SAME_HEAD_AS_SHIPPED,
    UPSTREAM_1D,
    UPSTREAM_2D,
)
from models.tt_transformers.tt.host_mesh import HostMesh
from models.tt_transformers.tt.load_checkpoints import shipped_models

MIN_PCC = 0.99  # bfloat8_b weights and logits (TTTv1's dtypes)
UPSTREAM_MIN_PCC = 0.999  # upstream test_lm_head_1d.py's threshold for its collected cases
EPS = 1e-5


def _config(vocab, dim, shape, **overrides):
    weight = LazyWeight(torch.empty(vocab, dim, device="meta"))
    return LMHead1DConfig(weight, mesh_device=HostMesh.for_shape(shape), **overrides).resolve()


def test_llama_1b_splits_by_hand():
    """Llama-3.2-1B (dim 2048, vocab 128256), TTTv1 model_config.py / lm_head.py on Wormhole:
    lm_head_core_grid: 8 rows x 8 cols (2048 % (32·8·8) == 0) = 64 cores; max_columns_per_device 668·64 = 42752;
    1x1: 128256 columns → 3 splits of 42752; 1x8: 16032 columns → one split.
    LM_HEAD_INPUT_MEMCFG [32, nearest_32(2048 / 64) = 32]; dram_matmul_config(32, 2048, 42752, 64):
    in0_block_w = 2048 / (32·64) = 1, per_core_M 1, per_core_N ceil(42752 / 2048) = 21; the weight split
    DRAM-sharded over 12 banks: n padded to ceil(42752 / 384)·384 = 43008 → [2048, 3584] per bank."""
    cfg = _config(128256, 2048, (1, 1))
    assert (cfg.core_grid.y, cfg.core_grid.x) == (8, 8) and cfg.max_columns_per_device == 42752
    assert cfg.padded_vocab_size == 128256 and cfg.split_sizes == (42752, 42752, 42752)
    assert cfg.decode_input_memcfg.shard_spec.shape == [32, 32]
    pc = cfg.program_configs[0]
    assert (pc.in0_block_w, pc.per_core_M, pc.per_core_N) == (1, 1, 21)
    assert cfg.weight_memcfgs[0].shard_spec.shape == [2048, 3584]
    assert cfg.weight_dtype == ttnn.bfloat8_b and cfg.output_dtype == ttnn.bfloat8_b
    kernel = cfg.compute_kernel_config
    assert kernel.math_fidelity == ttnn.MathFidelity.HiFi2 and not kernel.fp32_dest_acc_en and kernel.packer_l1_acc
    on_t3k = _config(128256, 2048, (1, 8))
    assert on_t3k.split_sizes == (16032,) and on_t3k.program_configs[0].per_core_N == 8  # ceil(16032 / 2048)


def test_qwen_7b_splits_by_hand():
    """Qwen2.5-7B (dim 3584, vocab 152064) on 1x2: lm_head_core_grid 7 rows x 8 (3584 % 2048 != 0,
    3584 % (32·7·8) == 0) = 56 cores; max 668·56 = 37408 columns; 152064 / 2 = 76032 → splits 37408, 37408, 1216.
    Input [32, 3584 / 56 = 64]; split 0: in0_block_w 3584 / (32·56) = 2, per_core_N ceil(37408 / 1792) = 21;
    split 2: per_core_N ceil(1216 / 1792) = 1."""
    cfg = _config(152064, 3584, (1, 2))
    assert (cfg.core_grid.y, cfg.core_grid.x) == (7, 8) and cfg.max_columns_per_device == 37408
    assert cfg.split_sizes == (37408, 37408, 1216)
    assert cfg.decode_input_memcfg.shard_spec.shape == [32, 64]
    assert [(p.in0_block_w, p.per_core_N) for p in cfg.program_configs] == [(2, 21), (2, 21), (2, 1)]


def test_vocab_not_in_whole_tiles_per_device_is_padded():
    """Qwen2.5-1.5B's 151936 on 8 devices is 18992 columns each, not whole tiles (TTTv1 would fail the matmul):
    padded to 8 · nearest_32(18992) = 152064; the padding columns are dropped by gather_logits."""
    assert _config(151936, 1536, (1, 8)).padded_vocab_size == 152064


_WEIGHTS = {}  # (vocab, dim) -> (norm weight, LM head weight): one head at a time (cases run grouped by head shape)


def _weights(vocab, dim):
    """Seeded (norm weight, LM head weight), drawn once for the cases of one head shape."""
    if (vocab, dim) not in _WEIGHTS:
        _WEIGHTS.clear()
        generator = torch.Generator().manual_seed(2)
        norm_weight = 1 + 0.1 * torch.randn(dim, generator=generator)
        _WEIGHTS[(vocab, dim)] = norm_weight, torch.randn(vocab, dim, generator=generator).bfloat16()
    return _WEIGHTS[(vocab, dim)]


def _reference(vocab, dim, x, eps=EPS):
    """HF's final norm (LlamaRMSNorm) then the LM head's matmul."""
    norm_weight, head_weight = _weights(vocab, dim)
    norm = LlamaRMSNorm(dim, eps=eps)
    norm.weight.data = norm_weight
    with torch.no_grad():
        return norm(x) @ head_weight.float().T


def test_upstream_heads_are_shipped_configs():
    """The (dim, vocab) upstream states for each listed model is the shipped config's (or its stand-in's)."""
    from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR, load_hf_config, text_config

    listed = [(model, dim, vocab) for _, model, dim, vocab, _ in UPSTREAM_1D]
    listed += [(model, dim, vocab) for model, (dim, vocab) in UPSTREAM_2D.items()]
    for upstream_model, dim, vocab in listed:
        config = text_config(
            load_hf_config(MODEL_PARAMS_DIR / SAME_HEAD_AS_SHIPPED.get(upstream_model, upstream_model))
        )
        assert (config.hidden_size, config.vocab_size) == (dim, vocab), upstream_model


_BUILT = {}  # (vocab, dim) -> (mesh, LMHead1D, RMSNorm1D): the cases of one head on a mesh share its build


def _head_and_norm(mesh, vocab, dim, eps):
    built = _BUILT.get((vocab, dim))
    if built is None or built[0] is not mesh:
        _BUILT.clear()
        norm_weight, head_weight = _weights(vocab, dim)
        head = LMHead1D(LazyWeight(head_weight), mesh_device=mesh)
        norm = RMSNorm1D(LazyWeight(norm_weight), mesh_device=mesh, eps=eps, decode_core_grid=head.config.core_grid)
        built = _BUILT[(vocab, dim)] = mesh, head, norm
    return built[1:]


# scope="module": a mesh stays open over its cases (pytest reopens an indirect fixture per param set otherwise)
@pytest.mark.parametrize("ttnn_mesh_device, case", LM_HEAD_1D_CASES, indirect=["ttnn_mesh_device"], scope="module")
def test_lm_head_1d_vs_reference(ttnn_mesh_device, case, reference_check):
    """Upstream's collected cases: final norm (RMSNorm1D writing the LM head's input layout) + LMHead1D against
    LlamaRMSNorm + the head's matmul, every device's vocabulary slice read (gather_logits); the first vocabulary
    split is upstream's (TTTv1's). Cases whose host golden is too costly for CI run dispatched only (meta weights)."""
    mesh, (mode, dim, vocab, first_split, eps) = ttnn_mesh_device, case
    rows, last = (32, 31) if mode == "decode" else (128, 100)
    compare = reference_check.compares(numerics.shadow_affordable(dim=dim, mode="decode", seq_len=32))
    if compare:
        x = torch.randn(1, 1, rows, dim, generator=torch.Generator().manual_seed(3))
    else:
        x = torch.empty(1, 1, rows, dim, device="meta")
    with reference_check.running(compare):
        if compare:
            head, norm = _head_and_norm(mesh, vocab, dim, eps)
        else:
            head = LMHead1D(LazyWeight(torch.empty(vocab, dim, device="meta")), mesh_device=mesh)
            norm_weight = LazyWeight(torch.empty(dim, device="meta"))
            norm = RMSNorm1D(norm_weight, mesh_device=mesh, eps=eps, decode_core_grid=head.config.core_grid)
        assert head.config.split_sizes[0] == first_split
        if mode == "decode":
            logits = head.decode_forward(norm.decode_forward(LazyWeight(x)))
        else:
            logits = head.prefill_forward(norm.prefill_forward(LazyWeight(x)), last_token=last)
        per_device = head.config.padded_vocab_size // mesh.get_num_devices()
        devices = mesh.get_num_devices()
        assert [tuple(t.shape) for t in ttnn.get_device_tensors(logits)] == [(1, 1, 32, per_device)] * devices
        host = head.gather_logits(logits)  # gathered and untilized on device in every case; numbers if compared
    if compare:
        assert tuple(host.shape) == (32, vocab)
        tile = last // 32 * 32
        reference_check(_reference(vocab, dim, x, eps)[0, 0, tile : tile + 32], host, min_pcc=UPSTREAM_MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_tied_embedding_and_lm_head_share_one_source(ttnn_mesh_device, reference_check):
    """tie_word_embeddings: Embedding1D and LMHead1D take the same LazyWeight; its source is read once, and the
    tokens' embeddings → final norm → LM head match the tied reference."""
    mesh, vocab, dim = ttnn_mesh_device, 4096, 256
    table = torch.randn(vocab, dim, generator=torch.Generator().manual_seed(4)).bfloat16()
    reads = []
    tied = LazyWeight(lambda: reads.append(1) or table)
    embedding = Embedding1D(tied, mesh_device=mesh)
    head = LMHead1D(tied, mesh_device=mesh)
    norm = RMSNorm1D(LazyWeight(torch.ones(dim)), mesh_device=mesh, eps=EPS, decode_core_grid=head.config.core_grid)
    assert reads == [1]
    ids = torch.randint(vocab, (1, 32), generator=torch.Generator().manual_seed(5))
    logits = head.gather_logits(head.decode_forward(norm.decode_forward(embedding.decode_forward(LazyWeight(ids)))))
    x = table.float()[ids[0]]
    expected = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)) @ table.float().T
    reference_check(expected, logits, min_pcc=MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_lm_head_1d_bad_input(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    weight = LazyWeight(torch.randn(4096, 256).bfloat16())
    with pytest.raises(ValueError, match=r"LM head weight must be \(vocab, dim\)"):
        LMHead1D(LazyWeight(torch.zeros(1, 4096, 256)), mesh_device=mesh)
    with pytest.raises(ValueError, match="padded_vocab_size 4000 must hold the vocabulary"):
        LMHead1D(weight, mesh_device=mesh, padded_vocab_size=4000)
    with pytest.raises(ValueError, match=r"split_sizes \(1024,\) must add up to 2048"):
        LMHead1D(weight, mesh_device=mesh, split_sizes=(1024,))
    head = LMHead1D(weight, mesh_device=mesh)
    wrong = ttnn.from_torch(
        torch.zeros(1, 1, 32, 256),
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        mesh_mapper=ttnn.ReplicateTensorToMesh(mesh),
    )
    with pytest.raises(ValueError, match="is not the configured"):
        head.decode_forward(wrong)
    with pytest.raises(ValueError, match="last_token 64 is not a row of the 64-row prefill input"):
        head.prefill_forward(LazyWeight(torch.zeros(1, 1, 64, 256)), last_token=64)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_lm_head_1d_rejects_galaxy(ttnn_mesh_device):
    with pytest.raises(ValueError, match=r"LMHead1D runs on meshes .* not \(8, 4\); use LMHead2D on Galaxy"):
        LMHead1D(LazyWeight(torch.zeros(4096, 256)), mesh_device=ttnn_mesh_device)


# --- the TTTv1 bridge --------------------------------------------------------------------------------------------
def _tttv1_accepts(model, shape):
    from models.tt_transformers.tt.model_config import ModelArgs

    try:
        return ModelArgs(HostMesh.for_shape(shape), hf_model=model, max_batch_size=32)
    except ValueError:  # e.g. Qwen2.5-7B only on 1x2
        return None


def _meta_head_state_dict(args) -> dict:
    return {
        f"{args.get_state_dict_prefix('', None)}output.weight": torch.empty(args.vocab_size, args.dim, device="meta")
    }


@pytest.mark.parametrize("model", shipped_models())
def test_from_model_args_and_defaults_equal_tttv1(model):
    """On every 1D mesh TTTv1 runs ``model`` on: the bridged config and LMHead1D's own defaults both give TTTv1's
    lm_head_core_grid, LM_HEAD_INPUT_MEMCFG, max_columns_per_device and lm_head.py's splits."""
    for shape in [(1, 1), (1, 2), (1, 8)]:
        args = _tttv1_accepts(model, shape)
        if args is None:
            continue
        mesh, state_dict = HostMesh.for_shape(shape), _meta_head_state_dict(args)
        bridged = LMHead1DConfig.from_model_args(
            args, mesh, object(), ttnn.bfloat8_b, state_dict, "", None, args.max_columns_per_device_lm_head
        ).resolve()
        own = LMHead1DConfig(LazyWeight(torch.empty(args.vocab_size, args.dim, device="meta")), mesh_device=mesh)
        # TTTv1 lm_head.py: size_per_device = vocab // devices; full splits of max_columns, then the rest. Where
        # that is not whole tiles (Qwen3's 151936 on 8 devices) TTTv2 pads the vocabulary to whole tiles per device.
        per_device = math.ceil(args.vocab_size // args.num_devices / 32) * 32
        full, rest = divmod(per_device, args.max_columns_per_device_lm_head)
        tttv1_splits = (args.max_columns_per_device_lm_head,) * full + ((rest,) if rest else ())
        for cfg in (bridged, own.resolve()):
            assert (cfg.core_grid.x, cfg.core_grid.y) == (args.lm_head_core_grid.x, args.lm_head_core_grid.y)
            assert cfg.decode_input_memcfg == args.model_config["LM_HEAD_INPUT_MEMCFG"], (model, shape)
            assert cfg.max_columns_per_device == args.max_columns_per_device_lm_head
            assert cfg.split_sizes == tttv1_splits, (model, shape)
            assert [repr(p) for p in cfg.program_configs] == [
                repr(args.dram_matmul_config(32, args.dim, size, args.lm_head_core_grid.num_cores))
                for size in tttv1_splits
            ]


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_lm_head_1d_vs_reference_from_model_args(ttnn_mesh_device, reference_check):
    """TTTv1's call site (Transformer: norm then LMHead(args, mesh, tt_ccl, dtype, state_dict, prefix, cache,
    max_columns)) with LMHead1D / RMSNorm1D.from_model_args, Llama-3.2-1B on 1x2 (two splits: 42752 + 21376), against
    HF's final norm + lm_head holding the state dict's weights."""
    from models.tt_transformers.tt.model_config import ModelArgs

    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model="Llama-3.2-1B-Instruct", max_batch_size=32, max_seq_len=256)
    args.n_layers = 1
    state_dict = args.load_state_dict()
    tt_ccl = get_tt_ccl(mesh)
    prefix = args.get_state_dict_prefix("", None)
    head = LMHead1D.from_model_args(
        args, mesh, tt_ccl, ttnn.bfloat8_b, state_dict, prefix, None, args.max_columns_per_device_lm_head
    )
    assert head.config.split_sizes == (42752, 21376)
    norm = RMSNorm1D.from_model_args(mesh, tt_ccl, args, state_dict, None, None, "norm")
    x = torch.randn(1, 1, 32, args.dim, generator=torch.Generator().manual_seed(6))
    logits = head.gather_logits(head.forward(norm.forward(LazyWeight(x), mode="decode")))
    reference = LlamaRMSNorm(args.dim, eps=args.norm_eps)
    reference.weight.data = state_dict[f"{prefix}norm.weight"].float()
    with torch.no_grad():
        expected = reference(x[0, 0]) @ state_dict[f"{prefix}output.weight"].float().T
    reference_check(expected, logits, min_pcc=MIN_PCC)
