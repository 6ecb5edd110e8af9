# SPDX-License-Identifier: Apache-2.0
"""LMHead2D: TTTv1's Galaxy configs by hand, upstream's Galaxy case and ours (final norm + LM head) on 8x4 and 4x8
against HF's, 1D meshes refused."""

from functools import partial

import pytest
import torch
import ttnn

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.lm_head.lm_head_2d import LMHead2D, LMHead2DConfig
from models.common.testing import numerics
from models.common.tests.modules.lm_head.cases import LM_HEAD_2D_CASES
from models.common.tests.modules.lm_head.test_lm_head_1d import MIN_PCC, _reference, _weights
from models.tt_transformers.tt.host_mesh import HostMesh


def _config(vocab, dim, shape, **overrides):
    weight = LazyWeight(torch.empty(vocab, dim, device="meta"))
    return LMHead2DConfig(weight, mesh_device=HostMesh.for_shape(shape), tt_ccl=object(), **overrides).resolve()


def test_llama_8b_on_8x4_by_hand():
    """Llama-3.1-8B (dim 4096) on 8x4, TTTv1 lm_head.py / model_config.py: vocabulary padded to 128·1024 = 131072,
    16384 columns per mesh row; dim / 4 = 1024 per column. lm_head_core_grid on Galaxy: 4 rows (4096 % (1024·4)
    == 0) x 8 = 32 cores; LM_HEAD_INPUT_MEMCFG [32, nearest_32(1024 / 32) = 32]. Weight DRAM-sharded (k 1024,
    n 16384 padded to 43 · 384 = 16512 → [1024, 1376] per bank); dram_matmul_config(32, 1024, 16384, 32):
    in0_block_w 1024 / (32·32) = 1, per_core_N 16384 / 1024 = 16. One split."""
    cfg = _config(128256, 4096, (8, 4))
    assert cfg.padded_vocab_size == 131072 and cfg.split_sizes == (16384,)
    assert (cfg.core_grid.y, cfg.core_grid.x) == (4, 8)
    assert cfg.decode_input_memcfg.shard_spec.shape == [32, 32]
    assert cfg.weight_memcfgs[0].shard_spec.shape == [1024, 1376]
    pc = cfg.program_configs[0]
    assert (pc.in0_block_w, pc.per_core_M, pc.per_core_N) == (1, 1, 16)
    assert (cfg.num_reduce_scatter_links, cfg.num_all_gather_links) == (1, 2)  # TTTv1 ModelArgs on Galaxy


def test_llama_1b_on_8x4_by_hand():
    """Llama-3.2-1B (dim 2048): TTTv1 keeps the Galaxy LM head weight interleaved in DRAM with no program config;
    lm_head_core_grid 2 rows (2048 % (1024·4), % (1024·3) != 0) x 8 = 16 cores, input [32, nearest_32(512 / 16)]."""
    cfg = _config(128256, 2048, (8, 4))
    assert cfg.weight_memcfgs == (ttnn.DRAM_MEMORY_CONFIG,) and cfg.program_configs == (None,)
    assert (cfg.core_grid.y, cfg.core_grid.x) == (2, 8) and cfg.decode_input_memcfg.shard_spec.shape == [32, 32]


def test_vocab_larger_than_tttv1_padding_is_refused():
    """TTTv1 pads the Galaxy vocabulary to 128k and refuses larger ones (Qwen2.5's 152064)."""
    with pytest.raises(ValueError, match="padded_vocab_size 131072 must hold the vocabulary"):
        LMHead2D(LazyWeight(torch.empty(152064, 3584, device="meta")), mesh_device=HostMesh.for_shape((8, 4)), tt_ccl=1)


@pytest.mark.parametrize("ttnn_mesh_device, case", LM_HEAD_2D_CASES, indirect=["ttnn_mesh_device"], scope="module")
def test_lm_head_2d_vs_reference(ttnn_mesh_device, case, reference_check):
    """The normed hidden state (HF LlamaRMSNorm, each mesh column its slice of dim) → LMHead2D against HF's final norm
    + lm_head, with TTTv1's Galaxy split; every mesh row's vocabulary slice is read (gather_logits). Cases whose host
    golden is too costly for CI run dispatched only (meta weights)."""
    mesh, (mode, dim, vocab, splits, eps) = ttnn_mesh_device, case
    rows, last = (32, 31) if mode == "decode" else (64, 40)
    compare = reference_check.compares(numerics.shadow_affordable(dim=dim, mode="decode", seq_len=32))
    if compare:
        norm_weight, head_weight = _weights(vocab, dim)
        x = torch.randn(1, 1, rows, dim, generator=torch.Generator().manual_seed(3))
        normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * norm_weight
    else:
        head_weight, normed = torch.empty(vocab, dim, device="meta"), torch.empty(1, 1, rows, dim, device="meta")
    with reference_check.running(compare):
        head = LMHead2D(LazyWeight(head_weight), mesh_device=mesh)
        assert head.config.split_sizes == splits
        forward = head.decode_forward if mode == "decode" else partial(head.prefill_forward, last_token=last)
        logits = forward(LazyWeight(normed))
        per_device = head.config.vocab_per_device
        assert {tuple(t.shape) for t in ttnn.get_device_tensors(logits)} == {(1, 1, 32, per_device)}
        host = head.gather_logits(logits)  # gathered and untilized on device in every case; numbers if compared
    if compare:
        tile = last // 32 * 32
        reference_check(_reference(vocab, dim, x, eps)[0, 0, tile : tile + 32], host, min_pcc=MIN_PCC)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_lm_head_2d_rejects_1d_meshes(ttnn_mesh_device):
    with pytest.raises(ValueError, match=r"LMHead2D runs on meshes .* not \(1, 8\); use LMHead1D on 1D meshes"):
        LMHead2D(LazyWeight(torch.zeros(4096, 256)), mesh_device=ttnn_mesh_device)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_lm_head_2d_vs_reference_from_model_args(ttnn_mesh_device, reference_check):
    """TTTv1's Galaxy call site with LMHead2D.from_model_args and Embedding2D.from_model_args (Llama-3.2-1B on 8x4):
    the bridged configs are TTTv1's, and tokens → embedding → (HF final norm) → LM head match HF."""
    from models.common.modules.embedding.embedding_2d import Embedding2D
    from models.common.modules.tt_ccl import get_tt_ccl
    from models.tt_transformers.tt.model_config import ModelArgs

    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model="Llama-3.2-1B-Instruct", max_batch_size=32, max_seq_len=256)
    args.n_layers = 1
    state_dict = args.load_state_dict()
    head = LMHead2D.from_model_args(
        args, mesh, get_tt_ccl(mesh), ttnn.bfloat8_b, state_dict, "", None, args.max_columns_per_device_lm_head
    )
    assert head.config.decode_input_memcfg == args.model_config["LM_HEAD_INPUT_MEMCFG"]
    assert head.config.padded_vocab_size == args.padded_vocab_size
    embedding = Embedding2D.from_model_args(mesh, args, None, state_dict, ttnn.bfloat16)
    ids = torch.randint(args.vocab_size, (1, 32), generator=torch.Generator().manual_seed(7))
    embedded = ttnn.to_torch(
        embedding.decode_forward(LazyWeight(ids)),
        mesh_composer=ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=tuple(mesh.shape), dims=(1, 3)),
    )[:, :1].float()  # mesh rows hold copies: row 0's columns make the whole embedding
    table = state_dict["tok_embeddings.weight"].float()
    reference_check(table[ids][None], embedded, min_pcc=0.9999)
    x = table[ids[0]]
    normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + args.norm_eps) * state_dict["norm.weight"].float()
    logits = head.gather_logits(head.decode_forward(LazyWeight(normed[None, None])))
    reference_check(normed @ state_dict["output.weight"].float().T, logits, min_pcc=MIN_PCC)
