# SPDX-License-Identifier: Apache-2.0
"""Simple TTTv1 text demo: token ids in, token ids out, on the device at hand.

    python -m models.tt_transformers.demo.simple_text_demo --model Llama-3.1-8B-Instruct --mesh 1x8

Builds the TTTv1 Transformer (models/tt_transformers/tt/model.py) from the first ``--layers`` decoder layers of the
model (``--model`` or HF_MODEL: a shipped config gives seeded random weights, a checkpoint folder its own weights),
prefills one user's prompt of token ids, then decodes greedily (argmax on the host). On the mock tier nothing
executes and every read-back is zeros: the run checks that every op validates and dispatches, and the token ids
it prints are not meaningful. With TTTV1_CASES_DIR set, the TTTv1 modules append the cases they ran to CSV files
there (models/tt_transformers/tt/case_collection.py); ``run_tttv1_simple_demos.sh`` does this for every shipped
model and mesh.

Left out from upstream's demo: tokenizers and text prompts, batches of users, paged attention, sampling other than
argmax, tracing, data parallelism and performance reporting.
"""

import argparse
import math
import sys
from dataclasses import dataclass

from models.common import devices

devices.apply_environment_defaults()  # before ttnn is imported

import torch  # noqa: E402
import ttnn  # noqa: E402

from models.tt_transformers.tt.host_mesh import HostMesh  # noqa: E402
from models.tt_transformers.tt.load_checkpoints import load_hf_config, resolve_model, shipped_models  # noqa: E402
from models.tt_transformers.tt.model import Transformer  # noqa: E402
from models.tt_transformers.tt.model_config import ModelArgs  # noqa: E402

TTTV1_MESHES = ((1, 1), (1, 2), (1, 8), (8, 4))  # the systems TTTv1 targets: N150, N300, T3K, Galaxy (TG)
DEFAULT_LAYERS = 1
DEFAULT_PROMPT_LEN = 16
DEFAULT_DECODE_STEPS = 4
DEFAULT_MAX_SEQ_LEN = 1024  # KV cache and rotary tables per user
PROMPT_SEED = 0
WEIGHT_DTYPE = ttnn.bfloat8_b  # upstream create_tt_model's dtype
# TTTv1 common.get_padded_prefill_len: prompts are zero-padded to 128 tokens, longer ones to the smaller of the next
# power of two and the next multiple of 2048 (the QKV matmul's chunk)
MIN_PREFILL_LEN = 128
PREFILL_CHUNK = 2048
TILE = 32
MOCK_WARNING = (
    "MOCK DEVICE: nothing executes and every read-back is zeros, so the token ids below are NOT meaningful; "
    "this run checks that every op validates and dispatches."
)


@dataclass(frozen=True)
class DemoResult:
    prompt: list[int]
    tokens: list[int]  # generated: the prefill's next token, then one per decode step
    logits: list[torch.Tensor]  # [vocab] for each generated token


def padded_prefill_len(seq_len: int) -> int:
    if seq_len <= MIN_PREFILL_LEN:
        return MIN_PREFILL_LEN
    return min(2 ** math.ceil(math.log2(seq_len)), PREFILL_CHUNK * math.ceil(seq_len / PREFILL_CHUNK))


def supported_meshes(model: str | None) -> list[tuple[int, int]]:
    """The TTTv1 meshes ModelArgs accepts for ``model`` (head counts divide the columns, device-count limits)."""
    load_hf_config(resolve_model(model).config_dir)  # an unknown model is an error, not "no meshes"
    meshes = []
    for shape in TTTV1_MESHES:
        try:
            ModelArgs(HostMesh.for_shape(shape), hf_model=model)
        except ValueError:
            continue
        meshes.append(shape)
    return meshes


def run_demo(args, prompt: list[int], decode_steps: int = DEFAULT_DECODE_STEPS, **transformer_kwargs) -> DemoResult:
    """Prefill ``prompt`` (one user), then ``decode_steps`` greedy decode steps, with the TTTv1 Transformer of
    ``args`` (a ModelArgs with max_batch_size 1; its first ``args.n_layers`` layers). ``transformer_kwargs`` go to
    Transformer (e.g. ``feed_forward=MLP1D.from_model_args``)."""
    if args.max_batch_size != 1:
        raise ValueError(f"the demo runs one user: build ModelArgs with max_batch_size=1, not {args.max_batch_size}")
    prefill_len = padded_prefill_len(len(prompt))
    if not prompt or max(prefill_len, len(prompt) + decode_steps) > args.max_seq_len:
        raise ValueError(
            f"a prompt of {len(prompt)} tokens (padded to {prefill_len}) and {decode_steps} decode steps do not fit "
            f"max_seq_len {args.max_seq_len}; shorten them or raise max_seq_len"
        )
    if not all(0 <= t < args.vocab_size for t in prompt):
        raise ValueError(f"token ids must be in [0, {args.vocab_size}) for {args.model_name}, got {prompt}")
    weight_cache = None if args.dummy_weights else args.weight_cache_path(WEIGHT_DTYPE)
    model = Transformer(
        args, WEIGHT_DTYPE, args.mesh_device, args.load_state_dict(), weight_cache, **transformer_kwargs
    )

    tokens = torch.zeros(1, prefill_len, dtype=torch.int64)
    tokens[0, : len(prompt)] = torch.tensor(prompt)
    x, rot_mats, _, _ = model.prepare_inputs_prefill(tokens)
    last = len(prompt) - 1
    tile_start = last // TILE * TILE
    tt_logits = model.ttnn_prefill_forward(x, rot_mats, user_id=0, get_last_token=tile_start)
    logits = [model.process_output_prefill(tt_logits, last - tile_start)]
    generated = [int(torch.argmax(logits[-1]))]
    for step in range(decode_steps):
        position = torch.tensor([len(prompt) + step])
        tt_tokens, tt_pos, rot_idxs, _ = model.prepare_inputs_decode(torch.tensor(generated[-1:]), position)
        tt_logits = model.ttnn_decode_forward(tt_tokens, tt_pos, rot_idxs)
        logits.append(model.process_output_decode(tt_logits, B=1)[0, 0])
        generated.append(int(torch.argmax(logits[-1])))
    return DemoResult(list(prompt), generated, logits)


def _mesh(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"mesh must look like 1x8, got {text!r}") from None
    return rows, cols


def _token_ids(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"prompt must be comma-separated token ids, got {text!r}") from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="shipped config name or checkpoint folder (default: $HF_MODEL)")
    parser.add_argument("--mesh", type=_mesh, help="mesh shape, e.g. 1x8 (default: the whole system; 1x1 on mock)")
    parser.add_argument("--layers", type=int, default=DEFAULT_LAYERS, help="decoder layers to run")
    parser.add_argument("--prompt", type=_token_ids, help="comma-separated token ids (default: random ids)")
    parser.add_argument("--prompt-len", type=int, default=DEFAULT_PROMPT_LEN, help="length of the random prompt")
    parser.add_argument("--decode-steps", type=int, default=DEFAULT_DECODE_STEPS)
    parser.add_argument("--max-seq-len", type=int, default=DEFAULT_MAX_SEQ_LEN)
    parser.add_argument("--list-models", action="store_true", help="print the shipped model names and exit")
    parser.add_argument("--list-meshes", action="store_true", help="print the meshes --model runs on and exit")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    options = parse_args(argv)
    tier = devices.detect_tier()
    if options.list_models:
        print("\n".join(shipped_models()))
        return 0
    if options.list_meshes:
        meshes = supported_meshes(options.model)
        if tier != devices.MOCK:  # only what this system can open
            meshes = [m for m in meshes if devices.mesh_fits(m, devices.system_mesh_shape(tier))]
        print("\n".join(f"{r}x{c}" for r, c in meshes))
        return 0
    mesh_shape = options.mesh or ((1, 1) if tier == devices.MOCK else devices.system_mesh_shape(tier))
    if tier == devices.MOCK:
        devices.configure_mock_cluster(devices.mock_cluster_for(mesh_shape))
        print(MOCK_WARNING)
    elif not devices.mesh_fits(mesh_shape, devices.system_mesh_shape(tier)):
        raise SystemExit(f"a {mesh_shape[0]}x{mesh_shape[1]} mesh does not fit this {tier} system")
    prompt = options.prompt
    if prompt is None:
        vocab = ModelArgs(HostMesh.for_shape(mesh_shape), hf_model=options.model).vocab_size
        generator = torch.Generator().manual_seed(PROMPT_SEED)
        prompt = torch.randint(vocab, (options.prompt_len,), generator=generator).tolist()
    mesh = devices.open_mesh(mesh_shape)
    try:
        args = ModelArgs(mesh, hf_model=options.model, max_batch_size=1, max_seq_len=options.max_seq_len)
        if not 1 <= options.layers <= args.n_layers:
            raise SystemExit(f"{args.model_name} has {args.n_layers} layers; ask for 1 to {args.n_layers}")
        args.n_layers = options.layers
        result = run_demo(args, prompt, options.decode_steps)
    finally:
        devices.close_mesh(mesh)
    print(f"device tier: {tier}, mesh {mesh_shape[0]}x{mesh_shape[1]}, {options.layers} layer(s)")
    print(f"prompt token ids: {result.prompt}")
    print(f"generated token ids: {result.tokens}")
    if tier == devices.MOCK:
        print(MOCK_WARNING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
