# SPDX-License-Identifier: Apache-2.0
"""The README's code examples run as written, so they never rot."""

import re

import pytest

from models.common.devices import REPO_ROOT

EXAMPLE = re.compile(r"<!-- example: (\w[\w-]*).*?-->\s*```python\n(.*?)```", re.S)


def readme_examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((REPO_ROOT / "README.md").read_text()))


def test_readme_has_the_examples():
    assert {"modules"} <= set(readme_examples())


@pytest.mark.parametrize("ttnn_mesh_device", [(1, 8)], ids=["1x8"], indirect=True)
def test_modules_example_runs(ttnn_mesh_device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example caches weights under ./model_cache
    namespace = {"mesh_device": ttnn_mesh_device}
    exec(compile(readme_examples()["modules"], "README.md:modules", "exec"), namespace)
    assert tuple(namespace["out"].shape) == (1, 1, 32, 2048 // 8)
    assert tuple(namespace["prefill"].shape) == (1, 1, 128, 2048 // 8)
    assert namespace["mlp_bfp4"].config.w1_w3_dtype.name == "BFLOAT4_B"
    assert len(list((tmp_path / "model_cache" / "example").glob("*.tensorbin"))) == 3
