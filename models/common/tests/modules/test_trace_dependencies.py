# SPDX-License-Identifier: Apache-2.0
"""trace_dependencies.py: exact sections on a small synthetic module, an upstream-shaped TTTv1 trio (module, config,
ccl), the CLI (text, JSON against the schema, errors) and our real TTTv1 modules when they exist."""

import json
import subprocess
import sys
import time
from pathlib import Path
from textwrap import dedent

from models.common.modules import trace_dependencies as td

SCRIPT = Path(td.__file__)
TTTV1_DIR = td.REPO_ROOT / "models/tt_transformers/tt"
REAL_MODULES = {"mlp.py": True, "attention.py": True, "rmsnorm.py": False, "distributed_norm.py": False}  # is_galaxy?
TIME_LIMIT_S = 2.0
HEADERS = [f"## {number}. {title}" for number, title in enumerate(td.SECTION_TITLES, start=1)]

# --- a small synthetic trio: every section's exact content is worked out by hand below

TINY_MODULE = dedent("""\
    import ttnn
    from models.x.ccl import tt_all_gather, tt_all_reduce


    class Tiny:
        def __init__(self, args, model_config):
            self.args = args
            self.model_config = model_config
            self.dim = args.dim
            self.TG = args.num_devices == 32

        def forward(self, x, mode):
            seq_len = x.shape[-2]
            TG = self.args.is_galaxy
            if mode == "decode" and TG:
                x = ttnn.linear(x, program_config=self.model_config["DECODE_PRG"])
            elif self.model_config.get("USE_FUSED"):
                x = ttnn.linear(x, program_config=self.model_config["PREFILL_PRG"](seq_len))
            mem = self.model_config["OUT_MEMCFG"] if self.dim >= 4096 or self.TG else None
            return tt_all_reduce(x, self.args.mesh_device, cluster_axis=1, memory_config=mem)
""")

TINY_CONFIG = dedent("""\
    import math
    import os

    import ttnn
    from models.x.common import is_blackhole, nearest_32


    class ModelArgs:
        def __init__(self, mesh_device, max_batch_size=1):
            self.num_devices = mesh_device.get_num_devices()
            self.is_galaxy = self.num_devices == 32
            self.tile_size = 32
            self.max_batch_size = max_batch_size
            self.batch_rows = self.tile_size * math.ceil(self.max_batch_size / self.tile_size)
            self._set_params({})
            grid = 8 if is_blackhole() else 4
            self.model_config = {"OUT_MEMCFG": ttnn.DRAM_MEMORY_CONFIG}
            self.model_config["DECODE_PRG"] = self.dram_matmul_config(self.batch_rows, self.dim, grid)
            if self.is_galaxy:
                self.model_config["PREFILL_PRG"] = lambda seq_len: self.matmul_config(seq_len, nearest_32(self.dim))

            def get_cfg(seq_len):
                return self.find_grid(seq_len // self.tile_size)

            self.model_config["UNUSED"] = get_cfg

        def _set_params(self, config):
            self.dim = config.get("hidden_size")
            self.cache = os.getenv("TT_CACHE")

        def dram_matmul_config(self, m: int, k: int, num_cores=None):
            return ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
                per_core_M=m // self.tile_size, in0_block_w=self.find_largest_divisor(k)
            )

        def matmul_config(self, m, k):
            return ttnn.MatmulMultiCoreReuseMultiCastProgramConfig(per_core_M=m, in0_block_w=k)

        def find_largest_divisor(self, n, max_divisor=8):
            return max(i for i in range(1, max_divisor + 1) if n % i == 0)

        def find_grid(self, n):
            return n, 1
""")

TINY_CCL = dedent("""\
    import ttnn


    def tt_all_reduce(input_tensor, mesh_device, cluster_axis=0, memory_config=None):
        if cluster_axis == 1 and 1 in list(mesh_device.shape):
            return input_tensor
        gathered = tt_all_gather(input_tensor, mesh_device, dim=3)
        return ttnn.experimental.fast_reduce_nc(gathered, memory_config=memory_config)


    def tt_all_gather(input_tensor, mesh_device, dim, num_links=None):
        return ttnn.experimental.all_gather_async(input_tensor, dim=dim, num_links=num_links or 1)
""")

# --- an upstream-shaped trio: TG alias, Mode enum, tt_all_reduce calls, dram_matmul_config, HF dict parsing

REALISTIC_MLP = dedent("""\
    import ttnn
    from models.common.lightweightmodule import LightweightModule
    from models.tt_transformers.tt.ccl import tt_all_reduce
    from models.tt_transformers.tt.common import Mode


    class MLP(LightweightModule):
        def __init__(self, mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num, dtype, model_config):
            super().__init__()
            self.mesh_device = mesh_device
            self.tt_ccl = tt_ccl
            self.args = args
            self.dim = args.dim
            self.model_config = model_config
            w1_dims = (-1, -2) if args.is_galaxy else (-2, -1)
            mapper = ttnn.ShardTensor2dMesh(mesh_device, dims=w1_dims)
            self.w1 = ttnn.as_tensor(state_dict["w1"], dtype=dtype, mesh_mapper=mapper)

        def forward(self, x: ttnn.Tensor, mode: Mode) -> ttnn.Tensor:
            seq_len = x.shape[-2]
            TG = self.args.is_galaxy
            if mode == Mode.PREFILL and seq_len >= self.args.prefill_len_cutoff:
                x = ttnn.reshape(x, [1, seq_len // self.args.prefill_len_cutoff, self.args.prefill_len_cutoff, -1])
            pc_1 = (
                self.model_config["DECODE_MLP_W1_W3_PRG_CONFIG"]
                if mode == Mode.DECODE
                else self.model_config["PREFILL_MLP_W1_W3_PRG_CONFIG"](seq_len)
            )
            w1_out = ttnn.linear(x, self.w1, dtype=ttnn.bfloat8_b if TG else ttnn.bfloat16, program_config=pc_1)
            if TG:
                if self.dim == 8192 or mode == Mode.PREFILL:
                    w1_out = ttnn.experimental.reduce_scatter_minimal_async(w1_out, dim=3)
                else:
                    w1_out = tt_all_reduce(
                        w1_out,
                        self.mesh_device,
                        self.tt_ccl,
                        cluster_axis=1,
                        sharded=True if mode == Mode.DECODE else False,
                        topology=self.args.ccl_topology(),
                        memory_config=self.model_config["FF1_OUT_GATHERED_MEMCFG"] if mode == Mode.DECODE else None,
                    )
            w2_in = ttnn.mul(w1_out, w1_out, memory_config=w1_out.memory_config())
            w2_out = ttnn.linear(w2_in, self.w1, program_config=self.model_config["DECODE_MLP_W2_PRG_CONFIG"])
            ttnn.deallocate(w2_in)
            return tt_all_reduce(
                w2_out,
                self.mesh_device,
                self.tt_ccl,
                cluster_axis=0,
                dim=0 if (TG and self.dim < 8192) else 3,
                sharded=(mode == Mode.DECODE),
                rs_memory_config=self.model_config["MLP_RS_CONFIG"]["rs_memory_config"] if mode == "decode" else None,
                dtype=self.args.ccl_dtype,
            )
""")

REALISTIC_ATTENTION = dedent("""\
    import ttnn
    from models.tt_transformers.tt.ccl import tt_all_gather


    class Attention:
        def __init__(self, mesh_device, configuration):
            self.num_devices = configuration.num_devices
            self.TG = self.num_devices == 32
            self.model_config = configuration.get_model_config()

        def forward_decode(self, x, current_pos):
            return ttnn.linear(x, program_config=self.model_config["DECODE_MLP_W2_PRG_CONFIG"])

        def forward(self, x, current_pos, mode="decode"):
            if mode == "prefill" and self.TG:
                x = tt_all_gather(x, self.mesh_device, cluster_axis=1, dim=3)
            return self.forward_decode(x, current_pos)
""")

REALISTIC_CONFIG = dedent("""\
    import math
    import os

    import ttnn
    from models.tt_transformers.tt.common import get_out_subblock_w, is_blackhole, is_wormhole_b0, nearest_32


    class ModelArgs:
        def __init__(self, mesh_device, instruct=False, max_batch_size=1, max_seq_len=1024 * 128, optimizations=None):
            self.num_devices = mesh_device.get_num_devices() if mesh_device else 0
            self.mesh_device = mesh_device
            self.dram_grid_size = mesh_device.dram_grid_size() if mesh_device else None
            device = mesh_device if mesh_device is not None else None
            self.cluster_shape = list(mesh_device.shape) if mesh_device is not None else None
            self.is_galaxy = self.num_devices == 32
            self.max_batch_size = max_batch_size
            self.tile_size = 32
            self.prefill_len_cutoff = 512 if is_blackhole() else 1024
            self.model_name = os.getenv("HF_MODEL")
            self._set_params_from_dict({})
            self.tile_padded_batch_rows = self.tile_size * int(math.ceil(self.max_batch_size / self.tile_size))
            self.model_config = {}
            self.model_config.update({"DECODERS_OPTIMIZATIONS": optimizations})
            if device is not None:
                prefill_rows = 8
                mlp1_3_grid = lambda seq_len: (  # noqa: E731
                    (8, min(min(seq_len, 1024) // 32, 4))
                    if self.is_galaxy
                    else self.find_prefill_grid(prefill_rows, self.dim // self.tile_size)
                )
                n_w1_w3 = self.hidden_dim // self.cluster_shape[1]
                dram_shard_grid_width = 8 if is_wormhole_b0() else self.dram_grid_size.x
                self.model_config["PREFILL_MLP_W1_W3_PRG_CONFIG"] = lambda seq_len: self.matmul_config(
                    m=min(seq_len, self.prefill_len_cutoff),
                    k=self.dim // self.cluster_shape[0],
                    n=n_w1_w3,
                    grid_size=mlp1_3_grid(seq_len),
                    per_core_N=math.ceil(n_w1_w3 / (self.tile_size * dram_shard_grid_width)),
                )
                mlp_core_grid = (
                    self.dram_shard_core_grid_for_k(self.dim)
                    if self.is_galaxy
                    else self.dram_shard_core_grid_for_k_and_n(self.dim, self.hidden_dim // self.num_devices)
                )
                self.model_config["DECODE_MLP_W1_W3_PRG_CONFIG"] = self.dram_matmul_config(
                    m=self.tile_padded_batch_rows,
                    k=self.dim,
                    n=self.hidden_dim // self.cluster_shape[1],
                    num_cores=mlp_core_grid.num_cores,
                )
                self.model_config["DECODE_MLP_W2_PRG_CONFIG"] = self.dram_matmul_config(
                    m=self.tile_padded_batch_rows, k=self.hidden_dim // self.cluster_shape[1], n=self.dim
                )
                self.model_config["FF1_OUT_GATHERED_MEMCFG"] = ttnn.create_sharded_memory_config(
                    shape=(32 * 4, nearest_32(self.hidden_dim // 8 // 8)), core_grid=ttnn.CoreGrid(y=1, x=8)
                )
                self.model_config["MLP_RS_CONFIG"] = {
                    "rs_memory_config": ttnn.DRAM_MEMORY_CONFIG,
                    "chunks_per_sync": 10 if self.dim == 8192 else 2,
                }
                self.ccl_dtype = ttnn.bfloat8_b

        def get_model_config(self):
            return self.model_config

        def _set_params_from_dict(self, config):
            text_config = config.get("text_config", config)
            self.dim = text_config.get("dim", text_config.get("hidden_size"))
            if "intermediate_size" in text_config:
                self.hidden_dim = text_config["intermediate_size"]
            else:
                self.hidden_dim = 4 * self.dim

        def ccl_topology(self):
            if self.num_devices == 8 and ttnn.cluster.get_cluster_type() == ttnn.cluster.ClusterType.T3K:
                return ttnn.Topology.Ring
            return ttnn.Topology.Linear if self.num_devices > 1 else None

        def find_largest_divisor(self, n, max_divisor=8):
            for i in range(max_divisor, 0, -1):
                if n % i == 0:
                    return i
            return 1

        def find_grid(self, N):
            return self.find_largest_divisor(N), 8

        def find_prefill_grid(self, row_tiles, col_tiles):
            return row_tiles, col_tiles

        def dram_shard_core_grid_for_k(self, k: int):
            rows, cols = self.find_grid(k // self.tile_size)
            return ttnn.CoreGrid(x=cols, y=rows)

        def dram_shard_core_grid_for_k_and_n(self, k: int, n: int):
            return ttnn.CoreGrid(x=8, y=k // n // 8)

        def dram_matmul_config(self, m: int, k: int, n: int, num_cores=None):
            if num_cores is None:
                num_cores = self.dram_shard_core_grid_for_k_and_n(k, n).num_cores
            return ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
                in0_block_w=self.find_largest_divisor(k // (self.tile_size * num_cores)),
                per_core_M=math.ceil(m / self.tile_size),
                per_core_N=math.ceil(n / (self.tile_size * num_cores)),
            )

        def matmul_config(self, m, k, n, grid_size, per_core_N=None):
            return ttnn.MatmulMultiCoreReuseMultiCastProgramConfig(
                compute_with_storage_grid_size=grid_size, per_core_N=per_core_N, out_subblock_w=get_out_subblock_w(n)
            )
""")

REALISTIC_COMMON = dedent("""\
    import ttnn


    def nearest_32(x):
        return ((x + 31) // 32) * 32


    def num_to_core_range_set(n):
        return ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(n - 1, 0))})
""")

REALISTIC_CCL = dedent("""\
    import ttnn


    def tt_all_reduce(input_tensor, mesh_device, tt_ccl, cluster_axis=0, dim=0, sharded=False, use_composite=False):
        if list(mesh_device.shape) == [1, 1] or (cluster_axis == 1 and 1 in list(mesh_device.shape)):
            return input_tensor
        if 1 in list(mesh_device.shape):
            return ttnn.experimental.reduce_scatter_minimal_async(input_tensor, dim=dim)
        if not use_composite:
            gathered = tt_all_gather(input_tensor, mesh_device, tt_ccl, cluster_axis, dim)
            return ttnn.experimental.fast_reduce_nc(gathered, dims=[dim])
        return ttnn.experimental.reduce_scatter_minimal_async(input_tensor, dim=dim, cluster_axis=cluster_axis)


    def tt_all_gather(input_tensor, mesh_device, tt_ccl, cluster_axis, dim, num_links=None):
        if num_links is None:
            num_links = tt_ccl.get_num_links(cluster_axis)
        return ttnn.experimental.all_gather_async(input_tensor, dim=dim, num_links=num_links, cluster_axis=cluster_axis)
""")


def write(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.py").write_text(text)
    return directory


def line_of(source: str, snippet: str) -> int:
    """1-based line of the only line containing ``snippet``."""
    matches = [number for number, line in enumerate(source.splitlines(), start=1) if snippet in line]
    assert len(matches) == 1, (snippet, matches)
    return matches[0]


def run_cli(*args, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
    )
    return result, time.perf_counter() - start


def schema_errors(instance, schema: dict, root: dict | None = None, path: str = "$") -> list[str]:
    """Validate against the JSON Schema subset the schema file uses: $ref, type, properties, required,
    additionalProperties, items."""
    root = root or schema
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if types and not any(checks[kind](instance) for kind in types):
        return [f"{path}: {instance!r:.60} is not {types}"]
    errors = []
    if isinstance(instance, dict):
        errors += [f"{path}: missing {key}" for key in schema.get("required", []) if key not in instance]
        for key, value in instance.items():
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties", True))
            if sub is False:
                errors.append(f"{path}: unexpected {key}")
            elif isinstance(sub, dict):
                errors += schema_errors(value, sub, root, f"{path}.{key}")
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += schema_errors(item, schema["items"], root, f"{path}[{index}]")
    return errors


def load_schema() -> dict:
    return json.loads(td.SCHEMA_FILE.read_text())


def tiny(tmp_path: Path, with_ccl: bool = True) -> dict:
    files = {"tiny": TINY_MODULE, "model_config": TINY_CONFIG} | ({"ccl": TINY_CCL} if with_ccl else {})
    directory = write(tmp_path / "x", **files)
    return td.trace(directory / "tiny.py", directory / "model_config.py", directory / "ccl.py")


# --- the synthetic module: exact sections


def test_config_accesses_and_conditions(tmp_path):
    report = tiny(tmp_path)
    src = TINY_MODULE
    assert report["config_accesses"] == [
        {"key": "DECODE_PRG", "line": line_of(src, '"DECODE_PRG"'), "in_condition": False},
        {"key": "USE_FUSED", "line": line_of(src, '"USE_FUSED"'), "in_condition": True},
        {"key": "PREFILL_PRG", "line": line_of(src, '"PREFILL_PRG"'), "in_condition": False},
        {"key": "OUT_MEMCFG", "line": line_of(src, '"OUT_MEMCFG"'), "in_condition": False},
    ]
    mem_line = line_of(src, '"OUT_MEMCFG"')
    assert report["condition_attributes"] == [
        {"attribute": "self.TG", "args_attr": "is_galaxy", "lines": [mem_line], "via": []},  # same expression
        {
            "attribute": "self.args.is_galaxy",
            "args_attr": "is_galaxy",
            "lines": [line_of(src, "if mode")],
            "via": ["TG"],
        },
        {"attribute": "self.dim", "args_attr": "dim", "lines": [mem_line], "via": []},
    ]
    assert report["mode_switches"] == [{"line": line_of(src, "if mode"), "expr": "mode == 'decode'"}]
    assert report["args_used"] == ["dim", "is_galaxy", "mesh_device", "num_devices"]


def test_config_definitions(tmp_path):
    definitions = tiny(tmp_path)["config_definitions"]
    cfg = TINY_CONFIG
    assert definitions == {
        "DECODE_PRG": [
            {
                "line_start": line_of(cfg, '["DECODE_PRG"]'),
                "line_end": line_of(cfg, '["DECODE_PRG"]'),
                "kind": "value",
                "dependencies": ["builtin:is_blackhole", "helper:dram_matmul_config", "self.batch_rows", "self.dim"],
            }
        ],
        "OUT_MEMCFG": [
            {
                "line_start": line_of(cfg, '"OUT_MEMCFG"'),
                "line_end": line_of(cfg, '"OUT_MEMCFG"'),
                "kind": "dict",
                "dependencies": [],
            }
        ],
        "PREFILL_PRG": [
            {
                "line_start": line_of(cfg, '["PREFILL_PRG"]'),
                "line_end": line_of(cfg, '["PREFILL_PRG"]'),
                "kind": "lambda",
                "dependencies": ["builtin:nearest_32", "helper:matmul_config", "self.dim", "self.is_galaxy"],
            }
        ],
        "USE_FUSED": [],
    }


def test_root_parameters_follow_derivations_to_the_minimal_set(tmp_path):
    roots = tiny(tmp_path)["root_parameters"]
    derivations = roots.pop("derivations")
    assert roots == {
        "hf_config_fields": ["hf:hidden_size"],
        "model_args_inputs": ["init:max_batch_size"],
        "hardware": ["builtin:is_blackhole", "hw:mesh_device.get_num_devices()"],
        "builtins": ["builtin:nearest_32"],
        "constants": ["config:OUT_MEMCFG", "self.tile_size"],
        "unresolved": ["config:USE_FUSED", "self.mesh_device"],
    }
    assert derivations["self.is_galaxy"] == ["self.num_devices"]
    assert derivations["self.batch_rows"] == ["self.max_batch_size", "self.tile_size"]
    assert derivations["helper:dram_matmul_config"] == ["helper:find_largest_divisor", "self.tile_size"]
    assert "self.cache" not in derivations  # set from TT_CACHE, but nothing the module reads depends on it


def test_ccl_call_sites_and_definition(tmp_path):
    ccl = tiny(tmp_path)["ccl_functions"]
    assert ccl == {  # tt_all_gather is imported but not called by the module
        "tt_all_reduce": {
            "call_sites": [
                {
                    "line": line_of(TINY_MODULE, "return tt_all_reduce"),
                    "args": ["x", "self.args.mesh_device"],
                    "keywords": {"cluster_axis": "1", "memory_config": "mem"},
                }
            ],
            "definition": {
                "line": 4,
                "parameters": [
                    {"name": "input_tensor"},
                    {"name": "mesh_device"},
                    {"name": "cluster_axis", "default": "0"},
                    {"name": "memory_config", "default": "None"},
                ],
                "conditions": [{"line": 5, "expr": "cluster_axis == 1 and 1 in list(mesh_device.shape)"}],
                "calls": ["tt_all_gather"],
                "terminal_ops": ["ttnn.experimental.all_gather_async", "ttnn.experimental.fast_reduce_nc"],
            },
        }
    }


def test_matmul_helpers(tmp_path):
    helpers = tiny(tmp_path)["matmul_helpers"]
    assert sorted(helpers) == ["dram_matmul_config", "find_largest_divisor", "matmul_config"]  # find_grid: no helper
    full_return = (
        "ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(per_core_M=m // self.tile_size, "
        "in0_block_w=self.find_largest_divisor(k))"
    )
    assert helpers["dram_matmul_config"] | {"file": None} == {
        "file": None,
        "params": [
            {"name": "m", "type": "int"},
            {"name": "k", "type": "int"},
            {"name": "num_cores", "default": "None"},
        ],
        "uses_self_attrs": ["self.tile_size"],
        "calls": ["find_largest_divisor"],
        "returns": [full_return[: td.RETURN_EXPR_LIMIT] + "..."],
        "line_start": line_of(TINY_CONFIG, "def dram_matmul_config"),
        "line_end": line_of(TINY_CONFIG, "def dram_matmul_config") + 3,
    }


def test_hierarchy_levels(tmp_path):
    levels = {name: level["params"] for name, level in tiny(tmp_path)["parameters"].items()}

    def names(level: str) -> set[str]:
        return {entry["name"] for entry in levels[level]}

    assert names("level_0_hardware") == {"builtin:is_blackhole", "hw:mesh_device.get_num_devices()"}
    assert names("level_1_model_config") == {"hf:hidden_size", "self.dim"}
    assert names("level_2_derived") == {"self.batch_rows", "self.is_galaxy", "self.num_devices", "self.tile_size"}
    assert names("level_3_runtime_config") == {
        "init:max_batch_size",
        "self.max_batch_size",
        "config:DECODE_PRG",
        "config:OUT_MEMCFG",
        "config:PREFILL_PRG",
        "config:USE_FUSED",
    }
    assert levels["level_4_per_call"] == [
        {"name": "mode", "kind": "forward_param", "depends_on": []},
        {"name": "x", "kind": "forward_param", "depends_on": []},
        {"name": "seq_len", "kind": "forward_local", "depends_on": ["x"]},
    ]
    assert levels["level_5_terminal_ops"] == [
        {"name": "ttnn.linear", "kind": "ttnn_op", "depends_on": []},
        {"name": "ttnn.experimental.all_gather_async", "kind": "ccl_op", "depends_on": ["tt_all_reduce"]},
        {"name": "ttnn.experimental.fast_reduce_nc", "kind": "ccl_op", "depends_on": ["tt_all_reduce"]},
    ]


def test_missing_ccl_file_is_reported(tmp_path):
    report = tiny(tmp_path, with_ccl=False)
    assert report["ccl_file"] is None
    assert report["ccl_functions"]["tt_all_reduce"]["definition"] is None
    assert not schema_errors(report, load_schema())
    assert "ccl.py not found next to" in td.render_text(report, show_helpers=False)


# --- upstream-shaped TTTv1 inputs


def realistic(tmp_path: Path) -> Path:
    directory = tmp_path / "models/tt_transformers/tt"
    write(directory, mlp=REALISTIC_MLP, attention=REALISTIC_ATTENTION, model_config=REALISTIC_CONFIG)
    write(directory, ccl=REALISTIC_CCL, common=REALISTIC_COMMON)
    return directory


def static_branches(report: dict) -> set[str]:
    return {c["args_attr"] or c["attribute"] for c in report["condition_attributes"]}


def test_realistic_mlp(tmp_path):
    directory = realistic(tmp_path)
    result, elapsed = run_cli("--json", directory / "mlp.py", directory / "model_config.py")
    assert result.returncode == 0, result.stderr
    assert elapsed < TIME_LIMIT_S
    report = json.loads(result.stdout)
    assert not schema_errors(report, load_schema())

    assert {"is_galaxy", "dim", "prefill_len_cutoff"} <= static_branches(report)
    galaxy = next(c for c in report["condition_attributes"] if c["attribute"] == "self.args.is_galaxy")
    assert galaxy["via"] == ["TG"]
    assert {"mode == Mode.DECODE", "mode == Mode.PREFILL", "mode == 'decode'"} == {
        m["expr"] for m in report["mode_switches"]
    }
    assert {a["key"] for a in report["config_accesses"]} == {
        "DECODE_MLP_W1_W3_PRG_CONFIG",
        "DECODE_MLP_W2_PRG_CONFIG",
        "PREFILL_MLP_W1_W3_PRG_CONFIG",
        "FF1_OUT_GATHERED_MEMCFG",
        "MLP_RS_CONFIG",
    }
    definitions = report["config_definitions"]
    assert {d["kind"] for key in definitions for d in definitions[key]} == {"value", "lambda"}
    prefill = definitions["PREFILL_MLP_W1_W3_PRG_CONFIG"][0]["dependencies"]  # through mlp1_3_grid, n_w1_w3, ...
    assert {"builtin:is_wormhole_b0", "helper:find_prefill_grid", "self.dram_grid_size", "self.hidden_dim"} <= set(
        prefill
    )
    assert "hw:mesh_device" in prefill  # the enclosing `if device is not None`, through the local alias

    roots = report["root_parameters"]
    assert {"hf:dim", "hf:hidden_size", "hf:intermediate_size"} <= set(roots["hf_config_fields"])
    assert {"init:max_batch_size"} <= set(roots["model_args_inputs"])
    assert {"builtin:is_blackhole", "builtin:get_cluster_type", "hw:mesh_device.get_num_devices()"} <= set(
        roots["hardware"]
    )
    assert "env:HF_MODEL" not in roots["model_args_inputs"]  # model_name drives nothing the MLP reads

    reduce = report["ccl_functions"]["tt_all_reduce"]
    assert [site["keywords"]["cluster_axis"] for site in reduce["call_sites"]] == ["1", "0"]
    assert reduce["definition"]["terminal_ops"] == [
        "ttnn.experimental.all_gather_async",
        "ttnn.experimental.fast_reduce_nc",
        "ttnn.experimental.reduce_scatter_minimal_async",
    ]
    assert set(report["matmul_helpers"]) == {
        "dram_matmul_config",
        "dram_shard_core_grid_for_k",
        "dram_shard_core_grid_for_k_and_n",
        "find_grid",
        "find_largest_divisor",
        "matmul_config",
        "num_to_core_range_set",  # from the imported common.py
    }
    levels = report["parameters"]
    assert {"self.is_galaxy", "self.num_devices", "self.ccl_topology"} <= {
        entry["name"] for entry in levels["level_2_derived"]["params"]
    }


def test_realistic_attention_resolves_tg_to_is_galaxy(tmp_path):
    directory = realistic(tmp_path)
    report = td.trace(directory / "attention.py", directory / "model_config.py", directory / "ccl.py")
    assert report["condition_attributes"][0] == {
        "attribute": "self.TG",
        "args_attr": "is_galaxy",  # self.TG = self.num_devices == 32, like ModelArgs.is_galaxy
        "lines": [line_of(REALISTIC_ATTENTION, "if mode")],
        "via": [],
    }
    assert report["mode_switches"] == [{"line": line_of(REALISTIC_ATTENTION, "if mode"), "expr": "mode == 'prefill'"}]
    assert list(report["ccl_functions"]) == ["tt_all_gather"]
    assert {"current_pos", "mode", "x"} <= {
        entry["name"] for entry in report["parameters"]["level_4_per_call"]["params"]
    }


DICT_BUILT_CONFIG = dedent("""\
    from models.x import program_configs as pc


    class ModelArgs:
        def __init__(self, mesh_device):
            self.num_devices = mesh_device.get_num_devices()
            self.hf_config = load(mesh_device)
            self._set_params()
            self.model_config = self._build()

        def _set_params(self):
            config = self.hf_config.text_config
            self.dim = config.hidden_size
            self.head_dim = getattr(config, "head_dim", None) or self.dim // 32

        def _build(self):
            mc = {"DECODE_PRG": pc.dram_matmul_config(self.dim, self.num_devices)}
            if self.num_devices > 1:
                mc["NORM_PRG"] = pc.norm_config(self.head_dim, mc["DECODE_PRG"])
            return mc
""")

PROGRAM_CONFIGS = dedent("""\
    import ttnn


    def dram_matmul_config(k, num_cores):
        return ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(in0_block_w=k // num_cores)


    def norm_config(width, _):
        return ttnn.LayerNormShardedMultiCoreProgramConfig(block_w=width)
""")

NORM_MODULE = dedent("""\
    import ttnn


    class Norm:
        def __init__(self, args):
            self.model_config = args.get_model_config()

        def forward(self, x, mode):
            distributed = self.args.is_distributed(mode)
            return ttnn.rms_norm(x, program_config=self.model_config["NORM_PRG"] if distributed else None)
""")


def test_dict_built_config_attribute_hf_config_and_mode_through_a_local(tmp_path):
    """Our TTTv1 style: keys in dicts a builder method returns, HF config as an object, helpers in a shared module."""
    directory = write(tmp_path / "models/x", model_config=DICT_BUILT_CONFIG, program_configs=PROGRAM_CONFIGS)
    write(directory, norm=NORM_MODULE)
    report = td.trace(directory / "norm.py", directory / "model_config.py", directory / "ccl.py")
    assert report["config_definitions"] == {
        "NORM_PRG": [
            {
                "line_start": line_of(DICT_BUILT_CONFIG, 'mc["NORM_PRG"]'),
                "line_end": line_of(DICT_BUILT_CONFIG, 'mc["NORM_PRG"]'),
                "kind": "value",
                "dependencies": ["config:DECODE_PRG", "helper:pc.norm_config", "self.head_dim", "self.num_devices"],
            }
        ]
    }
    roots = report["root_parameters"]
    assert roots["hf_config_fields"] == ["hf:head_dim", "hf:hidden_size"]
    assert roots["hardware"] == ["hw:mesh_device.get_num_devices()"]
    assert roots["derivations"]["config:DECODE_PRG"] == ["helper:pc.dram_matmul_config", "self.dim", "self.num_devices"]
    assert sorted(report["matmul_helpers"]) == ["dram_matmul_config", "norm_config"]  # from program_configs.py
    assert report["mode_switches"] == [{"line": line_of(NORM_MODULE, "if distributed"), "expr": "distributed"}]


# --- CLI


def test_cli_text_has_all_sections_and_helper_flag(tmp_path):
    directory = realistic(tmp_path)
    paths = (directory / "mlp.py", directory / "model_config.py")
    plain, _ = run_cli(*paths)
    assert plain.returncode == 0, plain.stderr
    assert [header for header in HEADERS if header in plain.stdout] == HEADERS
    assert "run with --matmul-helpers" in plain.stdout
    assert "### dram_matmul_config()" not in plain.stdout
    for flag in ("--matmul-helpers", "--matmul-helper"):
        detailed, _ = run_cli(flag, *paths)
        assert detailed.returncode == 0, detailed.stderr
        assert "### dram_matmul_config()" in detailed.stdout
        assert "Parameters: m: int, k: int, n: int, num_cores=None" in detailed.stdout


def test_cli_json_file_round_trips_and_validates(tmp_path):
    directory = realistic(tmp_path)
    paths = (directory / "mlp.py", directory / "model_config.py")
    out = tmp_path / "deps.json"
    written, _ = run_cli("--json-file", out, *paths)
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == f"JSON output written to: {out}"
    printed, _ = run_cli("--json", *paths)
    report = json.loads(out.read_text())
    assert report == json.loads(printed.stdout) == td.trace(*paths, directory / "ccl.py")
    assert not schema_errors(report, load_schema())


def test_schema_validator_catches_violations(tmp_path):
    report = tiny(tmp_path)
    schema = load_schema()
    assert not schema_errors(report, schema)
    broken = json.loads(json.dumps(report))
    broken["config_accesses"][0]["line"] = "12"
    del broken["root_parameters"]["hardware"]
    broken["extra"] = 1
    assert sorted(schema_errors(broken, schema)) == [
        "$.config_accesses[0].line: '12' is not ['integer']",
        "$.root_parameters: missing hardware",
        "$: unexpected extra",
    ]


def test_cli_errors_exit_2_with_one_clear_line(tmp_path):
    directory = realistic(tmp_path)
    (directory / "broken.py").write_text("def f(:\n")
    cases = {
        (tmp_path / "nope.py", directory / "model_config.py"): "cannot read",
        (directory / "mlp.py", directory / "broken.py"): "cannot parse",
    }
    for (module, config), message in cases.items():
        result, _ = run_cli(module, config)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert message in result.stderr
        assert str(module if message == "cannot read" else config) in result.stderr


def test_cli_default_paths_from_any_cwd(tmp_path):
    result, _ = run_cli(cwd=tmp_path)
    if (TTTV1_DIR / "mlp.py").exists() and (TTTV1_DIR / "model_config.py").exists():
        assert result.returncode == 0, result.stderr
        assert [header for header in HEADERS if header in result.stdout] == HEADERS
    else:
        assert result.returncode == 2
        assert "models/tt_transformers/tt/" in result.stderr and "Traceback" not in result.stderr


# --- our real TTTv1 modules (asserts only on the files that exist yet)


def test_real_tttv1_modules():
    config = TTTV1_DIR / "model_config.py"
    for name, has_galaxy_branch in REAL_MODULES.items():
        module = TTTV1_DIR / name
        if not (module.exists() and config.exists()):
            continue
        result, elapsed = run_cli("--matmul-helpers", module, config)
        assert result.returncode == 0, (name, result.stderr)
        assert elapsed < TIME_LIMIT_S, (name, elapsed)
        assert [header for header in HEADERS if header in result.stdout] == HEADERS, name
        report = td.trace(module, config, TTTV1_DIR / td.CCL_FILE_NAME)
        assert not schema_errors(report, load_schema()), name
        assert report["mode_switches"], f"{name}: no mode switch reported"
        if has_galaxy_branch:
            assert "is_galaxy" in static_branches(report), f"{name}: is_galaxy branch not reported"


def test_real_tttv1_attention():
    """TTTv1 attention.py through the CLI: all seven sections; its static branches on the Galaxy (self.TG, resolved
    to ModelArgs.is_galaxy), fused Q/K ops and the fused all-gather matmul; the decode / prefill switch in forward;
    and the model_config keys both forwards read."""
    module, config = TTTV1_DIR / "attention.py", TTTV1_DIR / "model_config.py"
    result, elapsed = run_cli(module, config)
    assert result.returncode == 0, result.stderr
    assert elapsed < TIME_LIMIT_S
    assert [header for header in HEADERS if header in result.stdout] == HEADERS
    report = td.trace(module, config, TTTV1_DIR / td.CCL_FILE_NAME)
    galaxy = [c for c in report["condition_attributes"] if c["attribute"] == "self.TG"]
    assert [c["args_attr"] for c in galaxy] == ["is_galaxy"]
    assert {"use_qk_fused", "self.use_fused_all_gather_matmul"} <= static_branches(report)
    assert "mode == 'prefill'" in {m["expr"] for m in report["mode_switches"]}
    keys = {access["key"] for access in report["config_accesses"]}
    decode_keys = {"XQKV_DECODE_PROGCFG", "SDPA_DECODE_PROGCFG", "ATTN_OUTPUT_PROGCFG", "DECODE_RESIDUAL_MEMCFG"}
    prefill_keys = {"XQKV_PREFILL_PROGCFG", "SDPA_PROGCFG", "WO_PREFILL_PROGCFG", "KV_PREFILL_MEM_CFG"}
    assert decode_keys | prefill_keys | {"CREATE_QKV_DECODE_SHARD", "DECODERS_OPTIMIZATIONS"} <= keys
