# SPDX-License-Identifier: Apache-2.0
"""Shadow execution: each shadowed op against ttnn's golden / a torch reference, on 1x1 and multi-device meshes;
storage rounding; broken dataflows fail their PCC check; unknown ops and shape drift fail loudly."""

import os

import pytest
import torch
import ttnn

from models.common import devices
from models.common.modules import tt_ccl as ccl
from models.common.modules.lazy_weight import LazyWeight, MeshMapping
from models.common.testing import numerics
from models.common.testing.shadow import ops, session
from models.common.testing.shadow.registry import OpSpec
from models.common.testing.shadow.session import shadow_execution
from models.common.testing.shadow.tensor import ShadowDriftError, ShadowError, ShadowUnsupportedOp

MESHES = [(1, 1), (1, 2), (1, 8), (8, 4)]
MESH_IDS = ["1x1", "1x2", "1x8", "8x4"]
MULTI = [(1, 2), (1, 8), (8, 4)]
MULTI_IDS = ["1x2", "1x8", "8x4"]
EXACT = 0.9999  # PCC for bf16-rounded values against a float32 reference
ROWS, DIM = 32, 256


def _put(mesh, x, dtype=ttnn.bfloat16, mapper=None, layout=ttnn.TILE_LAYOUT, memory_config=None):
    return ttnn.from_torch(x, dtype=dtype, layout=layout, device=mesh, mesh_mapper=mapper, memory_config=memory_config)


def _per_device(mesh, t):
    return [ttnn.to_torch(d).float() for d in ttnn.get_device_tensors(t)]


def _concat(mesh, t, dim=-1):
    return ttnn.to_torch(t, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=dim)).float()


def _assert_close(expected, actual, min_pcc=EXACT):
    assert actual.abs().max() > 0, "all zeros: the golden did not carry values"
    value = numerics.pcc(expected, actual)
    assert value >= min_pcc, f"PCC {value:.6f} < {min_pcc}"


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_trace_capture_is_refused(ttnn_mesh_device):
    """A trace replay makes no ttnn calls, so the shadow's values would go stale: capture is refused, naming the fix."""
    with shadow_execution(), pytest.raises(ShadowError, match="trace_decode=False"):
        ttnn.begin_trace_capture(ttnn_mesh_device, cq_id=0)


@pytest.mark.parametrize("ttnn_mesh_device", MESHES, ids=MESH_IDS, indirect=True)
def test_matmul_eltwise_norm(ttnn_mesh_device):
    mesh, n = ttnn_mesh_device, ttnn_mesh_device.get_num_devices()
    x, w, b = torch.randn(1, 1, ROWS, DIM), torch.randn(1, 1, DIM, 64 * n), torch.randn(1, 1, 1, 64 * n)
    gamma = torch.rand(DIM) + 0.5
    with shadow_execution():
        tx = _put(mesh, x)
        tw = _put(mesh, w, ttnn.bfloat8_b, ttnn.ShardTensorToMesh(mesh, dim=3))
        tb = _put(mesh, b, mapper=ttnn.ShardTensorToMesh(mesh, dim=3))
        y = ttnn.linear(tx, tw, bias=tb, activation="silu")
        _assert_close(torch.nn.functional.silu(x @ w + b), _concat(mesh, y), 0.999)
        h = ttnn.matmul(tx, tw, dtype=ttnn.bfloat8_b)
        assert h.dtype == ttnn.bfloat8_b
        _assert_close(x @ w, _concat(mesh, h), 0.999)
        gated = ttnn.mul(h, h, input_tensor_a_activations=[ttnn.UnaryOpType.SILU], dtype=ttnn.bfloat16)
        _assert_close(torch.nn.functional.silu(x @ w) * (x @ w), _concat(mesh, gated), 0.999)
        for op, ref in ((ttnn.add, x + x), (ttnn.sub, x - 2 * x), (ttnn.mul, x * x)):
            other = tx if op is not ttnn.sub else ttnn.add(tx, tx)
            _assert_close(ref, _per_device(mesh, op(tx, other))[-1])
        _assert_close(torch.nn.functional.silu(x), _per_device(mesh, ttnn.silu(tx))[0])
        _assert_close(torch.nn.functional.gelu(x), _per_device(mesh, ttnn.gelu(tx))[0], 0.999)
        _assert_close(torch.softmax(x, -1), _per_device(mesh, ttnn.softmax(tx, dim=-1))[0], 0.999)
        tg = _put(mesh, gamma.reshape(1, 1, DIM // 32, 32), layout=ttnn.ROW_MAJOR_LAYOUT)
        normed = ttnn.rms_norm(tx, epsilon=1e-5, weight=tg)
        _assert_close(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * gamma, _per_device(mesh, normed)[0])


@pytest.mark.parametrize("ttnn_mesh_device", MESHES, ids=MESH_IDS, indirect=True)
def test_data_movement_is_exact(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    x = torch.randn(1, 2, 64, 96).bfloat16().float()
    grid = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(0, 3))})
    sharded = ttnn.MemoryConfig(
        ttnn.TensorMemoryLayout.HEIGHT_SHARDED,
        ttnn.BufferType.L1,
        ttnn.ShardSpec(grid, (32, 96), ttnn.ShardOrientation.ROW_MAJOR),
    )
    with shadow_execution():
        tx = _put(mesh, x)
        cases = [
            (ttnn.reshape(tx, (1, 1, 128, 96)), x.reshape(1, 1, 128, 96)),
            (ttnn.permute(tx, (0, 1, 3, 2)), x.permute(0, 1, 3, 2)),
            (ttnn.slice(tx, (0, 0, 0, 32), (1, 2, 32, 96)), x[:, :, :32, 32:]),
            (ttnn.concat([tx, tx], dim=3), torch.cat([x, x], 3)),
            (ttnn.typecast(tx, ttnn.float32), x),
            (ttnn.sharded_to_interleaved(ttnn.interleaved_to_sharded(tx, sharded), ttnn.L1_MEMORY_CONFIG), x),
            (ttnn.to_memory_config(tx, sharded), x),
        ]
        rows = ttnn.reshape(tx, (1, 2, 8, 96), (1, 2, 64, 96))  # fewer logical rows in the same padded buffer
        cases += [(rows, x[:, :, :8]), (ttnn.reshape(rows, (1, 2, 2, 96), (1, 2, 64, 96)), x[:, :, :2])]
        for got, expected in cases:
            assert torch.equal(_per_device(mesh, got)[-1], expected)
        with pytest.raises(ShadowError, match="padding"):  # rows 8.. are padding: values the shadow does not hold
            ttnn.reshape(rows, (1, 2, 16, 96), (1, 2, 64, 96))
        indices = torch.randint(0, 64, (1, 32))
        table = torch.randn(64, DIM).bfloat16().float()
        out = ttnn.embedding(_put(mesh, indices, ttnn.uint32, layout=ttnn.ROW_MAJOR_LAYOUT), _put(mesh, table))
        assert torch.equal(_per_device(mesh, out)[0].reshape(32, DIM), table[indices[0]])


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 2)], ids=["1x1", "1x2"], indirect=True)
@pytest.mark.parametrize("dtype", [ttnn.bfloat8_b, ttnn.bfloat4_b], ids=["bfp8", "bfp4"])
def test_block_float_round_trip(ttnn_mesh_device, dtype, tmp_path):
    """Golden values are what ttnn stores: inputs, op outputs and LazyWeight cache entries alike."""
    mesh = ttnn_mesh_device
    x = torch.randn(1, 1, 64, 128)
    stored = ttnn.to_torch(ttnn.from_torch(x, dtype=dtype, layout=ttnn.TILE_LAYOUT)).float()
    stored_from_bf16 = ttnn.to_torch(ttnn.from_torch(x.bfloat16(), dtype=dtype, layout=ttnn.TILE_LAYOUT)).float()
    with shadow_execution():
        tx = _put(mesh, x, dtype)
        assert torch.equal(_per_device(mesh, tx)[0], stored)
        assert not torch.equal(stored, x.bfloat16().float()), "block-float rounding must be visible"
        out = ttnn.typecast(_put(mesh, x), dtype)  # bf16 first, then block float: rounded twice, as on device
        assert torch.equal(_per_device(mesh, out)[0], stored_from_bf16)
        kept = ttnn.reshape(tx, (1, 1, 128, 64))  # blocks stay whole: the stored values are kept
        assert torch.equal(_per_device(mesh, kept)[0], stored.reshape(1, 1, 128, 64))
        moved = ttnn.permute(tx, (0, 1, 3, 2))  # new rows form new blocks: rounded again, as on device
        again = ttnn.to_torch(ttnn.from_torch(stored.transpose(-2, -1), dtype=dtype, layout=ttnn.TILE_LAYOUT))
        assert torch.equal(_per_device(mesh, moved)[0], again.float())
        assert not torch.equal(again.float(), stored.transpose(-2, -1)), "re-rounding must be visible"
        for _ in range(2):  # first: convert and store the cache entry; second: load it from disk
            weight = LazyWeight(
                x,
                dtype=dtype,
                layout=ttnn.TILE_LAYOUT,
                memory_config=ttnn.DRAM_MEMORY_CONFIG,
                mesh_mapping=MeshMapping.shard(-1),
                device=mesh,
                cache_dir=tmp_path,
                cache_name="w",
            )
            assert torch.equal(_concat(mesh, weight.get_device_weight()), stored)
        assert list(tmp_path.glob("w.*.tensorbin"))


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2)], ids=["1x2"], indirect=True)
def test_loaded_file_values_are_read_once_while_unchanged(ttnn_mesh_device, tmp_path):
    """A file loaded and uploaded again gives the values read the first time (the same tensors); a file replaced
    (written aside and renamed into place, as LazyWeight's cache writes do) is read anew."""
    mesh, path = ttnn_mesh_device, str(tmp_path / "w.tensorbin")

    def upload(x):
        host = ttnn.from_torch(
            x, dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT, mesh_mapper=ttnn.ShardTensorToMesh(mesh, dim=-1)
        )
        aside = str(tmp_path / "aside.tensorbin")
        ttnn.dump_tensor(aside, host)
        os.replace(aside, path)
        return ttnn.to_torch(host, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=-1)).float()

    with shadow_execution():
        stored = upload(torch.randn(1, 1, 64, 128))
        first, second = (ttnn.to_device(ttnn.load_tensor(path), mesh) for _ in range(2))
        assert all(a is b for a, b in zip(first.golden.shards, second.golden.shards, strict=True))
        assert torch.equal(_concat(mesh, second), stored)
        stored = upload(torch.randn(1, 1, 64, 128))
        assert torch.equal(_concat(mesh, ttnn.to_device(ttnn.load_tensor(path), mesh)), stored)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_to_memory_config_dtype_follows_ttnn(ttnn_mesh_device):
    """ttnn.to_memory_config converts to ``dtype`` (keyword or positional) only when it moves the tensor: a tensor
    already in the requested memory config comes back as is. The shadow predicts both (its drift check would
    raise otherwise)."""
    mesh = ttnn_mesh_device
    x = torch.randn(1, 1, ROWS, DIM)
    with shadow_execution():
        tx = _put(mesh, x, memory_config=ttnn.L1_MEMORY_CONFIG)
        assert ttnn.to_memory_config(tx, ttnn.L1_MEMORY_CONFIG, ttnn.bfloat8_b).dtype == ttnn.bfloat16
        moved = ttnn.to_memory_config(tx, ttnn.DRAM_MEMORY_CONFIG, ttnn.bfloat8_b)
        assert moved.dtype == moved.golden.dtype == ttnn.bfloat8_b
        assert ttnn.to_memory_config(tx, memory_config=ttnn.DRAM_MEMORY_CONFIG, dtype=ttnn.bfloat8_b).golden.dtype == (
            ttnn.bfloat8_b
        )
        # width-sharded block floats out to L1 in bfloat16, as TTTv1's Galaxy all-reduce casts its input
        cores = 4  # any core count dividing DIM / 32 tiles: one shard of whole tiles per core
        width = ttnn.create_sharded_memory_config(
            (ROWS, DIM // cores),
            ttnn.CoreGrid(y=1, x=cores),
            ttnn.ShardStrategy.WIDTH,
            use_height_and_width_as_shard_shape=True,
        )
        sharded = _put(mesh, x, ttnn.bfloat8_b, memory_config=width)
        assert ttnn.to_memory_config(sharded, ttnn.L1_MEMORY_CONFIG, ttnn.bfloat16).golden.dtype == ttnn.bfloat16
        assert ttnn.to_memory_config(sharded, width, ttnn.bfloat16).golden.dtype == ttnn.bfloat8_b
        # into an output tensor ttnn copies even to the same memory config, and converts
        out = _put(mesh, x, ttnn.bfloat8_b, memory_config=ttnn.L1_MEMORY_CONFIG)
        copied = ttnn.to_memory_config(tx, ttnn.L1_MEMORY_CONFIG, ttnn.bfloat8_b, output_tensor=out)
        assert copied.golden.dtype == ttnn.bfloat8_b
        stored = ttnn.to_torch(ttnn.from_torch(x.bfloat16(), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT)).float()
        assert torch.equal(_per_device(mesh, copied)[0], stored)


@pytest.mark.parametrize("ttnn_mesh_device", MULTI, ids=MULTI_IDS, indirect=True)
def test_replicas_share_storage(ttnn_mesh_device):
    """Devices holding the same values share one torch tensor, bfloat16 for bfloat16 and block floats: a replicated
    upload, the mesh rows of a column-sharded one, and what per-device ops make of them. Values stay ttnn's."""
    mesh = ttnn_mesh_device
    rows, cols = tuple(mesh.shape)
    x = torch.randn(1, 1, ROWS, 64 * cols)
    with shadow_execution():
        replicated = _put(mesh, x, ttnn.bfloat8_b, ttnn.ReplicateTensorToMesh(mesh))
        by_column = _put(mesh, x, mapper=ttnn.ShardTensor2dMesh(mesh, mesh_shape=(rows, cols), dims=(None, 3)))
        activated = ttnn.silu(by_column)
        for tensor, distinct in ((replicated, 1), (by_column, cols), (activated, cols)):
            shards = tensor.golden.shards
            assert {s.dtype for s in shards} == {torch.bfloat16}
            assert len({id(s) for s in shards}) == distinct
            assert all(s is shards[index % cols] for index, s in enumerate(shards)), "a mesh column's rows differ"
        stored = ttnn.to_torch(ttnn.from_torch(x, dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT)).float()
        assert torch.equal(_per_device(mesh, replicated)[-1], stored)
        pieces = x.bfloat16().float().split(64, dim=3)
        values, activations = _per_device(mesh, by_column), _per_device(mesh, activated)
        for index, (value, active) in enumerate(zip(values, activations, strict=True)):
            assert torch.equal(value, pieces[index % cols])
            _assert_close(torch.nn.functional.silu(pieces[index % cols]), active)


def _collective_input(mesh):
    """Different values on every device: [1, 1, 32, 64] per device, rows split over mesh rows, cols over columns."""
    rows, cols = tuple(mesh.shape)
    x = torch.randn(1, rows, ROWS, 64 * cols).bfloat16().float()
    return x, _put(mesh, x, mapper=ttnn.ShardTensor2dMesh(mesh, mesh_shape=(rows, cols), dims=(1, 3)))


@pytest.mark.parametrize("ttnn_mesh_device", MULTI, ids=MULTI_IDS, indirect=True)
def test_collectives(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    rows, cols = tuple(mesh.shape)
    tt_ccl, dram = ccl.get_tt_ccl(mesh), ttnn.DRAM_MEMORY_CONFIG
    topology = ccl.default_topology(mesh)
    axis = 1 if rows > 1 else None  # 2-D meshes: along the columns; 1-D: over the whole line
    with shadow_execution():
        x, tx = _collective_input(mesh)
        by_device = x.split(64, dim=3)  # device (r, c) holds by_device[c][:, r]
        row_sum = sum(by_device)  # [1, rows, 32, 64]: per mesh row, summed over columns
        gathered = ccl.all_gather(
            tt_ccl, tx, dim=3, memory_config=dram, topology=topology, num_links=1, cluster_axis=axis
        )
        assert torch.equal(_per_device(mesh, gathered)[-1], x[:, -1:])
        scattered = ccl.reduce_scatter(
            tt_ccl, tx, dim=3, memory_config=dram, topology=topology, num_links=1, cluster_axis=axis
        )
        chunk = 64 // cols
        for index, value in enumerate(_per_device(mesh, scattered)):
            r, c = divmod(index, cols)
            _assert_close(row_sum[:, r : r + 1, :, c * chunk : (c + 1) * chunk], value)
        reduced = ttnn.all_reduce(tx, cluster_axis=axis, topology=ttnn.Topology.Linear, num_links=1)
        _assert_close(row_sum[:, -1:], _per_device(mesh, reduced)[-1])
        if rows > 1:  # the other axis: gather mesh rows, device (r, c) gets every row's piece of column c
            down = ttnn.all_gather(tx, 1, cluster_axis=0, topology=ttnn.Topology.Linear, num_links=1)
            assert torch.equal(_per_device(mesh, down)[1], by_device[1])


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2), (1, 8)], ids=["1x2", "1x8"], indirect=True)
def test_distributed_rms_norm(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    dim = 256 * mesh.get_num_devices()
    x, gamma = torch.randn(1, 1, ROWS, dim), torch.rand(dim) + 0.5
    with shadow_execution():
        tx = _put(mesh, x, mapper=ttnn.ShardTensorToMesh(mesh, dim=3))
        tg = _put(
            mesh,
            gamma.reshape(1, 1, dim // 32, 32),
            layout=ttnn.ROW_MAJOR_LAYOUT,
            mapper=ttnn.ShardTensorToMesh(mesh, dim=2),
        )
        stats = ttnn.rms_norm_pre_all_gather(tx, dtype=ttnn.bfloat16)
        stats = ccl.all_gather(
            ccl.get_tt_ccl(mesh),
            stats,
            dim=3,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            topology=ccl.default_topology(mesh),
            num_links=1,
        )
        out = ttnn.rms_norm_post_all_gather(tx, stats, epsilon=1e-5, weight=tg)
        _assert_close(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * gamma, _concat(mesh, out), 0.999)


def _rope_reference(x, cos, sin):
    """HF-free rotary reference on interleaved pairs (x[2i], x[2i+1]), what the 32x32 transformation encodes."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * cos + rotated * sin


def _transformation_mat():
    mat = torch.zeros(1, 1, 32, 32)
    mat[..., torch.arange(0, 32, 2), torch.arange(1, 32, 2)] = 1
    mat[..., torch.arange(1, 32, 2), torch.arange(0, 32, 2)] = -1
    return mat


HQ, HKV, HEAD_DIM, SEQ, BATCH = 4, 2, 64, 64, 32


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 2)], ids=["1x1", "1x2"], indirect=True)
def test_attention_prefill_ops(ttnn_mesh_device):
    mesh = ttnn_mesh_device
    xqkv = torch.randn(1, 1, SEQ, (HQ + 2 * HKV) * HEAD_DIM).bfloat16().float()
    cos, sin = torch.randn(1, 1, SEQ, HEAD_DIM), torch.randn(1, 1, SEQ, HEAD_DIM)
    q_ref, k_ref, v_ref = (
        t.reshape(1, SEQ, -1, HEAD_DIM).transpose(1, 2)
        for t in xqkv.split([HQ * HEAD_DIM, HKV * HEAD_DIM, HKV * HEAD_DIM], -1)
    )
    with shadow_execution():
        q, k, v = ttnn.experimental.nlp_create_qkv_heads(
            _put(mesh, xqkv), num_heads=HQ, num_kv_heads=HKV, transpose_k_heads=False
        )
        assert torch.equal(_per_device(mesh, k)[0], k_ref)
        trans, tcos, tsin = _put(mesh, _transformation_mat()), _put(mesh, cos), _put(mesh, sin)
        q = ttnn.experimental.rotary_embedding_llama(q, tcos, tsin, trans)
        q_ref = _rope_reference(q_ref, cos, sin)
        _assert_close(q_ref, _per_device(mesh, q)[0])
        cache = _put(mesh, torch.zeros(2, HKV, 2 * SEQ, HEAD_DIM))
        ttnn.fill_cache(cache, v, 1)
        assert torch.equal(_per_device(mesh, cache)[0][1, :, :SEQ], v_ref[0])
        out = ttnn.transformer.scaled_dot_product_attention(q, k, v, is_causal=True)
        rep = HQ // HKV
        expected = torch.nn.functional.scaled_dot_product_attention(
            q_ref, k_ref.repeat_interleave(rep, 1), v_ref.repeat_interleave(rep, 1), is_causal=True
        )
        _assert_close(expected, _per_device(mesh, out)[0], 0.999)
        merged = ttnn.experimental.nlp_concat_heads(out)
        _assert_close(expected.transpose(1, 2).reshape(1, 1, SEQ, HQ * HEAD_DIM), _per_device(mesh, merged)[0], 0.999)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 2)], ids=["1x1", "1x2"], indirect=True)
@pytest.mark.parametrize("batch", [BATCH, 8, 1], ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("cache_dtype", [ttnn.bfloat16, ttnn.bfloat8_b], ids=["bf16", "bfp8"])
def test_attention_decode_ops(ttnn_mesh_device, batch, cache_dtype):
    """Decode with ``batch`` users, as TTTv1 runs it: the users' rows of a tile of rows (reshape with a padded
    shape), heads split per user, cache update, SDPA decode, heads merged back into a whole tile of rows. A
    bfloat8_b cache holds, after the update, what ttnn's packing of the updated values stores."""
    mesh = ttnn_mesh_device
    xqkv = torch.randn(1, 1, BATCH, (HQ + 2 * HKV) * HEAD_DIM).bfloat16().float()
    positions = torch.randint(0, SEQ, (batch,), dtype=torch.int32)
    k_cache = _stored(torch.randn(batch, HKV, SEQ, HEAD_DIM), cache_dtype)
    with shadow_execution():
        users = ttnn.reshape(_put(mesh, xqkv), (1, 1, batch, xqkv.shape[-1]), (1, 1, BATCH, xqkv.shape[-1]))
        q, k, _ = ttnn.experimental.nlp_create_qkv_heads_decode(
            users, num_heads=HQ, num_kv_heads=HKV, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG
        )
        q_ref, k_ref, _ = (
            t.reshape(1, batch, -1, HEAD_DIM)
            for t in xqkv[0, 0, :batch].split([HQ * HEAD_DIM, HKV * HEAD_DIM, HKV * HEAD_DIM], -1)
        )
        assert torch.equal(_per_device(mesh, q)[0], q_ref)
        cache = _put(mesh, k_cache, cache_dtype)
        cur_pos = _put(mesh, positions, ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT)
        ttnn.experimental.paged_update_cache(cache, k, update_idxs_tensor=cur_pos)
        expected_cache = k_cache.clone()
        expected_cache[torch.arange(batch), :, positions.long()] = k_ref[0]
        expected_cache = _stored(expected_cache, cache_dtype)
        assert torch.equal(_per_device(mesh, cache)[-1], expected_cache)
        out = ttnn.transformer.scaled_dot_product_attention_decode(
            ttnn.to_memory_config(q, ttnn.DRAM_MEMORY_CONFIG), cache, cache, cur_pos_tensor=cur_pos
        )
        rep = HQ // HKV
        keys = expected_cache.repeat_interleave(rep, 1)
        mask = torch.arange(SEQ)[None, None, None, :] <= positions[:, None, None, None]
        expected = torch.nn.functional.scaled_dot_product_attention(q_ref[0].unsqueeze(2), keys, keys, attn_mask=mask)
        expected = expected.squeeze(2).unsqueeze(0)  # [1, batch, HQ, HEAD_DIM]
        _assert_close(expected, _per_device(mesh, out)[0], 0.999)
        merged = ttnn.experimental.nlp_concat_heads_decode(_user_sharded(mesh, out, batch), num_heads=HQ)
        merged = _per_device(mesh, merged)[-1]
        assert merged.shape == (1, 1, BATCH, HQ * HEAD_DIM)  # a whole tile of rows, the users' first
        _assert_close(expected.reshape(1, 1, batch, -1), merged[:, :, :batch], 0.999)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_bfloat16_matmul_golden_is_float32_rounded_once(ttnn_mesh_device):
    """A bfloat16-output matmul of bfloat16 / bfloat8_b inputs (a bfloat16 GEMM where the CPU has bfloat16 dot
    products) is within half a bfloat16 ulp plus float32's summation error bound (K * 2 ** -24 * sum |a b|) of the
    exact product: float32 accumulation, one rounding. A bias keeps the float32 golden."""

    rows, k, n = 64, 4096, 256
    generator = torch.Generator().manual_seed(0)
    x, w = torch.randn(1, 1, rows, k, generator=generator), torch.randn(1, 1, k, n, generator=generator)
    bias = torch.randn(1, 1, 1, n, generator=generator)
    with shadow_execution():
        tx, tw = _put(ttnn_mesh_device, x), _put(ttnn_mesh_device, w, ttnn.bfloat8_b)
        out = _per_device(ttnn_mesh_device, ttnn.matmul(tx, tw))[0].double()
        xs, ws = (_per_device(ttnn_mesh_device, t)[0].double() for t in (tx, tw))
    exact = xs @ ws
    half_ulp = torch.exp2(torch.floor(torch.log2(exact.abs().clamp_min(2.0**-126))) - 8)
    summation = k * 2.0**-24 * (xs.abs() @ ws.abs())
    assert bool(((out - exact).abs() <= half_ulp + summation).all())
    assert ops.matmul_in_bfloat16((), {}, ttnn.bfloat16) == ops.BFLOAT16_DOT_PRODUCTS
    assert not ops.matmul_in_bfloat16((), {"bias": bias}, ttnn.bfloat16)
    assert not ops.matmul_in_bfloat16((), {}, ttnn.bfloat8_b)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path, monkeypatch):
    """The bfloat16 dot-product check reads the CPU's flags (no private torch API); unreadable flags mean none."""
    flags = tmp_path / "cpuinfo"
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\n")
    monkeypatch.setattr(ops, "CPU_FLAGS", flags)
    assert ops._cpu_has("avx512_bf16") and not ops._cpu_has("avx512")
    monkeypatch.setattr(ops, "CPU_FLAGS", tmp_path / "missing")
    assert not ops._cpu_has("avx512_bf16")


def test_paged_sdpa_decode_golden_is_ttnns():
    """The shadow's one-gather paged SDPA decode golden returns ttnn's own golden's values exactly."""
    from models.common.testing.shadow import attention

    blocks_per_user, block_size = 3, 32
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(1, BATCH, HQ, HEAD_DIM, generator=generator)
    k, v = (torch.randn(BATCH * blocks_per_user, HKV, block_size, HEAD_DIM, generator=generator) for _ in range(2))
    table = torch.randperm(BATCH * blocks_per_user, generator=generator).reshape(BATCH, -1).to(torch.int32)
    positions = torch.randint(0, blocks_per_user * block_size, (BATCH,), generator=generator, dtype=torch.int32)
    kwargs = dict(page_table_tensor=table, cur_pos_tensor=positions, scale=0.125)
    expected = ttnn.get_golden_function(ttnn.transformer.paged_scaled_dot_product_attention_decode)(q, k, v, **kwargs)
    assert torch.equal(attention.paged_sdpa_decode(q, k, v, **kwargs), expected)
    with pytest.raises(ShadowError, match="outside"):
        attention.paged_sdpa_decode(q, k, v, **{**kwargs, "page_table_tensor": table + 1})


def _stored(x, dtype):
    """``x`` as a host tensor of ``dtype`` stores it (ttnn's own packing)."""
    return ttnn.to_torch(ttnn.from_torch(x, dtype=dtype, layout=ttnn.TILE_LAYOUT)).float()


def _user_grid(users: int, first: int = 0) -> ttnn.CoreRangeSet:
    """``users`` cores in rows of 8, row-major from core number ``first``."""
    start = ttnn.CoreCoord(first % 8, first // 8)
    return ttnn.num_cores_to_corerangeset_in_subcoregrids(
        start, users, ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(7, 7))}), row_wise=True
    )


def _user_sharded(mesh, x, users, first=0, rows=32):
    """[1, users, heads, D] height-sharded one user (``rows`` padded rows) per core, as the decode head ops want."""
    config = ttnn.create_sharded_memory_config(
        shape=(rows, x.shape[-1]),
        core_grid=_user_grid(users, first),
        strategy=ttnn.ShardStrategy.HEIGHT,
        orientation=ttnn.ShardOrientation.ROW_MAJOR,
        use_height_and_width_as_shard_shape=True,
    )
    return ttnn.to_memory_config(x, config) if isinstance(x, ttnn.Tensor) else _put(mesh, x, memory_config=config)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 2)], ids=["1x1", "1x2"], indirect=True)
@pytest.mark.parametrize("batch", [BATCH, 8, 1], ids=lambda b: f"batch{b}")
def test_fused_qk_decode_ops(ttnn_mesh_device, batch):
    """rotary_embedding_llama_fused_qk (Q users' cos / sin first, then K's) and paged_fused_update_cache (K and V
    caches, paged) against the rotary reference and a cache written by hand."""
    mesh = ttnn_mesh_device
    q, k, v = (torch.randn(1, batch, heads, HEAD_DIM).bfloat16().float() for heads in (HQ, HKV, HKV))
    cos, sin = (torch.randn(1, 2 * batch, 1, HEAD_DIM).bfloat16().float() for _ in range(2))
    blocks_per_user, block_size = 2, SEQ // 2
    table = torch.randperm(batch * blocks_per_user).reshape(batch, blocks_per_user).to(torch.int32)
    caches = [torch.randn(batch * blocks_per_user, HKV, block_size, HEAD_DIM).bfloat16().float() for _ in range(2)]
    positions = torch.randint(0, SEQ, (batch,), dtype=torch.int32)
    positions[0] = -1  # a skipped user
    with shadow_execution():
        tq, tk = _user_sharded(mesh, q, batch), _user_sharded(mesh, k, batch, first=batch)
        tcos, tsin = (_user_sharded(mesh, t, 2 * batch) for t in (cos, sin))
        trans = _user_sharded(mesh, _transformation_mat().repeat(1, 1, 2 * batch, 1), 2 * batch, rows=32)
        q_rot, k_rot = ttnn.experimental.rotary_embedding_llama_fused_qk(tq, tk, tcos, tsin, trans)
        _assert_close(_rope_reference(q, cos[:, :batch], sin[:, :batch]), _per_device(mesh, q_rot)[0])
        k_ref = _rope_reference(k, cos[:, batch:], sin[:, batch:])
        _assert_close(k_ref, _per_device(mesh, k_rot)[-1])
        tv = _user_sharded(mesh, v, batch)  # on the Q users' cores, as nlp_create_qkv_heads_decode leaves V
        k_cache, v_cache = (_put(mesh, c) for c in caches)
        ttnn.experimental.paged_fused_update_cache(
            k_cache,
            k_rot,
            v_cache,
            tv,
            update_idxs_tensor=_put(mesh, positions, ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT),
            page_table=_put(mesh, table, ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT),
        )
        for cache, tcache, x in ((caches[0], k_cache, _per_device(mesh, k_rot)[0]), (caches[1], v_cache, v)):
            expected = cache.clone()
            for user, position in enumerate(positions.tolist()[1:], start=1):
                expected[table[user, position // block_size], :, position % block_size] = x[0, user]
            assert torch.equal(_per_device(mesh, tcache)[-1], expected)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1), (1, 8), (8, 4)], ids=["1x1", "1x8", "8x4"], indirect=True)
def test_fast_reduce_nc(ttnn_mesh_device):
    """The sum over N and / or C; on several devices, the all-gather + sum TTTv1 uses as a Galaxy all-reduce."""
    mesh = ttnn_mesh_device
    x = torch.randn(4, 2, ROWS, 64)
    with shadow_execution():
        tx = _put(mesh, x)
        for dims in ([0], [1], [0, 1]):
            reduced = ttnn.experimental.fast_reduce_nc(tx, dims=dims, memory_config=ttnn.DRAM_MEMORY_CONFIG)
            _assert_close(x.sum(dims, keepdim=True), _per_device(mesh, reduced)[-1])
        if mesh.get_num_devices() > 1:
            y, ty = _collective_input(mesh)  # device (r, c): y[:, r, :, 64 c : 64 (c + 1)]
            gathered = ttnn.all_gather(ty, 0, cluster_axis=1, topology=ttnn.Topology.Linear, num_links=1)
            summed = ttnn.experimental.fast_reduce_nc(gathered, dims=[0], memory_config=ttnn.DRAM_MEMORY_CONFIG)
            expected = sum(y.split(64, dim=3))[:, -1:]  # the last mesh row's pieces, summed over its columns
            _assert_close(expected, _per_device(mesh, summed)[-1])


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 2), (1, 8)], ids=["1x2", "1x8"], indirect=True)
def test_broken_dataflow_fails_pcc(ttnn_mesh_device):
    """Row-parallel matmul + reduce-scatter vs its reference; gathering on the wrong dim or skipping the
    reduction is caught by the PCC check the module tests use."""
    mesh = ttnn_mesh_device
    check = numerics.ReferenceCheck(devices.MOCK, [])
    x, w = torch.randn(1, 1, ROWS, DIM * 2), torch.randn(1, 1, DIM * 2, DIM)
    tt_ccl, dram, topology = ccl.get_tt_ccl(mesh), ttnn.DRAM_MEMORY_CONFIG, ccl.default_topology(mesh)
    with shadow_execution():
        tx = _put(mesh, x, mapper=ttnn.ShardTensorToMesh(mesh, dim=3))
        tw = _put(mesh, w, mapper=ttnn.ShardTensorToMesh(mesh, dim=2))
        partial = ttnn.linear(tx, tw)
        good = ccl.reduce_scatter(tt_ccl, partial, dim=3, memory_config=dram, topology=topology, num_links=1)
        check(x @ w, _concat(mesh, good), 0.99)
        with pytest.raises(AssertionError, match="PCC"):
            check(x @ w, _per_device(mesh, partial)[0], 0.99)  # missing reduction
        wrong = ccl.all_gather(tt_ccl, good, dim=2, memory_config=dram, topology=topology, num_links=1)
        with pytest.raises(AssertionError, match="PCC"):  # gathered along rows instead of columns
            check(x @ w, _per_device(mesh, wrong)[0].reshape((*x.shape[:3], DIM)), 0.99)


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 1)], ids=["1x1"], indirect=True)
def test_unknown_op_and_drift_fail_loudly(ttnn_mesh_device, monkeypatch):
    with shadow_execution():
        tx = _put(ttnn_mesh_device, torch.randn(1, 1, ROWS, DIM))
        with pytest.raises(ShadowUnsupportedOp, match=r"ttnn\.exp\b"):
            ttnn.exp(tx)
        monkeypatch.setitem(session.OPS, "ttnn.reshape", OpSpec(lambda x, *args, **kwargs: x))
        with pytest.raises(
            ShadowDriftError, match=r"ttnn\.reshape.*shape: shadow \(1, 1, 32, 256\) vs ttnn \(1, 1, 64, 128\)"
        ):
            ttnn.reshape(tx, (1, 1, 64, 128))


def test_patches_nest_and_restore():
    """Entering twice patches once; leaving restores what was there (the fixture may already be shadowing)."""
    before, was_active = ttnn.linear, session.is_active()
    with shadow_execution():
        patched = ttnn.linear
        assert isinstance(patched, session._Dispatcher) and session.is_active()
        with shadow_execution():
            assert ttnn.linear is patched
        assert ttnn.linear is patched
        assert ttnn.get_golden_function(patched) is ttnn.get_golden_function(patched.original)
    assert ttnn.linear is before and session.is_active() == was_active
