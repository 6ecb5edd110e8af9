# SPDX-License-Identifier: Apache-2.0
"""``--precision``: precision recipes (weight, KV-cache and activation dtypes, math fidelities) run side by side.

A recipe is TTTv1 precision data (``ModelOptimizations``: a dtype per tensor group, a fidelity per op group) or
TTTv2's own defaults. It reaches the TTTv2 modules the way a TTTv1 model would hand it over: each module's
``from_model_args`` maps a ModelArgs carrying the recipe onto config fields (compare.tttv1_config); of those, the
precision fields (``*_dtype``, ``*_compute_kernel_config``) are given to the module over its own defaults, everything
else stays TTTv2's. Named recipes:

    tttv2        the modules' own defaults
    accuracy     TTTv1's per-model accuracy settings (ModelOptimizations.accuracy; TTTv1's default)
    performance  TTTv1's per-model performance settings (ModelOptimizations.performance)
    bf16         all weights and the KV cache in bfloat16 (TTTv1's default fidelities)
    bfp4-mlp     TTTv1's BFP4_MLP: bfloat4_b w1 / w3 computed in LoFi

and ``custom:GROUP=SETTING,...`` on TTTv1's default settings, with GROUP a TTTv1 tensor group (ff1_3, ff2, wqkv, wo,
kv_cache, activation: bfp4 / bfp8 / bf16) or op group (li_ff1_3, li_ff2, li_qkv_decode, sdpa_decode, li_o_decode,
li_qkv_prefill, sdpa_prefill, li_o_prefill: lofi / hifi2 / hifi2na / hifi2fp16 / hifi4 / hifi4fp32).
"""

from collections.abc import Callable
from dataclasses import dataclass, fields

from models.common.report.compare import tttv1_config, tttv1_inputs
from models.tt_transformers.tt.model_config import (
    BFP4_MLP,
    DecodersPrecision,
    MathFidelitySetting,
    ModelOptimizations,
    OpGroup,
    PrecisionSetting,
    TensorGroup,
)

TTTV2, TTTV1_DEFAULT = "tttv2", "accuracy"  # TTTv1's ModelArgs takes DecodersPrecision.accuracy unless told
CUSTOM_PREFIX = "custom:"
PRECISION_FIELD_SUFFIXES = ("_dtype", "compute_kernel_config")
WEIGHT_AND_KV_GROUPS = (TensorGroup.FF1_FF3, TensorGroup.FF2, TensorGroup.WQKV, TensorGroup.WO, TensorGroup.KV_CACHE)
SETTABLE_OPS = tuple(op for op in OpGroup if op != OpGroup.ACCURACY)  # ACCURACY is not an op of the layer


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    optimizations: Callable[[str], ModelOptimizations] | None  # model name -> TTTv1 settings; None: TTTv2's own


NAMED = {
    TTTV2: Recipe(TTTV2, "TTTv2's module defaults", None),
    "accuracy": Recipe(
        "accuracy", "TTTv1's accuracy settings for the model (its default)", ModelOptimizations.accuracy
    ),
    "performance": Recipe("performance", "TTTv1's performance settings for the model", ModelOptimizations.performance),
    "bf16": Recipe(
        "bf16",
        "all weights and the KV cache bfloat16",
        lambda name: ModelOptimizations(
            {"TensorPrecision": dict.fromkeys(WEIGHT_AND_KV_GROUPS, PrecisionSetting.BF16)}
        ),
    ),
    "bfp4-mlp": Recipe(
        "bfp4-mlp", "bfloat4_b w1 / w3 in LoFi (TTTv1 BFP4_MLP)", lambda name: ModelOptimizations(BFP4_MLP)
    ),
}


def parse(text: str) -> list[Recipe]:
    """Comma-separated recipe names, ``custom:...`` last (its own settings are comma-separated); ValueError naming
    what was wrong."""
    head, custom, tail = text.partition(CUSTOM_PREFIX)
    names = [name for name in head.split(",") if name]
    unknown = [name for name in names if name not in NAMED]
    if unknown:
        raise ValueError(f"unknown recipe {unknown[0]!r}: use {', '.join(NAMED)} or {CUSTOM_PREFIX}GROUP=SETTING,...")
    recipes = [NAMED[name] for name in dict.fromkeys(names)]
    if custom:
        recipes.append(_custom(tail))
    if not recipes:
        raise ValueError(f"no recipe given: use {', '.join(NAMED)} or {CUSTOM_PREFIX}GROUP=SETTING,...")
    return recipes


def _custom(text: str) -> Recipe:
    tensors = {group.value: group for group in TensorGroup}
    ops = {op.value: op for op in SETTABLE_OPS}
    settings = {"TensorPrecision": {}, "OpFidelity": {}}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key in tensors:
            choices, kind, group = {s.value: s for s in PrecisionSetting}, "TensorPrecision", tensors[key]
        elif key in ops:
            choices, kind, group = {s.value: s for s in MathFidelitySetting}, "OpFidelity", ops[key]
        else:
            raise ValueError(f"{CUSTOM_PREFIX}{item}: {key!r} is not one of {', '.join([*tensors, *ops])}")
        if value not in choices:
            raise ValueError(f"{CUSTOM_PREFIX}{item}: {key} takes one of {', '.join(choices)}")
        settings[kind][group] = choices[value]
    if not any(settings.values()):
        raise ValueError(f"{CUSTOM_PREFIX} needs at least one GROUP=SETTING")
    return Recipe(
        CUSTOM_PREFIX + text, "TTTv1's default settings with " + text, lambda name: ModelOptimizations(settings)
    )


def model_args_precision(recipe: Recipe):
    """The ModelArgs ``optimizations`` argument carrying ``recipe`` to every decoder layer."""
    return lambda args: DecodersPrecision(args.n_layers, args.model_name, recipe.optimizations(args.model_name))


def precision_fields(config) -> dict:
    """The dtype and math-fidelity fields a (TTTv1-built, unresolved) module config sets."""
    return {
        f.name: getattr(config, f.name)
        for f in fields(config)
        if f.name.endswith(PRECISION_FIELD_SUFFIXES) and getattr(config, f.name) is not None
    }


def overrides(recipe: Recipe, layer, model, weights: dict, cache_len: int) -> dict[str, dict]:
    """Module name -> the precision fields ``recipe`` sets on it (none for TTTv2's defaults or TTTv1 code);
    ``layer``: the ReportLayer built with TTTv2's defaults, ``weights``: its HF weights. ValueError when TTTv1 does
    not run the model on the mesh."""
    if recipe.optimizations is None:
        return {}
    mesh = layer.mesh_device
    args, state_dict = tttv1_inputs(model, mesh, weights, cache_len, model_args_precision(recipe))
    return {
        name: precision_fields(tttv1_config(type(module), name, mesh, args, state_dict))
        for name, module in layer.modules.items()
        if hasattr(module, "config")
    }
