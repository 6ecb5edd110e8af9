# SPDX-License-Identifier: Apache-2.0
"""Repository-wide rule: a module's decode_forward / prefill_forward never branches on static state.

Every ``if`` / ternary / ``match`` / ``while`` / comprehension filter in those bodies must depend on a runtime
value: a forward argument or a local derived from one (e.g. ``seq_len``, ``x.shape``). A condition built only from
``self.*``, the config, constants or module names is a static decision that belongs in ``__init__``.
"""

import ast
from pathlib import Path

import pytest

MODULES_DIR = Path(__file__).resolve().parents[2] / "modules"
FORWARDS = ("decode_forward", "prefill_forward")


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _conditions(body: ast.AST):
    for node in ast.walk(body):
        if isinstance(node, ast.If | ast.IfExp | ast.While):
            yield node.lineno, node.test
        elif isinstance(node, ast.Match):
            yield node.lineno, node.subject
        elif isinstance(node, ast.comprehension):
            for condition in node.ifs:
                yield condition.lineno, condition


def static_branches(source: str, filename: str = "<module>") -> list[str]:
    """``file:line: function`` for each condition in a forward that depends on no runtime value."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef) or function.name not in FORWARDS:
            continue
        runtime = {arg.arg for arg in function.args.args + function.args.kwonlyargs if arg.arg != "self"}
        for statement in ast.walk(function):  # locals computed from runtime values are runtime too
            if isinstance(statement, ast.Assign) and _names(statement.value) & runtime:
                runtime |= {n for target in statement.targets for n in _names(target)}
        for line, test in sorted(_conditions(function), key=lambda found: found[0]):
            if not _names(test) & runtime:
                found.append(f"{filename}:{line}: {function.name}: `{ast.unparse(test)}`")
    return found


def test_detector_flags_static_and_allows_runtime_conditions():
    source = """
class M:
    def decode_forward(self, x):
        cfg = self.config
        y = x if cfg.is_galaxy else None
        if self.mode == "decode":
            pass
        return y

    def prefill_forward(self, x, seq_len):
        cfg = self.config
        rows = x.shape[-2]
        if seq_len >= cfg.cutoff:
            pass
        if rows > 1:
            pass
        return x
"""
    assert [f.split(": ", 2)[1:] for f in static_branches(source)] == [
        ["decode_forward", "`cfg.is_galaxy`"],
        ["decode_forward", "`self.mode == 'decode'`"],
    ]


@pytest.mark.parametrize("path", sorted(MODULES_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(MODULES_DIR)))
def test_forwards_have_no_static_branches(path):
    assert static_branches(path.read_text(), str(path)) == []
