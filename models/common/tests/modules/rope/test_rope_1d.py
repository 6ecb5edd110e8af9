# SPDX-License-Identifier: Apache-2.0
"""Rope1D: cos/sin tables against HF's rotary embedding (incl. Llama-3 scaling), the transformation tile, and the
decode / prefill lookups on a device."""

import pytest
import torch
import ttnn
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from models.common import tensor_utils
from models.common.modules.rope.rope_1d import Llama3RopeScaling, Rope1D
from models.common.modules.rope.rope_2d import Rope2D

LLAMA_3_2_1B_SCALING = Llama3RopeScaling(32.0, 1.0, 4.0, 8192)  # HF config.json rope_scaling of Llama-3.2-1B


@pytest.mark.parametrize("scaling", [None, LLAMA_3_2_1B_SCALING], ids=["default", "llama3"])
def test_tables_match_hf_rotary_embedding(scaling):
    head_dim, length, theta = 64, 9000, 500000.0  # past the 8192-token original context: every scaling branch
    rope_scaling = scaling and dict(
        rope_type="llama3",
        factor=scaling.factor,
        low_freq_factor=scaling.low_freq_factor,
        high_freq_factor=scaling.high_freq_factor,
        original_max_position_embeddings=scaling.original_max_position_embeddings,
    )
    config = LlamaConfig(
        hidden_size=2048, num_attention_heads=32, head_dim=head_dim, rope_theta=theta, rope_scaling=rope_scaling
    )
    hf_cos, hf_sin = LlamaRotaryEmbedding(config)(torch.zeros(1), torch.arange(length)[None])
    tuple_scaling = scaling and tuple(vars(scaling).values())
    cos, sin = tensor_utils.rope_cos_sin(head_dim, length, theta, tuple_scaling)
    # HF repeats the half-size frequency vector ([f, f]); the interleaved tables repeat each one ([f0, f0, f1, ...])
    torch.testing.assert_close(cos[0, 0, :, ::2], hf_cos[0, :, : head_dim // 2], atol=1e-5, rtol=0)
    torch.testing.assert_close(sin[0, 0, :, 1::2], hf_sin[0, :, : head_dim // 2], atol=1e-5, rtol=0)


def test_transformation_tile_rotates_interleaved_pairs():
    x = torch.randn(4, 32)
    rotated = x @ tensor_utils.rot_transformation_mat()[0, 0]
    assert torch.equal(rotated[:, 0::2], -x[:, 1::2]) and torch.equal(rotated[:, 1::2], x[:, 0::2])
    assert tensor_utils.rot_transformation_mat(96).shape == (1, 1, 96, 32)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_rope_lookups(ttnn_mesh_device):
    rope = Rope1D(64, 256, 500000.0, scaling=LLAMA_3_2_1B_SCALING, max_batch_size=4, mesh_device=ttnn_mesh_device)
    cos, sin = rope.decode_forward([0, 5, 17, 255])
    assert tuple(cos.shape) == tuple(sin.shape) == (1, 4, 1, 64)
    assert cos.memory_config() == rope.decode_memcfg
    cos, sin = rope.prefill_forward(128, start_pos=128)
    assert tuple(cos.shape) == (1, 1, 128, 64) and cos.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    assert tuple(rope.transformation_mats["decode"].shape) == (1, 1, 4 * 32, 32)
    with pytest.raises(ValueError, match="positions up to 384 exceed the rope tables' max_seq_len 256"):
        rope.prefill_forward(128, start_pos=256)
    with pytest.raises(ValueError, match=r"got 2 positions, expected one per user \(4\)"):
        rope.decode_forward([0, 1])
    with pytest.raises(ValueError, match=r"positions must be in \[0, 256\)"):
        rope.decode_forward([0, 1, 2, 256])
    with pytest.raises(ValueError, match="head_dim 80 must be a multiple of 32"):
        Rope1D(80, 256, 10000.0, mesh_device=ttnn_mesh_device)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4), (4, 8)], ids=["8x4", "4x8"], indirect=True)
def test_rope_2d_splits_users_over_mesh_columns(ttnn_mesh_device):
    """Rope2D: mesh column c gets the rotary rows of users c·n .. (c+1)·n - 1 (n = 32 / columns); every mesh row the
    same. Values read back are the shadow's on the mock tier."""
    mesh = ttnn_mesh_device
    _, cols = tuple(mesh.shape)
    rope = Rope2D(64, 256, 500000.0, mesh_device=mesh)
    positions = list(range(0, 2 * 32, 2))  # user u at position 2u
    cos, _ = rope.decode_forward(positions)
    users = 32 // cols
    assert rope.config.decode_users == users and cos.memory_config() == rope.decode_memcfg
    table, _ = tensor_utils.rope_cos_sin(64, 256, 500000.0, None)
    for index, device_cos in enumerate(ttnn.get_device_tensors(cos)):
        col = index % cols
        assert tuple(device_cos.shape) == (1, users, 1, 64)
        expected = table[0, 0, positions[col * users : (col + 1) * users]]
        torch.testing.assert_close(ttnn.to_torch(device_cos)[0, :, 0].float(), expected, atol=1e-2, rtol=0)
    single = Rope2D(64, 256, 500000.0, max_batch_size=1, mesh_device=mesh)  # one user: its position everywhere
    assert single.config.decode_users == 1 and tuple(single.decode_forward([7])[0].shape) == (1, 1, 1, 64)
    with pytest.raises(ValueError, match=f"max_batch_size 6 must be 1 or a multiple of the {cols} mesh columns"):
        Rope2D(64, 256, 500000.0, max_batch_size=6, mesh_device=mesh)
