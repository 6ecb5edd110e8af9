# SPDX-License-Identifier: Apache-2.0
"""The README's code examples run as written, so they never rot."""

import re

import pytest

from models.common.devices import REPO_ROOT

EXAMPLE = re.compile(r"<!-- example: (\w[\w-]*).*?-->\s*```python\n(.*?)```", re.S)


def readme_examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((REPO_ROOT / "README.md").read_text()))


def test_readme_has_the_examples():
    assert {"modules", "switch-tttv1", "switch-tttv1-galaxy"} <= set(readme_examples())


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
