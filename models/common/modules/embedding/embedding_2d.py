# SPDX-License-Identifier: Apache-2.0
"""Embedding2D: token ids → the residual stream on Galaxy meshes (8x4, 4x8).

    Embedding(ids) = table[ids]      table = HF embed_tokens.weight (vocab, dim)

decode:  ids [1, 32] uint32 → embedding (tiled) → reshape [1, 1, 32, dim / columns] → L1 interleaved
prefill: ids [1, seq_len] uint32 → embedding (tiled, DRAM) → reshape [1, 1, seq_len, dim / columns]

The table's ``dim`` is split over the mesh columns and replicated over the rows (TTTv1 Embedding: ShardTensor2dMesh
dims (None, 3)), the layout of TTTv1's Galaxy residual stream; its decode residual is L1 interleaved (TTTv1
DECODE_RESIDUAL_MEMCFG on Galaxy, "until residual add typecasts sharded tensors"). Everything else is Embedding1D's.
"""

from dataclasses import dataclass
from typing import ClassVar

import ttnn

from models.common.modules import tt_ccl as ccl
from models.common.modules.embedding.embedding_1d import EmbeddingConfig, EmbeddingModule
from models.common.modules.lazy_weight import MeshMapping


@dataclass(frozen=True)
class Embedding2DConfig(EmbeddingConfig):
    """Everything Embedding2D decides (TTTv1's Galaxy choices by default)."""

    MESH_MAPPING: ClassVar[MeshMapping] = MeshMapping.shard_2d(None, -1)

    def default_decode_output_memcfg(self):
        return ttnn.L1_MEMORY_CONFIG  # TTTv1 DECODE_RESIDUAL_MEMCFG on Galaxy


class Embedding2D(EmbeddingModule):
    """Token embedding on a Galaxy mesh. ``Embedding2D(weight)``, ``from_config(cfg)``, ``from_model_args(...)``."""

    CONFIG = Embedding2DConfig
    MESHES = ccl.TWO_D_MESHES
    WRONG_MESH = "use Embedding1D on 1D meshes (1x1, 1x2, 1x8)"
