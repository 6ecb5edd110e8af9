# SPDX-License-Identifier: Apache-2.0
"""Repository-wide rule: nothing a module's decode_forward / prefill_forward runs branches on static state.

From each forward the detector follows every function it reaches: methods of the class and its bases, module-level
helpers of the modules package (called or passed on), and the variants bound in ``__init__``
(``self._x = self._a if cfg.flag else partial(helper, ...)``: both sides, through ``partial``, through what a builder
called there returns). In each of those functions every ``if`` / ternary / ``while`` / ``match`` / comprehension
filter, and each operand of an ``and`` / ``or`` (in a condition, or choosing a value as in ``cfg.x or default``),
must depend on a runtime value: a parameter of the function or a local derived from one (``seq_len``, ``x.shape``).
A condition built only from ``self.*``, the config, constants or module names is a static decision that belongs in
``__init__``.
"""

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODULES_DIR = Path(__file__).resolve().parents[2] / "modules"
PACKAGE = "models.common.modules"
FORWARDS = ("decode_forward", "prefill_forward")


@dataclass
class _Source:
    """One parsed file: its module-level functions and classes, and what its names import from the package."""

    filename: str
    functions: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    imported_names: dict = field(default_factory=dict)  # local name -> (package module, name)
    imported_modules: dict = field(default_factory=dict)  # local alias -> package module

    @classmethod
    def parse(cls, text: str, filename: str) -> "_Source":
        source = cls(filename)
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                source.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                source.classes[node.name] = node
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    if _package_file(submodule):
                        source.imported_modules[alias.asname or alias.name] = submodule
                    else:
                        source.imported_names[alias.asname or alias.name] = (node.module, alias.name)
        return source


def _package_file(module: str) -> Path | None:
    """The file of a module of the package, if ``module`` is one."""
    if not module.startswith(f"{PACKAGE}."):
        return None
    path = MODULES_DIR.joinpath(*module[len(PACKAGE) + 1 :].split(".")).with_suffix(".py")
    return path if path.is_file() else None


_SOURCES: dict[str, _Source] = {}
_PARTIAL_BOUND: dict[int, set[str]] = {}  # id(function) -> parameters some partial(...) binds to a static value
STATIC_NAMES = frozenset({"self", "cls", "cfg", "config"})  # the module and its config, wherever they are passed


def _package_source(module: str) -> _Source | None:
    if module not in _SOURCES:
        path = _package_file(module)
        _SOURCES[module] = _Source.parse(path.read_text(), str(path)) if path else None
    return _SOURCES[module]


@dataclass(frozen=True)
class _Context:
    """Where a function lives: its file, for a method its class, and the class ``self`` is (the module whose
    forward is followed: a base's method calling ``self.x`` reaches the subclass's ``x``)."""

    source: _Source
    cls: ast.ClassDef | None = None
    self_cls: tuple | None = None  # (ClassDef, its _Source)


def _lookup_name(name: str, source: _Source):
    """(function, context) for a module-level function ``name`` seen from ``source`` (defined or imported there)."""
    if name in source.functions:
        return source.functions[name], _Context(source)
    if name in source.imported_names:
        module, original = source.imported_names[name]
        imported = _package_source(module)
        if imported and original in imported.functions:
            return imported.functions[original], _Context(imported)
    return None


def _lookup_class(name: str, source: _Source):
    if name in source.classes:
        return source.classes[name], source
    if name in source.imported_names:
        module, original = source.imported_names[name]
        imported = _package_source(module)
        if imported and original in imported.classes:
            return imported.classes[original], imported
    return None


def _mro(ctx: _Context):
    """``self``'s class and its bases found in the package, nearest first, each with its file."""
    found, pending = [], [ctx.self_cls]
    while pending:
        cls, source = pending.pop(0)
        found.append((cls, source))
        for base in cls.bases:
            if isinstance(base, ast.Name) and (resolved := _lookup_class(base.id, source)):
                pending.append(resolved)
    return found


def _method(name: str, ctx: _Context, after_own_class: bool = False):
    """``self.<name>`` as a method (``super().<name>``: searched after the class ``ctx``'s function is in)."""
    mro = _mro(ctx)
    if after_own_class:
        mro = mro[[cls for cls, _ in mro].index(ctx.cls) + 1 :]
    for cls, source in mro:
        for node in cls.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return node, _Context(source, cls, ctx.self_cls)
    return None


def _bound_values(name: str, ctx: _Context):
    """(value expression, function it is assigned in, context) for each ``self.<name> = value`` in the class."""
    for cls, source in _mro(ctx):
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(method):
                if not isinstance(node, ast.Assign):
                    continue
                for target in node.targets:
                    targets = target.elts if isinstance(target, ast.Tuple) else [target]
                    values = node.value.elts if isinstance(node.value, ast.Tuple) and len(targets) > 1 else None
                    for i, t in enumerate(targets):
                        if isinstance(t, ast.Attribute) and t.attr == name and _is_self(t.value):
                            yield (values[i] if values else node.value), method, _Context(source, cls, ctx.self_cls)


def _is_self(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _locals(function: ast.FunctionDef) -> dict:
    return {
        target.id: node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _referenced(node, function, ctx: _Context, seen: set):
    """The package functions an expression names (``self.m``, ``helper``, ``alias.helper``, ``super().m``)."""
    if isinstance(node, ast.Name):
        found = _lookup_name(node.id, ctx.source)
        return [found] if found else []
    if not isinstance(node, ast.Attribute):
        return []
    if _is_self(node.value) and ctx.cls is not None:
        found = _method(node.attr, ctx)
        if found:
            return [found]
        return [
            f
            for value, where, bound_ctx in _bound_values(node.attr, ctx)
            for f in _values(value, where, bound_ctx, seen)
        ]
    if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) and node.value.func.id == "super":
        found = _method(node.attr, ctx, after_own_class=True) if ctx.cls is not None else None
        return [found] if found else []
    if isinstance(node.value, ast.Name) and node.value.id in ctx.source.imported_modules:
        module = _package_source(ctx.source.imported_modules[node.value.id])
        return [(module.functions[node.attr], _Context(module))] if module and node.attr in module.functions else []
    return []


def _values(node, function, ctx: _Context, seen: set):
    """The package functions an expression may evaluate to (a bound variant): both sides of a ternary, every
    element of a tuple, ``partial``'s function, a local's value, what a called builder returns."""
    key = (id(node), id(function))
    if key in seen:
        return []
    seen.add(key)
    if isinstance(node, ast.IfExp):
        return _values(node.body, function, ctx, seen) + _values(node.orelse, function, ctx, seen)
    if isinstance(node, ast.Tuple):
        return [f for element in node.elts for f in _values(element, function, ctx, seen)]
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "partial" and node.args:
            targets = _values(node.args[0], function, ctx, seen)
            for target, target_ctx in targets:  # what partial binds in __init__ is static for the target
                params = [a.arg for a in target.args.posonlyargs + target.args.args]
                params = params[1:] if target_ctx.cls is not None and params[:1] == ["self"] else params
                bound = params[: len(node.args) - 1] + [k.arg for k in node.keywords if k.arg]
                _PARTIAL_BOUND.setdefault(id(target), set()).update(bound)
            return targets
        returned = []
        for builder, builder_ctx in _referenced(node.func, function, ctx, seen):
            for ret in (n for n in ast.walk(builder) if isinstance(n, ast.Return) and n.value is not None):
                returned += _values(ret.value, builder, builder_ctx, seen)
        return returned
    if isinstance(node, ast.Name) and function is not None and node.id in _locals(function):
        return _values(_locals(function)[node.id], function, ctx, seen)
    return _referenced(node, function, ctx, seen)


def reachable(root: ast.FunctionDef, ctx: _Context) -> list:
    """Every package function ``root`` reaches (itself first), each with its context."""
    order, seen_functions, seen_values = [], set(), set()
    pending = [(root, ctx)]
    while pending:
        function, where = pending.pop()
        if id(function) in seen_functions:
            continue
        seen_functions.add(id(function))
        order.append((function, where))
        for node in ast.walk(function):
            if isinstance(node, ast.Name | ast.Attribute):
                pending += _referenced(node, function, where, seen_values)
    return order


# --- conditions --------------------------------------------------------------------------------------------------
def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _runtime_names(function: ast.FunctionDef) -> set[str]:
    """Parameters (not the module, its config or what a partial binds) and the locals computed from them, to a
    fixed point."""
    args = function.args
    runtime = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    runtime |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    runtime -= STATIC_NAMES | _PARTIAL_BOUND.get(id(function), set())
    grew = True
    while grew:
        before = len(runtime)
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if _names(node.value) & runtime:
                    runtime |= {n for target in targets for n in _names(target)}
            elif isinstance(node, ast.For | ast.comprehension) and _names(node.iter) & runtime:
                runtime |= _names(node.target)
        grew = len(runtime) > before
    return runtime


def _operands(test: ast.AST):
    """A condition split at ``and`` / ``or``: each operand is a separate selection."""
    if isinstance(test, ast.BoolOp):
        for value in test.values:
            yield from _operands(value)
    else:
        yield test


def _selections(function: ast.FunctionDef):
    """Every (line, expression) whose truth picks a path: conditions split at and/or, and the operands but the
    last of an and/or used as a value (``cfg.x or default``)."""
    tests = []
    for node in ast.walk(function):
        if isinstance(node, ast.If | ast.IfExp | ast.While):
            tests.append(node.test)
        elif isinstance(node, ast.Match):
            tests.append(node.subject)
        elif isinstance(node, ast.comprehension):
            tests += node.ifs
    in_tests = {id(n) for test in tests for n in ast.walk(test) if isinstance(n, ast.BoolOp)}
    for test in tests:
        for operand in _operands(test):
            yield operand.lineno, operand
    for node in ast.walk(function):
        if isinstance(node, ast.BoolOp) and id(node) not in in_tests:
            for operand in node.values[:-1]:
                yield operand.lineno, operand


def static_branches(source: str, filename: str = "<module>") -> list[str]:
    """``file:line: Class.function: `condition``` for each static selection in what a forward reaches."""
    parsed = _Source.parse(source, filename)
    found = set()
    reached = []
    for cls in parsed.classes.values():  # each class's forwards, its own or inherited, with its own variants
        module = _Context(parsed, cls, (cls, parsed))
        for root in filter(None, (_method(name, module) for name in FORWARDS)):
            reached += reachable(*root)
    for function, ctx in reached:  # after every partial(...) on the way has been seen
        runtime = _runtime_names(function)
        owner = f"{ctx.cls.name}." if ctx.cls is not None else ""
        for line, test in _selections(function):
            if not _names(test) & runtime:
                found.add((ctx.source.filename, line, f"{owner}{function.name}", ast.unparse(test)))
    return [f"{file}:{line}: {where}: `{test}`" for file, line, where, test in sorted(found)]


DETECTOR_CASE = """
from functools import partial


def helper(x, cfg):
    return x if cfg.flag else None  # static: reached through the bound variant


def builder(cfg):
    return partial(normed, cfg.eps)


def normed(eps, x):
    if eps > 1:  # eps is a parameter: runtime for this function
        return x
    return x


class M:
    def __init__(self, cfg):
        self.config = cfg
        self._step = partial(helper, cfg=cfg) if cfg.a else self._plain
        self._norm = builder(cfg) if cfg.b else self._plain
        if cfg.static_in_init:  # __init__ may decide anything
            pass

    def decode_forward(self, x):
        cfg = self.config
        y = x if cfg.is_galaxy else None
        if self.mode == "decode":
            pass
        if x.shape[0] > 1 and cfg.paged:
            pass
        dtype = cfg.activation_dtype or None
        return self._norm(self._step(y)), dtype

    def prefill_forward(self, x, seq_len):
        cfg = self.config
        rows = x.shape[-2]
        if seq_len >= cfg.cutoff or rows > 1:
            pass
        memory_config = x.memory_config() or cfg.memory_config
        return self._chunks(x, rows), memory_config

    def _plain(self, x):
        return x

    def _chunks(self, x, rows):
        if self.config.chunked:
            return x
        return [t for t in x if rows]

    def unused(self):
        if self.config.never_reached:
            pass


class Sub(M):
    def _plain(self, x):  # the inherited forwards reach the subclass's variant
        if self.config.sub_flag:
            return x
        return x
"""


def test_detector_flags_static_and_allows_runtime_conditions():
    flagged = [f.split(": ", 2)[1:] for f in static_branches(DETECTOR_CASE)]
    assert flagged == [
        ["helper", "`cfg.flag`"],  # a module helper bound as a variant in __init__, taking the config
        ["normed", "`eps > 1`"],  # a parameter a partial in __init__ binds to a config value
        ["M.decode_forward", "`cfg.is_galaxy`"],  # a ternary
        ["M.decode_forward", "`self.mode == 'decode'`"],
        ["M.decode_forward", "`cfg.paged`"],  # the static half of an `and`
        ["M.decode_forward", "`cfg.activation_dtype`"],  # an `or` choosing a value
        ["M._chunks", "`self.config.chunked`"],  # a method the forward calls
        ["Sub._plain", "`self.config.sub_flag`"],  # a subclass's override of a variant, via inherited forwards
    ]


@pytest.mark.parametrize("path", sorted(MODULES_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(MODULES_DIR)))
def test_forwards_have_no_static_branches(path):
    assert static_branches(path.read_text(), str(path)) == []
