# SPDX-License-Identifier: Apache-2.0
"""TTTv1 TransformerBlock: one decoder layer on the width-fractured residual stream.

    h   = x + attention(attention_norm(x))
    out = h + feed_forward(ff_norm(h))

The residual ``x`` is fractured over the mesh columns (decode: DECODE_RESIDUAL_MEMCFG in L1, prefill: DRAM); the
norms gather it and return the full-width activation in their consumer's input layout, attention and feed-forward
reduce-scatter their outputs back to the fractured residual.

Swapping in TTTv2 modules (the switch a TTTv1 model author makes): each of ``attention``, ``feed_forward``,
``attention_norm`` and ``ff_norm`` takes a builder with the TTTv2 ``from_model_args`` signature; ``None`` builds the
TTTv1 module::

    TransformerBlock(args, mesh, tt_ccl, dtype, state_dict, 0, cache, trans_mats, feed_forward=MLP1D.from_model_args)

Builders are called as ``attention(mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num,
paged_attention_config=...)``, ``feed_forward(mesh_device, tt_ccl, args, state_dict, weight_cache_path,
layer_num)`` and ``*_norm(mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num, weight_key)`` with
weight_key "attention_norm" / "ffn_norm"; the modules they return are called like TTTv1's
(``norm(x, mode)``, ``feed_forward.forward(x, mode)``, ``attention.forward(x, current_pos, rot_mats, user_id, mode,
page_table=..., chunk_page_table=..., chunk_start_idx=...)``).

Left out from upstream: mixture-of-experts MLPs, Gemma's pre/post feed-forward norms, ALLaM's SimpleRMSNorm,
sliding-window (local) rotary matrices, caller-owned ``kv_cache`` tensors (vLLM) and the prefetcher.
"""

from functools import partial

import ttnn

from models.common.modules.lightweight_module import LightweightModule, identity
from models.tt_transformers.tt.attention import Attention
from models.tt_transformers.tt.distributed_norm import DistributedNorm
from models.tt_transformers.tt.mlp import MLP
from models.tt_transformers.tt.model_config import TensorGroup
from models.tt_transformers.tt.rmsnorm import RMSNorm

MODES = ("decode", "prefill")
# model_config keys of each residual-stream norm's sharded program config and decode output memory config (the input
# layout of what follows it: attention, MLP, LM head), by state-dict weight key
NORM_CONFIGS = {
    "attention_norm": ("SHARDED_NORM_ATTN_PRGM_CFG", "SHARDED_ATTN_INPUT_MEMCFG"),
    "ffn_norm": ("SHARDED_NORM_MLP_PRGM_CFG", "SHARDED_MLP_INPUT_MEMCFG"),
    "norm": ("SHARDED_NORM_LM_HEAD_PRGM_CFG", "LM_HEAD_INPUT_MEMCFG"),
}


def tttv1_norm(mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num, weight_key):
    """TTTv1's norm for ``weight_key``: RMSNorm (distributed where ``args.is_distributed_norm``) in a DistributedNorm,
    writing its decode output in the consumer's input layout (NORM_CONFIGS)."""
    program_config, output_memcfg = (args.model_config[key] for key in NORM_CONFIGS[weight_key])
    norm = RMSNorm(
        device=mesh_device,
        dim=args.dim,
        eps=args.norm_eps,
        state_dict=state_dict,
        state_dict_prefix=args.get_state_dict_prefix("", layer_num),
        weight_cache_path=None if args.dummy_weights else weight_cache_path,
        weight_dtype=ttnn.bfloat16,
        weight_key=weight_key,
        is_distributed=args.is_distributed_norm,
        add_unit_offset=args.rms_norm_add_unit_offset,
        sharded_program_config=program_config,
        sharded_output_config=output_memcfg,
        ccl_topology=args.ccl_topology(),
        tt_ccl=tt_ccl,
    )
    return DistributedNorm(norm, args, tt_ccl, TG=args.is_galaxy)


class TransformerBlock(LightweightModule):
    def __init__(
        self,
        args,
        mesh_device,
        tt_ccl,
        dtype,
        state_dict,
        layer_num,
        weight_cache_path,
        transformation_mats,
        paged_attention_config=None,
        use_paged_kv_cache=False,
        attention=None,
        feed_forward=None,
        attention_norm=None,
        ff_norm=None,
    ):
        super().__init__()
        self.args = args
        self.mesh_device = mesh_device
        self.tt_ccl = tt_ccl
        self.layer_num = layer_num
        self.model_config = args.get_model_config()
        mc = self.model_config
        common = (mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num)

        if attention is None:
            self.attention = Attention(
                mesh_device,
                tt_ccl,
                args,
                state_dict,
                weight_cache_path,
                layer_num,
                dtype,
                transformation_mats,
                configuration=args,
                paged_attention_config=paged_attention_config,
                use_paged_kv_cache=use_paged_kv_cache,
            )
        else:
            self.attention = attention(*common, paged_attention_config=paged_attention_config)
        if feed_forward is None:
            self.feed_forward = MLP(mesh_device, tt_ccl, args, state_dict, weight_cache_path, layer_num, dtype, mc)
        else:
            self.feed_forward = feed_forward(*common)
        self.attention_norm = (attention_norm or tttv1_norm)(*common, "attention_norm")
        self.ff_norm = (ff_norm or tttv1_norm)(*common, "ffn_norm")
        activation_dtype = mc["DECODERS_OPTIMIZATIONS"].get_tensor_dtype(
            decoder_id=max(layer_num, 0), tensor=TensorGroup.ACTIVATION
        )
        # TTTv1: Galaxy adds the attention residual in bfloat16 and, where the norm is not distributed, returns the
        # layer output in the CCL dtype; elsewhere the output keeps the activation dtype (bfloat16 by default).
        self._attention_add_dtype = ttnn.bfloat16 if args.is_galaxy else None
        self._output_dtype = {
            mode: args.ccl_dtype
            if args.is_galaxy and not args.is_distributed_norm(mode)
            else activation_dtype or ttnn.bfloat16
            for mode in MODES
        }
        # TTTv1: on Galaxy the decode MLP input is resharded to MLP_ACT_MEMCFG
        galaxy_decode = partial(ttnn.to_memory_config, memory_config=mc["MLP_ACT_MEMCFG"])
        self._to_mlp_input = {"decode": galaxy_decode if args.is_galaxy else identity, "prefill": identity}

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
    ) -> ttnn.Tensor:
        """x: the fractured residual [1, 1, rows, dim / columns] (consumed in prefill); returns the next one."""
        skip_mem_cfg = self.model_config["DECODE_RESIDUAL_MEMCFG"] if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG
        if x.memory_config() != skip_mem_cfg:
            raise ValueError(
                f"decoder {mode} input must be the residual in {skip_mem_cfg}, got {x.memory_config()}; build it "
                f"with args.prepare_residual_tensor_{mode} or ttnn.to_memory_config"
            )
        attn_in = self.attention_norm(x, mode)  # fractured → gathered, in the attention's input layout
        attn_out = self.attention.forward(
            attn_in,
            current_pos,
            rot_mats,
            user_id,
            mode,
            page_table=page_table,
            chunk_page_table=chunk_page_table,
            chunk_start_idx=chunk_start_idx,
        )  # → fractured
        attn_out = ttnn.to_memory_config(attn_out, skip_mem_cfg)
        h = ttnn.add(x, attn_out, memory_config=skip_mem_cfg, dtype=self._attention_add_dtype)
        ttnn.deallocate(attn_out)
        if mode == "prefill":
            ttnn.deallocate(x)
        ff_in = self.ff_norm(h, mode)  # fractured → gathered, in the MLP's input layout
        ff_out = self.feed_forward.forward(self._to_mlp_input[mode](ff_in), mode)  # → fractured
        return ttnn.add(h, ff_out, memory_config=skip_mem_cfg, dtype=self._output_dtype[mode])
