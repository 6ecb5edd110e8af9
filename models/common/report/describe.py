# SPDX-License-Identifier: Apache-2.0
"""Short, readable descriptions of ttnn configuration objects, and comparison keys for them.

``describe(value)`` turns a program config, memory config, compute-kernel config, dtype, topology or activation into
one line (program-config kind and its key parameters, memory layout and shard shape, math fidelity and accumulation
flags); ``same(a, b)`` compares two such values by content (a compute-kernel config's repr is only its address).
"""

# Program-config class → the kind shown in the report
PROGRAM_CONFIG_KINDS = {
    "MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig": "DRAM-sharded matmul",
    "MatmulMultiCoreReuseMultiCast1DProgramConfig": "1D multicast matmul",
    "MatmulMultiCoreReuseMultiCastProgramConfig": "2D multicast matmul",
    "MatmulMultiCoreReuseProgramConfig": "reuse matmul",
    "LayerNormShardedMultiCoreProgramConfig": "sharded norm",
    "LayerNormDefaultProgramConfig": "interleaved norm",
    "SDPAProgramConfig": "SDPA",
}
# Attributes shown for a program config, in this order, when it has them (the grid is shown as x×y)
PROGRAM_CONFIG_PARAMS = (
    "compute_with_storage_grid_size",
    "in0_block_w",
    "per_core_M",
    "per_core_N",
    "out_subblock_h",
    "out_subblock_w",
    "block_h",
    "block_w",
    "subblock_w",
    "q_chunk_size",
    "k_chunk_size",
    "fuse_batch",
    "mcast_in0",
)
COMPUTE_KERNEL_FLAGS = ("math_fidelity", "math_approx_mode", "fp32_dest_acc_en", "packer_l1_acc", "dst_full_sync_en")
LAYOUT_NAMES = {
    "INTERLEAVED": "interleaved",
    "WIDTH_SHARDED": "width-sharded",
    "HEIGHT_SHARDED": "height-sharded",
    "BLOCK_SHARDED": "block-sharded",
}


def is_program_config(value) -> bool:
    return type(value).__name__.endswith("ProgramConfig")


def is_compute_kernel_config(value) -> bool:
    return type(value).__name__.endswith("ComputeKernelConfig")


def is_memory_config(value) -> bool:
    return type(value).__name__ == "MemoryConfig"


def program_config_params(config) -> dict:
    """The key parameters of a program config (grid as "x×y")."""
    params = {}
    for name in PROGRAM_CONFIG_PARAMS:
        if hasattr(config, name):
            value = getattr(config, name)
            params[name] = f"{value.x}x{value.y}" if name == "compute_with_storage_grid_size" else value
    return params


def program_config_kind(config) -> str:
    return PROGRAM_CONFIG_KINDS.get(type(config).__name__, type(config).__name__)


def describe_program_config(config) -> str:
    if config is None:
        return "none (ttnn picks)"
    kind = program_config_kind(config)
    params = program_config_params(config)
    grid = params.pop("compute_with_storage_grid_size", None)
    text = " ".join(f"{name}={_plain(value)}" for name, value in params.items())
    return f"{kind}{f' grid {grid}' if grid else ''} {text}".strip()


def describe_memory_config(config) -> str:
    """e.g. "L1 width-sharded [32, 128] x 32 cores", "DRAM interleaved"."""
    buffer = config.buffer_type.name
    layout = LAYOUT_NAMES.get(config.memory_layout.name, config.memory_layout.name.lower())
    spec = config.shard_spec
    if spec is None:
        return f"{buffer} {layout}" + (" (shard spec from the op)" if config.is_sharded() else "")
    units = "banks" if buffer == "DRAM" else "cores"
    return f"{buffer} {layout} {list(spec.shape)} x {spec.grid.num_cores()} {units}"


def describe_compute_kernel_config(config) -> str:
    """e.g. "HiFi2 fp32-acc L1-acc": math fidelity, then the accumulation / approximation flags that are on."""
    flags = {"fp32_dest_acc_en": "fp32-acc", "packer_l1_acc": "L1-acc", "math_approx_mode": "approx"}
    on = [label for name, label in flags.items() if getattr(config, name, False)]
    return " ".join([config.math_fidelity.name, *on])


def describe(value) -> str:
    """One line for any configuration value the report shows."""
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    if is_program_config(value):
        return describe_program_config(value)
    if is_memory_config(value):
        return describe_memory_config(value)
    if is_compute_kernel_config(value):
        return describe_compute_kernel_config(value)
    if hasattr(value, "name") and type(value).__module__.startswith("ttnn"):  # enums: DataType, Topology, ...
        return value.name.lower() if type(value).__name__ == "DataType" else value.name
    if type(value).__name__ == "CoreGrid":
        return f"{value.x}x{value.y} cores"
    return _plain(value)


def comparison_key(value) -> str:
    """A value's content as text: the repr, or the flags of a compute-kernel config (whose repr is an address)."""
    if is_compute_kernel_config(value):
        return repr(tuple(getattr(value, name) for name in COMPUTE_KERNEL_FLAGS))
    return repr(value)


def same(a, b) -> bool:
    return comparison_key(a) == comparison_key(b)


def _plain(value) -> str:
    return str(value).replace("std::nullopt", "none")
