# SPDX-License-Identifier: Apache-2.0
"""The README's code examples run as written, so they never rot."""

import json
import os
import re
import shlex
import subprocess

import pytest

from models.common import devices
from models.common.devices import REPO_ROOT

EXAMPLE = re.compile(r"<!-- example: (\w[\w-]*)[^\n]*?-->\s*```python\n(.*?)```", re.S)
SHELL_EXAMPLE = re.compile(r"<!-- example: (\w[\w-]*)[^\n]*?-->\s*```bash\n(.*?)```", re.S)
DEMO = "python_env/bin/python -m models.common.models "
DEMO_TIMEOUT_S = 900


def readme_examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((REPO_ROOT / "README.md").read_text()))


def demo_commands(name: str) -> list[list[str]]:
    """The demo command lines of the README's shell example ``name``, as written (continuation lines joined)."""
    text = dict(SHELL_EXAMPLE.findall((REPO_ROOT / "README.md").read_text()))[name].replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.startswith(DEMO)]


def run_demo(command: list[str], **env) -> subprocess.CompletedProcess:
    """``command`` from the repository root, as a user types it; the demo picks its mock system itself."""
    environment = {k: v for k, v in os.environ.items() if k != devices.MOCK_DESCRIPTOR_ENV} | env
    return subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S
    )


def test_readme_has_the_examples():
    assert {"modules", "switch-tttv1", "switch-tttv1-galaxy"} <= set(readme_examples())
    assert len(demo_commands("demo")) == 1 and len(demo_commands("add-model")) == 1


def _tokens(stdout: str) -> list[int]:
    line = next(line for line in stdout.splitlines() if line.startswith("tokens: "))
    return json.loads(line.removeprefix("tokens: ").split(" (")[0])


def test_demo_example_runs(device_tier):
    (command,) = demo_commands("demo")
    result = run_demo(command)
    assert result.returncode == 0, result.stderr
    assert len(_tokens(result.stdout)) == int(command[command.index("--max-new-tokens") + 1])
    assert "time to first token" in result.stdout and "host time per decode step" in result.stdout
    if device_tier == devices.MOCK:
        assert "shadow" in result.stdout


def test_add_a_model_example_runs_on_a_public_config(tmp_path):
    """A known family needs no code: the README's line on a folder with Qwen2.5-0.5B's public config.json (not
    shipped here) and a tokenizer trained offline standing in for the downloaded one (``~`` is ``tmp_path``)."""
    from models.common.tests.models.test_hf_loading import QWEN25_05B
    from models.common.tests.models.test_tokenizer import write_tokenizer

    (command,) = demo_commands("add-model")
    folder = tmp_path / command[command.index("--model") + 1].removeprefix("~/")
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(QWEN25_05B))
    write_tokenizer(folder)
    result = run_demo(command, HOME=str(tmp_path), HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    tokens = _tokens(result.stdout)
    assert 0 < len(tokens) <= int(command[command.index("--max-new-tokens") + 1])
    assert "text: " in result.stdout and "converted weights written" in result.stdout
    cache = tmp_path / command[command.index("--weight-cache") + 1].removeprefix("~/")
    assert list(cache.rglob("*.tensorbin"))


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_modules_example_runs(ttnn_mesh_device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example caches weights under ./model_cache
    namespace = {"mesh_device": ttnn_mesh_device}
    exec(compile(readme_examples()["modules"], "README.md:modules", "exec"), namespace)
    assert tuple(namespace["out"].shape) == (1, 1, 32, 2048 // 8)
    assert tuple(namespace["prefill"].shape) == (1, 1, 128, 2048 // 8)
    assert namespace["mlp_bfp4"].config.w1_w3_dtype.name == "BFLOAT4_B"
    assert len(list((tmp_path / "model_cache" / "example").glob("*.tensorbin"))) == 3


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_switch_tttv1_example_runs(ttnn_mesh_device):
    namespace = {"mesh_device": ttnn_mesh_device}
    exec(compile(readme_examples()["switch-tttv1"], "README.md:switch-tttv1", "exec"), namespace)
    args, mlp, attention, out = (namespace[name] for name in ("args", "mlp", "attention", "out"))
    mc = args.model_config
    assert tuple(out.shape) == (1, 1, 32, args.dim // 8)
    assert out.memory_config() == mc["DECODE_RESIDUAL_MEMCFG"]
    assert repr(mlp.config.decode_w1_w3_prg_config) == repr(mc["DECODE_MLP_W1_W3_PRG_CONFIG"])  # TTTv1's choice
    assert repr(attention.config.decode_xqkv_prg_config) == repr(mc["XQKV_DECODE_PROGCFG"])
    assert attention.config.use_fused_all_gather_matmul  # TTTv1 fuses the all-gather into wo on a T3K ring
    model, logits = namespace["model"], namespace["logits"]
    assert type(model.embd).__name__ == "Embedding1D" and type(model.lm_head).__name__ == "LMHead1D"
    assert type(model.norm).__name__ == "RMSNorm1D"
    assert tuple(logits.shape) == (32, 1, args.vocab_size)


@pytest.mark.parametrize("ttnn_mesh_device", [(8, 4)], ids=["8x4"], indirect=True)
def test_switch_tttv1_galaxy_example_runs(ttnn_mesh_device):
    namespace = {"mesh_device": ttnn_mesh_device}
    exec(compile(readme_examples()["switch-tttv1-galaxy"], "README.md:switch-tttv1-galaxy", "exec"), namespace)
    args, model, logits = (namespace[name] for name in ("args", "model", "logits"))
    assert type(model.embd).__name__ == "Embedding2D" and type(model.lm_head).__name__ == "LMHead2D"
    assert type(model.norm).__name__ == "RMSNorm2D"
    assert tuple(logits.shape) == (32, 1, args.vocab_size)
