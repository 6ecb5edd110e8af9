# SPDX-License-Identifier: Apache-2.0
"""TTTv1 Transformer: embedding → TransformerBlocks → final norm → LM head, token ids in, logits out.

prefill: prepare_inputs_prefill(tokens) → ttnn_prefill_forward (fills each layer's KV cache for ``user_id``; with
         ``get_last_token`` also norm + LM head on the 32-row tile holding that token) → process_output_prefill
decode:  prepare_inputs_decode(tokens, current_pos) → ttnn_decode_forward (one token per user)
         → process_output_decode

Decode logits are gathered over the devices and untilized on device, and the host reads one device (upstream);
prefill logits stay split over the devices and are composed on the host. The caller samples.
``attention`` / ``feed_forward`` / ``attention_norm`` / ``ff_norm`` are passed to every TransformerBlock (TTTv2
builders such as ``MLP1D.from_model_args``, or None for TTTv1's). ``embedding``, ``norm`` (the final norm) and
``lm_head`` swap the model's own modules the same way: builders called with TTTv1's arguments
(``embedding(mesh_device, args, weight_cache_path, state_dict, dtype)``, ``norm(mesh_device, tt_ccl, args,
state_dict, weight_cache_path, None, "norm")``, ``lm_head(args, mesh_device, tt_ccl, dtype, state_dict,
state_dict_prefix, weight_cache_path, max_columns_per_device)``), e.g. ``Embedding1D.from_model_args``,
``RMSNorm1D.from_model_args``, ``LMHead1D.from_model_args``. Every weight, the
embedding included, is cached under ``weight_cache_path`` (upstream caches the embedding under
``args.weight_cache_path(dtype)``).

Left out from upstream: on-device sampling (argmax on the gathered decode logits), trace helpers
(host-side input preparation, ``copy_host_to_device``), ScaledEmbedding, sliding-window (local) rotary
matrices, caller-owned ``kv_cache`` tensors (vLLM), per-layer activation-dtype casts (no shipped configuration
sets one) and the prefetcher.
"""

import torch
import ttnn

from models.common.modules import tt_ccl as ccl
from models.common.modules.lightweight_module import LightweightModule
from models.common.modules.lm_head.lm_head_1d import LOGITS_GATHER_LINKS
from models.common.tensor_utils import TILE_SIZE, first_device_to_host
from models.tt_transformers.tt.decoder import TransformerBlock, tttv1_norm
from models.tt_transformers.tt.embedding import Embedding
from models.tt_transformers.tt.lm_head import LMHead
from models.tt_transformers.tt.rope import RotarySetup


class Transformer(LightweightModule):
    def __init__(
        self,
        args,
        dtype,
        mesh_device,
        state_dict,
        weight_cache_path,
        paged_attention_config=None,
        use_paged_kv_cache=False,
        attention=None,
        feed_forward=None,
        attention_norm=None,
        ff_norm=None,
        embedding=None,
        norm=None,
        lm_head=None,
    ):
        super().__init__()
        self.args = args
        self.vocab_size = args.vocab_size
        self.n_layers = args.n_layers
        self.mesh_device = mesh_device
        self.dtype = dtype
        self.model_config = args.get_model_config()
        self.tt_ccl = ccl.get_tt_ccl(mesh_device)

        self.embd = (embedding or Embedding)(mesh_device, args, weight_cache_path, state_dict, dtype=ttnn.bfloat16)
        # TTTv1's attention rotates Q and K in one fused op when args.use_qk_fused (each user twice in the rotary
        # matrices); TTTv2 attention modules rotate them one at a time
        self.rope_setup = RotarySetup(
            mesh_device,
            args.max_batch_size,
            args.head_dim,
            args.max_seq_len,
            args.rope_theta,
            args.rope_scaling,
            use_qk_fused=args.use_qk_fused and attention is None,
        )
        self.trans_mats_dict = self.rope_setup.get_both_trans_mats()
        self.layers = [
            TransformerBlock(
                args,
                mesh_device,
                self.tt_ccl,
                dtype,
                state_dict,
                i,
                weight_cache_path,
                self.trans_mats_dict,
                paged_attention_config=paged_attention_config,
                use_paged_kv_cache=use_paged_kv_cache,
                attention=attention,
                feed_forward=feed_forward,
                attention_norm=attention_norm,
                ff_norm=ff_norm,
            )
            for i in range(self.n_layers)
        ]
        self.norm = (norm or tttv1_norm)(mesh_device, self.tt_ccl, args, state_dict, weight_cache_path, None, "norm")
        self.lm_head = (lm_head or LMHead)(
            args,
            mesh_device,
            self.tt_ccl,
            dtype,
            state_dict,
            args.get_state_dict_prefix("", None),
            weight_cache_path,
            args.max_columns_per_device_lm_head,
        )
        # mesh rows / columns → logits dims: 1D meshes split the vocabulary over columns; Galaxy over rows
        # (its columns hold all-reduced copies)
        self._logits_dims = (3, 1) if args.is_galaxy else (1, 3)

    # --- inputs ----------------------------------------------------------------------------------------------
    def prepare_inputs_prefill(self, tokens, start_pos=0, page_table=None, chunk_page_table=None):
        """tokens: [1, seq_len] torch ints (seq_len a multiple of 32). Returns device tensors: the embedded prompt
        [1, 1, seq_len, dim / columns] in DRAM, the rotary (cos, sin) rows [start_pos, start_pos + seq_len), and
        the page tables (or None)."""
        if tokens.dim() != 2 or tokens.shape[0] != 1:
            raise ValueError(f"prefill tokens must be [1, seq_len] (one user), got {tuple(tokens.shape)}")
        seq_len = tokens.shape[-1]
        tt_tokens = self._replicated(tokens.reshape(1, seq_len), ttnn.uint32)
        x = self.embd(tt_tokens, memory_config=ttnn.DRAM_MEMORY_CONFIG)  # [1, seq_len, dim / columns]
        x = ttnn.reshape(x, (1, 1, seq_len, x.shape[-1]))
        begin, end = (0, 0, start_pos, 0), (1, 1, start_pos + seq_len, self.args.head_dim)
        rot_mats = [ttnn.slice(m, begin, end) for m in (self.rope_setup.cos_matrix, self.rope_setup.sin_matrix)]
        return x, rot_mats, self._page_table(page_table), self._page_table(chunk_page_table)

    def prepare_inputs_decode(self, tokens, current_pos, page_table=None):
        """tokens, current_pos: [max_batch_size] torch ints (one per user). Returns device tensors: tokens
        [1, 32] (zero-padded), current_pos (int32), rotary position indices, page table (or None)."""
        batch = self.args.max_batch_size
        if tokens.shape != (batch,) or current_pos.shape != (batch,):
            raise ValueError(
                f"decode needs one token and one position per user ({batch}), got tokens {tuple(tokens.shape)} "
                f"and current_pos {tuple(current_pos.shape)}"
            )
        padded = torch.zeros(1, TILE_SIZE, dtype=torch.int64)
        padded[0, :batch] = tokens
        tt_tokens = self._replicated(padded, ttnn.uint32)
        # Galaxy: each mesh column decodes its own users, so positions and page-table rows are split over columns
        split = self.args.is_galaxy and batch > 1
        tt_current_pos = ttnn.from_torch(
            current_pos, device=self.mesh_device, dtype=ttnn.int32, mesh_mapper=self._users_mapper(split, 0)
        )
        rot_mat_idxs = self.rope_setup.get_rot_idxs(torch.clamp(current_pos, min=0))  # inactive users (-1) → 0
        tt_page_table = None
        if page_table is not None:
            tt_page_table = ttnn.from_torch(
                page_table,
                device=self.mesh_device,
                dtype=ttnn.int32,
                layout=ttnn.ROW_MAJOR_LAYOUT,
                mesh_mapper=self._users_mapper(split, -2),
            )
        return tt_tokens, tt_current_pos, rot_mat_idxs, tt_page_table

    def _users_mapper(self, split: bool, dim: int):
        dims = (None, dim) if split else (None, None)
        return ttnn.ShardTensor2dMesh(self.mesh_device, dims=dims, mesh_shape=self.args.cluster_shape)

    def _replicated(self, host: torch.Tensor, dtype):
        return ttnn.from_torch(
            host,
            device=self.mesh_device,
            dtype=dtype,
            layout=ttnn.ROW_MAJOR_LAYOUT,
            mesh_mapper=ttnn.ReplicateTensorToMesh(self.mesh_device),
        )

    def _page_table(self, page_table):
        return None if page_table is None else self._replicated(page_table, ttnn.int32)

    # --- forwards --------------------------------------------------------------------------------------------
    def ttnn_prefill_forward(
        self, x, rot_mats, user_id=0, page_table=None, chunk_page_table=None, chunk_start_idx=None, get_last_token=-1
    ):
        return self.forward(
            x,
            None,
            rot_mats,
            user_id,
            "prefill",
            page_table=page_table,
            chunk_page_table=chunk_page_table,
            chunk_start_idx=chunk_start_idx,
            get_last_token=get_last_token,
        )

    def ttnn_decode_forward(self, x, current_pos, rot_mat_idxs, page_table=None):
        """x: the [1, 32] token tensor of prepare_inputs_decode → logits [1, 1, 32, padded vocab], row-major, whole
        on every device (upstream: "gather the output across all devices and untilize the tensor (for argmax)")."""
        rot_mats = self.rope_setup.get_rot_mats(rot_mat_idxs)
        embedded = self.embd(x)  # [1, 32, dim / columns]
        embedded = ttnn.reshape(embedded, (1, 1, TILE_SIZE, embedded.shape[-1]))
        embedded = ttnn.to_memory_config(embedded, self.model_config["DECODE_RESIDUAL_MEMCFG"])
        tt_logits = self.forward(embedded, current_pos, rot_mats, mode="decode", page_table=page_table)
        if self.args.num_devices > 1:
            tt_logits = ccl.all_gather(
                self.tt_ccl,
                tt_logits,
                dim=ccl.WIDTH_DIM,
                memory_config=tt_logits.memory_config(),
                topology=self.args.ccl_topology(),
                num_links=ccl.GALAXY_ALL_GATHER_LINKS if self.args.is_galaxy else LOGITS_GATHER_LINKS,
                cluster_axis=ccl.ROW_AXIS if self.args.is_galaxy else None,
            )
        return ttnn.untilize(tt_logits, use_multicore=True)

    def forward(
        self,
        x: ttnn.Tensor,
        current_pos,
        rot_mats=None,
        user_id=0,
        mode="decode",
        page_table=None,
        chunk_page_table=None,
        chunk_start_idx=None,
        get_last_token=-1,
    ):
        for layer in self.layers:
            x = layer(x, current_pos, rot_mats, user_id, mode, page_table, chunk_page_table, chunk_start_idx)
        if mode == "prefill" and get_last_token == -1:
            return x  # the caller only fills the KV caches
        if get_last_token != -1:  # the 32-row tile holding the last prompt token
            x = ttnn.slice(x, (0, 0, get_last_token, 0), (1, 1, get_last_token + TILE_SIZE, x.shape[-1]))
        x = self.norm(x, mode=mode)
        if mode == "prefill":  # the decode norm already writes LM_HEAD_INPUT_MEMCFG
            x = ttnn.interleaved_to_sharded(x, self.model_config["LM_HEAD_INPUT_MEMCFG"])
        return self.lm_head(x)

    # --- outputs ---------------------------------------------------------------------------------------------
    def concat_host_output(self, tt_out) -> torch.Tensor:
        """Every device's vocabulary slice, composed on the host as upstream does: each device read on its own, each
        mesh row's devices concatenated along the column dim, then the rows: [1, *, 32, vocab (padded)]."""
        row_dim, col_dim = self._logits_dims
        columns = self.args.cluster_shape[1]
        shards = [ttnn.to_torch(device_tensor) for device_tensor in ttnn.get_device_tensors(tt_out)]
        rows = [torch.cat(shards[i : i + columns], dim=col_dim) for i in range(0, len(shards), columns)]
        return torch.cat(rows, dim=row_dim).float()

    def process_output_prefill(self, tt_out, last_token_idx) -> torch.Tensor:
        """Logits [vocab] of row ``last_token_idx`` (within the tile that ``get_last_token`` selected)."""
        return self.concat_host_output(tt_out)[0, 0, last_token_idx, : self.vocab_size]

    def process_output_decode(self, tt_out, B, S=1) -> torch.Tensor:
        """Logits [B, S, vocab] of the first B users, read from the first device (ttnn_decode_forward gathered them)."""
        logits = first_device_to_host(tt_out).float()
        return logits[0, 0, :B, : self.vocab_size].view(B, S, -1)
