# SPDX-License-Identifier: Apache-2.0
"""``--compare-tttv1``: TTTv1's choice next to the TTTv2 module's own, for every config field TTTv1 decides.

TTTv1's choices are ModelArgs' ``model_config`` keys and DecodersPrecision settings, mapped onto each module's config
fields by the module's ``from_model_args`` (the bridge a TTTv1 model uses to switch). The report runs that bridge
without building anything (on a subclass whose ``from_config`` returns the config), resolves the config, and puts
each field ``from_model_args`` sets next to the same field of the module the report built (resolved from its own
defaults). Fields ``from_model_args`` leaves unset are TTTv2's decision either way and are listed as such.
Per-sequence-length configs are compared at the report's prefill length.
"""

from dataclasses import fields

from models.common.modules.tt_ccl import get_tt_ccl
from models.common.report.describe import describe, describe_program_config, same
from models.common.report.layer import USERS
from models.common.report.model import LAYER_PREFIX
from models.common.report.summary import config_fields
from models.tt_transformers.tt import load_checkpoints as ckpt
from models.tt_transformers.tt.model_config import ModelArgs

FROM_MODEL_ARGS_EXTRA = {"attention_norm": ("attention_norm",), "ffn_norm": ("ffn_norm",)}  # RMSNorm weight_key
SOURCE = "ModelArgs(...).model_config + DecodersPrecision, mapped to config fields by each module's from_model_args"


def tttv1_config(module_cls, name: str, mesh_device, args, state_dict):
    """The config ``module_cls.from_model_args`` builds, without building the module."""
    config_only = type(module_cls.__name__, (module_cls,), {"from_config": classmethod(lambda cls, config: config)})
    extra = FROM_MODEL_ARGS_EXTRA.get(name, ())
    return config_only.from_model_args(mesh_device, get_tt_ccl(mesh_device), args, state_dict, None, 0, *extra)


def tttv1_inputs(model, mesh_device, weights: dict, cache_len: int, optimizations=None):
    """TTTv1's ModelArgs for the report's run (``optimizations``: its precision recipe, default TTTv1's) and the
    layer's weights in TTTv1 naming; ValueError when TTTv1 does not run the model on the mesh."""
    try:
        args = ModelArgs(
            mesh_device, hf_model=model.name, max_batch_size=USERS, max_seq_len=cache_len, optimizations=optimizations
        )
    except ValueError as error:
        raise ValueError(f"TTTv1 does not run {model.name} on this mesh: {error}") from error
    hf_weights = {LAYER_PREFIX + key: tensor for key, tensor in weights.items()}
    return args, ckpt.hf_to_meta(hf_weights, model.head_dim, model.n_heads, model.n_kv_heads)


def compare(layer, model, weights: dict, cache_len: int, seq_len: int) -> dict:
    """Side by side for each module of ``layer``; ``weights``: the layer's HF weights (layer_state_dict)."""
    mesh = layer.mesh_device
    result = {"source": SOURCE, "seq_len": seq_len, "modules": [], "compared": 0, "differences": 0}
    try:
        args, state_dict = tttv1_inputs(model, mesh, weights, cache_len)
    except ValueError as error:
        result["unavailable"] = str(error)
        return result
    for name, module in layer.modules.items():
        entry = {"name": name, "class": getattr(module, "LABEL", type(module).__name__), "rows": [], "tttv2_only": []}
        result["modules"].append(entry)
        if not hasattr(module, "config"):
            entry["unavailable"] = "TTTv1's own code in this layer (no TTTv2 module): nothing to compare"
            continue
        try:
            chosen = tttv1_config(type(module), name, mesh, args, state_dict)
        except ValueError as error:
            entry["unavailable"] = str(error)
            continue
        tttv1 = config_fields(chosen.resolve(), seq_len)
        tttv2 = config_fields(module.config, seq_len)
        decided = {f.name for f in fields(chosen) if getattr(chosen, f.name) is not None}
        for field, ours in tttv2.items():
            if field.split(".")[0] not in decided:
                if ours is not None:
                    entry["tttv2_only"].append({"field": field, "tttv2": _describe(field, ours)})
                continue
            theirs = tttv1[field]
            row = {"field": field, "tttv1": _describe(field, theirs), "tttv2": _describe(field, ours)}
            row["same"] = same(theirs, ours)
            entry["rows"].append(row)
            result["compared"] += 1
            result["differences"] += not row["same"]
    return result


def _describe(field: str, value) -> str:
    return describe_program_config(None) if value is None and field.endswith("prg_config") else describe(value)
