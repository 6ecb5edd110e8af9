# SPDX-License-Identifier: Apache-2.0
"""CausalLM: a whole decoder-only language model built only from TTTv2 modules, for every family hf_loading knows.

prefill (one user):  ids → embedding → N × DecoderBlock → norm → LM head (the tile holding the last prompt token)
                     → logits of the last prompt token; prompts longer than ``prefill_chunk_size`` run chunk by
                     chunk, each attending to the user's paged cache (chunked SDPA)
decode (the batch):  ids and positions (and the page table when the allocator changed it) written into persistent
                     device tensors → rotary indices from the positions, on device → embedding
                     → N × DecoderBlock (per-user positions) → norm → LM head → vocabulary slices gathered and
                     untilized (``decode_device``: allocates nothing that outlives the step but its logits) → logits
                     [users, vocab] read from one device (``read_logits``). With ``trace_decode`` the device part is
                     captured once as a ttnn trace (after one eager compile step) and replayed on the written inputs

The KV cache is paged: ``BlockAllocator`` keeps the page table, growing each user's row as its sequence does. The 1D
or 2D modules are chosen once, from the mesh shape (``parts_for``); the forwards are the same on every mesh.

    model = CausalLM(HFModel.load(folder), mesh_device, max_seq_len=1024, weight_cache="cache/llama")
    logits = model.prefill_forward(prompt_ids, user_id=0)           # [vocab]
    logits = model.decode_forward(next_ids, positions)              # [users, vocab]

Trace capture needs hardware and a mesh opened with a trace region (``DECODE_TRACE_REGION_SIZE``); the mock cluster
cannot capture (``trace_decode`` is refused there), and the shadow cannot follow a replay, so both decode eagerly.
"""

from pathlib import Path

import torch
import ttnn

from models.common import devices, tensor_utils
from models.common.models.decoder_block import DecoderBlock, cached, parts_for, rope_for
from models.common.models.hf_loading import HFModel
from models.common.models.paged_cache import BlockAllocator
from models.common.modules import program_configs as pc
from models.common.modules.attention.attention_steps import PREFILL_SEQ_MULTIPLE, PagedAttentionConfig, host_positions
from models.common.modules.lazy_weight import LazyWeight, MeshMapping

BLOCK_SIZE = PagedAttentionConfig().block_size  # TTTv1's paged-cache block (common.PagedAttentionConfig)
PREFILL_CHUNK_SIZE = pc.MAX_QKV_MM_SEQ_LEN  # long prompts run in chunks of the rows one QKV matmul takes
PAD_TOKEN = 0  # prompt padding up to the prefill length: causal attention keeps it out of the real positions
REPLICATED = MeshMapping.replicate()
ROW_CHUNKS = (pc.MAX_MM_SEQ_LEN, pc.MAX_QKV_MM_SEQ_LEN)  # prefill lengths above these are multiples of them
DECODE_TRACE_REGION_SIZE = 30_000_000  # bytes: upstream tt_transformers simple_text_demo's device_params
TRACE_CQ = 0  # the command queue the trace is captured on and replayed from (upstream generator: cq_id=0)


class CausalLM:
    """``CausalLM(model, mesh_device, max_seq_len=..., max_batch_size=32, prefill_chunk_size=2048,
    weight_cache=None, trace_decode=False)``. ``weight_cache``: a folder of converted weights (``layers.<i>/`` per
    decoder layer): the first build writes each weight there, later builds load it instead of converting. Each file
    is keyed on the weight's source identity (checkpoint file, size and modification time, or the random draw),
    dtype, layout, memory config and mesh layout, so another model, mesh or dtype never loads it.
    ``trace_decode``: capture the decode step's device part once and replay it (hardware; the mesh needs a trace
    region). A device tensor allocated after the capture (the first decode step) and still live during a replay could
    be overwritten by the replay's intermediates: build everything first (prefill's tensors are freed before the
    next step)."""

    def __init__(
        self,
        model: HFModel,
        mesh_device,
        *,
        max_seq_len: int,
        max_batch_size: int = 32,
        prefill_chunk_size: int = PREFILL_CHUNK_SIZE,
        weight_cache: str | Path | None = None,
        trace_decode: bool = False,
    ):
        if trace_decode and devices.detect_tier() == devices.MOCK:
            raise ValueError(
                "trace_decode needs a device that can capture a ttnn trace; the mock cluster cannot (ttnn crashes): "
                "build with trace_decode=False"
            )
        if prefill_chunk_size != prefill_length(prefill_chunk_size) or prefill_chunk_size % BLOCK_SIZE:
            raise ValueError(
                f"prefill_chunk_size {prefill_chunk_size} must be a valid prefill length (a multiple of "
                f"{PREFILL_SEQ_MULTIPLE}, and of {ROW_CHUNKS} when above them) and of the block size {BLOCK_SIZE}"
            )
        d = model.description
        parts = parts_for(mesh_device.shape)
        self.description, self.mesh_device = d, mesh_device
        self.max_seq_len, self.max_batch_size, self.prefill_chunk_size = max_seq_len, max_batch_size, prefill_chunk_size
        self.cache = BlockAllocator(max_batch_size, max_seq_len, BLOCK_SIZE)
        top = {
            name: cached(w, weight_cache, name) for name, w in model.weights().items() if not name.startswith("layers.")
        }
        users = dict(mesh_device=mesh_device, max_batch_size=max_batch_size)
        self.embedding = parts.embedding(top["embed_tokens.weight"], **users)
        self.blocks = [
            DecoderBlock(
                d,
                model.weights(f"layers.{i}."),
                mesh_device,
                max_seq_len=max_seq_len,
                max_batch_size=max_batch_size,
                paged_attention_config=self.cache.config,
                weight_cache=None if weight_cache is None else Path(weight_cache) / f"layers.{i}",
            )
            for i in range(model.n_layers)
        ]
        self.lm_head = parts.lm_head(top["lm_head.weight"], **users)
        residual_memcfg = self.blocks[0].residual_memcfg
        self.norm = parts.final_norm(top["norm.weight"], d, self.lm_head, residual_memcfg, **users)
        self.rope = rope_for(d, mesh_device, max_seq_len, max_batch_size)
        self.users_mapping = self.blocks[0].attention.users_mapping
        idle = self._decode_host_inputs([PAD_TOKEN] * max_batch_size, [0] * max_batch_size)
        idle["page_table"] = self._host_table(self.cache.table, self.users_mapping)
        self.decode_inputs = {  # persistent: each decode step writes its inputs here (a trace replays on them)
            name: ttnn.to_device(host, mesh_device, ttnn.DRAM_MEMORY_CONFIG) for name, host in idle.items()
        }
        self._table_revision = self.cache.revision  # the allocator's table as decode_inputs["page_table"] holds it
        self._run_decode = self._replay_decode if trace_decode else self._dispatch_decode
        self._release_logits = _keep if trace_decode else _free  # a trace replays into the same logits
        self._trace = None  # (trace id, its logits) once captured

    # --- forwards ----------------------------------------------------------------------------------------------
    def prefill_forward(self, tokens: list[int], user_id: int = 0) -> torch.Tensor:
        """Fill ``user_id``'s KV cache with ``tokens`` (one prompt) and return the logits after its last token,
        [vocab] in the device's dtype (bfloat16 by default)."""
        n = len(tokens)
        chunk = min(prefill_length(n), self.prefill_chunk_size)
        starts = range(0, n, chunk)
        end = starts[-1] + chunk
        if end > self.max_seq_len:
            raise ValueError(f"a {n}-token prompt needs {end} cache positions; max_seq_len is {self.max_seq_len}")
        self.cache.reserve(user_id, end)
        ids = torch.full((1, end), PAD_TOKEN, dtype=torch.int64)
        ids[0, :n] = torch.tensor(tokens)
        page_table = self._device_table(self.cache.user_row(user_id, end))  # the user's row: it prefills as user 0
        chunked = len(starts) > 1  # runtime: a long prompt attends chunk by chunk to its paged cache
        for start in starts:
            x = self.embedding.prefill_forward(LazyWeight(ids[:, start : start + chunk]))
            rot_mats = self.rope.prefill_forward(chunk, start)
            blocks = self.cache.user_row(user_id, start + chunk)[:, start // BLOCK_SIZE :]  # this chunk's blocks
            chunk_args = (self._device_table(blocks), start) if chunked else (None, None)
            for block in self.blocks:
                x = block.prefill_forward(x, chunk, rot_mats, 0, page_table, *chunk_args)
        last = n - 1 - starts[-1]
        logits = self.lm_head.gather_logits(self.lm_head.prefill_forward(self.norm.prefill_forward(x), last))
        return logits[last % tensor_utils.TILE_SIZE]

    def decode_forward(self, tokens: list[int], positions: list[int]) -> torch.Tensor:
        """One token per user at its own position (the whole batch; idle users decode anything at position 0).
        Returns the logits [users, vocab] (bfloat16 by default): ``read_logits(decode_device(tokens, positions))``."""
        return self.read_logits(self.decode_device(tokens, positions))

    def decode_device(self, tokens: list[int], positions: list[int]) -> ttnn.Tensor:
        """The device part of a decode step: the inputs are written into the persistent ``decode_inputs``, then every
        op is dispatched (or the trace replayed); nothing it allocates outlives the step but the returned logits
        ([1, 1, 32, padded vocab] row-major on every device), which ``read_logits`` reads (and frees, untraced)."""
        if len(tokens) != self.max_batch_size or len(positions) != self.max_batch_size:
            raise ValueError(f"decode takes one token and one position per user ({self.max_batch_size})")
        if not all(0 <= t < self.description.vocab_size for t in tokens):
            raise ValueError(f"token ids must be in [0, {self.description.vocab_size}), got {tokens}")
        for user, position in enumerate(positions):
            self.cache.reserve(user, position + 1)
        for name, host in self._decode_host_inputs(tokens, positions).items():
            ttnn.copy_host_to_device_tensor(host, self.decode_inputs[name])
        if self._table_revision != self.cache.revision:  # runtime: a user got a new block (each write costs host time)
            table = self._host_table(self.cache.table, self.users_mapping)
            ttnn.copy_host_to_device_tensor(table, self.decode_inputs["page_table"])
            self._table_revision = self.cache.revision
        return self._run_decode()

    def read_logits(self, logits: ttnn.Tensor) -> torch.Tensor:
        """``decode_device``'s logits on the host, [users, vocab] in the device's dtype (bfloat16 by default): no
        float32 copy of the whole vocabulary per step (greedy sampling needs none)."""
        host = self.lm_head.read_rows(logits)[: self.max_batch_size]
        self._release_logits(logits)
        return host

    def release(self, user_id: int) -> None:
        """Return a finished user's cache blocks to the pool."""
        self.cache.release(user_id)

    def release_trace(self) -> None:
        """Free the captured decode trace, if any (before closing the mesh); the next traced step captures anew."""
        if self._trace is not None:  # runtime: captured on the first traced step
            ttnn.release_trace(self.mesh_device, self._trace[0])
            self._trace = None

    def _dispatch_decode(self) -> ttnn.Tensor:
        """Every op of a decode step on the written ``decode_inputs``; returns the gathered logits."""
        inputs = self.decode_inputs
        indices = rotary_indices(inputs["current_pos"])
        rot_mats = self.rope.decode_forward(indices)
        ttnn.deallocate(indices)
        x = self.embedding.decode_forward(inputs["ids"])
        for block in self.blocks:
            x = block.decode_forward(x, inputs["current_pos"], rot_mats, inputs["page_table"])
        return self.lm_head.gather_rows(self.lm_head.decode_forward(self.norm.decode_forward(x)))

    def _replay_decode(self) -> ttnn.Tensor:
        """The traced step: the first call compiles (one eager step, its logits dropped) and captures the ops, as
        upstream's generator does; every call replays the trace on the written inputs and returns its logits."""
        if self._trace is None:  # runtime: the first traced step
            ttnn.deallocate(self._dispatch_decode())
            trace_id = ttnn.begin_trace_capture(self.mesh_device, cq_id=TRACE_CQ)
            try:
                logits = self._dispatch_decode()
            except Exception:  # close and drop the half-captured trace: the next step captures anew
                ttnn.end_trace_capture(self.mesh_device, trace_id, cq_id=TRACE_CQ)
                ttnn.release_trace(self.mesh_device, trace_id)
                raise
            ttnn.end_trace_capture(self.mesh_device, trace_id, cq_id=TRACE_CQ)
            self._trace = (trace_id, logits)
        trace_id, logits = self._trace
        ttnn.execute_trace(self.mesh_device, trace_id, cq_id=TRACE_CQ, blocking=False)
        return logits

    def _decode_host_inputs(self, tokens: list[int], positions: list[int]) -> dict[str, ttnn.Tensor]:
        """A decode step's inputs as host tensors laid out for the mesh as the modules take them: token ids
        [1, users padded to a tile] (embedding), positions (attention: users split as it splits them; the rope's
        indices come from them on device). The page table goes apart (``_host_table``): it changes only when a user
        gets a block."""
        mesh = self.mesh_device
        ids = torch.zeros(
            1, tensor_utils.nearest_multiple(self.max_batch_size, tensor_utils.TILE_SIZE), dtype=torch.int64
        )
        ids[0, : self.max_batch_size] = torch.tensor(tokens)
        return {
            "ids": ttnn.from_torch(
                ids, dtype=ttnn.uint32, layout=ttnn.ROW_MAJOR_LAYOUT, mesh_mapper=REPLICATED.mapper(mesh)
            ),
            "current_pos": host_positions(positions, mesh, self.users_mapping),
        }

    def _host_table(self, table: torch.Tensor, users_mapping: MeshMapping = REPLICATED) -> ttnn.Tensor:
        """A page table as the attention modules take it: int32 row-major, its user rows laid out as given."""
        mapper = users_mapping.mapper(self.mesh_device)
        return ttnn.from_torch(table.contiguous(), dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT, mesh_mapper=mapper)

    def _device_table(self, table: torch.Tensor) -> ttnn.Tensor:
        return ttnn.to_device(self._host_table(table), self.mesh_device, ttnn.DRAM_MEMORY_CONFIG)


def _keep(tensor: ttnn.Tensor) -> None:
    """A traced step's logits stay: every replay writes the next step's into them."""


def _free(tensor: ttnn.Tensor) -> None:
    ttnn.deallocate(tensor)  # looked up per call: the shadow may patch ttnn after the model is built


def rotary_indices(current_pos: ttnn.Tensor) -> ttnn.Tensor:
    """The rope's lookup row from the attention's int32 positions, on device: Rope1D/2D look up the users each device
    decodes, which are the positions Attention1D/2D hold there. One typecast instead of a second host write per
    decode step (a write costs far more host time than dispatching an op)."""
    return ttnn.typecast(ttnn.reshape(current_pos, (1, -1)), ttnn.uint32)


def prefill_length(tokens: int) -> int:
    """The prefill length a prompt of ``tokens`` runs at: a multiple of 128 (attention's rule), and of each matmul
    row chunk it exceeds."""
    length = tensor_utils.nearest_multiple(tokens, PREFILL_SEQ_MULTIPLE)
    for rows in ROW_CHUNKS:
        if length > rows:
            length = tensor_utils.nearest_multiple(length, rows)
    return length
