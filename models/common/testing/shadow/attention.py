# SPDX-License-Identifier: Apache-2.0
"""Goldens of the attention ops: head split/merge, rotary embedding, KV-cache writes, scaled dot-product attention.

SDPA (prefill, decode, paged decode, chunked) and ``fill_cache`` / ``update_cache`` use ttnn 0.81.1's goldens.
The experimental ops have none; their semantics are the torch references of tt-metal's op tests, cited per golden.
Cache ops write into their cache arguments: the golden returns the whole updated caches (``OpSpec.inplace``).
"""

import math

import torch.nn.functional as F
import ttnn

from models.common.testing.shadow.registry import OpSpec, ttnn_golden
from models.common.testing.shadow.tensor import TILE, ShadowError


def create_qkv_heads_decode(x, *args, num_heads, num_kv_heads, batch_offset=None, slice_size=None, **_):
    """[1, 1, B, (Hq + 2 Hkv) D] -> q [1, B, Hq, D], k and v [1, B, Hkv, D] (users past ``slice_size`` dropped).

    tt-metal tests/tt_eager/python_api_testing/unit_testing/misc/test_nlp_create_qkv_heads_decode.py
    (``proj_output[:, :, :batch, : head_dim * n_local_heads].view(seq_len, batch, n_local_heads, head_dim)``)."""
    start = 0 if batch_offset is None else int(batch_offset.reshape(-1)[0])
    rows = x[0, 0, start : x.shape[2] if slice_size is None else start + slice_size]
    head_dim = x.shape[-1] // (num_heads + 2 * num_kv_heads)
    q, k, v = rows.split([num_heads * head_dim, num_kv_heads * head_dim, num_kv_heads * head_dim], dim=-1)
    return tuple(t.reshape(1, rows.shape[0], -1, head_dim) for t in (q, k, v))


def create_qkv_heads(x, input_kv=None, *args, num_heads, num_kv_heads=None, transpose_k_heads=True, **_):
    """[B, 1, S, (Hq + 2 Hkv) D] -> q [B, Hq, S, D], k [B, Hkv, D, S] (or [B, Hkv, S, D] without the transpose),
    v [B, Hkv, S, D]; with ``input_kv`` the K/V columns come from it. tt-metal
    tests/tt_eager/python_api_testing/unit_testing/misc/test_nlp_create_qkv_heads.py (and the op's docstring)."""
    num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    if input_kv is None:
        head_dim = x.shape[-1] // (num_heads + 2 * num_kv_heads)
        kv, k_start = x, num_heads * head_dim
    else:
        head_dim = x.shape[-1] // num_heads
        kv, k_start = input_kv, 0
    q = x[..., : num_heads * head_dim]
    k = kv[..., k_start : k_start + num_kv_heads * head_dim]
    v = kv[..., k_start + num_kv_heads * head_dim : k_start + 2 * num_kv_heads * head_dim]
    q, k, v = (t.unflatten(-1, (-1, head_dim)).squeeze(1).transpose(1, 2) for t in (q, k, v))
    return q, k.transpose(-2, -1) if transpose_k_heads else k, v


def concat_heads(x, *args, **_):
    """[B, H, S, D] -> [B, 1, S, H D]. tt-metal tests/tt_eager/python_api_testing/unit_testing/misc/
    test_nlp_concat_heads.py (``ref = x.transpose(1, 2).reshape(batch, 1, seq_len, heads * head_dim)``)."""
    return x.transpose(1, 2).flatten(-2).unsqueeze(1)


def concat_heads_decode(x, *args, num_heads, **_):
    """[1, B, H, D] -> [1, 1, B rounded up to a tile, num_heads D] (the first ``num_heads`` heads). tt-metal
    tests/tt_eager/python_api_testing/unit_testing/misc/test_nlp_concat_heads_decode.py (compares the first
    ``batch`` rows). The op's output always has whole tiles of rows; rows past the batch are not written (whatever
    the buffer held on device), zeros here."""
    merged = x[:, :, :num_heads].flatten(-2).unsqueeze(1)
    return F.pad(merged, (0, 0, 0, -merged.shape[2] % TILE))


def rotary_embedding_llama(x, cos, sin, trans_mat, *args, **_):
    """``x * cos + (x @ trans_mat) * sin``, the 32x32 transformation applied to each tile-wide block of the head
    dim as the kernel does; cos/sin broadcast over heads (decode [1, B, 1, D]) or batch (prefill [1, 1, S, D]).
    tt-metal tests/ttnn/unit_tests/operations/transformers/test_rotary_embedding_llama.py (reference
    ``apply_rotary_emb`` on interleaved pairs, which this matrix reproduces)."""
    block = trans_mat.reshape(-1, TILE, TILE)[0]
    rotated = (x.unflatten(-1, (-1, TILE)) @ block).flatten(-2)
    return x * cos + rotated * sin


def rotary_embedding_llama_fused_qk(q, k, cos, sin, trans_mat, *args, **_):
    """Decode rotary embedding of Q [1, B, Hq, D] and K [1, B, Hkv, D] in one op: cos / sin (and the
    transformation) hold 2 B users, Q's first, then K's (the caller repeats the positions). tt-metal
    tests/tt_eager/python_api_testing/unit_testing/misc/test_rotary_embedding_llama_fused_qk.py (through
    test_rotary_embedding_llama.py's ``run_test_rotary_embedding_llama(fuse_qk=True)``: rot mats for
    ``position_ids.repeat(2)``, reference ``apply_rotary_emb`` on Q and K)."""
    users = q.shape[1]
    return tuple(
        rotary_embedding_llama(x, cos[:, rows], sin[:, rows], trans_mat)
        for x, rows in ((q, slice(0, users)), (k, slice(users, 2 * users)))
    )


def paged_update_cache(cache, x, *args, update_idxs=(), update_idxs_tensor=None, page_table=None, batch_offset=0, **_):
    """Write user b's token x[0, b] at position cur_pos[b] (skipped when negative); paged: into block
    page_table[b, pos // block_size] at row pos % block_size. tt-metal
    tests/ttnn/unit_tests/operations/transformers/test_paged_update_cache.py (``cache[i, :, idx] = x[0, i]``)."""
    cache = cache.clone()
    positions = update_idxs_tensor.reshape(-1).tolist() if update_idxs_tensor is not None else list(update_idxs)
    block_size = cache.shape[2]
    for user, position in enumerate(positions):
        if position < 0:
            continue
        heads = x[0, batch_offset + user, : cache.shape[1]]
        if page_table is None:
            cache[user, :, position] = heads
        else:
            cache[int(page_table[user, position // block_size]), :, position % block_size] = heads
    return cache


def paged_fused_update_cache(cache1, x1, cache2, x2, *args, **kwargs):
    """``paged_update_cache`` of (cache1, x1) and (cache2, x2) (K and V) with the same positions and page table.
    tt-metal tests/ttnn/unit_tests/operations/transformers/test_paged_fused_update_cache.py (the same
    ``cache[i, 0:num_heads, update_idx] = x[0, i]`` reference for both caches)."""
    return paged_update_cache(cache1, x1, *args, **kwargs), paged_update_cache(cache2, x2, *args, **kwargs)


def paged_fill_cache(cache, x, page_table, *args, batch_idx=0, batch_idx_tensor=None, **_):
    """Write the prompt x[0] ([H, S, D]) block by block into the pages page_table[batch_idx, i]. tt-metal
    tests/ttnn/unit_tests/operations/transformers/test_paged_fill_cache.py."""
    cache = cache.clone()
    user = int(batch_idx_tensor.reshape(-1)[0]) if batch_idx_tensor is not None else int(batch_idx)
    block_size = cache.shape[2]
    for i in range(math.ceil(x.shape[2] / block_size)):
        chunk = x[0, :, i * block_size : (i + 1) * block_size]
        cache[int(page_table[user, i]), :, : chunk.shape[1]] = chunk
    return cache


_SDPA_DECODE = ttnn.get_golden_function(ttnn.transformer.scaled_dot_product_attention_decode)
_PAGED_SDPA_DECODE = ttnn.get_golden_function(ttnn.transformer.paged_scaled_dot_product_attention_decode)


def paged_sdpa_decode(q, k, v, page_table_tensor, *, paged_cache_geometry=None, cache_position_modulo=None, **kwargs):
    """ttnn's paged SDPA decode golden: each user's pages gathered into a contiguous [B, H, S, D] cache, then SDPA
    decode. ttnn 0.81.1 gathers user by user (``_paged_to_contiguous``: ~5x slower on an 8B decode's cache); here
    one indexed gather does it. Caches viewed through a geometry or used circularly go to ttnn's golden as they are."""
    if paged_cache_geometry is not None or cache_position_modulo is not None:
        geometry = dict(paged_cache_geometry=paged_cache_geometry, cache_position_modulo=cache_position_modulo)
        return _PAGED_SDPA_DECODE(q, k, v, page_table_tensor, **geometry, **kwargs)
    table = page_table_tensor.long().reshape(page_table_tensor.shape[0], -1)
    if bool(((table < 0) | (table >= k.shape[0])).any()):
        raise ShadowError(f"paged SDPA decode: the page table holds an index outside [0, {k.shape[0]})")
    k, v = (c[table].transpose(1, 2).flatten(2, 3) for c in (k, v))  # [B, pages, H, block, D] -> [B, H, S, D]
    return _SDPA_DECODE(q, k, v, **kwargs)


def _on_copy(golden):
    """A ttnn cache golden (it writes into its first argument) applied to a copy of the cache."""
    return lambda cache, *args, **kwargs: golden(cache.clone(), *args, **kwargs)


TABLE = {
    "ttnn.experimental.nlp_create_qkv_heads_decode": OpSpec(create_qkv_heads_decode),
    "ttnn.experimental.nlp_create_qkv_heads": OpSpec(create_qkv_heads),
    "ttnn.experimental.nlp_concat_heads": OpSpec(concat_heads),
    "ttnn.experimental.nlp_concat_heads_decode": OpSpec(concat_heads_decode),
    "ttnn.experimental.rotary_embedding_llama": OpSpec(rotary_embedding_llama),
    "ttnn.experimental.rotary_embedding_llama_fused_qk": OpSpec(rotary_embedding_llama_fused_qk),
    "ttnn.experimental.paged_update_cache": OpSpec(paged_update_cache, inplace=(0,)),
    "ttnn.experimental.paged_fused_update_cache": OpSpec(paged_fused_update_cache, inplace=(0, 2)),
    "ttnn.experimental.paged_fill_cache": OpSpec(paged_fill_cache, inplace=(0,)),
    "ttnn.fill_cache": OpSpec(_on_copy(ttnn.get_golden_function(ttnn.fill_cache)), inplace=(0,)),
    "ttnn.update_cache": OpSpec(_on_copy(ttnn.get_golden_function(ttnn.update_cache)), inplace=(0,)),
    "ttnn.transformer.scaled_dot_product_attention": OpSpec(ttnn_golden(ttnn.transformer.scaled_dot_product_attention)),
    "ttnn.transformer.scaled_dot_product_attention_decode": OpSpec(
        ttnn_golden(ttnn.transformer.scaled_dot_product_attention_decode)
    ),
    "ttnn.transformer.paged_scaled_dot_product_attention_decode": OpSpec(paged_sdpa_decode),
    "ttnn.transformer.chunked_scaled_dot_product_attention": OpSpec(
        ttnn_golden(ttnn.transformer.chunked_scaled_dot_product_attention)
    ),
}
