# SPDX-License-Identifier: Apache-2.0
"""MLP1D built from Qwen2.5-7B-sized HF weights pads the hidden dim as TTTv1 does and still computes Qwen2MLP."""

import types

import pytest
import torch
import ttnn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP

from models.common.modules.lazy_weight import LazyWeight, zero_padded
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


def test_zero_padded_weight():
    """The padded copy of a weight: zeros appended on the padded dim, its own cache identity, the same weight when
    there is nothing to pad."""
    weight = LazyWeight(torch.randn(4, 6), source_key="checkpoint:layers.0.w1")
    assert zero_padded(weight, -1, 6) is weight
    padded = zero_padded(weight, -1, 8)
    assert padded.source_key == "checkpoint:layers.0.w1|zero-padded dim -1 to 8"
    host = padded.host_tensor()
    assert host.shape == (4, 8) and torch.equal(host[:, :6], weight.host_tensor()) and not host[:, 6:].any()
    assert zero_padded(LazyWeight(torch.ones(6, 4)), -2, 8).host_tensor()[6:].abs().sum() == 0
    with pytest.raises(ValueError, match="cannot pad dim -1 of size 6 down to 4"):
        zero_padded(weight, -1, 4).host_tensor()


def test_bad_padded_hidden_dim_gets_one_clear_error():
    """Checked before anything is converted or uploaded (the host mesh below has no device)."""
    host_mesh = types.SimpleNamespace(
        shape=(1, 2), get_num_devices=lambda: 2, dram_grid_size=lambda: types.SimpleNamespace(x=12, y=1)
    )
    dim, hidden = 256, 1000
    weights = (LazyWeight(torch.empty(dim, hidden)), LazyWeight(torch.empty(hidden, dim)))
    common = dict(mesh_device=host_mesh, tt_ccl=object(), topology=None)
    for padded in (960, 1000):  # smaller than hidden; not whole tiles on each of 2 devices
        with pytest.raises(ValueError, match=f"padded_hidden_dim {padded} must be >= hidden 1000 and split into"):
            MLP1D(weights[0], weights[1], weights[0], padded_hidden_dim=padded, **common)
    with pytest.raises(ValueError, match=r"w3 has shape \(1000, 256\), expected \(256, 1000\)"):
        MLP1D(weights[0], weights[1], weights[1], **common)
