# SPDX-License-Identifier: Apache-2.0
"""TTTv1 RMSNorm (upstream models/common/rmsnorm.py): replicated weight, optional sharded in/out, optional
distributed (statistics all-gathered) variant chosen per call by ``is_distributed(mode)``."""

import ttnn

from models.common.modules import tt_ccl as ccl
from models.common.modules.lightweight_module import LightweightModule
from models.common.tensor_utils import TILE_SIZE
from models.tt_transformers.tt.case_collection import record_case

SHARD_HEIGHT = TILE_SIZE  # ttnn.rms_norm requires the shard height to be a single tile
CASES_FILE = "rmsnorm_1d_performance"
CASES_HEADER = ("cluster_shape", "input_shape", "mode", "dim", "eps", "in_sharded", "out_sharded", "is_distributed")


class RMSNorm(LightweightModule):
    def __init__(
        self,
        device,
        dim,
        state_dict,
        weight_key,
        layer_num=None,
        state_dict_prefix=None,
        weight_cache_path=None,
        weight_memory_config=ttnn.DRAM_MEMORY_CONFIG,
        weight_dtype=ttnn.bfloat16,
        is_distributed=None,
        eps: float = 1e-05,
        add_unit_offset=False,
        sharded_program_config=None,
        sharded_output_config=None,
        output_mem_config=None,
        ccl_topology=ttnn.Topology.Ring,
        tt_ccl=None,
    ):
        super().__init__()
        self.device = device
        self.dim = dim
        self.eps = eps
        self.is_distributed = is_distributed
        self.ccl_topology = ccl_topology
        self.tt_ccl = tt_ccl
        if state_dict_prefix:
            weight_name = f"{state_dict_prefix}{weight_key}.weight"
        elif layer_num is None:
            weight_name = f"{weight_key}.weight"
        else:
            weight_name = f"layers.{layer_num}.{weight_key}.weight"
        torch_weight = state_dict[weight_name].reshape([1, 1, dim // SHARD_HEIGHT, SHARD_HEIGHT])
        if add_unit_offset:
            torch_weight = torch_weight + 1.0
        self.weight = ttnn.as_tensor(
            torch_weight,
            device=device,
            dtype=weight_dtype,
            layout=ttnn.ROW_MAJOR_LAYOUT,
            memory_config=weight_memory_config,
            cache_file_name=None if weight_cache_path is None else weight_cache_path / weight_name,
            mesh_mapper=ttnn.ReplicateTensorToMesh(device),
        )
        if self.is_distributed:
            self.weight_distributed = ttnn.as_tensor(
                torch_weight,
                device=device,
                dtype=weight_dtype,
                layout=ttnn.ROW_MAJOR_LAYOUT,
                memory_config=weight_memory_config,
                cache_file_name=None
                if weight_cache_path is None
                else weight_cache_path / (weight_name + "_distributed"),
                mesh_mapper=ttnn.ShardTensor2dMesh(device, dims=(None, 2), mesh_shape=list(device.shape)),
            )
        self.sharded_output_config = sharded_output_config
        self.sharded_program_config = sharded_program_config
        self.output_mem_config = output_mem_config
        self.compute_kernel_config_hifi2 = ttnn.WormholeComputeKernelConfig(
            math_fidelity=ttnn.MathFidelity.HiFi2, math_approx_mode=False, fp32_dest_acc_en=True, packer_l1_acc=True
        )

    def forward(self, x: ttnn.Tensor, mode, in_sharded=False, out_sharded=False) -> ttnn.Tensor:
        program_config = self.sharded_program_config if in_sharded else None
        memory_config = self.sharded_output_config if out_sharded else None
        distributed = self.is_distributed and self.is_distributed(mode)
        norm = self._distributed_rmsnorm if distributed else ttnn.rms_norm
        weight = self.weight_distributed if distributed else self.weight
        record_case(
            CASES_FILE,
            CASES_HEADER,
            (tuple(self.device.shape), tuple(x.shape), mode, self.dim, self.eps, in_sharded, out_sharded, distributed),
        )
        if in_sharded:
            assert not distributed, "Distributed RMSNorm does not support sharded inputs"
        else:
            assert not out_sharded, "Non-sharded version of RMSNorm cannot output a sharded tensor"
        x = norm(
            x,
            epsilon=self.eps,
            weight=weight,
            program_config=program_config,
            memory_config=memory_config,
            compute_kernel_config=self.compute_kernel_config_hifi2,
        )
        if in_sharded and not out_sharded:
            return ttnn.sharded_to_interleaved(x)
        return x

    def _distributed_rmsnorm(
        self, inp, epsilon=None, weight=None, program_config=None, memory_config=None, compute_kernel_config=None
    ):
        assert program_config is None, "Distributed RMSNorm does not support sharded inputs"
        assert memory_config is None, "Distributed RMSNorm does not support sharded outputs"
        assert self.tt_ccl is not None, "Distributed RMSNorm requires tt_ccl"
        tt_stats = ttnn.rms_norm_pre_all_gather(inp, compute_kernel_config=compute_kernel_config, dtype=ttnn.bfloat16)
        tt_stats = ccl.all_gather(
            self.tt_ccl, tt_stats, dim=3, memory_config=ttnn.DRAM_MEMORY_CONFIG, topology=self.ccl_topology, num_links=1
        )
        tt_out = ttnn.rms_norm_post_all_gather(
            inp, tt_stats, epsilon=epsilon, weight=weight, compute_kernel_config=compute_kernel_config
        )
        tt_stats.deallocate(True)
        return tt_out
