# SPDX-License-Identifier: Apache-2.0
"""TTTv1 modules run on every mesh they support: MLP and (distributed) RMSNorm, decode and prefill, small and large
models, against the HF reference holding the same weights."""

import pytest
import torch
import ttnn

from models.common.modules.tt_ccl import get_tt_ccl
from models.tt_transformers.tt import reference
from models.tt_transformers.tt.distributed_norm import DistributedNorm
from models.tt_transformers.tt.mlp import MLP
from models.tt_transformers.tt.model_config import ModelArgs
from models.tt_transformers.tt.rmsnorm import RMSNorm

SMALL, LARGE = "Llama-3.2-1B-Instruct", "Llama-3.1-70B-Instruct"
CASES = [
    pytest.param((1, 1), SMALL, id="1x1-llama-1b"),
    pytest.param((1, 1), "Llama-3.1-8B-Instruct", id="1x1-llama-8b", marks=pytest.mark.slow),
    pytest.param((1, 2), SMALL, id="1x2-llama-1b"),
    pytest.param((1, 8), SMALL, id="1x8-llama-1b"),
    pytest.param((1, 8), LARGE, id="1x8-llama-70b", marks=pytest.mark.slow),
    pytest.param((8, 4), LARGE, id="8x4-llama-70b"),
]
MODES = [("decode", 32), ("prefill", 128)]


def _args(mesh, model):
    args = ModelArgs(mesh, hf_model=model, max_batch_size=32, max_seq_len=1024)
    args.n_layers = 1
    return args


def _input(args, mesh, rows, memory_config, replicated):
    """The residual as TTTv1 holds it: width-fractured over mesh columns (or replicated), bfloat16."""
    x = torch.randn(1, 1, rows, args.dim)
    dims = (None, None) if replicated else (None, 3)
    mapper = ttnn.ShardTensor2dMesh(mesh, dims=dims, mesh_shape=args.cluster_shape)
    tensor = ttnn.from_torch(
        x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=mapper, memory_config=memory_config
    )
    return x, tensor


def _columns(out, mesh, args):
    """Concatenate the width-fractured output over mesh columns (first mesh row)."""
    composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=tuple(args.cluster_shape), dims=(0, 3))
    return ttnn.to_torch(out, mesh_composer=composer)[:1].float()


@pytest.mark.parametrize("ttnn_mesh_device, model", CASES, indirect=["ttnn_mesh_device"])
@pytest.mark.parametrize("mode, rows", MODES)
def test_tttv1_mlp(ttnn_mesh_device, model, mode, rows, reference_check):
    mesh = ttnn_mesh_device
    args = _args(mesh, model)
    mlp = MLP(mesh, get_tt_ccl(mesh), args, args.load_state_dict(), None, 0, ttnn.bfloat8_b, args.model_config)
    if mode == "decode":
        memcfg = ttnn.L1_MEMORY_CONFIG if args.is_galaxy else args.model_config["SHARDED_MLP_INPUT_MEMCFG"]
    else:
        memcfg = ttnn.DRAM_MEMORY_CONFIG
    x, tt_x = _input(args, mesh, rows, memcfg, replicated=not args.is_galaxy)
    out = mlp(tt_x, mode)
    columns = args.cluster_shape[1]
    assert tuple(ttnn.get_device_tensors(out)[0].shape) == (1, 1, rows, args.dim // columns)
    with torch.no_grad():
        expected = reference.reference_mlp(args)(x.bfloat16()).float()
    reference_check(expected, _columns(out, mesh, args), min_pcc=0.98)


@pytest.mark.parametrize("ttnn_mesh_device, model", CASES[:5], indirect=["ttnn_mesh_device"])
@pytest.mark.parametrize("mode, rows", MODES)
def test_tttv1_distributed_norm(ttnn_mesh_device, model, mode, rows, reference_check):
    mesh = ttnn_mesh_device
    args = _args(mesh, model)
    config = args.model_config
    norm = RMSNorm(
        device=mesh,
        dim=args.dim,
        eps=args.norm_eps,
        state_dict=args.load_state_dict(),
        state_dict_prefix=args.get_state_dict_prefix("", 0),
        weight_key="attention_norm",
        is_distributed=args.is_distributed_norm,
        sharded_program_config=config["SHARDED_NORM_ATTN_PRGM_CFG"],
        sharded_output_config=config["SHARDED_ATTN_INPUT_MEMCFG"],
        ccl_topology=args.ccl_topology(),
        tt_ccl=get_tt_ccl(mesh),
    )
    distributed = DistributedNorm(norm, args, get_tt_ccl(mesh), TG=args.is_galaxy)
    memcfg = config["DECODE_RESIDUAL_MEMCFG"] if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
    x, tt_x = _input(args, mesh, rows, memcfg, replicated=args.num_devices == 1)
    out = distributed(tt_x, mode)
    assert tuple(ttnn.get_device_tensors(out)[0].shape) == (1, 1, rows, args.dim)
    with torch.no_grad():
        expected = reference.reference_rms_norm(args)(x.bfloat16()).float()
    reference_check(expected, ttnn.to_torch(ttnn.get_device_tensors(out)[0]).float(), min_pcc=0.999)
