# SPDX-License-Identifier: Apache-2.0
"""Decoder-layer report: what the TTTv2 modules do for a model on a mesh, before you touch hardware.

    python_env/bin/python -m models.common.report [--model NAME|FOLDER] [--mesh 1x1|1x2|1x8|8x4|4x8]
        [--seq-len 128] [--decode-steps 4] [--layers 1] [--no-numerics] [--precision RECIPES] [--compare-tttv1]
        [--json PATH] [--plot PATH]

Builds one decoder layer (models/common/models/decoder_block.py, TTTv2 modules) from the checkpoint or seeded random
weights, runs prefill and decode steps on the device at hand (hardware, simulator or mock), and prints per module and
per op: program configs, memory configs, dtypes, math fidelity, weight and KV-cache bytes per device, host dispatch
time, a DRAM-roofline estimate per decode token and a compute estimate for prefill, and the PCC of each module and of
the layer against the HF decoder layer for the prefill and every decode step (on the mock tier: host-golden numbers
of the same ttnn calls, through shadow execution); on hardware also measured time. Bad input gets one error line and
exit code 2.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from models.common import devices

devices.apply_environment_defaults()  # quiet logs and the project JIT cache, before ttnn is imported
# Shadow goldens run torch's OpenMP threads between ops; spinning idle (OpenMP's default) they took the CPU from
# ttnn's dispatch: host times per op were 3-4x higher on the 2-core mock machine. Read when torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MESHES = ((1, 1), (1, 2), (1, 8), (8, 4), (4, 8))
DEFAULT_MODEL = "Llama-3.1-8B-Instruct"
DEFAULT_MOCK_MESH = (1, 8)  # the largest 1D mesh (T3K); Galaxy meshes on request
DEFAULT_SEQ_LEN = 128
DEFAULT_DECODE_STEPS = 4
MIN_DECODE_STEPS = 2  # step 0 compiles kernels; the warm steps after it are the ones timed
EXIT_BAD_INPUT = 2
PROG = "python -m models.common.report"


class BadInput(Exception):
    """Reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise BadInput(message)


def _mesh(text: str) -> tuple[int, int]:
    names = {_names([shape]): shape for shape in MESHES}
    if text not in names:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {_names(MESHES)}")
    return names[text]


def _seq_len(text: str) -> int:
    from models.common.modules.attention.attention_steps import PREFILL_SEQ_MULTIPLE

    value = int(text)
    if value <= 0 or value % PREFILL_SEQ_MULTIPLE:
        raise argparse.ArgumentTypeError(
            f"{value} is not a positive multiple of {PREFILL_SEQ_MULTIPLE} (attention prefill takes whole "
            f"{PREFILL_SEQ_MULTIPLE}-token blocks of 32-row tiles)"
        )
    return value


def _decode_steps(text: str) -> int:
    value = int(text)
    if value < MIN_DECODE_STEPS:
        raise argparse.ArgumentTypeError(f"{value}: need at least {MIN_DECODE_STEPS} (step 0 compiles kernels)")
    return value


def _recipes(text: str) -> list:
    from models.common.report import precision

    try:
        return precision.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _layers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: need at least 1 layer")
    return value


def _output_path(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} does not exist")
    return path


def parse_args(argv) -> argparse.Namespace:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="shipped config name or local HF checkpoint folder")
    parser.add_argument("--mesh", type=_mesh, help="default: the largest mesh the device at hand has (mock: 1x8)")
    parser.add_argument("--seq-len", type=_seq_len, default=DEFAULT_SEQ_LEN, help="prefill length (tokens)")
    parser.add_argument("--decode-steps", type=_decode_steps, default=DEFAULT_DECODE_STEPS)
    parser.add_argument(
        "--layers", type=_layers, default=1, help="run the first N decoder layers (ops and module PCCs: the first's)"
    )
    parser.add_argument(
        "--no-numerics", action="store_true", help="mock tier: skip the host-golden PCCs (shadow execution)"
    )
    parser.add_argument(
        "--precision",
        type=_recipes,
        metavar="RECIPES",
        help="precision recipes side by side, e.g. tttv2,performance,bf16,bfp4-mlp,custom:wqkv=bf16,kv_cache=bf16 "
        "(models/common/report/precision.py)",
    )
    parser.add_argument("--compare-tttv1", action="store_true", help="TTTv1's config choices next to TTTv2's")
    parser.add_argument("--json", type=_output_path, metavar="PATH", help="write the whole report as JSON")
    parser.add_argument("--plot", type=_output_path, metavar="PATH", help="PNG: estimated decode time per mesh")
    return parser.parse_args(argv)


def default_mesh(tier: str) -> tuple[int, int]:
    """The largest mesh the device at hand has (mock: 1x8, or the largest of the descriptor already chosen)."""
    system = _system_shape(tier)
    if system is None:
        return DEFAULT_MOCK_MESH
    fitting = [shape for shape in MESHES if devices.mesh_fits(shape, system)]
    if not fitting:
        raise BadInput(f"{_where(tier)} ({system[0]}x{system[1]}) has none of the meshes {_names(MESHES)}")
    return max(fitting, key=lambda shape: shape[0] * shape[1])


def use_mesh(mesh: tuple[int, int], tier: str) -> None:
    """Check that the device at hand has ``mesh``; on the mock tier, choose the mock system for it if none is yet."""
    system = _system_shape(tier)
    if system is None:
        devices.configure_mock_cluster(devices.mock_cluster_for(mesh))
    elif not devices.mesh_fits(mesh, system):
        raise BadInput(f"--mesh {_names([mesh])} does not fit {_where(tier)}, which is {system[0]}x{system[1]}")


def _system_shape(tier: str):
    """Shape of the system at hand; None on the mock tier before a mock system is chosen."""
    if tier != devices.MOCK:
        return devices.system_mesh_shape(tier)
    cluster = devices.current_mock_cluster()
    return None if cluster is None else cluster.system_shape


def _where(tier: str) -> str:
    if tier == devices.MOCK:
        return f"the mock {devices.current_mock_cluster().name} system ({devices.MOCK_DESCRIPTOR_ENV})"
    return f"this {tier} system"


def _names(meshes) -> str:
    return ", ".join(f"{r}x{c}" for r, c in meshes)


def main(argv=None) -> int:
    started = time.perf_counter()
    try:
        options = parse_args(argv)
        report = _report(options)
    except BadInput as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from models.common.report.render import render_text, write_plot

    report["timings_s"]["total"] = time.perf_counter() - started
    print(render_text(report))
    if options.json:
        options.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        print(f"JSON written to {options.json}")
    if options.plot:
        write_plot(report, options.plot)
        print(f"plot written to {options.plot}")
    print(f"report took {time.perf_counter() - started:.1f} s")
    return 0


def _report(options) -> dict:
    from models.common.report.model import Model

    try:
        model = Model.load(options.model)
    except (ValueError, FileNotFoundError) as error:
        raise BadInput(f"--model {options.model}: {error}") from error
    try:
        tier = devices.detect_tier()
    except ValueError as error:
        raise BadInput(str(error)) from error
    mesh = options.mesh or default_mesh(tier)
    where = f"{options.model} on a {_names([mesh])} mesh"
    from models.common.report.layer import cache_len
    from models.common.report.run import check_fits, run_report

    if options.layers > model.n_layers:
        raise BadInput(f"--layers {options.layers}: {options.model} has {model.n_layers} decoder layers")
    try:
        model.check_split(mesh)
        check_fits(model, mesh, cache_len(options.seq_len, options.decode_steps), MESHES)
    except ValueError as error:
        raise BadInput(f"{where}: {error}") from error
    use_mesh(mesh, tier)

    try:
        run = (options.seq_len, options.decode_steps, options.compare_tttv1, not options.no_numerics, options.precision)
        return run_report(model, mesh, tier, *run, layers=options.layers)
    except ValueError as error:  # the modules' construction and input checks name what to change
        raise BadInput(f"{where}: {error}") from error


if __name__ == "__main__":
    sys.exit(main())
