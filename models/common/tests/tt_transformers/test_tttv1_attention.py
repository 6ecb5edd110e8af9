# SPDX-License-Identifier: Apache-2.0
"""TTTv1 Attention and RotarySetup: decode, prefill and a paged prefill + decode on every mesh TTTv1 supports,
against the HF attention layer holding the same weights; RotarySetup's tables against HF's rotary embedding."""

import pytest
import torch
import ttnn
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from models.common import tensor_utils
from models.common.models.hf_loading import RANDOM_WEIGHT_SEED, random_weights
from models.common.modules.attention.attention_steps import PagedAttentionConfig
from models.common.modules.tt_ccl import get_tt_ccl
from models.common.tensor_utils import TILE_SIZE
from models.tt_transformers.tt import reference
from models.tt_transformers.tt.attention import Attention
from models.tt_transformers.tt.host_mesh import HostMesh
from models.tt_transformers.tt.model_config import ModelArgs
from models.tt_transformers.tt.rope import RotarySetup, compute_gather_cos_sin

SMALL, LARGE = "Llama-3.2-1B-Instruct", "Llama-3.1-70B-Instruct"
MAX_SEQ_LEN = 256
BATCH = 32  # TTTv1 decodes one tile of users
PREFILL_LEN = 128
PREFILL_USER = 9  # on a Galaxy: served by mesh column 1 (users 8..15), cache slot 1
DECODE_POSITIONS = (0, 1, 2)  # every user at the same position (as upstream's test: TTTv1 Galaxy rope assumes it)
PAGED_DECODE_STEPS = 2
BLOCK_SIZE = 32  # upstream test_attention.py page_params
MESHES = [
    pytest.param((1, 1), SMALL, id="1x1-llama-1b"),
    pytest.param((1, 2), SMALL, id="1x2-llama-1b"),
    pytest.param((1, 8), SMALL, id="1x8-llama-1b"),
    pytest.param((8, 4), SMALL, id="8x4-llama-1b"),
    pytest.param((1, 8), LARGE, id="1x8-llama-70b", marks=pytest.mark.slow),
    pytest.param((8, 4), LARGE, id="8x4-llama-70b", marks=pytest.mark.slow),
]
# decode: rotary_embedding_llama + paged_update_cache, and (1D meshes) the fused Q/K ops. No Galaxy fused case: TTTv1's
# RotarySetup expects 16 positions per mesh column for fused Q/K there and rejects 32 users' (upstream asserts too).
DECODE_CASES = [pytest.param(*p.values, False, id=f"{p.id}-rope", marks=p.marks) for p in MESHES] + [
    pytest.param(*p.values, True, id=f"{p.id}-fused-qk", marks=p.marks) for p in MESHES if p.values[0] != (8, 4)
]


_WEIGHTS: dict[str, dict[str, torch.Tensor]] = {}  # per model, shared by the tests of a process


def _attention_weights(args) -> dict[str, torch.Tensor]:
    """Layer 0's attention weights exactly as ModelArgs draws random ones (each weight is seeded by its own name),
    without the embedding and MLP weights that would take most of the test's time."""
    if args.model_name in _WEIGHTS:
        return _WEIGHTS[args.model_name]
    config = args.reference_config()
    shapes = {
        key: tuple(t.shape) for key, t in reference.meta_model(config).state_dict().items() if ".self_attn." in key
    }
    weights = random_weights(shapes, config.initializer_range, RANDOM_WEIGHT_SEED)
    return _WEIGHTS.setdefault(args.model_name, weights)


def _setup(mesh, model, use_qk_fused=False, paged=False):
    args = ModelArgs(mesh, hf_model=model, max_batch_size=BATCH, max_seq_len=MAX_SEQ_LEN)
    args.n_layers = 1
    if args.dummy_weights:
        weights = _attention_weights(args)
        args.hf_state_dict = lambda: weights  # load_state_dict and the HF reference read these
    args.use_qk_fused = use_qk_fused
    rope = RotarySetup(
        mesh,
        args.max_batch_size,
        args.head_dim,
        args.max_seq_len,
        args.rope_theta,
        args.rope_scaling,
        use_qk_fused=use_qk_fused,
    )
    paged_config = PagedAttentionConfig(BLOCK_SIZE, BATCH * MAX_SEQ_LEN // BLOCK_SIZE) if paged else None
    attention = Attention(
        mesh,
        get_tt_ccl(mesh),
        args,
        args.load_state_dict(),
        None,
        0,
        ttnn.bfloat8_b,
        rope.get_both_trans_mats(),
        args,
        paged_attention_config=paged_config,
    )
    return args, rope, attention, reference.reference_attention(args, dtype=torch.float32)


def _positions(mesh, args, positions):
    """Each user's position, int32 on device (Galaxy: each mesh column holds its users' positions)."""
    dims = (None, 0) if args.is_galaxy else (None, None)
    mapper = ttnn.ShardTensor2dMesh(mesh, dims=dims, mesh_shape=args.cluster_shape)
    return ttnn.from_torch(positions, device=mesh, dtype=ttnn.int32, mesh_mapper=mapper)


def _page_table(mesh, args):
    """Shuffled blocks, max_seq_len / block_size per user (upstream test_attention.py)."""
    blocks = BATCH * MAX_SEQ_LEN // BLOCK_SIZE
    table = torch.randperm(blocks, generator=torch.Generator().manual_seed(0)).reshape(BATCH, -1).to(torch.int32)
    mapper = ttnn.ShardTensor2dMesh(mesh, dims=(None, None), mesh_shape=args.cluster_shape)
    return ttnn.from_torch(table, device=mesh, dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT, mesh_mapper=mapper)


def _to_host(out, mesh, args, rows):
    """The output residual: fractured over mesh columns (concatenated), the same on every row (the first)."""
    composer = ttnn.ConcatMesh2dToTensor(mesh, dims=(1, 3), mesh_shape=tuple(args.cluster_shape))
    return ttnn.to_torch(out, mesh_composer=composer)[0, 0, :rows, : args.dim].float()


def _decode(args, mesh, rope, attention, x, positions, page_table=None):
    """One decode step: x [BATCH, 1, dim], positions [BATCH]; returns the output [BATCH, dim]."""
    tt_x = args.prepare_residual_tensor_decode(
        x, args.model_config["SHARDED_ATTN_INPUT_MEMCFG"], force_replicated=not args.is_galaxy
    )
    out = attention(
        tt_x, _positions(mesh, args, positions), rot_mats=rope.get_rot_mats(positions), page_table=page_table
    )
    assert tuple(ttnn.get_device_tensors(out)[0].shape)[-2:] == (32, args.dim // args.cluster_shape[1])
    return _to_host(out, mesh, args, BATCH)


def _prefill(args, mesh, rope, attention, x, user_id, page_table=None):
    """Prefill one user: x [1, seq_len, dim]; returns the output [seq_len, dim]."""
    seq_len = x.shape[1]
    tt_x = args.prepare_residual_tensor_prefill(x, force_replicated=not args.is_galaxy)
    # the rows of the tables for positions 0 .. seq_len - 1 (upstream model.py slices them the same way)
    rot_mats = [ttnn.slice(t, (0, 0, 0, 0), (1, 1, seq_len, args.head_dim)) for t in (rope.cos_matrix, rope.sin_matrix)]
    out = attention(tt_x, None, rot_mats=rot_mats, user_id=user_id, mode="prefill", page_table=page_table)
    assert out.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    return _to_host(out, mesh, args, seq_len)


def _meta_layout(t: torch.Tensor) -> torch.Tensor:
    """HF rotate-half head layout [x0 .. x(D/2-1), y0 ..] -> TTTv1's interleaved pairs [x0, y0, x1, y1, ...]."""
    return t.unflatten(-1, (2, -1)).transpose(-1, -2).flatten(-2)


@pytest.mark.parametrize("ttnn_mesh_device, model, use_qk_fused", DECODE_CASES, indirect=["ttnn_mesh_device"])
def test_tttv1_attention_decode(ttnn_mesh_device, model, use_qk_fused, reference_check):
    mesh = ttnn_mesh_device
    args, rope, attention, hf = _setup(mesh, model, use_qk_fused)
    for position in DECODE_POSITIONS:
        x = torch.randn(BATCH, 1, args.dim)
        out = _decode(args, mesh, rope, attention, x, torch.full((BATCH,), position, dtype=torch.int32))
        reference_check(hf(x, position)[:, 0], out, min_pcc=0.99)


@pytest.mark.parametrize("ttnn_mesh_device, model", MESHES, indirect=["ttnn_mesh_device"])
def test_tttv1_attention_prefill(ttnn_mesh_device, model, reference_check):
    """Prefill user PREFILL_USER: the output, and the user's KV-cache slot on every device that serves it (on a
    Galaxy one mesh column; the other columns' slot stays empty)."""
    mesh = ttnn_mesh_device
    args, rope, attention, hf = _setup(mesh, model)
    x = torch.randn(1, PREFILL_LEN, args.dim)
    out = _prefill(args, mesh, rope, attention, x, PREFILL_USER)
    reference_check(hf(x, 0)[0], out, min_pcc=0.99)
    users_per_group, columns = attention.batch_size_per_device_group, args.cluster_shape[1]
    slot, serving_column = PREFILL_USER % users_per_group, PREFILL_USER // users_per_group
    hf_layer = hf.cache.layers[0]
    for cache, expected in zip(attention.layer_past, (_meta_layout(hf_layer.keys), hf_layer.values), strict=True):
        slots = [ttnn.to_torch(t)[slot, :, :PREFILL_LEN].float() for t in ttnn.get_device_tensors(cache)]
        serving = slots if not args.is_galaxy else slots[serving_column::columns]  # in head order
        reference_check(expected[0], torch.cat(serving), min_pcc=0.99)
        others = [s for i, s in enumerate(slots) if args.is_galaxy and i % columns != serving_column]
        assert all(not s.any() for s in others), "a mesh column that does not serve the user changed its cache"


@pytest.mark.parametrize(
    "ttnn_mesh_device, model", [pytest.param((1, 2), SMALL, id="1x2-llama-1b")], indirect=["ttnn_mesh_device"]
)
def test_tttv1_attention_paged(ttnn_mesh_device, model, reference_check):
    """Paged KV cache: prefill user 0 through the page table, then decode it (the other users idle at 0)."""
    mesh = ttnn_mesh_device
    args, rope, attention, hf = _setup(mesh, model, paged=True)
    table = _page_table(mesh, args)
    x = torch.randn(1, PREFILL_LEN, args.dim)
    reference_check(hf(x, 0)[0], _prefill(args, mesh, rope, attention, x, 0, table), min_pcc=0.99)
    for step in range(PAGED_DECODE_STEPS):
        positions = torch.zeros(BATCH, dtype=torch.int32)
        positions[0] = PREFILL_LEN + step
        x = torch.randn(BATCH, 1, args.dim)
        out = _decode(args, mesh, rope, attention, x, positions, table)
        reference_check(hf(x[:1], PREFILL_LEN + step)[0], out[:1], min_pcc=0.99)


@pytest.mark.parametrize("model", [SMALL, "Qwen3-32B"], ids=["llama3-scaled", "plain"])
def test_rotary_setup_tables_match_hf(model):
    """Host only: RotarySetup's cos / sin tables and transformation tile, applied as rotary_embedding_llama does
    (x · cos + (x @ T per 32-wide block) · sin on the interleaved layout), equal HF's rotary embedding."""
    args = ModelArgs(HostMesh.for_shape((1, 1)), hf_model=model, max_seq_len=MAX_SEQ_LEN)
    cos, sin = compute_gather_cos_sin(args.head_dim, 2 * MAX_SEQ_LEN, args.rope_theta, args.rope_scaling)
    assert tuple(cos.shape) == (1, 1, MAX_SEQ_LEN, args.head_dim)
    config = args.reference_config()
    hf_rotary = type(reference.meta_model(config).model.rotary_emb)(config)
    hf_cos, hf_sin = hf_rotary(torch.zeros(1), torch.arange(MAX_SEQ_LEN)[None])
    q = torch.randn(1, args.n_heads, MAX_SEQ_LEN, args.head_dim)
    expected, _ = apply_rotary_pos_emb(q, q, hf_cos, hf_sin)
    trans = tensor_utils.rot_transformation_mat()[0, 0]
    q_meta = _meta_layout(q)
    ours = q_meta * cos + (q_meta.unflatten(-1, (-1, TILE_SIZE)) @ trans).flatten(-2) * sin
    torch.testing.assert_close(ours, _meta_layout(expected), atol=1e-4, rtol=1e-4)


def test_rotary_setup_rejects_unsupported_scaling():
    with pytest.raises(NotImplementedError, match="rope_scaling type 'yarn' is not supported"):
        compute_gather_cos_sin(64, 256, 10000.0, {"rope_type": "yarn", "factor": 4.0})


def test_tttv1_attention_rejects_a_4x8_galaxy():
    """TTTv1's Galaxy layout is 8x4 (as upstream); a 4x8 mesh gets a clear error before anything is built."""
    mesh = HostMesh.for_shape((4, 8))
    args = ModelArgs(mesh, hf_model=SMALL, max_seq_len=MAX_SEQ_LEN)
    with pytest.raises(ValueError, match="not 4x8: open the mesh as 8x4, or use TTTv2's Attention2D"):
        Attention(mesh, None, args, {}, None, 0, ttnn.bfloat8_b, {}, args)
