# SPDX-License-Identifier: Apache-2.0
"""LMHead2D: the normed hidden state → logits on Galaxy meshes (8x4, 4x8).

    logits = x @ lm_head.weight.T      (HF lm_head.weight (vocab, dim); the embedding table when tied)

decode:  x [1, 1, 32, dim / columns] width-sharded → linear (DRAM-sharded; dim 2048: DRAM interleaved, ttnn picks)
         → L1 interleaved → all-reduce over the mesh columns (reduce-scatter, all-gather)
         → [1, 1, 32, padded vocab / rows] per device
prefill: x [1, 1, rows, dim / columns] in DRAM → slice the 32-row tile holding ``last_token`` → shard → as decode

The padded vocabulary (TTTv1: 128k) is split over the mesh rows and ``dim`` over the mesh columns (TTTv1 lm_head.py
on Galaxy: ShardTensor2dMesh dims (3, 2)); each device multiplies its slice of the hidden state by its block and
the column all-reduce sums the partial products, so every device of a mesh row holds that row's vocabulary slice.
Everything else (splits, forwards, ``gather_logits``) is LMHead1D's.
"""

from dataclasses import dataclass
from typing import ClassVar

import ttnn

from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import MeshMapping
from models.common.modules.lm_head.lm_head_1d import LMHeadConfig, LMHeadModule, lm_head_model_args

GALAXY_PADDED_VOCAB = 128 * 1024  # TTTv1 ModelArgs.padded_vocab_size on Galaxy
# TTTv1 lm_head.py: dim-2048 models keep the Galaxy LM head weight interleaved in DRAM, with no program config
INTERLEAVED_WEIGHT_DIM = 2048


@dataclass(frozen=True)
class LMHead2DConfig(LMHeadConfig):
    """Everything LMHead2D decides (TTTv1's Galaxy choices by default)."""

    num_reduce_scatter_links: int = 1  # TTTv1 ModelArgs.num_reduce_scatter_links
    num_all_gather_links: int = ccl.GALAXY_ALL_GATHER_LINKS

    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"max_columns_per_device"})
    WEIGHT_MAPPING: ClassVar[MeshMapping] = MeshMapping.shard_2d(-1, -2)  # vocabulary over rows, dim over columns

    @classmethod
    def from_model_args(
        cls, args, mesh_device, tt_ccl, dtype, state_dict, state_dict_prefix, weight_cache_path, max_columns_per_device
    ) -> "LMHead2DConfig":
        """TTTv1's Galaxy LMHead settings from a ModelArgs, same arguments (``max_columns_per_device`` is unused on
        Galaxy, as in TTTv1). The only place LMHead2D touches TTTv1; retires with it. Host-side."""
        return cls(
            **lm_head_model_args(args, mesh_device, tt_ccl, dtype, state_dict, state_dict_prefix, weight_cache_path),
            padded_vocab_size=args.padded_vocab_size,
            num_reduce_scatter_links=args.num_reduce_scatter_links,
            num_all_gather_links=args.num_all_gather_links,
        )

    @property
    def vocab_pieces(self) -> int:
        return self.mesh_device.shape[0]

    @property
    def input_width(self) -> int:
        return self.dim // self.mesh_device.shape[1]

    def default_tt_ccl(self):
        return ccl.get_tt_ccl(self.mesh_device)

    def default_padded_vocab_size(self):
        return GALAXY_PADDED_VOCAB

    def default_core_grid(self):
        return pc.galaxy_decode_grid(self.input_width)

    def default_split_sizes(self):
        return (self.vocab_per_device,)  # TTTv1: one weight per device on Galaxy

    def default_weight_memcfgs(self):
        if self.dim == INTERLEAVED_WEIGHT_DIM:
            return (ttnn.DRAM_MEMORY_CONFIG,)
        grid = self.mesh_device.dram_grid_size()
        return (pc.create_dram_sharded_mem_config(self.input_width, self.vocab_per_device, grid),)

    def default_program_configs(self):
        if self.dim == INTERLEAVED_WEIGHT_DIM:
            return (None,)
        rows, cores = self.tile_padded_batch_rows, self.core_grid.num_cores
        return (pc.dram_matmul_config(rows, self.input_width, self.vocab_per_device, cores),)


class LMHead2D(LMHeadModule):
    """LM head on a Galaxy mesh. ``LMHead2D(weight)``, ``from_config(cfg)``, ``from_model_args(...)``."""

    CONFIG = LMHead2DConfig
    MESHES = ccl.TWO_D_MESHES
    WRONG_MESH = "use LMHead1D on 1D meshes (1x1, 1x2, 1x8)"
    INPUT_MAPPING = MeshMapping.shard_2d(None, -1)  # each mesh column its slice of dim
    VOCAB_AXIS = ccl.ROW_AXIS  # rows: vocabulary slices; columns: all-reduced copies
    LOGITS_GATHER_LINKS = ccl.GALAXY_ALL_GATHER_LINKS  # upstream TTTv1 ttnn_decode_forward: 2 links on Galaxy

    def _build_reduce(self):
        return self._all_reduce_columns

    def _all_reduce_columns(self, x):
        """TTTv1 tt_all_reduce (composite) over the mesh columns: reduce-scatter in DRAM, all-gather back to L1."""
        cfg = self.config
        common = dict(dim=ccl.WIDTH_DIM, topology=ttnn.Topology.Linear, cluster_axis=ccl.COL_AXIS)
        dram = ttnn.to_memory_config(x, ttnn.DRAM_MEMORY_CONFIG)
        ttnn.deallocate(x)
        scattered = ccl.reduce_scatter(
            cfg.tt_ccl, dram, memory_config=ttnn.DRAM_MEMORY_CONFIG, num_links=cfg.num_reduce_scatter_links, **common
        )
        ttnn.deallocate(dram)
        out = ccl.all_gather(
            cfg.tt_ccl, scattered, memory_config=ttnn.L1_MEMORY_CONFIG, num_links=cfg.num_all_gather_links, **common
        )
        ttnn.deallocate(scattered)
        return out
