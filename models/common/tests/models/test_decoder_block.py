# SPDX-License-Identifier: Apache-2.0
"""DecoderBlock against HF's decoder layer (LlamaDecoderLayer, Qwen3DecoderLayer, ... as AutoModelForCausalLM builds
it) holding the same weights: two users prefilled with different prompt lengths on the paged cache, then one decode
step of the whole batch at per-user positions (shadow-checked on the mock)."""

import pytest
import torch
import ttnn
from transformers import AutoConfig, AutoModelForCausalLM

from models.common import tensor_utils
from models.common.models.decoder_block import DecoderBlock, parts_for, rope_for
from models.common.models.hf_loading import HFModel
from models.common.modules.attention.attention_steps import PagedAttentionConfig
from models.common.modules.lazy_weight import MeshMapping
from models.tt_transformers.tt.load_checkpoints import MODEL_PARAMS_DIR

USERS = 32
BLOCK_SIZE = 64  # paged-cache block (upstream TTTv2 attention tests)
MAX_SEQ_LEN = 512
PROMPTS = (128, 256)  # users 0 and 1
PCC = 0.99
REPLICATED = MeshMapping.replicate()


def hf_layer(folder, model: HFModel):
    """HF's first decoder layer and rotary embedding for ``folder``'s config, holding ``model``'s raw weights."""
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    config.num_hidden_layers = 1
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(config)
    layer = meta.model.layers[0].to_empty(device="cpu")
    prefix = "model.layers.0."
    layer.load_state_dict({k.removeprefix(prefix): model.raw[k].float() for k in model.raw if k.startswith(prefix)})
    return layer.float().eval(), type(meta.model.rotary_emb)(config)


def hf_run(layer, rotary, x: torch.Tensor) -> torch.Tensor:
    """The HF layer over a whole sequence x [1, S, dim] (causal)."""
    with torch.no_grad():
        positions = torch.arange(x.shape[1])[None]
        return layer(x, position_embeddings=rotary(x, positions), attention_mask=None)


def upload(mesh, x: torch.Tensor, memory_config) -> ttnn.Tensor:
    mapping = parts_for(mesh.shape).residual_mapping
    return tensor_utils.from_host(
        x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=mapping.mapper(mesh),
        memory_config=memory_config,
    )  # fmt: skip


def to_host(mesh, out: ttnn.Tensor) -> torch.Tensor:
    """The residual [1, 1, rows, dim]: the width slices of one mesh row (2D meshes hold copies on the rows)."""
    composer = ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=tuple(mesh.shape), dims=(0, -1))
    return ttnn.to_torch(out, mesh_composer=composer).float()[:1]


def int_table(mesh, table: torch.Tensor, mapping=REPLICATED) -> ttnn.Tensor:
    """A page table on the devices: whole (prefill), or its user rows laid out as attention splits them (decode)."""
    return ttnn.from_torch(
        table, dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT, device=mesh, mesh_mapper=mapping.mapper(mesh)
    )


@pytest.mark.parametrize(
    "ttnn_mesh_device, model_name",
    [((1, 1), "Llama-3.2-1B-Instruct"), ((1, 8), "Llama-3.2-1B-Instruct"), ((1, 2), "Qwen2.5-7B-Instruct"),
     ((1, 8), "Qwen3-32B"), ((1, 2), "phi-4"), ((1, 8), "Mistral-7B-Instruct-v0.3"),
     ((8, 4), "Llama-3.2-1B-Instruct"), ((4, 8), "Llama-3.2-1B-Instruct")],
    ids=["1x1-llama", "1x8-llama", "1x2-qwen2", "1x8-qwen3", "1x2-phi3", "1x8-mistral", "8x4-llama", "4x8-llama"],
    indirect=["ttnn_mesh_device"],
)  # fmt: skip
def test_decoder_block_matches_hf(ttnn_mesh_device, model_name, reference_check):
    mesh = ttnn_mesh_device
    folder = MODEL_PARAMS_DIR / model_name
    model = HFModel.load(folder, n_layers=1)
    d = model.description
    paged = PagedAttentionConfig(BLOCK_SIZE, USERS * MAX_SEQ_LEN // BLOCK_SIZE)
    block = DecoderBlock(
        d, model.weights("layers.0."), mesh, max_seq_len=MAX_SEQ_LEN, max_batch_size=USERS, paged_attention_config=paged
    )
    rope = rope_for(d, mesh, MAX_SEQ_LEN, USERS)
    layer, rotary = hf_layer(folder, model)
    # user u owns blocks [u·B, (u+1)·B) of the pool, in reverse order (the table, not the pool order, decides)
    per_user = MAX_SEQ_LEN // BLOCK_SIZE
    table = (torch.arange(USERS * per_user).reshape(USERS, per_user).flip(-1)).to(torch.int32).contiguous()
    page_table = int_table(mesh, table)
    generator = torch.Generator().manual_seed(0)
    sequences = [torch.randn(1, n + 1, d.dim, generator=generator) for n in PROMPTS]  # prompt + the decoded token
    for user, (n, seq) in enumerate(zip(PROMPTS, sequences, strict=True)):
        x = upload(mesh, seq[None, :, :n], ttnn.DRAM_MEMORY_CONFIG)
        out = block.prefill_forward(x, n, rope.prefill_forward(n), user_id=user, page_table=page_table)
        expected = hf_run(layer, rotary, seq[:, :n])
        reference_check(expected[0], to_host(mesh, out)[0, 0], min_pcc=PCC)
    tokens = torch.randn(1, 1, USERS, d.dim, generator=generator)
    for user, seq in enumerate(sequences):
        tokens[0, 0, user] = seq[0, -1]
    positions = [*PROMPTS, *[0] * (USERS - len(PROMPTS))]
    x = upload(mesh, tokens, block.residual_memcfg)
    decode_table = int_table(mesh, table, block.attention.users_mapping)
    out = block.decode_forward(x, positions, rope.decode_forward(positions), decode_table)
    assert out.memory_config() == block.residual_memcfg
    host = to_host(mesh, out)[0, 0]
    for user, seq in enumerate(sequences):
        reference_check(hf_run(layer, rotary, seq)[0, -1], host[user], min_pcc=PCC)
