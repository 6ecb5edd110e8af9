# SPDX-License-Identifier: Apache-2.0
"""The 1D modules on a 1x4 mesh (TTTv1's N150x4: ModelArgs splits heads and hidden over its 4 devices), opened on
the T3K descriptor: decode and prefill against torch / HF references, every device read back."""

import pytest
import torch
import ttnn

from models.common.modules.attention.attention_1d import Attention1D
from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_1d import MLP1D
from models.common.modules.rmsnorm.rmsnorm_1d import RMSNorm1D
from models.common.tests.modules.attention.hf_reference import STANDARD, check_decode, check_prefill

MESH_1X4 = [pytest.param((1, 4), id="1x4")]
DIM, HIDDEN = 2048, 8192  # Llama-3.2-1B
DISTRIBUTED_DIM = 8192  # above TTTv1's 4096: the prefill norm is distributed


def _concat_width(tensor, mesh):
    """Every device's width slice, side by side."""
    return ttnn.to_torch(tensor, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()


@pytest.mark.parametrize("ttnn_mesh_device", MESH_1X4, indirect=True)
@pytest.mark.parametrize("mode, seq_len", [("decode", 32), ("prefill", 128)])
def test_mlp_1d_on_1x4(ttnn_mesh_device, mode, seq_len, reference_check):
    generator = torch.Generator().manual_seed(0)
    w1, w3 = torch.randn(DIM, HIDDEN, generator=generator), torch.randn(DIM, HIDDEN, generator=generator)
    w2 = torch.randn(HIDDEN, DIM, generator=generator)
    mlp = MLP1D(LazyWeight(w1), LazyWeight(w2), LazyWeight(w3), mesh_device=ttnn_mesh_device)
    x = torch.randn(1, 1, seq_len, DIM, generator=generator)
    out = mlp.decode_forward(LazyWeight(x)) if mode == "decode" else mlp.prefill_forward(LazyWeight(x), seq_len)
    assert tuple(out.shape) == (1, 1, seq_len, DIM // 4)  # reduce-scattered: a quarter of dim per device
    expected = (torch.nn.functional.silu(x @ w1) * (x @ w3)) @ w2
    reference_check(expected, _concat_width(out, ttnn_mesh_device), min_pcc=0.99)


@pytest.mark.parametrize("ttnn_mesh_device", MESH_1X4, indirect=True)
@pytest.mark.parametrize("dim", [DIM, DISTRIBUTED_DIM], ids=["local", "distributed"])
def test_rmsnorm_1d_on_1x4(ttnn_mesh_device, dim, reference_check):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(dim, generator=generator)
    norm = RMSNorm1D(LazyWeight(weight), mesh_device=ttnn_mesh_device)
    assert norm.config.input_fractured and norm.config.prefill_distributed == (dim == DISTRIBUTED_DIM)
    for forward, seq_len in ((norm.decode_forward, 32), (norm.prefill_forward, 128)):
        x = torch.randn(1, 1, seq_len, dim, generator=generator)
        out = forward(LazyWeight(x))  # the input is width-split over the 4 devices, the output whole on each
        expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.config.eps) * weight
        for device_out in ttnn.get_device_tensors(out):
            reference_check(expected, ttnn.to_torch(device_out).float(), min_pcc=0.999)


@pytest.mark.parametrize("ttnn_mesh_device", MESH_1X4, indirect=True)
@pytest.mark.parametrize("mode", ["decode", "prefill"])
def test_attention_1d_on_1x4(ttnn_mesh_device, mode, reference_check):
    check = check_prefill if mode == "prefill" else check_decode
    check(Attention1D, ttnn_mesh_device, "Llama-3.2-1B", 128, STANDARD, _concat_width, reference_check)
