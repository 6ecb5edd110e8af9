# SPDX-License-Identifier: Apache-2.0
"""TTTv1 LMHead: normed hidden state [1, 1, 32, dim] → logits, the vocabulary split over the devices.

1D meshes: device i holds vocabulary columns [i·V/N, (i+1)·V/N), uploaded as DRAM-sharded pieces of at most
``max_columns_per_device`` columns ("too many columns per device lead to L1 OOM"); each piece is one DRAM-sharded
matmul, the pieces are concatenated, and every device returns its own vocabulary slice (the caller composes them).
Galaxy: the vocabulary (padded to ``args.padded_vocab_size``) is split over mesh rows and ``dim`` over mesh
columns; the partial products are all-reduced over the columns.

Left out from upstream: the prefetcher's ring-matmul weights, output biases, ``lm_head_dtype`` and the logits
multiplier (no shipped model uses them).
"""

import math

import torch
import ttnn

from models.common.modules.lightweight_module import LightweightModule
from models.tt_transformers.tt.case_collection import record_case
from models.tt_transformers.tt.ccl import tt_all_reduce

WEIGHT_KEY = "output.weight"
GALAXY_MESH_COLS = 4  # TTTv1: Galaxy splits dim over 4 mesh columns and the vocabulary over 8 mesh rows
GALAXY_MESH_ROWS = 8
GALAXY_SMALL_DIM = 2048  # TTTv1: dim-2048 models keep the Galaxy LM head interleaved in DRAM, no program config
GALAXY_COLUMNS_PER_ROW = 16 * 1024  # (dim, 128k) on 8 rows → 16k vocabulary columns per device
CASES_FILE = "lm_head_1d_performance"
CASES_HEADER = (
    "mesh_rows", "mesh_cols", "rows", "dim", "vocab_size", "padded_vocab_size", "split_columns", "weight_dtype",
    "hf_model_name",
)  # fmt: skip


class LMHead(LightweightModule):
    def __init__(
        self,
        args,
        mesh_device,
        tt_ccl,
        dtype,
        state_dict,
        state_dict_prefix,
        weight_cache_path,
        max_columns_per_device,  # too many columns per device lead to L1 OOM
    ):
        super().__init__()
        self.args = args
        self.mesh_device = mesh_device
        self.tt_ccl = tt_ccl
        self.vocab_size = args.vocab_size
        self.num_devices = args.num_devices
        if args.is_galaxy and self.vocab_size > args.padded_vocab_size:
            raise ValueError(
                f"vocab_size {self.vocab_size} exceeds the Galaxy LM head's padded vocabulary {args.padded_vocab_size}"
            )
        if not args.is_galaxy and self.vocab_size % self.num_devices:
            raise ValueError(
                f"vocab_size {self.vocab_size} does not split evenly over {self.num_devices} devices; "
                "pad the vocabulary (args.padded_vocab_size) to a multiple of the device count"
            )
        # [dim, vocab], one contiguous copy: the per-device column slices below then copy rows, not strided columns
        weights = state_dict[f"{state_dict_prefix}{WEIGHT_KEY}"].permute(1, 0).contiguous()
        cached = not args.dummy_weights and weight_cache_path is not None
        self.compute_kernel_config = ttnn.WormholeComputeKernelConfig(
            math_fidelity=ttnn.MathFidelity.HiFi2, math_approx_mode=False, fp32_dest_acc_en=False, packer_l1_acc=True
        )
        self.output_weights = []
        self.program_configs = []
        if args.is_galaxy:
            padded = torch.zeros(1, 1, args.dim, args.padded_vocab_size, dtype=weights.dtype)
            padded[..., : self.vocab_size] = weights
            small = args.dim == GALAXY_SMALL_DIM
            self.output_weights.append(
                ttnn.as_tensor(
                    padded,
                    device=mesh_device,
                    mesh_mapper=ttnn.ShardTensor2dMesh(mesh_device, dims=(3, 2), mesh_shape=args.cluster_shape),
                    layout=ttnn.TILE_LAYOUT,
                    dtype=dtype,
                    memory_config=ttnn.DRAM_MEMORY_CONFIG
                    if small
                    else args.create_dram_sharded_mem_config(
                        k=args.dim // GALAXY_MESH_COLS, n=args.padded_vocab_size // GALAXY_MESH_ROWS
                    ),
                    cache_file_name=weight_cache_path / "output_lm_head_1_split_shard_0" if cached else None,
                )
            )
            self.program_configs.append(
                None
                if small
                else args.dram_matmul_config(
                    args.tile_padded_batch_rows,
                    args.dim // GALAXY_MESH_COLS,
                    GALAXY_COLUMNS_PER_ROW,
                    args.lm_head_core_grid.num_cores,
                )
            )
            return

        size_per_device = self.vocab_size // self.num_devices
        num_splits = math.ceil(size_per_device / max_columns_per_device)
        split_sizes = [min(size_per_device, max_columns_per_device)] * (num_splits - 1)
        split_sizes.append(size_per_device - sum(split_sizes))  # remaining columns
        for i, split_size in enumerate(split_sizes):
            # piece i of every device's slice, side by side, so ShardTensorToMesh hands device d its own piece
            starts = [d * size_per_device + sum(split_sizes[:i]) for d in range(self.num_devices)]
            combined = torch.cat([weights[:, start : start + split_size] for start in starts], dim=-1)
            name = f"output_lm_head_{num_splits}_split_shard_{i}_{combined.shape[-1]}"
            self.output_weights.append(
                ttnn.as_tensor(
                    combined,
                    device=mesh_device,
                    mesh_mapper=ttnn.ShardTensorToMesh(mesh_device, dim=-1),
                    layout=ttnn.TILE_LAYOUT,
                    dtype=dtype,
                    memory_config=args.create_dram_sharded_mem_config(
                        k=args.dim, n=math.ceil(combined.shape[-1] / self.num_devices)
                    ),
                    cache_file_name=weight_cache_path / name if cached else None,
                )
            )
            self.program_configs.append(
                args.dram_matmul_config(
                    args.tile_padded_batch_rows, args.dim, split_size, args.lm_head_core_grid.num_cores
                )
            )

    def forward(self, x: ttnn.Tensor) -> ttnn.Tensor:
        """x: [1, 1, 32, dim (/ 4 on Galaxy)] in LM_HEAD_INPUT_MEMCFG → [1, 1, 32, vocab slice] in L1."""
        args = self.args
        splits = "/".join(str(w.shape[-1]) for w in self.output_weights)  # per device
        row = (*args.cluster_shape, x.shape[-2], args.dim, self.vocab_size, args.padded_vocab_size, splits)
        record_case(CASES_FILE, CASES_HEADER, (*row, self.output_weights[0].dtype, args.model_name))
        outputs = []
        for weight, program_config in zip(self.output_weights, self.program_configs, strict=True):
            output = ttnn.linear(
                x,
                weight,
                compute_kernel_config=self.compute_kernel_config,
                program_config=program_config,
                memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
                dtype=ttnn.bfloat8_b,
            )
            outputs.append(ttnn.sharded_to_interleaved(output, ttnn.L1_MEMORY_CONFIG))
        ttnn.deallocate(x)
        output = ttnn.concat(outputs, dim=-1, memory_config=ttnn.L1_MEMORY_CONFIG)
        return tt_all_reduce(
            output,
            self.mesh_device,
            self.tt_ccl,
            cluster_axis=1,
            dim=3 if self.args.is_galaxy else 0,
            num_reduce_scatter_links=self.args.num_reduce_scatter_links,
            num_all_gather_links=self.args.num_all_gather_links,
            memory_config=ttnn.L1_MEMORY_CONFIG,
            dtype=self.args.ccl_dtype,
            sharded=False,
            use_composite=True,
        )
