# SPDX-License-Identifier: Apache-2.0
"""TTTv1 Embedding: token ids → embeddings, the table split by ``dim`` over the mesh columns.

The output is already the residual stream as TTTv1 holds it: each device has ``dim / columns`` of every embedding
(replicated over mesh rows). Left out from upstream: ScaledEmbedding (Gemma's ``embed_scale``) and the in-place
weight ``update`` used for weight transfer.
"""

import ttnn

from models.common.modules.lightweight_module import LightweightModule
from models.tt_transformers.tt.case_collection import record_case

WEIGHT_KEY = "tok_embeddings.weight"
CASES_FILE = "embedding_1d_performance"
CASES_HEADER = ("mesh_rows", "mesh_cols", "tokens", "vocab_size", "dim", "weight_dtype", "hf_model_name")


class Embedding(LightweightModule):
    def __init__(self, mesh_device, args, weight_cache_path, state_dict, dtype):
        super().__init__()
        self.mesh_device = mesh_device
        self.args = args
        name = args.get_state_dict_prefix("", None) + WEIGHT_KEY
        cached = not args.dummy_weights and weight_cache_path is not None
        self.weights = ttnn.as_tensor(
            state_dict[name].unsqueeze(0).unsqueeze(0),  # [1, 1, vocab, dim]
            dtype=dtype,  # ttnn.embedding reads a ROW_MAJOR table: bfloat16
            device=mesh_device,
            mesh_mapper=ttnn.ShardTensor2dMesh(mesh_device, dims=(None, 3), mesh_shape=args.cluster_shape),
            layout=ttnn.ROW_MAJOR_LAYOUT,
            memory_config=args.get_model_config()["EMB_WEIGHTS_MEMCFG"],
            cache_file_name=weight_cache_path / name if cached else None,
        )

    def forward(self, x: ttnn.Tensor, memory_config=None) -> ttnn.Tensor:
        """x: [1, tokens] uint32 row-major → [1, tokens, dim / columns] tiled."""
        vocab, dim = self.args.vocab_size, self.args.dim
        row = (*self.args.cluster_shape, x.shape[-1], vocab, dim, self.weights.dtype, self.args.model_name)
        record_case(CASES_FILE, CASES_HEADER, row)
        return ttnn.embedding(x, self.weights, layout=ttnn.TILE_LAYOUT, memory_config=memory_config)
