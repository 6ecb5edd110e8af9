# SPDX-License-Identifier: Apache-2.0
"""TTTv1 TransformerBlock against the HF decoder layer holding the same weights: prefill one user, then a decode step
of the batch. With TTTv1's modules, and with each TTTv2 module swapped in through its ``from_model_args`` (the switch
a TTTv1 model author makes: ``TransformerBlock(..., feed_forward=MLP1D.from_model_args)``)."""

import pytest
import torch
import ttnn

from models.common.models.hf_loading import RANDOM_WEIGHT_SEED, layer_of, random_weights
from models.common.modules.attention.attention_1d import Attention1D
from models.common.modules.attention.attention_2d import Attention2D
from models.common.modules.mlp.mlp_1d import MLP1D
from models.common.modules.mlp.mlp_2d import MLP2D
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D
from models.common.modules.rmsnorm.rmsnorm_2d import RMSNorm2D
from models.common.modules.tt_ccl import get_tt_ccl
from models.tt_transformers.tt import reference
from models.tt_transformers.tt.decoder import TransformerBlock
from models.tt_transformers.tt.model_config import ModelArgs
from models.tt_transformers.tt.rope import RotarySetup

SMALL, LARGE = "Llama-3.2-1B-Instruct", "Llama-3.1-70B-Instruct"
BATCH = 32  # TTTv1 decodes one tile of users
MAX_SEQ_LEN = 256
PREFILL_LEN = 128
DECODE_STEPS = 3
# Accuracy mode keeps BFP4 MLP weights for 70B-class models (model_config LARGE_BFP4_MODELS): 0.98, as TTTv1's MLP test
MIN_PCC = {SMALL: 0.99, LARGE: 0.98}
SWAPS = {
    "tttv1": {},
    "mlp1d": {"feed_forward": MLP1D.from_model_args},
    "rmsnorm1d": {"attention_norm": RMSNorm1D.from_model_args, "ff_norm": RMSNorm1D.from_model_args},
    "attention1d": {"attention": Attention1D.from_model_args},
}
SWAPS["all-tttv2"] = {key: builder for swap in SWAPS.values() for key, builder in swap.items()}
# On a Galaxy (8x4): the 2D modules
SWAPS["rmsnorm2d"] = {"attention_norm": RMSNorm2D.from_model_args, "ff_norm": RMSNorm2D.from_model_args}
SWAPS["all-tttv2-2d"] = {
    "attention": Attention2D.from_model_args,
    "feed_forward": MLP2D.from_model_args,
    **SWAPS["rmsnorm2d"],
}
CASES = [
    pytest.param((1, 1), SMALL, "tttv1", id="1x1-llama-1b-tttv1"),
    pytest.param((1, 2), SMALL, "tttv1", id="1x2-llama-1b-tttv1"),
    pytest.param((1, 8), SMALL, "tttv1", id="1x8-llama-1b-tttv1"),
    pytest.param((1, 8), SMALL, "mlp1d", id="1x8-llama-1b-mlp1d"),
    pytest.param((1, 8), SMALL, "rmsnorm1d", id="1x8-llama-1b-rmsnorm1d"),
    pytest.param((1, 8), SMALL, "attention1d", id="1x8-llama-1b-attention1d"),
    pytest.param((1, 1), SMALL, "all-tttv2", id="1x1-llama-1b-all-tttv2"),
    pytest.param((1, 8), SMALL, "all-tttv2", id="1x8-llama-1b-all-tttv2"),
    pytest.param((1, 2), SMALL, "all-tttv2", id="1x2-llama-1b-all-tttv2", marks=pytest.mark.slow),
    # TTTv1's own Galaxy layer at dim 8192 (composite all-reduces) and below it (all-gather + fast_reduce_nc)
    pytest.param((8, 4), LARGE, "tttv1", id="8x4-llama-70b-tttv1"),
    pytest.param((8, 4), SMALL, "tttv1", id="8x4-llama-1b-tttv1"),
    pytest.param((8, 4), LARGE, "all-tttv2-2d", id="8x4-llama-70b-all-tttv2-2d", marks=pytest.mark.slow),
    pytest.param((8, 4), SMALL, "rmsnorm2d", id="8x4-llama-1b-rmsnorm2d"),
    pytest.param((8, 4), SMALL, "all-tttv2-2d", id="8x4-llama-1b-all-tttv2-2d"),
    pytest.param((1, 8), LARGE, "tttv1", id="1x8-llama-70b-tttv1", marks=pytest.mark.slow),
    pytest.param((1, 8), LARGE, "all-tttv2", id="1x8-llama-70b-all-tttv2", marks=pytest.mark.slow),
]
_WEIGHTS: dict[str, dict[str, torch.Tensor]] = {}


def _layer_weights(args) -> dict[str, torch.Tensor]:
    """Layer 0's weights exactly as ModelArgs draws random ones (each weight is seeded by its own name), without the
    embedding and LM head that would take most of the test's time."""
    if args.model_name not in _WEIGHTS:
        config = args.reference_config()
        shapes = {
            key: tuple(t.shape) for key, t in reference.meta_model(config).state_dict().items() if layer_of(key) == 0
        }
        drawn = random_weights(shapes, config.initializer_range, RANDOM_WEIGHT_SEED)
        _WEIGHTS[args.model_name] = dict(drawn)  # drawn once for every case and the reference
    return _WEIGHTS[args.model_name]


def _to_host(out, mesh, args, rows):
    """The output residual: fractured over mesh columns (concatenated), the same on every row (the first)."""
    composer = ttnn.ConcatMesh2dToTensor(mesh, dims=(1, 3), mesh_shape=tuple(args.cluster_shape))
    return ttnn.to_torch(out, mesh_composer=composer)[0, 0, :rows].float()


@pytest.mark.parametrize("ttnn_mesh_device, model, swap", CASES, indirect=["ttnn_mesh_device"])
def test_tttv1_decoder(ttnn_mesh_device, model, swap, reference_check):
    mesh = ttnn_mesh_device
    args = ModelArgs(mesh, hf_model=model, max_batch_size=BATCH, max_seq_len=MAX_SEQ_LEN)
    args.n_layers = 1
    weights = _layer_weights(args)
    args.hf_state_dict = lambda: weights  # load_state_dict and the HF reference read these
    # TTTv1 rotates Q and K in one fused op off a Galaxy (ModelArgs.use_qk_fused); TTTv2 attention one at a time
    args.use_qk_fused = args.use_qk_fused and "attention" not in SWAPS[swap]
    rope = RotarySetup(
        mesh, BATCH, args.head_dim, MAX_SEQ_LEN, args.rope_theta, args.rope_scaling, use_qk_fused=args.use_qk_fused
    )
    block = TransformerBlock(
        args, mesh, get_tt_ccl(mesh), ttnn.bfloat8_b, args.load_state_dict(), 0, None, rope.get_both_trans_mats(),
        **SWAPS[swap],
    )  # fmt: skip
    for name, builder in SWAPS[swap].items():
        assert isinstance(getattr(block, name), builder.__self__)  # the TTTv2 module is in place
    hf = reference.reference_decoder(args, dtype=torch.float32)

    # prefill user 0 (its residual in DRAM; as a decode input it is in the wrong layout)
    x = torch.randn(1, PREFILL_LEN, args.dim)
    tt_x = args.prepare_residual_tensor_prefill(x)
    with pytest.raises(ValueError, match="decoder decode input must be the residual in"):
        block(tt_x, None, None, mode="decode")
    end = (1, 1, PREFILL_LEN, args.head_dim)
    rot_mats = [ttnn.slice(table, (0, 0, 0, 0), end) for table in (rope.cos_matrix, rope.sin_matrix)]
    out = block(tt_x, None, rot_mats, user_id=0, mode="prefill")
    reference_check(hf(x, 0)[0], _to_host(out, mesh, args, PREFILL_LEN), min_pcc=MIN_PCC[model])

    # decode every user at the next positions (only user 0 has a history the reference knows)
    for step in range(DECODE_STEPS):
        x = torch.randn(BATCH, 1, args.dim)
        positions = torch.full((BATCH,), PREFILL_LEN + step, dtype=torch.int32)
        tt_x = args.prepare_residual_tensor_decode(x, args.model_config["DECODE_RESIDUAL_MEMCFG"])
        out = block(tt_x, _positions(mesh, args, positions), rope.get_rot_mats(positions), mode="decode")
        assert out.memory_config() == args.model_config["DECODE_RESIDUAL_MEMCFG"]
        reference_check(hf(x[:1], PREFILL_LEN + step)[0], _to_host(out, mesh, args, 1), min_pcc=MIN_PCC[model])


def _positions(mesh, args, positions):
    """Each user's position, int32 on device; on a Galaxy each mesh column holds its own users' (TTTv1 TG and
    Attention2D split the decode batch over the columns)."""
    dims = (None, 0) if args.is_galaxy else (None, None)
    mapper = ttnn.ShardTensor2dMesh(mesh, dims=dims, mesh_shape=args.cluster_shape)
    return ttnn.from_torch(positions, device=mesh, dtype=ttnn.int32, mesh_mapper=mapper)
