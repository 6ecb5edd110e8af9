# SPDX-License-Identifier: Apache-2.0
"""Embedding1D: token ids → the width-fractured residual stream on 1D meshes (1x1 N150, 1x2 N300, 1x8 T3K).

    Embedding(ids) = table[ids]      table = HF embed_tokens.weight (vocab, dim)

decode:  ids [1, 32] uint32 → embedding (tiled) → reshape [1, 1, 32, dim / N] → decode residual memory config
prefill: ids [1, seq_len] uint32 → embedding (tiled, DRAM) → reshape [1, 1, seq_len, dim / N]

Each device holds ``dim / N`` columns of every row of the table (TTTv1 Embedding: ShardTensor2dMesh dims
(None, 3)), so its output is already the residual stream as TTTv1's first norm takes it (width-fractured; decode
in DECODE_RESIDUAL_MEMCFG, prefill in DRAM). The table is row-major bfloat16 in DRAM: ttnn.embedding reads a
ROW_MAJOR table (TTTv1 EMB_WEIGHTS_MEMCFG). Ids given on the host (a LazyWeight) are checked against the
vocabulary before anything is uploaded. A tied LM head (``tie_word_embeddings``) takes the same LazyWeight.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import LazyWeight, MeshMapping, resolve_lazy_weight
from models.common.modules.lightweight_module import LightweightModule
from models.common.modules.module_config import DecodeBatchRows, ResolvableConfig, VocabTable

WEIGHT_KEY = "tok_embeddings.weight"  # TTTv1 (Meta) name of HF model.embed_tokens.weight


@dataclass(frozen=True)
class EmbeddingConfig(ResolvableConfig, DecodeBatchRows, VocabTable):
    """What Embedding1DConfig and Embedding2DConfig share; ``None`` fields are derived by ``default_*`` methods."""

    weight: LazyWeight  # (vocab, dim): HF embed_tokens.weight
    mesh_device: Any = None
    max_batch_size: int = pc.MAX_DECODE_BATCH
    weight_dtype: ttnn.DataType | None = None
    weight_memcfg: ttnn.MemoryConfig | None = None
    decode_output_memcfg: ttnn.MemoryConfig | None = None
    prefill_output_memcfg: ttnn.MemoryConfig | None = None

    # mesh axis layout of the table: overridden by Embedding2DConfig
    MESH_MAPPING: ClassVar[MeshMapping] = MeshMapping.shard(-1)

    @classmethod
    def from_model_args(cls, mesh_device, args, weight_cache_path, state_dict, dtype=ttnn.bfloat16):
        """TTTv1's Embedding settings from a ModelArgs, same arguments (the only place the embedding touches TTTv1;
        retires with it). Host-side: nothing is uploaded."""
        name = args.get_state_dict_prefix("", None) + WEIGHT_KEY
        cached = weight_cache_path is not None and not args.dummy_weights
        cache = dict(cache_dir=weight_cache_path, cache_name=name) if cached else {}
        return cls(
            LazyWeight(state_dict[name], **cache),
            mesh_device=mesh_device,
            max_batch_size=args.max_batch_size,
            weight_dtype=dtype,
        )

    def default_mesh_device(self):
        return self.weight.device or ttnn.GetDefaultDevice()

    def default_weight_dtype(self):
        return ttnn.bfloat16  # ttnn.embedding reads a row-major bfloat16 table (TTTv1 passes dtype=ttnn.bfloat16)

    def default_weight_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG  # TTTv1 EMB_WEIGHTS_MEMCFG

    def default_prefill_output_memcfg(self):
        return ttnn.DRAM_MEMORY_CONFIG  # TTTv1 Transformer.prepare_inputs_prefill: the prompt in DRAM


@dataclass(frozen=True)
class Embedding1DConfig(EmbeddingConfig):
    """Everything Embedding1D decides (TTTv1's choices by default)."""

    def default_decode_output_memcfg(self):
        # TTTv1 DECODE_RESIDUAL_MEMCFG: the device's dim / N width-sharded in L1
        return pc.decode_residual_memcfg(self.dim, self.mesh_device.get_num_devices(), self.tile_padded_batch_rows)


class EmbeddingModule(LightweightModule):
    """The token embedding on a mesh; Embedding1D and Embedding2D set the config class and the meshes taken."""

    CONFIG: ClassVar[type] = EmbeddingConfig
    MESHES: ClassVar[tuple] = ()
    WRONG_MESH: ClassVar[str] = ""

    def __init__(self, weight: LazyWeight, **overrides):
        self._init_from_config(self.CONFIG(weight=weight, **overrides))

    def _init_from_config(self, config: EmbeddingConfig) -> None:
        cfg = config.resolve()
        shape = tuple(cfg.mesh_device.shape)
        if shape not in self.MESHES:
            raise ValueError(f"{type(self).__name__} runs on meshes {self.MESHES}, not {shape}; {self.WRONG_MESH}")
        if len(cfg.weight.shape) != 2:
            raise ValueError(f"embedding weight must be (vocab, dim) as HF embed_tokens.weight, got {cfg.weight.shape}")
        self.config = cfg
        self.weights = {
            "weight": resolve_lazy_weight(
                cfg.weight,
                dtype=cfg.weight_dtype,
                layout=ttnn.ROW_MAJOR_LAYOUT,
                memory_config=cfg.weight_memcfg,
                mesh_mapping=cfg.MESH_MAPPING,
                device=cfg.mesh_device,
            )
        }
        self.weight = self.weights["weight"].get_device_weight()
        self._ids = dict(
            dtype=ttnn.uint32,
            layout=ttnn.ROW_MAJOR_LAYOUT,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            mesh_mapping=MeshMapping.replicate(),
            device=cfg.mesh_device,
        )

    # --- forwards --------------------------------------------------------------------------------------------
    def decode_forward(self, ids: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """ids: [1, 32] uint32, one token per user (rows past the batch are padding). Returns [1, 1, 32, dim / N]
        per device in ``decode_output_memcfg``."""
        cfg = self.config
        ids = self._load_ids(ids, cfg.tile_padded_batch_rows)
        x = ttnn.embedding(ids, self.weight, layout=ttnn.TILE_LAYOUT)  # [1, 32, dim / N]
        x = ttnn.reshape(x, (1, 1, cfg.tile_padded_batch_rows, x.shape[-1]))
        return ttnn.to_memory_config(x, cfg.decode_output_memcfg)

    def prefill_forward(self, ids: ttnn.Tensor | LazyWeight) -> ttnn.Tensor:
        """ids: [1, seq_len] uint32, one prompt. Returns [1, 1, seq_len, dim / N] per device in DRAM."""
        cfg = self.config
        ids = self._load_ids(ids, None)
        seq_len = ids.shape[-1]
        x = ttnn.embedding(ids, self.weight, layout=ttnn.TILE_LAYOUT, memory_config=cfg.prefill_output_memcfg)
        return ttnn.reshape(x, (1, 1, seq_len, x.shape[-1]))

    def forward(self, x: ttnn.Tensor, memory_config=None) -> ttnn.Tensor:
        """TTTv1's call: x [1, tokens] uint32 on device → [1, tokens, dim / N] tiled (the caller reshapes)."""
        return ttnn.embedding(x, self.weight, layout=ttnn.TILE_LAYOUT, memory_config=memory_config)

    @classmethod
    def from_model_args(cls, *positional, **keywords):
        """Drop-in for TTTv1's Embedding at its call site; takes the config's from_model_args arguments
        (mesh_device, args, weight_cache_path, state_dict, dtype)."""
        return cls.from_config(cls.CONFIG.from_model_args(*positional, **keywords))

    def _load_ids(self, ids, tokens: int | None) -> ttnn.Tensor:
        """Device ids [1, tokens] uint32: host ids (a LazyWeight) checked against the vocabulary, then uploaded."""
        shape = list(ids.shape)
        if len(shape) != 2 or shape[0] != 1 or shape[1] != (tokens or shape[1]):
            wanted = f"[1, {tokens}] (one token per user, padded to a tile)" if tokens else "[1, seq_len] (one prompt)"
            raise ValueError(f"token ids must be {wanted}, got {shape}")
        if not isinstance(ids, LazyWeight):
            if ids.dtype != ttnn.uint32:
                raise ValueError(f"token ids on device must be uint32 (row-major), got {ids.dtype}")
            return ids
        tensor_utils.check_token_ids(ids.host_tensor(), self.config.vocab_size)
        return resolve_lazy_weight(ids, **self._ids).get_device_weight()


class Embedding1D(EmbeddingModule):
    """Token embedding on a 1D mesh. ``Embedding1D(weight)``, ``from_config(cfg)``, ``from_model_args(...)``."""

    CONFIG = Embedding1DConfig
    MESHES = ccl.ONE_D_MESHES
    WRONG_MESH = "use Embedding2D on Galaxy (8x4, 4x8)"
