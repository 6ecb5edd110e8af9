# SPDX-License-Identifier: Apache-2.0
"""TTTv1 MLP: the "before" code TTTv2's MLP1D / MLP2D refactor (static branches on TG and mode kept on purpose).

w1 -> gate_proj, w2 -> down_proj, w3 -> up_proj; HF: down_proj(act_fn(gate_proj(x)) * up_proj(x)).
"""

import torch
import ttnn

from models.common.modules.lightweight_module import LightweightModule
from models.common.tensor_utils import pad_dim_to_size
from models.tt_transformers.tt.case_collection import record_case
from models.tt_transformers.tt.ccl import tt_all_reduce
from models.tt_transformers.tt.model_config import OpGroup, TensorGroup

CASES_FILE = "mlp_1d_performance"
CASES_HEADER = (
    "layer_num", "cluster_shape_x", "cluster_shape_y", "x_dtype", "w1_dtype", "w2_dtype", "w3_dtype",
    "batch_size", "filler", "seq_len", "dim", "hidden_dim", "hf_model_name", "mode",
)  # fmt: skip


class MLP(LightweightModule):
    def __init__(
        self,
        mesh_device,
        tt_ccl,
        args,
        state_dict,
        weight_cache_path,
        layer_num,
        dtype,
        model_config,
        state_dict_prefix=None,
    ):
        super().__init__()
        self.mesh_device = mesh_device
        self.tt_ccl = tt_ccl
        self.args = args
        self.dim = args.dim
        self.model_config = model_config
        self.layer_num = layer_num
        state_dict_prefix = state_dict_prefix or args.get_state_dict_prefix(self.__class__.__name__, layer_num)

        def torch_weight(name):
            return torch.transpose(state_dict[f"{state_dict_prefix}.{name}.weight"], -2, -1)

        # If padding was applied, the hidden dim goes into the cache name so unpadded caches are not reused
        hidden_dim_string = f".hidden_dim_{args.hidden_dim}" if args.hidden_dim != args.unpadded_hidden_dim else ""
        if args.dummy_weights or weight_cache_path is None:

            def cache_name(_):
                return None

        else:

            def cache_name(name):
                return weight_cache_path / f"{state_dict_prefix}.{name}{hidden_dim_string}"

        w1_w3_mem_config = args.create_dram_sharded_mem_config(args.dim, args.hidden_dim // args.num_devices)
        w2_mem_config = args.create_dram_sharded_mem_config(args.hidden_dim // args.num_devices, args.dim)

        def as_sharded_tensor(name, dtype, dims):
            weight = pad_dim_to_size(torch_weight(name[:2]), dims[0] if args.is_galaxy else dims[-1], args.hidden_dim)
            return ttnn.as_tensor(
                weight,
                dtype=dtype,
                device=self.mesh_device,
                mesh_mapper=ttnn.ShardTensor2dMesh(self.mesh_device, dims=dims, mesh_shape=args.cluster_shape),
                layout=ttnn.TILE_LAYOUT,
                memory_config=(
                    ttnn.DRAM_MEMORY_CONFIG if args.is_galaxy else w2_mem_config if "w2" in name else w1_w3_mem_config
                ),
                cache_file_name=cache_name(name),
            )

        w1_dims = (-1, -2) if args.is_galaxy else (-2, -1)
        w2_dims = (-2, -1) if args.is_galaxy else (-1, -2)
        layer_num = max(layer_num, 0)  # cross-attention blocks use the configuration of the first decoder
        decoders_optimizations = self.model_config["DECODERS_OPTIMIZATIONS"]
        ff1_3_dtype = decoders_optimizations.get_tensor_dtype(decoder_id=layer_num, tensor=TensorGroup.FF1_FF3)
        ff2_dtype = decoders_optimizations.get_tensor_dtype(decoder_id=layer_num, tensor=TensorGroup.FF2)
        # bfp4 normally ok here but sub .99 pcc for llama 3.1 weights
        self.w1 = as_sharded_tensor("w1_sharded", ff1_3_dtype, dims=w1_dims)
        self.w2 = as_sharded_tensor("w2_sharded", ff2_dtype, dims=w2_dims)
        self.w3 = as_sharded_tensor("w3_sharded", ff1_3_dtype, dims=w1_dims)
        self.activation_type = getattr(args, "mlp_activation_type", ttnn.UnaryOpType.SILU)

    def forward(self, x: ttnn.Tensor, mode) -> ttnn.Tensor:
        seq_len = x.shape[-2]
        TG = self.args.is_galaxy
        layer_num = max(self.layer_num, 0)
        decoders_optimizations = self.model_config["DECODERS_OPTIMIZATIONS"]
        activation_dtype = decoders_optimizations.get_tensor_dtype(decoder_id=layer_num, tensor=TensorGroup.ACTIVATION)
        li_ff1_3_compute_kernel_cfg = decoders_optimizations.get_math_fidelity(
            decoder_id=layer_num, op=OpGroup.LI_FF1_FF3, configuration=self.args
        )
        record_case(
            CASES_FILE,
            CASES_HEADER,
            (
                self.layer_num, *self.args.cluster_shape, x.dtype, self.w1.dtype, self.w2.dtype, self.w3.dtype,
                *x.shape, self.args.hidden_dim, self.args.model_name, mode,
            ),
        )  # fmt: skip

        if mode == "prefill" and seq_len >= self.args.prefill_len_cutoff:  # 512 if Blackhole, 1024 if Wormhole
            x = ttnn.reshape(x, [1, seq_len // self.args.prefill_len_cutoff, self.args.prefill_len_cutoff, -1])

        # In decode mode (seqlen <= 32) do DRAM sharded matmuls
        # These use HiFi2; this drops 1 bit of the activations but would be FLOP-bound on 12 cores with HiFi4
        if mode == "decode":
            if TG:
                pc_1 = self.model_config["FF1_3_TG_PROGCFG"] if self.dim >= 4096 else None
                pc_2 = self.model_config["FF2_TG_PROGCFG"] if self.dim >= 4096 else None
            else:
                pc_1 = self.model_config["DECODE_MLP_W1_W3_PRG_CONFIG"]
                pc_2 = self.model_config["DECODE_MLP_W2_PRG_CONFIG"]
        else:
            pc_1 = self.model_config["PREFILL_MLP_W1_W3_PRG_CONFIG"](seq_len)
            pc_2 = self.model_config["PREFILL_MLP_W2_PRG_CONFIG"](seq_len)
        pc_3 = pc_1
        memory_config = ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG

        w1_out = ttnn.linear(
            x,
            self.w1,
            dtype=ttnn.bfloat8_b if TG else activation_dtype or ttnn.bfloat16,
            core_grid=None,
            compute_kernel_config=li_ff1_3_compute_kernel_cfg,
            program_config=pc_1,
            memory_config=memory_config,
        )
        w3_out = ttnn.linear(
            x,
            self.w3,
            dtype=ttnn.bfloat8_b if TG else activation_dtype or ttnn.bfloat16,
            core_grid=None,
            compute_kernel_config=li_ff1_3_compute_kernel_cfg,
            program_config=pc_3,
            memory_config=memory_config,
        )
        ttnn.deallocate(x)

        if TG:
            if self.dim == 8192 or mode == "prefill":
                input_mem_cfg = w1_out.memory_config()
                w1_out = tt_all_reduce_scatter(self, w1_out, mode, self.args.num_reduce_scatter_links)
                w3_out = tt_all_reduce_scatter(self, w3_out, mode, 1)
            else:
                w1_out = tt_all_reduce(
                    w1_out,
                    self.mesh_device,
                    self.tt_ccl,
                    cluster_axis=1,
                    num_all_gather_links=2,
                    sharded=mode == "decode",
                    topology=self.args.ccl_topology(),
                    memory_config=self.model_config["FF1_OUT_GATHERED_MEMCFG"] if mode == "decode" else None,
                )
                w3_out = tt_all_reduce(
                    w3_out,
                    self.mesh_device,
                    self.tt_ccl,
                    cluster_axis=1,
                    num_all_gather_links=2,
                    sharded=mode == "decode",
                    topology=self.args.ccl_topology(),
                    memory_config=self.model_config["FF1_OUT_GATHERED_MEMCFG"] if mode == "decode" else None,
                )

        w2_in = ttnn.mul(
            w1_out,
            w3_out,
            input_tensor_a_activations=[self.activation_type],
            dtype=activation_dtype or ttnn.bfloat8_b,
            memory_config=w1_out.memory_config(),
        )
        if mode == "decode" and not TG:
            # w2 may use a different core grid, this is a no-op if they already match
            w2_in = ttnn.to_memory_config(w2_in, self.model_config["SHARDED_MLP2_INPUT_MEMCFG"])
        ttnn.deallocate(w3_out)
        ttnn.deallocate(w1_out)

        if TG and (self.dim == 8192 or mode == "prefill"):
            w2_in = ttnn.experimental.all_gather_async(
                w2_in,
                persistent_output_buffer=None,
                dim=3,
                multi_device_global_semaphore=self.tt_ccl.get_and_cycle_ag_semaphore_handles(1),
                num_links=2,
                cluster_axis=1,
                topology=ttnn.Topology.Linear,
                memory_config=input_mem_cfg,
                barrier_semaphore=self.tt_ccl.get_and_cycle_barrier_semaphore_handle(1),
                chunks_per_sync=10,
                num_workers_per_link=2,
                num_buffers_per_channel=2,
            )
            if mode == "decode":
                w2_in = ttnn.to_memory_config(w2_in, ttnn.L1_MEMORY_CONFIG)

        li_ff2_compute_kernel_cfg = decoders_optimizations.get_math_fidelity(
            decoder_id=layer_num, op=OpGroup.LI_FF2, configuration=self.args
        )
        w2_out = ttnn.linear(
            w2_in,
            self.w2,
            compute_kernel_config=li_ff2_compute_kernel_cfg,
            dtype=self.args.ccl_dtype if TG else activation_dtype or ttnn.bfloat16,
            program_config=pc_2,
            memory_config=memory_config,
            core_grid=None,
        )
        ttnn.deallocate(w2_in)

        w2_out_reduced = tt_all_reduce(
            w2_out,
            self.mesh_device,
            self.tt_ccl,
            cluster_axis=0,
            dim=0 if (TG and self.dim < 8192) else 3,
            num_reduce_scatter_links=self.args.num_reduce_scatter_links,
            num_all_gather_links=self.args.num_all_gather_links,
            sharded=(mode == "decode"),
            memory_config=(
                (self.model_config["FF2_OUT_REDUCE_SCATTER_MEMCFG"] if TG else w2_out.memory_config())
                if mode == "decode"
                else ttnn.DRAM_MEMORY_CONFIG
            ),
            dtype=self.args.ccl_dtype,
            use_composite=self.dim == 8192,
            topology=self.args.ccl_topology(),
        )
        # Ensure dim 0 and 1 are 1
        original_shape = w2_out_reduced.shape
        w2_out_reduced = ttnn.reshape(
            w2_out_reduced, (1, 1, original_shape[-4] * original_shape[-3] * original_shape[-2], original_shape[-1])
        )
        if mode == "decode":
            w2_out_reduced = ttnn.to_memory_config(
                w2_out_reduced,
                self.model_config["SHARDED_ATTN_INPUT_MEMCFG"] if TG else self.model_config["DECODE_RESIDUAL_MEMCFG"],
            )
        return w2_out_reduced


def tt_all_reduce_scatter(mlp, x, mode, num_links):
    """TG: reduce-scatter the FF1/FF3 output over mesh columns (dim 8192 decode, and prefill)."""
    return ttnn.experimental.reduce_scatter_minimal_async(
        x,
        persistent_output_buffers=None,
        dim=3,
        multi_device_global_semaphore=mlp.tt_ccl.get_and_cycle_rs_semaphore_handles(1),
        barrier_semaphore=mlp.tt_ccl.get_and_cycle_barrier_semaphore_handle(1),
        num_links=num_links,
        cluster_axis=1,
        memory_config=mlp.model_config["FF1_OUT_REDUCE_SCATTER_MEMCFG"] if mode == "decode" else None,
        intermediate_memory_config=ttnn.DRAM_MEMORY_CONFIG,
        topology=ttnn.Topology.Linear,
        chunks_per_sync=10,
        num_workers_per_link=2,
        num_buffers_per_channel=2,
    )
