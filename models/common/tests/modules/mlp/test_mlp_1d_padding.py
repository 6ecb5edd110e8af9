# SPDX-License-Identifier: Apache-2.0
"""MLP1D built from Qwen2.5-7B-sized HF weights pads the hidden dim as TTTv1 does and still computes Qwen2MLP."""

import pytest
import torch
import ttnn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.mlp.mlp_1d import MLP1D

QWEN25_7B = dict(hidden_size=3584, intermediate_size=18944, hidden_act="silu")  # HF config.json
PADDED_HIDDEN = 19456  # TTTv1 PAD_MLP_CORES 16 on 2 devices: next multiple of 16 * 32 * 2 (test_tttv1_parity_pinned)
WEIGHT_SCALE = 0.02  # HF initializer_range: keeps the activations in bfloat16's comfortable range


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
@pytest.mark.parametrize("mode, seq_len", [("decode", 32), ("prefill", 128)])
def test_padded_hidden_mlp_1d_vs_qwen2_mlp(ttnn_mesh_device, mode, seq_len, reference_check):
    mesh = ttnn_mesh_device
    torch.manual_seed(0)
    reference = Qwen2MLP(Qwen2Config(**QWEN25_7B)).eval()
    for proj in (reference.gate_proj, reference.up_proj, reference.down_proj):
        torch.nn.init.normal_(proj.weight, std=WEIGHT_SCALE)
    gate, up, down = (p.weight.detach() for p in (reference.gate_proj, reference.up_proj, reference.down_proj))
    mlp = MLP1D(LazyWeight(gate.T), LazyWeight(down.T), LazyWeight(up.T), mesh_device=mesh)

    assert (mlp.config.hidden_dim, mlp.config.padded_hidden_dim) == (18944, PADDED_HIDDEN)
    per_device = PADDED_HIDDEN // mesh.get_num_devices()
    assert tuple(mlp.w1.shape)[-1] == tuple(mlp.w3.shape)[-1] == tuple(mlp.w2.shape)[-2] == per_device

    x = torch.randn(1, 1, seq_len, QWEN25_7B["hidden_size"])
    out = mlp.decode_forward(LazyWeight(x)) if mode == "decode" else mlp.prefill_forward(LazyWeight(x), seq_len)
    got = ttnn.to_torch(out, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()
    with torch.no_grad():
        expected = reference(x)
    reference_check(expected, got, min_pcc=0.99)
