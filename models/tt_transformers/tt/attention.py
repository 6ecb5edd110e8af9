# SPDX-License-Identifier: Apache-2.0
"""TTTv1 Attention: the "before" code TTTv2's Attention1D / Attention2D refactor (upstream tt-metal
models/tt_transformers/tt/attention.py, tt_ccl generation). Static branches on the Galaxy (``self.TG``), the mode,
fused Q/K ops, the fused all-gather matmul, paging and biases are kept on purpose: trace_dependencies.py reads them.

Tensor parallelism (1D meshes): device i holds q/k/v heads [i·H/N, (i+1)·H/N) (fused per device into wqkv) and the
matching rows of wo, so the output is a partial sum reduce-scattered to 1/N of ``dim`` per device (T3K ring: the heads
are all-gathered into a matmul with column-split wo instead). Galaxy (8x4): mesh rows split the heads (one KV head
group per row), mesh columns split ``dim`` and the users (8 per column); selection matmuls pick each column's users.

Differences from upstream, each marked where it happens: ``ttnn.add`` / ``ttnn.slice`` where upstream writes ``+`` /
``t[...]`` (the same ops, spelled so the mock tier's shadow execution sees them); ``is not None`` tests of optional
tensors; ValueErrors for upstream's asserts; the Galaxy user-selection matrix uploaded rank 4; and the Galaxy prefill
KV fill, which ttnn 0.81 cannot run as upstream does (see ``prefill_prepare_tensor_for_kv_cache``). Left out: nothing
on text models (the upstream version followed has no prefetcher or multimodal-only path).
"""

import math

import torch
import ttnn

from models.common import tensor_utils
from models.common.modules import program_configs as pc
from models.common.modules import tt_ccl as ccl
from models.common.modules.attention.attention_1d import FUSED_AG_MM_CORE_OFFSET
from models.common.modules.attention.attention_steps import PREFILL_SEQ_MULTIPLE, column_masks, fill_on_serving_column
from models.common.modules.lightweight_module import LightweightModule
from models.common.tensor_utils import TILE_SIZE, nearest_multiple
from models.tt_transformers.tt.case_collection import record_case
from models.tt_transformers.tt.ccl import tt_all_gather, tt_all_reduce
from models.tt_transformers.tt.model_config import LARGE_DIM, TG_COLS, TG_ROWS, OpGroup, TensorGroup
from models.tt_transformers.tt.rmsnorm import RMSNorm

GALAXY_DEVICES = 32
TG_USERS_PER_COLUMN = 8  # TTTv1 TG: each mesh column decodes 8 of the 32 users
TG_WO_CORE_GRID = ttnn.CoreGrid(y=4, x=8)  # TTTv1 TG decode: user selection and wo matmuls on 4x8 cores

CASES_FILE = "attention_1d_performance"
CASES_HEADER = (
    "layer_num", "cluster_shape_x", "cluster_shape_y", "x_dtype", "wqkv_dtype", "wo_dtype", "kv_cache_dtype",
    "batch_size", "filler", "seq_len", "x_width", "dim", "n_heads", "n_kv_heads", "head_dim", "max_batch_size",
    "hf_model_name", "mode", "paged",
)  # fmt: skip


class Attention(LightweightModule):
    def __init__(
        self,
        mesh_device,
        tt_ccl,
        args,
        state_dict,
        weight_cache_path,
        layer_num,
        dtype,
        transformation_mats,
        configuration,
        paged_attention_config=None,
        use_paged_kv_cache=False,
    ):
        super().__init__()
        self.args = args
        self.mesh_device = mesh_device
        self.tt_ccl = tt_ccl
        self.cluster_shape = list(mesh_device.shape)
        self.layer_num = layer_num
        self.num_devices = configuration.num_devices
        self.TG = self.num_devices == GALAXY_DEVICES
        if self.TG and tuple(self.cluster_shape) != (TG_ROWS, TG_COLS):
            raise ValueError(
                f"TTTv1 attention lays a Galaxy out as {TG_ROWS}x{TG_COLS} (a KV head group per mesh row, 8 users per "
                f"column), not {self.cluster_shape[0]}x{self.cluster_shape[1]}: open the mesh as {TG_ROWS}x{TG_COLS}, "
                "or use TTTv2's Attention2D (Attention2D.from_hf) on 4x8"
            )
        self.hidden_size = configuration.dim
        self.n_heads = configuration.n_heads
        self.head_dim = configuration.head_dim
        self.max_seq_len = configuration.max_seq_len
        self.max_batch_size = configuration.max_batch_size
        self.n_kv_heads = configuration.n_kv_heads
        self.paged_attention_config = paged_attention_config
        self.min_kv_prefill_shard_seqlen = configuration.min_kv_prefill_shard_seqlen
        self.ccl_dtype = configuration.ccl_dtype
        self.num_reduce_scatter_links = configuration.num_reduce_scatter_links
        self.num_all_gather_links = configuration.num_all_gather_links
        self.MAX_QKV_MM_SEQ_LEN = configuration.MAX_QKV_MM_SEQ_LEN
        self.tile_size = configuration.tile_size
        self.rms_norm_add_unit_offset = configuration.rms_norm_add_unit_offset
        self.num_device_groups = self.num_devices // self.n_kv_heads
        # Galaxy: one KV head per mesh row (n_kv_heads rows), users split over the device groups (mesh columns)
        self.num_devices_per_group = self.n_kv_heads if self.TG else self.num_devices
        self.batch_size_per_device_group = (
            max(self.max_batch_size // self.num_device_groups, 1) if self.TG else self.max_batch_size
        )
        self.n_local_heads = self.n_heads // self.num_devices_per_group
        self.n_local_kv_heads = self.n_kv_heads // self.num_devices_per_group

        if self.TG:
            # all-gather cannot move less than a tile yet: matmuls select each column's users instead
            # upstream: a [1, 32 devices, 8, 32] matrix split over all devices; the same per-device blocks here
            self.slice_mat = ttnn.from_torch(
                tensor_utils.user_slice_matrices(TG_COLS, TG_USERS_PER_COLUMN),
                dtype=ttnn.bfloat4_b,
                layout=ttnn.TILE_LAYOUT,
                device=self.mesh_device,
                mesh_mapper=ttnn.ShardTensor2dMesh(
                    self.mesh_device, dims=(None, 1), mesh_shape=configuration.cluster_shape
                ),
            )
            self.user_selection_matrix = ttnn.from_torch(
                tensor_utils.user_gather_matrix(TG_COLS, TG_USERS_PER_COLUMN),  # upstream: rank 2, the same matmul
                dtype=ttnn.bfloat4_b,
                layout=ttnn.TILE_LAYOUT,
                device=self.mesh_device,
                mesh_mapper=ttnn.ReplicateTensorToMesh(self.mesh_device),
            )
            # prefill: only the mesh column serving a user fills its cache slot
            self.tg_column_masks = column_masks(self.mesh_device, TG_COLS)

        self.dtype = dtype
        self.grid_size = configuration.max_grid_size
        self.compute_kernel_config_hifi2 = configuration.compute_kernel_config_hifi2
        self.compute_kernel_config_hifi2_fp16 = configuration.compute_kernel_config_hifi2_fp16
        self.compute_kernel_config_hifi4 = configuration.compute_kernel_config_hifi4
        self.transformation_mats = transformation_mats
        self.is_sliding = (
            configuration.layer_types[layer_num] == "sliding_attention" if configuration.layer_types else False
        )
        self.sliding_window = configuration.sliding_window if self.is_sliding else None

        self.model_config = configuration.get_model_config()
        self.ccl_topology = configuration.ccl_topology()
        self.is_multichip = configuration.is_multichip
        optimizations = self.model_config["DECODERS_OPTIMIZATIONS"]
        self.activation_dtype = optimizations.get_tensor_dtype(decoder_id=layer_num, tensor=TensorGroup.ACTIVATION)
        self.wqkv_dtype = optimizations.get_tensor_dtype(decoder_id=layer_num, tensor=TensorGroup.WQKV)
        self.wo_dtype = optimizations.get_tensor_dtype(decoder_id=layer_num, tensor=TensorGroup.WO)
        self.kv_cache_dtype = optimizations.get_tensor_dtype(decoder_id=layer_num, tensor=TensorGroup.KV_CACHE)

        def fidelity(op):
            return optimizations.get_math_fidelity(decoder_id=layer_num, op=op, configuration=configuration)

        self.li_qkv_decode_compute_kernel_cfg = fidelity(OpGroup.LI_QKV_DECODE)
        self.sdpa_decode_compute_kernel_cfg = fidelity(OpGroup.SDPA_DECODE)
        self.li_o_decode_compute_kernel_cfg = fidelity(OpGroup.LI_O_DECODE)
        self.sdpa_prefill_compute_kernel_cfg = fidelity(OpGroup.SDPA_PREFILL)
        self.li_qkv_prefill_compute_kernel_cfg = fidelity(OpGroup.LI_QKV_PREFILL)
        self.li_o_prefill_compute_kernel_cfg = fidelity(OpGroup.LI_O_PREFILL)

        layer_name = configuration.get_state_dict_prefix(self.__class__.__name__, layer_num)
        if configuration.dummy_weights or weight_cache_path is None:

            def cache_name(_):
                return None

        else:

            def cache_name(name):
                return weight_cache_path / f"{layer_name}.{name}"

        wq_str, wk_str, wv_str, wo_str = (f"{layer_name}.{w}" for w in ("wq", "wk", "wv", "wo"))
        q_norm_str, k_norm_str = f"{layer_name}.q_norm", f"{layer_name}.k_norm"

        self.wqkv_bias_decode = None
        self.wqkv_bias_prefill = None
        if f"{wq_str}.bias" in state_dict:  # Qwen2: one fused QKV bias, device i's q|k|v slices side by side
            qkv_bias = torch.concat(
                [
                    torch.concat(
                        [
                            torch.chunk(state_dict[f"{w}.bias"], configuration.num_devices)[i]
                            for w in (wq_str, wk_str, wv_str)
                        ],
                        dim=-1,
                    )
                    for i in range(configuration.num_devices)
                ],
                dim=-1,
            )
            # Prefill broadcasts the bias add: a single row
            self.wqkv_bias_prefill = ttnn.as_tensor(
                qkv_bias,
                device=self.mesh_device,
                mesh_mapper=ttnn.ShardTensorToMesh(self.mesh_device, dim=-1),
                dtype=ttnn.bfloat16,
                memory_config=ttnn.DRAM_MEMORY_CONFIG,
                layout=ttnn.TILE_LAYOUT,
                cache_file_name=cache_name("wqkv_bias_prefill_sharded"),
            )
            # as_tensor gives (32, n); the logical shape is one row
            self.wqkv_bias_prefill = ttnn.reshape(
                self.wqkv_bias_prefill,
                (1, 1, 1, self.wqkv_bias_prefill.shape[-1]),
                (1, 1, self.wqkv_bias_prefill.shape[-2], self.wqkv_bias_prefill.shape[-1]),
            )
            # Broadcasting is not supported inside execute_trace: one bias per multiple of 32 rows up to the batch
            self.wqkv_bias_decode = []
            for batch_size in range(
                configuration.tile_size,
                configuration.tile_padded_batch_rows + configuration.tile_size,
                configuration.tile_size,
            ):
                self.wqkv_bias_decode.append(
                    ttnn.as_tensor(
                        qkv_bias.unsqueeze(0).expand(batch_size, -1),
                        device=self.mesh_device,
                        mesh_mapper=ttnn.ShardTensorToMesh(self.mesh_device, dim=-1),
                        dtype=ttnn.bfloat16,
                        memory_config=ttnn.DRAM_MEMORY_CONFIG,
                        layout=ttnn.TILE_LAYOUT,
                        cache_file_name=cache_name(f"wqkv_bias_decode_sharded_{batch_size}"),
                    )
                )

        # the heads must split evenly over the devices of a group
        for name, value in (
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("qkv_size", configuration.qkv_size),
            ("dim", configuration.dim),
        ):
            if value % self.num_devices_per_group:
                raise ValueError(f"{name} ({value}) must divide over {self.num_devices_per_group} devices per group")

        # wqkv: e.g. 4096 x 3072 on 2 devices: width-sharded over the 12 DRAM banks
        wqkv_mem_config = configuration.create_dram_sharded_mem_config(
            configuration.dim, configuration.qkv_size // configuration.num_devices
        )
        qkv_list = []
        for i in range(self.num_devices_per_group):
            chunks = [
                torch.transpose(torch.chunk(state_dict[f"{w}.weight"], self.num_devices_per_group, dim=0)[i], -2, -1)
                for w in (wq_str, wk_str, wv_str)
            ]
            qkv_list.append(torch.cat(chunks, dim=-1))
        qkv_cat = torch.cat(qkv_list, dim=-1).unsqueeze(0).unsqueeze(0)
        self.wqkv = ttnn.as_tensor(
            qkv_cat,
            dtype=self.wqkv_dtype,
            layout=ttnn.TILE_LAYOUT,
            device=self.mesh_device,
            memory_config=ttnn.DRAM_MEMORY_CONFIG if self.TG else wqkv_mem_config,
            mesh_mapper=ttnn.ShardTensor2dMesh(
                self.mesh_device, dims=(3, 2) if self.TG else (2, 3), mesh_shape=configuration.cluster_shape
            ),
            cache_file_name=cache_name("wqkv_sharded_2d"),
        )

        def norm_reshard(x, norm, mode):
            """RMSNorm has no height-sharded output config yet: decode normalises in L1 and moves back."""
            if mode == "decode":
                mem_cfg = x.memory_config()
                x = ttnn.to_memory_config(x, ttnn.L1_MEMORY_CONFIG, dtype=x.dtype)
            x = norm(x, mode)
            if mode == "decode":
                x = ttnn.to_memory_config(x, mem_cfg, dtype=x.dtype)
            return x

        def head_norm(weight_key):
            return RMSNorm(
                device=self.mesh_device,
                dim=self.head_dim,
                eps=configuration.norm_eps,
                state_dict=state_dict,
                state_dict_prefix=None,  # weight_key carries the layer prefix
                weight_cache_path=None if configuration.dummy_weights else weight_cache_path,
                weight_dtype=ttnn.bfloat16,
                weight_key=weight_key,
                add_unit_offset=self.rms_norm_add_unit_offset,
                is_distributed=False,
                sharded_program_config=None,  # FIXME upstream: no height-sharded RMSNorm support
                sharded_output_config=None,
                tt_ccl=self.tt_ccl,
            )

        if f"{q_norm_str}.weight" in state_dict:  # Qwen3
            fn_q_norm = head_norm(q_norm_str)
            self.q_norm = lambda x, mode: norm_reshard(x, fn_q_norm, mode)
        else:
            self.q_norm = lambda x, mode: x
        if f"{k_norm_str}.weight" in state_dict:
            fn_k_norm = head_norm(k_norm_str)
            self.k_norm = lambda x, mode: norm_reshard(x, fn_k_norm, mode)
        else:
            self.k_norm = lambda x, mode: x

        # Ring topology (T3K): the output projection all-gathers the heads inside the matmul
        self.use_fused_all_gather_matmul = self.model_config["USE_FUSED_ALL_GATHER_MATMUL"]
        pt_wo = state_dict[f"{wo_str}.weight"].transpose(-1, -2).unsqueeze(0).unsqueeze(0)
        wo_mem_config = configuration.create_dram_sharded_mem_config(
            (configuration.n_heads * configuration.head_dim) // configuration.num_devices, configuration.dim
        )
        column_split_wo = self.use_fused_all_gather_matmul or self.TG
        self.wo = ttnn.as_tensor(
            pt_wo,
            dtype=self.wo_dtype,
            layout=ttnn.TILE_LAYOUT,
            device=self.mesh_device,
            memory_config=ttnn.DRAM_MEMORY_CONFIG if column_split_wo else wo_mem_config,
            mesh_mapper=ttnn.ShardTensor2dMesh(
                self.mesh_device, dims=(2, 3) if column_split_wo else (3, 2), mesh_shape=configuration.cluster_shape
            ),
            cache_file_name=cache_name("wo_width_sharded_2d") if column_split_wo else cache_name("wo"),
        )
        if not use_paged_kv_cache:  # vLLM provides its own KV cache
            self.init_kv_cache(configuration, weight_cache_path)

        if configuration.query_pre_attn_scalar is not None:
            self.scale = configuration.query_pre_attn_scalar**-0.5
        else:
            self.scale = self.head_dim**-0.5

    def init_kv_cache(self, configuration, weight_cache_path):
        """Zeroed K and V caches in DRAM on every device: paged [blocks, local KV heads, block size, head_dim] or
        [users per device group, local KV heads, max_seq_len, head_dim]."""
        if self.paged_attention_config:
            shape = (
                self.paged_attention_config.max_num_blocks,
                self.n_local_kv_heads,
                self.paged_attention_config.block_size,
                self.head_dim,
            )
        else:
            shape = (self.batch_size_per_device_group, self.n_local_kv_heads, self.max_seq_len, self.head_dim)
        cache_k, cache_v = torch.zeros(shape), torch.zeros(shape)
        self.layer_past = [
            ttnn.as_tensor(
                k_or_v,
                dtype=self.kv_cache_dtype,
                layout=self.model_config["ATTN_W_LAYOUT_TILE"],
                device=self.mesh_device,
                memory_config=ttnn.DRAM_MEMORY_CONFIG,
                mesh_mapper=ttnn.ReplicateTensorToMesh(self.mesh_device),
                cache_file_name=(
                    f"{weight_cache_path}/kvcache_{k_or_v.shape}"
                    if weight_cache_path and not configuration.dummy_weights
                    else None
                ),
            )
            for k_or_v in (cache_k, cache_v)
        ]

    def to_qk_fused_memory_config(self, q_tensor: ttnn.Tensor, k_tensor: ttnn.Tensor):
        """Height-shard Q and K one user per core on disjoint cores, as rotary_embedding_llama_fused_qk and
        paged_fused_update_cache expect: Q users fill rows of 8 cores from (0, 0), K users start right after
        (32 users: K from row 4; 1 user: K at column 1)."""
        n_q_heads, n_kv_heads = q_tensor.shape[2], k_tensor.shape[2]
        q_batch, k_batch = q_tensor.shape[1], k_tensor.shape[1]
        if q_batch != k_batch:
            raise ValueError(f"Q and K must hold the same users, got {q_batch} and {k_batch}")
        k_start_core = ttnn.CoreCoord(q_batch % pc.CORES_PER_ROW, q_batch // pc.CORES_PER_ROW)
        q_core_grid = ttnn.CoreRangeSet({pc.num_to_corerange(q_batch)})
        k_core_grid = ttnn.CoreRangeSet({pc.num_to_corerange(k_batch, start_core=k_start_core)})
        q_mem_config, k_mem_config = (
            ttnn.create_sharded_memory_config(
                shape=(nearest_multiple(heads, TILE_SIZE), self.head_dim),
                core_grid=grid,
                strategy=ttnn.ShardStrategy.HEIGHT,
                orientation=ttnn.ShardOrientation.ROW_MAJOR,
                use_height_and_width_as_shard_shape=True,
            )
            for heads, grid in ((n_q_heads, q_core_grid), (n_kv_heads, k_core_grid))
        )
        return ttnn.to_memory_config(q_tensor, q_mem_config), ttnn.to_memory_config(k_tensor, k_mem_config)

    def forward_decode(self, x: ttnn.Tensor, current_pos, rot_mats=None, page_table=None, kv_cache=None) -> ttnn.Tensor:
        """x: [1, 1, 32 users, dim] (Galaxy: dim / 4 per device) in SHARDED_ATTN_INPUT_MEMCFG; current_pos: an
        int32 device tensor with each user's position; rot_mats: RotarySetup.get_rot_mats' [cos, sin]."""
        ###
        # QKV matmuls
        # HiFi2 for the DRAM-sharded matmuls, as they are otherwise flop-bound: loses 1 bit of activation precision
        ###
        xqkv_fused_sharded = ttnn.linear(
            x,
            self.wqkv,
            memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
            program_config=self.model_config["XQKV_DECODE_PROGCFG"],
            compute_kernel_config=self.li_qkv_decode_compute_kernel_cfg,
            dtype=self.ccl_dtype if self.TG else self.activation_dtype or ttnn.bfloat16,
        )
        # FIXME upstream: DRAM-sharded matmuls with bias; add it separately
        if self.wqkv_bias_decode:
            # the bias for this many rows of tiles (must not change between compiling and executing a trace)
            num_tiles = math.ceil(xqkv_fused_sharded.shape[-2] / self.tile_size)
            xqkv_fused_sharded = ttnn.add(xqkv_fused_sharded, self.wqkv_bias_decode[num_tiles - 1])  # upstream: +

        ttnn.deallocate(x)
        xqkv_fused = tt_all_reduce(
            xqkv_fused_sharded,
            self.mesh_device,
            self.tt_ccl,
            cluster_axis=1,
            num_reduce_scatter_links=self.num_reduce_scatter_links,
            num_all_gather_links=self.num_all_gather_links,
            memory_config=self.model_config["QKV_OUT_GATHERED_MEMCFG"](self.cluster_shape[1]),
            sharded=True,
            dtype=self.ccl_dtype,
            topology=self.ccl_topology,
        )

        if self.TG:
            # TODO upstream: slice the fused QKV to this column's 8 users
            xqkv_fused = ttnn.matmul(
                self.slice_mat,
                xqkv_fused,
                dtype=ttnn.bfloat16,
                memory_config=self.model_config["CREATE_HEAD_INPUT_MEMCFG"],
            )
        else:
            # bfloat16 is required by nlp_create_qkv_heads_decode (on 1D meshes the all-reduce above is a no-op)
            xqkv_fused = ttnn.sharded_to_interleaved(xqkv_fused, ttnn.L1_MEMORY_CONFIG, ttnn.bfloat16)
        ttnn.deallocate(xqkv_fused_sharded)

        # Reshape such that the true unpadded batch is tracked in the shape
        fqkv_shape = xqkv_fused.shape
        xqkv_fused = ttnn.reshape(
            xqkv_fused, (1, 1, self.batch_size_per_device_group, fqkv_shape[3]), (1, 1, TILE_SIZE, fqkv_shape[3])
        )

        ###
        # Heads and rotary embeddings
        ###
        q_heads_pre_rot_1BQD, k_heads_pre_rot_1BKD, v_heads_1BKD = ttnn.experimental.nlp_create_qkv_heads_decode(
            xqkv_fused,
            num_heads=self.n_local_heads,
            num_kv_heads=self.n_local_kv_heads,
            memory_config=self.model_config["CREATE_QKV_DECODE_SHARD"],
        )
        q_heads_pre_rot_1BQD = self.q_norm(q_heads_pre_rot_1BQD, mode="decode")
        k_heads_pre_rot_1BKD = self.k_norm(k_heads_pre_rot_1BKD, mode="decode")
        ttnn.deallocate(xqkv_fused)

        if self.args.use_qk_fused:
            q_heads_pre_rot_1BQD, k_heads_pre_rot_1BKD = self.to_qk_fused_memory_config(
                q_heads_pre_rot_1BQD, k_heads_pre_rot_1BKD
            )
            q_heads_1BQD, k_heads_1BKD = ttnn.experimental.rotary_embedding_llama_fused_qk(
                q_heads_pre_rot_1BQD, k_heads_pre_rot_1BKD, rot_mats[0], rot_mats[1], self.transformation_mats["decode"]
            )
        else:
            q_heads_1BQD = ttnn.experimental.rotary_embedding_llama(
                q_heads_pre_rot_1BQD, rot_mats[0], rot_mats[1], self.transformation_mats["decode"], is_decode_mode=True
            )
            k_heads_1BKD = ttnn.experimental.rotary_embedding_llama(
                k_heads_pre_rot_1BKD, rot_mats[0], rot_mats[1], self.transformation_mats["decode"], is_decode_mode=True
            )
        ttnn.deallocate(q_heads_pre_rot_1BQD)
        ttnn.deallocate(k_heads_pre_rot_1BKD)

        ###
        # KV update
        ###
        keys, values = kv_cache if kv_cache is not None else self.layer_past
        if self.args.use_qk_fused:
            ttnn.experimental.paged_fused_update_cache(
                keys, k_heads_1BKD, values, v_heads_1BKD, update_idxs_tensor=current_pos, page_table=page_table
            )
        else:
            ttnn.experimental.paged_update_cache(
                keys, k_heads_1BKD, update_idxs_tensor=current_pos, page_table=page_table
            )
            ttnn.experimental.paged_update_cache(
                values, v_heads_1BKD, update_idxs_tensor=current_pos, page_table=page_table
            )
        ttnn.deallocate(k_heads_1BKD)
        ttnn.deallocate(v_heads_1BKD)

        # NOTE upstream: the batch size changes SDPA decode's reductions, so 1 user and N copies of it differ slightly
        if page_table is not None:
            attn_output_1G4D = ttnn.transformer.paged_scaled_dot_product_attention_decode(
                q_heads_1BQD,
                keys,
                values,
                page_table_tensor=page_table,
                cur_pos_tensor=current_pos,
                scale=self.scale,
                sliding_window_size=self.sliding_window,
                program_config=self.model_config["SDPA_DECODE_PROGCFG"],
                compute_kernel_config=self.sdpa_decode_compute_kernel_cfg,
                memory_config=ttnn.DRAM_MEMORY_CONFIG,
            )
        else:
            attn_output_1G4D = ttnn.transformer.scaled_dot_product_attention_decode(
                q_heads_1BQD,
                keys,
                values,
                cur_pos_tensor=current_pos,
                scale=self.scale,
                sliding_window_size=self.sliding_window,
                program_config=self.model_config["SDPA_DECODE_PROGCFG"],
                compute_kernel_config=self.sdpa_decode_compute_kernel_cfg,
                memory_config=ttnn.DRAM_MEMORY_CONFIG,
            )
        ttnn.deallocate(q_heads_1BQD)

        attn_output_11BH = ttnn.to_memory_config(
            attn_output_1G4D,
            memory_config=self.model_config["SCORES_BATCHED_MM_OUTPUT_MEMCFG"](self.batch_size_per_device_group),
        )
        attn_output_cat = ttnn.experimental.nlp_concat_heads_decode(attn_output_11BH, num_heads=self.n_local_heads)
        ttnn.deallocate(attn_output_11BH)
        ttnn.deallocate(attn_output_1G4D)

        if self.use_fused_all_gather_matmul:
            attn_output_cat = ttnn.to_memory_config(
                attn_output_cat, self.model_config["ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG"]
            )
            # the fused all-gather matmul runs on rings only
            if self.ccl_topology == ttnn.Topology.Ring:
                _, dense_out_sharded = ttnn.experimental.all_gather_matmul_async(
                    attn_output_cat,
                    self.wo,
                    persistent_output_buffer=None,
                    dim=3,
                    multi_device_global_semaphore=self.tt_ccl.get_and_cycle_ag_semaphore_handles(),
                    all_gather_core_grid_offset=FUSED_AG_MM_CORE_OFFSET,
                    barrier_semaphore=self.tt_ccl.get_and_cycle_barrier_semaphore_handle(),
                    num_links=1,
                    memory_config_ag=self.model_config["ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG"],
                    memory_config_mm=self.model_config["DECODE_RESIDUAL_MEMCFG"],
                    program_config=self.model_config["ATTN_ALL_GATHER_MATMUL_PROGCFG"],
                    compute_kernel_config=self.compute_kernel_config_hifi2,
                    chunks_per_sync=ccl.CHUNKS_PER_SYNC,
                    num_workers_per_link=ccl.NUM_WORKERS_PER_LINK,
                    num_buffers_per_channel=ccl.NUM_BUFFERS_PER_CHANNEL,
                )
            else:
                all_gather_output = self._all_gather_heads(
                    attn_output_cat, self.model_config["ATTN_ALL_GATHER_MATMUL_OUTPUT_MEMCFG"]
                )
                dense_out_sharded = ttnn.linear(
                    all_gather_output,
                    self.wo,
                    memory_config=self.model_config["DECODE_RESIDUAL_MEMCFG"],
                    program_config=self.model_config["ATTN_ALL_GATHER_MATMUL_PROGCFG"],
                    compute_kernel_config=self.li_o_decode_compute_kernel_cfg,
                )
                ttnn.deallocate(all_gather_output)
            ttnn.deallocate(attn_output_cat)
            return ttnn.to_memory_config(dense_out_sharded, self.model_config["DECODE_RESIDUAL_MEMCFG"])

        attn_output = tt_all_gather(
            attn_output_cat,
            self.mesh_device,
            self.tt_ccl,
            dim=2,
            cluster_axis=1,
            num_links=2,
            memory_config=self.model_config["GATHER_USERS_MEMCFG"](self.cluster_shape[1]),
            sharded=True,
        )
        if self.TG:
            attn_output = ttnn.to_memory_config(attn_output, ttnn.L1_MEMORY_CONFIG)
            # user_selection_matrix [1, 1, 32, 128] @ activation [1, 1, 128, H] -> [1, 1, 32, H]
            attn_output = ttnn.matmul(
                self.user_selection_matrix,
                attn_output,
                core_grid=TG_WO_CORE_GRID,
                dtype=ttnn.bfloat16,
                memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
            )
        # TODO upstream: DRAM-sharded matmuls on Galaxy
        dense_out_sharded = ttnn.matmul(
            attn_output,
            self.wo,
            core_grid=TG_WO_CORE_GRID if self.TG else None,
            program_config=self.model_config["ATTN_OUTPUT_PROGCFG"] if not self.TG else None,
            memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
            dtype=ttnn.bfloat8_b if self.TG else None,
            compute_kernel_config=self.li_o_decode_compute_kernel_cfg,
        )
        ttnn.deallocate(attn_output_cat)

        dense_out_reduced = tt_all_reduce(
            dense_out_sharded,
            self.mesh_device,
            self.tt_ccl,
            cluster_axis=0,
            num_reduce_scatter_links=self.num_reduce_scatter_links,
            num_all_gather_links=self.num_all_gather_links,
            dim=0 if (self.TG and self.hidden_size < LARGE_DIM) else 3,
            topology=self.ccl_topology,
            memory_config=(
                (
                    self.model_config["SELF_OUT_REDUCE_SCATTER_MEMCFG"]
                    if self.hidden_size == LARGE_DIM
                    else self.model_config["SELF_OUT_GATHERED_MEMCFG"](self.cluster_shape[0])
                )
                if self.TG
                else self.model_config["DECODE_RESIDUAL_MEMCFG"]
            ),
            sharded=True,
            dtype=self.ccl_dtype,
            use_composite=self.hidden_size == LARGE_DIM,
        )
        if not self.TG:
            dense_out_reduced = ttnn.to_memory_config(dense_out_reduced, self.model_config["DECODE_RESIDUAL_MEMCFG"])
        return dense_out_reduced

    def _all_gather_heads(self, x, memory_config):
        """All-gather the concatenated heads along dim 3 over one link, ahead of the column-split wo matmul (decode
        off a ring, and prefill, with the fused all-gather matmul)."""
        return ttnn.experimental.all_gather_async(
            x,
            persistent_output_buffer=None,
            dim=3,
            multi_device_global_semaphore=self.tt_ccl.get_and_cycle_ag_semaphore_handles(),
            num_links=1,
            topology=self.ccl_topology,
            memory_config=memory_config,
            barrier_semaphore=self.tt_ccl.get_and_cycle_barrier_semaphore_handle(),
            chunks_per_sync=ccl.CHUNKS_PER_SYNC,
            num_workers_per_link=ccl.NUM_WORKERS_PER_LINK,
            num_buffers_per_channel=ccl.NUM_BUFFERS_PER_CHANNEL,
        )

    def forward_prefill(
        self,
        x_11SH,
        rot_mats,
        user_id: int = 0,
        page_table=None,
        chunk_page_table=None,
        chunk_start_idx=None,
        kv_cache=None,
    ):
        """x_11SH: [1, 1, seq_len, dim] (Galaxy: dim / 4 per device) in DRAM; rot_mats: [cos, sin] of the prompt's
        positions; fills user ``user_id``'s KV cache (through ``chunk_page_table`` for a chunk at chunk_start_idx)."""
        seq_len = x_11SH.shape[-2]
        if seq_len <= 0 or seq_len % PREFILL_SEQ_MULTIPLE:
            raise ValueError(f"prefill seq_len {seq_len} must be a positive multiple of {PREFILL_SEQ_MULTIPLE}")

        ###
        # QKV matmuls
        ###
        # long sequences: reshape so the matmul fits on device
        if seq_len > self.MAX_QKV_MM_SEQ_LEN:
            if seq_len % self.MAX_QKV_MM_SEQ_LEN != 0:
                raise ValueError(f"seq_len {seq_len} must be divisible by {self.MAX_QKV_MM_SEQ_LEN}")
            x_11SH = ttnn.reshape(x_11SH, [1, seq_len // self.MAX_QKV_MM_SEQ_LEN, self.MAX_QKV_MM_SEQ_LEN, -1])

        xqkv_fused = ttnn.linear(
            x_11SH,
            self.wqkv,
            dtype=self.ccl_dtype if self.TG else self.activation_dtype or ttnn.bfloat16,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            compute_kernel_config=self.li_qkv_prefill_compute_kernel_cfg,
            program_config=self.model_config["XQKV_PREFILL_PROGCFG"](seq_len),
        )
        # FIXME upstream: surely ttnn.linear bias should work?
        if self.wqkv_bias_prefill is not None:
            xqkv_fused = ttnn.add(xqkv_fused, self.wqkv_bias_prefill)  # upstream: +

        xqkv_fused = tt_all_reduce(
            xqkv_fused,
            self.mesh_device,
            self.tt_ccl,
            cluster_axis=1,
            num_reduce_scatter_links=self.num_reduce_scatter_links,
            num_all_gather_links=self.num_all_gather_links,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            dtype=self.ccl_dtype,
        )
        if seq_len > self.MAX_QKV_MM_SEQ_LEN:
            xqkv_fused = ttnn.reshape(xqkv_fused, [1, 1, seq_len, -1])
        ttnn.deallocate(x_11SH)

        q_heads_1QSD_pre_rot, k_heads_1KSD_pre_rot, v_heads_1VSD = ttnn.experimental.nlp_create_qkv_heads(
            xqkv_fused,
            num_heads=self.n_local_heads,
            num_kv_heads=self.n_local_kv_heads,
            transpose_k_heads=False,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )
        q_heads_1QSD_pre_rot = self.q_norm(q_heads_1QSD_pre_rot, mode="prefill")
        k_heads_1KSD_pre_rot = self.k_norm(k_heads_1KSD_pre_rot, mode="prefill")
        ttnn.deallocate(xqkv_fused)

        ###
        # Rotary embeddings (bfloat16 inputs only)
        ###
        if q_heads_1QSD_pre_rot.dtype != ttnn.bfloat16:
            q_heads_1QSD_pre_rot = ttnn.typecast(q_heads_1QSD_pre_rot, dtype=ttnn.bfloat16)
        q_heads_1QSD = ttnn.experimental.rotary_embedding_llama(
            q_heads_1QSD_pre_rot, rot_mats[0], rot_mats[1], self.transformation_mats["prefill"], is_decode_mode=False
        )
        ttnn.deallocate(q_heads_1QSD_pre_rot)
        if k_heads_1KSD_pre_rot.dtype != ttnn.bfloat16:
            k_heads_1KSD_pre_rot = ttnn.typecast(k_heads_1KSD_pre_rot, dtype=ttnn.bfloat16)
        k_heads_1KSD = ttnn.experimental.rotary_embedding_llama(
            k_heads_1KSD_pre_rot, rot_mats[0], rot_mats[1], self.transformation_mats["prefill"], is_decode_mode=False
        )
        ttnn.deallocate(k_heads_1KSD_pre_rot)

        ###
        # Fill the KV cache
        ###
        keys_BKSD, values_BKSD = kv_cache if kv_cache is not None else self.layer_past
        k_heads_1KSD_8b = ttnn.typecast(k_heads_1KSD, dtype=keys_BKSD.dtype)
        ttnn.deallocate(k_heads_1KSD)
        v_heads_1VSD_8b = ttnn.typecast(v_heads_1VSD, dtype=values_BKSD.dtype)
        ttnn.deallocate(v_heads_1VSD)
        # long prompts: shard K / V for fill_cache's L1 limits
        shard_fill = seq_len >= self.min_kv_prefill_shard_seqlen and not self.TG and page_table is None
        if shard_fill:
            k_fill = ttnn.interleaved_to_sharded(k_heads_1KSD_8b, self.model_config["KV_PREFILL_MEM_CFG"](seq_len))
            v_fill = ttnn.interleaved_to_sharded(v_heads_1VSD_8b, self.model_config["KV_PREFILL_MEM_CFG"](seq_len))
        else:
            k_fill, v_fill = k_heads_1KSD_8b, v_heads_1VSD_8b

        # Galaxy, paged: user_id's blocks are its own on every device, so every column may fill them
        if self.TG and page_table is None:
            k_fill = self.prefill_prepare_tensor_for_kv_cache(k_fill, user_id, keys_BKSD)
            v_fill = self.prefill_prepare_tensor_for_kv_cache(v_fill, user_id, values_BKSD)
        if page_table is not None:
            # Tokens padded along the sequence: fill only the unpadded length (the page table is not padded)
            block_size = keys_BKSD.shape[2]
            fill_page_table = chunk_page_table if chunk_page_table is not None else page_table
            page_len = fill_page_table.shape[1] * block_size
            if page_len < k_fill.shape[2]:  # upstream: k_fill[:, :, :page_len, :]
                k_fill = ttnn.slice(k_fill, (0, 0, 0, 0), (*k_fill.shape[:2], page_len, k_fill.shape[3]))
                v_fill = ttnn.slice(v_fill, (0, 0, 0, 0), (*v_fill.shape[:2], page_len, v_fill.shape[3]))
            ttnn.experimental.paged_fill_cache(keys_BKSD, k_fill, fill_page_table, batch_idx=user_id)
            ttnn.experimental.paged_fill_cache(values_BKSD, v_fill, fill_page_table, batch_idx=user_id)
        else:
            ttnn.fill_cache(keys_BKSD, k_fill, user_id % self.batch_size_per_device_group)
            ttnn.fill_cache(values_BKSD, v_fill, user_id % self.batch_size_per_device_group)
        if shard_fill:
            ttnn.deallocate(k_fill)
            ttnn.deallocate(v_fill)

        ###
        # SDPA
        ###
        q_heads_1QSD_8b = ttnn.typecast(q_heads_1QSD, dtype=self.activation_dtype or ttnn.bfloat8_b)
        ttnn.deallocate(q_heads_1QSD)
        if chunk_start_idx is not None:
            if self.sliding_window is not None:
                raise NotImplementedError("Sliding window not supported for chunked prefill SDPA")
            attn_output_84SD = ttnn.transformer.chunked_scaled_dot_product_attention(
                input_tensor_q=q_heads_1QSD_8b,
                input_tensor_k=keys_BKSD,
                input_tensor_v=values_BKSD,
                page_table_tensor=page_table,
                chunk_start_idx=chunk_start_idx,
                compute_kernel_config=self.sdpa_prefill_compute_kernel_cfg,
                program_config=pc.sdpa_chunk_aligned(self.model_config["SDPA_PROGCFG"](seq_len), chunk_start_idx),
            )
        else:
            attn_output_84SD = ttnn.transformer.scaled_dot_product_attention(
                q_heads_1QSD_8b,
                k_heads_1KSD_8b,
                v_heads_1VSD_8b,
                is_causal=True,
                sliding_window_size=self.sliding_window,
                scale=self.scale,
                compute_kernel_config=self.sdpa_prefill_compute_kernel_cfg,
                program_config=self.model_config["SDPA_PROGCFG"](seq_len),
            )
        ttnn.deallocate(q_heads_1QSD_8b)
        ttnn.deallocate(k_heads_1KSD_8b)
        ttnn.deallocate(v_heads_1VSD_8b)
        attn_output_1QSD = ttnn.reshape(attn_output_84SD, [1, self.n_local_heads, -1, self.head_dim])

        ###
        # Output matmul
        ###
        attn_output_11SH = ttnn.experimental.nlp_concat_heads(attn_output_1QSD, memory_config=ttnn.DRAM_MEMORY_CONFIG)
        ttnn.deallocate(attn_output_1QSD)
        # long sequences: reshape so the matmul fits on device
        if seq_len > pc.MAX_MM_SEQ_LEN:
            attn_output_11SH = ttnn.reshape(attn_output_11SH, [1, seq_len // pc.MAX_MM_SEQ_LEN, pc.MAX_MM_SEQ_LEN, -1])

        # the fused all-gather matmul's prefill counterpart (ring topology): gather the heads, column-split wo
        if self.use_fused_all_gather_matmul:
            attn_output_11SH = self._all_gather_heads(attn_output_11SH, ttnn.DRAM_MEMORY_CONFIG)
        output_11SH = ttnn.linear(
            attn_output_11SH,
            self.wo,
            compute_kernel_config=self.li_o_prefill_compute_kernel_cfg,
            dtype=self.activation_dtype or ttnn.bfloat8_b,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            program_config=self.model_config["WO_PREFILL_PROGCFG"](seq_len),
        )
        if seq_len > pc.MAX_MM_SEQ_LEN:
            output_11SH = ttnn.reshape(output_11SH, [1, 1, seq_len, -1])
        ttnn.deallocate(attn_output_11SH)

        if not self.use_fused_all_gather_matmul:
            output_11SH = tt_all_reduce(
                output_11SH,
                self.mesh_device,
                self.tt_ccl,
                cluster_axis=0,
                dim=0 if self.TG else 3,
                num_reduce_scatter_links=self.num_reduce_scatter_links,
                num_all_gather_links=self.num_all_gather_links,
                topology=self.ccl_topology,
                memory_config=ttnn.DRAM_MEMORY_CONFIG,
                dtype=self.ccl_dtype,
            )
        return output_11SH

    def forward(
        self,
        x,
        current_pos,
        rot_mats=None,
        user_id=0,
        mode="decode",
        page_table=None,
        chunk_page_table=None,
        chunk_start_idx=None,
        kv_cache=None,
    ):
        record_case(
            CASES_FILE,
            CASES_HEADER,
            (
                self.layer_num, *self.args.cluster_shape, x.dtype, self.wqkv.dtype, self.wo.dtype,
                self.layer_past[0].dtype if kv_cache is None else kv_cache[0].dtype, *x.shape, self.hidden_size,
                self.n_heads, self.n_kv_heads, self.head_dim, self.max_batch_size, self.args.model_name, mode,
                page_table is not None,
            ),
        )  # fmt: skip
        if mode == "prefill":
            return self.forward_prefill(
                x,
                rot_mats,
                user_id,
                page_table=page_table,
                chunk_page_table=chunk_page_table,
                chunk_start_idx=chunk_start_idx,
                kv_cache=kv_cache,
            )
        return self.forward_decode(x, current_pos, rot_mats, page_table=page_table, kv_cache=kv_cache)

    def prefill_prepare_tensor_for_kv_cache(self, key_or_value_layer, user_id, cache):
        """Galaxy: each mesh column caches its own 8 users, so only the column serving ``user_id`` may change its
        cache slot. Upstream keeps that column's devices (clone, get_device_tensors, combine_device_tensors) and fills
        only them; ttnn 0.81's fill_cache crashes on such a partial-mesh tensor. Here every device fills, the other
        columns with what their slot already holds: new · mask + old · (1 - mask), mask one-hot over the columns."""
        users = self.batch_size_per_device_group
        return fill_on_serving_column(key_or_value_layer, cache, user_id, users, self.tg_column_masks)
