# SPDX-License-Identifier: Apache-2.0
"""Trace the parameters that drive a TTTv1 module's behaviour: the refactorer's "Step 0".

Static analysis (``ast``, standard library only) of a TTTv1 module, its config module (``model_config.py``) and the
``ccl.py`` next to the config. Seven sections, in text or JSON:

1. config accesses (``model_config["KEY"]`` through any object) with line numbers and whether in a condition;
2. ``self.*`` / ModelArgs attributes and the mode switch in conditions: the static branches to remove;
3. where each config key is defined in the config module (``x["KEY"] = v`` or ``{"KEY": v}``, whichever dict the
   config module builds model_config from) and what it depends on;
4. root parameters: the HF config fields, ModelArgs inputs and hardware queries all of that derives from;
5. the CCL functions the module imports from ``ccl.py``: call sites, then parameters, conditions, terminal ops;
6. the program-config helpers of the config module and the modules it imports from (text: ``--matmul-helpers``);
7. the complete parameter hierarchy, level 0 (hardware) to level 5 (terminal ttnn ops).

Usage (paths may be relative to the working directory or to the repository root)::

    python_env/bin/python models/common/modules/trace_dependencies.py [--matmul-helpers] [--json] [--json-file PATH]
        [module_path [config_path]]

Dependency strings carry their kind: ``self.X`` (ModelArgs attribute), ``helper:X`` (ModelArgs method or config-module
function), ``builtin:X`` (imported function, e.g. is_blackhole, nearest_32), ``config:KEY`` (another model_config key),
``hf:KEY`` (HF config field), ``init:P`` (ModelArgs constructor parameter), ``env:VAR`` (environment variable) and
``hw:EXPR`` (mesh-device query). The JSON output follows ``SCHEMA_FILE`` (a JSON Schema whose descriptions document each
field).
Bad paths and unparsable files give one error line on stderr and exit code 2.
"""

import argparse
import ast
import json
import re
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MODULE = "models/tt_transformers/tt/mlp.py"
DEFAULT_CONFIG = "models/tt_transformers/tt/model_config.py"
CCL_FILE_NAME = "ccl.py"
SCHEMA_FILE = Path(__file__).with_name("trace_dependencies_schema.json")  # JSON Schema of the output, documented

CONFIG_DICT = "model_config"
ARGS_ROOTS = ("args", "configuration", "model_args")  # the names TTTv1 modules give their ModelArgs
DEVICE_PARAMS = ("mesh_device", "device")  # ModelArgs constructor parameters that are the hardware itself
HARDWARE_PROBES = ("is_wormhole_b0", "is_blackhole", "get_arch_name", "get_cluster_type")
MODE_VALUES = ("decode", "prefill")
MODE_ENUM = "Mode"
HF_CONFIG_OBJECT = re.compile(r"(^|_)config$")  # objects whose attributes are HF config fields
MODE_PARAM = "mode"  # the forward argument that selects decode / prefill
FORWARD_PREFIX = "forward"
CONFIG_CONSTRUCTOR = re.compile(r"(ProgramConfig|MemoryConfig|memory_config|CoreGrid|CoreRangeSet)$")
MAX_RETURNS = 3
RETURN_EXPR_LIMIT = 100
DEPS_SHOWN = 6  # text output: dependencies listed per hierarchy entry
RULE_WIDTH = 80
TEXT_WIDTH = 120

SECTION_TITLES = (
    "Config accesses",
    "Attributes used in conditions (static branches to remove)",
    "Config key dependencies",
    "Root parameters",
    "CCL function analysis",
    "Matmul / program-config helpers",
    "Complete parameter hierarchy",
)
LEVELS = (
    ("level_0_hardware", "Hardware: mesh device and architecture queries (opaque)"),
    ("level_1_model_config", "Model config: HF config fields and the ModelArgs attributes read from them"),
    ("level_2_derived", "Derived from hardware + model: other ModelArgs attributes"),
    ("level_3_runtime_config", "Runtime config set at model init: constructor arguments, environment, model_config"),
    ("level_4_per_call", "Per-call inputs: forward arguments and the locals computed from them"),
    ("level_5_terminal_ops", "Terminal ttnn ops (opaque C++ / kernels)"),
)


SCHEMA_VERSION = 1


class TraceError(Exception):
    """A bad input path or an unparsable file (the CLI exits with code 2)."""


# ---------------------------------------------------------------------------------------------------------------------
# Data classes


@dataclass(frozen=True)
class ConfigAccess:
    key: str
    line: int
    in_condition: bool


@dataclass
class ConditionAttribute:
    """An attribute chain read in conditions; ``via`` names the local aliases it was read through (``TG``)."""

    attribute: str
    lines: set[int] = field(default_factory=set)
    via: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Definition:
    line_start: int
    line_end: int
    kind: str  # value | lambda | callable | dict
    dependencies: frozenset[str]


@dataclass
class Scope:
    """Names visible in one config-module function: parameters, locals (value, enclosing tests) and local defs."""

    params: frozenset[str] = frozenset()
    is_init: bool = False  # the ModelArgs constructor: its parameters are inputs (init:) or the hardware (hw:)
    locals: dict[str, list[tuple[ast.AST, tuple[ast.expr, ...]]]] = field(default_factory=lambda: defaultdict(list))
    defs: dict[str, ast.FunctionDef] = field(default_factory=dict)
    direct: dict[str, set[str]] = field(default_factory=dict)  # local -> its dependencies, other locals as local:X


# ---------------------------------------------------------------------------------------------------------------------
# AST helpers


def parse_file(path: Path) -> ast.Module:
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        return ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as error:
        where = f" (line {error.lineno})" if getattr(error, "lineno", None) else ""
        raise TraceError(f"cannot parse {path}: {getattr(error, 'msg', error)}{where}") from None


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name / Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def arg_names(args: ast.arguments) -> set[str]:
    named = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {arg.arg for arg in named if arg is not None}


def parameters(args: ast.arguments) -> list[dict]:
    """``{name, type?, default?}`` for each parameter except self / cls."""
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    result = []
    for arg, default in zip([*positional, *args.kwonlyargs], [*defaults, *args.kw_defaults], strict=True):
        if arg.arg in ("self", "cls"):
            continue
        entry = {"name": arg.arg}
        if arg.annotation is not None:
            entry["type"] = ast.unparse(arg.annotation)
        if default is not None:
            entry["default"] = ast.unparse(default)
        result.append(entry)
    return result


def functions(tree: ast.Module):
    """``(class name or None, function)`` for module-level functions and the methods of module-level classes."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield None, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield node.name, item


def walk_with_tests(body: list[ast.stmt], tests: tuple[ast.expr, ...] = ()):
    """Every statement of ``body`` (not inside nested defs) with the if / while tests that enclose it."""
    for stmt in body:
        yield stmt, tests
        if isinstance(stmt, ast.If | ast.While):
            yield from walk_with_tests(stmt.body, (*tests, stmt.test))
            yield from walk_with_tests(stmt.orelse, (*tests, stmt.test))
        elif isinstance(stmt, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith | ast.Try | ast.TryStar):
            for block in ("body", "orelse", "finalbody"):
                yield from walk_with_tests(getattr(stmt, block, []), tests)
            for handler in getattr(stmt, "handlers", []):
                yield from walk_with_tests(handler.body, tests)


def is_config_dict(node: ast.AST) -> bool:
    chain = dotted(node)
    return chain is not None and chain.rsplit(".", 1)[-1] == CONFIG_DICT


def config_key(node: ast.AST) -> str | None:
    """KEY of ``<x>.model_config["KEY"]`` or ``<x>.model_config.get("KEY")``."""
    if isinstance(node, ast.Subscript) and is_config_dict(node.value):
        return const_str(node.slice)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
        return const_str(node.args[0]) if is_config_dict(node.func.value) else None
    return None


def lookup_field(node: ast.AST) -> str | None:
    """``env:VAR`` for os.environ / os.getenv lookups, ``hf:KEY`` for a constant-key lookup on a plain dict name or a
    ``getattr(config, "KEY", ...)``."""
    if isinstance(node, ast.Call) and dotted(node.func) == "getattr" and len(node.args) > 1:
        owner = (dotted(node.args[0]) or "").rsplit(".", 1)[-1]
        key = const_str(node.args[1])
        return f"hf:{key}" if key and HF_CONFIG_OBJECT.search(owner) and owner != CONFIG_DICT else None
    if isinstance(node, ast.Call) and dotted(node.func) in ("os.getenv", "os.environ.get") and node.args:
        return f"env:{key}" if (key := const_str(node.args[0])) else None
    if isinstance(node, ast.Subscript):
        container, key = node.value, const_str(node.slice)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
        container, key = node.func.value, const_str(node.args[0])
    else:
        return None
    if key is None or is_config_dict(container):
        return None
    if dotted(container) == "os.environ":
        return f"env:{key}"
    return f"hf:{key}" if isinstance(container, ast.Name) and container.id != "self" else None


def ttnn_op(node: ast.AST) -> str | None:
    """``ttnn.x.op`` for a call of a ttnn function (not a ttnn type such as ttnn.CoreGrid)."""
    chain = dotted(node.func) if isinstance(node, ast.Call) else None
    if chain and chain.startswith("ttnn.") and chain.rsplit(".", 1)[-1][:1].islower():
        return chain
    return None


def args_attr_of(chain: str) -> str | None:
    """The ModelArgs attribute read by ``self.args.X...`` / ``args.X...`` (any of ARGS_ROOTS)."""
    parts = chain.split(".")
    if parts[0] == "self":
        parts = parts[1:]
    return parts[1] if len(parts) > 1 and parts[0] in ARGS_ROOTS else None


def is_mode_switch(node: ast.Compare) -> bool:
    """``mode == "decode"``, ``mode != Mode.PREFILL`` and the like."""
    for operand in (node.left, *node.comparators):
        chain = dotted(operand) or ""
        if const_str(operand) in MODE_VALUES or chain.split(".")[-2:-1] == [MODE_ENUM]:
            return True
    return False


# ---------------------------------------------------------------------------------------------------------------------
# Visitors


class ModuleVisitor(ast.NodeVisitor):
    """Config accesses, condition attributes, mode switches, ModelArgs reads, CCL calls and ttnn ops of a module."""

    def __init__(self, ccl_stem: str):
        self.ccl_stem = ccl_stem
        self.config_accesses: list[ConfigAccess] = []
        self.conditions: dict[str, ConditionAttribute] = {}
        self.mode_switches: dict[tuple[int, str], None] = {}
        self.args_used: set[str] = set()
        self.ccl_functions: dict[str, list[dict]] = {}
        self.ttnn_ops: set[str] = set()
        self.aliases: dict[str, str] = {}
        self.mode_names: set[str] = {MODE_PARAM}
        self.condition_depth = 0

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.module and node.module.rsplit(".", 1)[-1] == self.ccl_stem:
            for alias in node.names:
                self.ccl_functions.setdefault(alias.asname or alias.name, [])

    def visit_FunctionDef(self, node: ast.FunctionDef):
        outer = self.aliases, self.mode_names
        self.aliases = {**outer[0], **self._local_aliases(node)}
        self.mode_names = outer[1] | self._mode_locals(node, outer[1])
        self.generic_visit(node)
        self.aliases, self.mode_names = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    @staticmethod
    def _local_aliases(func: ast.FunctionDef) -> dict[str, str]:
        """``TG = self.args.is_galaxy``: local names bound to a self / ModelArgs attribute chain."""
        aliases = {}
        for stmt in ast.walk(func):
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                chain = dotted(stmt.value) if isinstance(stmt.value, ast.Attribute) else None
                if chain and (chain.startswith("self.") or args_attr_of(chain)):
                    aliases.setdefault(stmt.targets[0].id, chain)
        return aliases

    @staticmethod
    def _mode_locals(func: ast.FunctionDef, mode_names: set[str]) -> set[str]:
        """Locals computed from the mode: ``distributed = self.is_distributed(mode)``."""
        names = set(mode_names)
        assignments = [n for n in ast.walk(func) if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)]
        for stmt in sorted(assignments, key=lambda n: n.lineno):
            if any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(stmt.value)):
                names.add(stmt.targets[0].id)
        return names - mode_names

    def _visit_test(self, test: ast.expr):
        self.condition_depth += 1
        self.visit(test)
        self.condition_depth -= 1
        compares = [n for n in ast.walk(test) if isinstance(n, ast.Compare) and is_mode_switch(n)]
        if not compares and any(isinstance(n, ast.Name) and n.id in self.mode_names for n in ast.walk(test)):
            compares = [test]  # the mode reaches the test through a call or a local: report the whole test
        for node in compares:
            self.mode_switches[(node.lineno, ast.unparse(node))] = None

    def visit_If(self, node: ast.If | ast.While):
        self._visit_test(node.test)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_While = visit_If

    def visit_IfExp(self, node: ast.IfExp):
        self._visit_test(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def _condition(self, chain: str, line: int, via: str | None = None):
        entry = self.conditions.setdefault(chain, ConditionAttribute(chain))
        entry.lines.add(line)
        if via:
            entry.via.add(via)

    def visit_Attribute(self, node: ast.Attribute):
        chain = dotted(node)
        if chain is None:
            self.generic_visit(node)
            return
        if args_attr := args_attr_of(chain):
            self.args_used.add(args_attr)
        root = chain.split(".", 1)[0]
        if self.condition_depth and (root == "self" or root in ARGS_ROOTS) and CONFIG_DICT not in chain.split("."):
            self._condition(chain, node.lineno)

    def visit_Name(self, node: ast.Name):
        if self.condition_depth and node.id in self.aliases:
            self._condition(self.aliases[node.id], node.lineno, via=node.id)

    def visit_Subscript(self, node: ast.Subscript):
        if key := config_key(node):
            self.config_accesses.append(ConfigAccess(key, node.lineno, self.condition_depth > 0))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call):
        if key := config_key(node):
            self.config_accesses.append(ConfigAccess(key, node.lineno, self.condition_depth > 0))
        if isinstance(node.func, ast.Name) and node.func.id in self.ccl_functions:
            self.ccl_functions[node.func.id].append(
                {
                    "line": node.lineno,
                    "args": [ast.unparse(arg) for arg in node.args],
                    "keywords": {kw.arg or "**": ast.unparse(kw.value) for kw in node.keywords},
                }
            )
        if op := ttnn_op(node):
            self.ttnn_ops.add(op)
        self.generic_visit(node)


class ConfigModule:
    """The config module's model_config definitions and the derivations of ModelArgs attributes and methods."""

    def __init__(self, tree: ast.Module):
        self.imported = {
            alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
        }
        classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
        args_classes = {cls.name for cls in classes if defines_config(cls)} or {cls.name for cls in classes}
        self.methods: dict[str, ast.FunctionDef] = {}
        self.properties: set[str] = set()
        self.functions: dict[str, ast.FunctionDef] = {}
        for cls, func in functions(tree):
            if cls is None:
                self.functions[func.name] = func
            elif cls in args_classes:
                self.methods[func.name] = func
                if any(dotted(decorator) == "property" for decorator in func.decorator_list):
                    self.properties.add(func.name)
        self.keys = {key for node in ast.walk(tree) for key in defined_keys(node)}
        self.definitions: dict[str, list[Definition]] = defaultdict(list)
        self.attr_deps: dict[str, set[str]] = defaultdict(set)
        self.expr_attrs: dict[str, str] = {}  # unparsed value -> the ModelArgs attribute assigned from it
        self._callable_deps: dict[str, set[str]] = {}
        self._scan(tree.body, make_scope(tree.body))
        for cls, func in functions(tree):
            if cls is None or cls in args_classes:
                self._scan(func.body, make_scope(func.body, func.args, cls is not None and func.name == "__init__"))

    # --- scanning: definitions and attribute derivations

    def _scan(self, body: list[ast.stmt], scope: Scope):
        """Key definitions (``x["KEY"] = v`` and ``{"KEY": v}`` on any dict: the module builds model_config from them
        however it likes) and ``self.X = v`` attribute derivations."""
        for stmt, tests in walk_with_tests(body):
            value = getattr(stmt, "value", None)  # simple statements only: compound ones are walked through
            for literal in (n for n in ast.walk(value) if isinstance(n, ast.Dict)) if value else ():
                for key_node, item in zip(literal.keys, literal.values, strict=True):
                    if key := const_str(key_node):
                        self._define(key, key_node.lineno, item.end_lineno, item, tests, scope, kind="dict")
            if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign) and value is not None:
                for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                    for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                        self._assignment(element, stmt, tests, scope)

    def _assignment(self, target: ast.expr, stmt: ast.stmt, tests: tuple[ast.expr, ...], scope: Scope):
        value = stmt.value
        chain = dotted(target)
        if isinstance(target, ast.Subscript) and (key := const_str(target.slice)):
            self._define(key, stmt.lineno, stmt.end_lineno, value, tests, scope)
        elif chain and chain.startswith("self.") and chain.count(".") == 1:
            attr = chain.split(".")[1]
            self.attr_deps[attr] |= self.deps(value, scope) | self._tests_deps(tests, scope)
            if isinstance(stmt, ast.Assign):
                self.expr_attrs.setdefault(ast.unparse(value), attr)

    def _define(self, key, line_start, line_end, value, tests, scope, kind=None):
        if kind is None:
            method = dotted(value) or ""
            is_callable = (isinstance(value, ast.Name) and value.id in scope.defs) or (
                method.startswith("self.") and method.split(".")[1] in self.methods.keys() - self.properties
            )
            kind = "lambda" if isinstance(value, ast.Lambda) else "callable" if is_callable else "value"
        dependencies = frozenset(self.deps(value, scope) | self._tests_deps(tests, scope))
        self.definitions[key].append(Definition(line_start, line_end, kind, dependencies))

    # --- dependency extraction

    def _tests_deps(self, tests, scope: Scope) -> set[str]:
        return set().union(*(self.deps(test, scope) for test in tests))

    def deps(self, node: ast.AST, scope: Scope, bound: frozenset[str] = frozenset()) -> set[str]:
        """Dependencies of an expression or statement, following locals, local defs and lambdas of ``scope``."""
        found, pending, expanded = set(), self._direct(node, scope, bound), set()
        while pending:  # each local's own dependencies are computed once per scope: no blow-up on local chains
            dep = pending.pop()
            kind, _, name = dep.partition(":")
            if kind != "local":
                found.add(dep)
            elif name not in expanded:
                expanded.add(name)
                if name not in scope.direct:
                    nodes = [node for value, tests in scope.locals.get(name, ()) for node in (value, *tests)]
                    nodes += [scope.defs[name]] if name in scope.defs else []
                    scope.direct[name] = set().union(*(self._direct(node, scope) for node in nodes))
                pending |= scope.direct[name]
        return found

    def _direct(self, node: ast.AST, scope: Scope, bound: frozenset[str] = frozenset()) -> set[str]:
        found: set[str] = set()
        called = {id(call.func) for call in ast.walk(node) if isinstance(call, ast.Call)}

        def visit(child: ast.AST, bound: frozenset[str]):
            if isinstance(getattr(child, "ctx", None), ast.Store):
                return
            if isinstance(child, ast.Lambda | ast.FunctionDef):
                for stmt in [child.body] if isinstance(child, ast.Lambda) else child.body:
                    visit(stmt, bound | (arg_names(child.args) - {"self"}))
                return
            if isinstance(child, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
                targets = {name.id for gen in child.generators for name in ast.walk(gen.target)
                           if isinstance(name, ast.Name)}  # fmt: skip
                bound = bound | targets
            if lookup := self._lookup(child):
                found.add(lookup)
                for default in child.args[1:] if isinstance(child, ast.Call) else []:
                    visit(default, bound)
                return
            if isinstance(child, ast.Attribute | ast.Name) and (chain := dotted(child)):
                found.update(self._chain_deps(chain, id(child) in called, scope, bound))
                return
            for grandchild in ast.iter_child_nodes(child):
                visit(grandchild, bound)

        visit(node, bound)
        return found

    def _lookup(self, node: ast.AST) -> str | None:
        """``config:KEY`` for a model_config (or key-defining dict) lookup, else :func:`lookup_field`."""
        if key := config_key(node):
            return f"config:{key}"
        field = lookup_field(node)
        kind, _, key = (field or "").partition(":")
        return f"config:{key}" if kind == "hf" and key in self.keys else field

    def _chain_deps(self, chain: str, called: bool, scope: Scope, bound: frozenset[str]) -> set[str]:
        root, *rest = chain.split(".")
        if root in bound:
            return set()
        owner, attrs = (rest[0], rest[1:]) if root == "self" and rest else (root, rest)
        if attrs and HF_CONFIG_OBJECT.search(owner) and owner != CONFIG_DICT and not (called and len(attrs) == 1):
            return {f"hf:{attrs[0]}"}  # config.hidden_size, self.hf_config.model_type
        if root == "self":
            if not rest or rest[0] == CONFIG_DICT:
                return set()
            is_method = rest[0] in self.methods and rest[0] not in self.properties
            return {f"helper:{rest[0]}" if is_method else f"self.{rest[0]}"}
        if root in scope.locals or root in scope.defs:
            return {f"local:{root}"}
        if root in scope.params:
            if not scope.is_init:
                return set()
            return {f"hw:{chain}{'()' if called else ''}"} if root in DEVICE_PARAMS else {f"init:{root}"}
        if (rest or [root])[-1] in HARDWARE_PROBES:
            return {f"builtin:{(rest or [root])[-1]}"}
        if root in self.imported:
            return {f"builtin:{root}"} if not rest else {f"helper:{chain}"} if called else set()
        if not rest and root in self.functions:
            return {f"helper:{root}"}
        return set()

    def callable_deps(self, name: str) -> set[str]:
        """Dependencies of a ModelArgs method / property or a config-module function body."""
        if name not in self._callable_deps:
            func = self.methods.get(name) or self.functions[name]
            self._callable_deps[name] = set()  # recursion guard
            self._callable_deps[name] = self.deps(func, make_scope(func.body, func.args)) - {f"helper:{name}"}
        return self._callable_deps[name]

    def expand(self, node: str) -> set[str] | None:
        """Direct dependencies of a dependency node; None for a leaf this module does not define."""
        kind, _, name = node.partition(":")
        if kind == "config":
            definitions = self.definitions.get(name)
            return set().union(*(d.dependencies for d in definitions)) if definitions else None
        if node.startswith("self."):
            attr = node.split(".")[1]
            if attr in self.attr_deps:
                return self.attr_deps[attr]
            return self.callable_deps(attr) if attr in self.methods else None
        if kind == "helper" and (name in self.methods or name in self.functions):
            return self.callable_deps(name)
        return None


def make_scope(body: list[ast.stmt], args: ast.arguments | None = None, is_init: bool = False) -> Scope:
    scope = Scope(params=frozenset(arg_names(args)) if args else frozenset(), is_init=is_init)
    for stmt, tests in walk_with_tests(body):
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            value = stmt.value
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            targets, value = [stmt.target], stmt.iter
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            scope.defs[stmt.name] = stmt
            continue
        else:
            continue
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    scope.locals[name.id].append((value, tests))
    return scope


def defines_config(node: ast.AST) -> bool:
    """Whether ``node`` assigns ``<x>.model_config``."""
    return any(isinstance(n, ast.Attribute | ast.Name) and isinstance(n.ctx, ast.Store) and is_config_dict(n)
               for n in ast.walk(node))  # fmt: skip


def is_self_store(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and dotted(node.value) == "self"


def defined_keys(node: ast.AST) -> list[str]:
    """Constant keys ``node`` itself defines: ``x["KEY"] = ...`` or a ``{"KEY": ...}`` literal."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
        return [key] if (key := const_str(node.slice)) else []
    return [key for k in node.keys if (key := const_str(k))] if isinstance(node, ast.Dict) else []


# ---------------------------------------------------------------------------------------------------------------------
# Analyses


def self_to_args(tree: ast.Module, config: ConfigModule) -> dict[str, str]:
    """Module ``self.X`` -> ModelArgs attribute: ``self.dim = args.dim``, or the same expression ModelArgs assigns
    (``self.TG = self.num_devices == 32`` matches ``self.is_galaxy = self.num_devices == 32``)."""
    mapping: dict[str, str] = {}
    roots = "|".join(ARGS_ROOTS)
    pattern = re.compile(rf"\bself\.(\w+)(?:\.(\w+))?|\b(?:{roots})\.(\w+)")

    def normalise(match: re.Match) -> str:
        first, second, args_attr = match.groups()
        if args_attr:
            return f"self.{args_attr}"
        if first in ARGS_ROOTS and second:
            return f"self.{second}"
        return f"self.{mapping.get(first, first)}" + (f".{second}" if second else "")

    assignments = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Attribute)
    ]
    for node in sorted(assignments, key=lambda n: n.lineno):
        target = dotted(node.targets[0]) or ""
        if not target.startswith("self.") or target.count(".") != 1:
            continue
        source = dotted(node.value.func if isinstance(node.value, ast.Call) else node.value)
        attr = args_attr_of(source) if source else None
        if attr is None:
            attr = config.expr_attrs.get(pattern.sub(normalise, ast.unparse(node.value)))
        if attr:
            mapping.setdefault(target.split(".")[1], attr)
    return mapping


def condition_args_attr(chain: str, mapping: dict[str, str]) -> str | None:
    if attr := args_attr_of(chain):
        return attr
    parts = chain.split(".")
    return mapping.get(parts[1]) if parts[0] == "self" and len(parts) > 1 else None


def per_call_inputs(tree: ast.Module) -> list[dict]:
    """Forward arguments and the forward locals computed from them."""
    entries: dict[str, dict] = {}
    for _, func in functions(tree):
        if not func.name.startswith(FORWARD_PREFIX):
            continue
        runtime = arg_names(func.args) - {"self"}
        for name in sorted(runtime):
            entries.setdefault(name, {"name": name, "kind": "forward_param", "depends_on": []})
        assignments = [n for n in ast.walk(func) if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)]
        for node in sorted(assignments, key=lambda n: n.lineno):
            used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)} & runtime
            if used:
                runtime.add(node.targets[0].id)
                entry = {"name": node.targets[0].id, "kind": "forward_local", "depends_on": sorted(used)}
                entries.setdefault(entry["name"], entry)
    return list(entries.values())


def analyse_ccl(tree: ast.Module, names: list[str]) -> dict[str, dict | None]:
    """Parameters, conditions, local calls and terminal ttnn ops (through local calls) of each CCL function."""
    local = {func.name: func for cls, func in functions(tree) if cls is None}

    def calls(func) -> set[str]:
        names = {n.func.id for n in ast.walk(func) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        return names & local.keys() - {func.name}

    def ops(name: str, seen: set[str]) -> set[str]:
        seen.add(name)
        found = {op for n in ast.walk(local[name]) if (op := ttnn_op(n))}
        for callee in calls(local[name]) - seen:
            found |= ops(callee, seen)
        return found

    result = {}
    for name in names:
        func = local.get(name)
        if func is None:
            result[name] = None
            continue
        tests = sorted(
            (n for n in ast.walk(func) if isinstance(n, ast.If | ast.While | ast.IfExp)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        result[name] = {
            "line": func.lineno,
            "parameters": parameters(func.args),
            "conditions": [{"line": n.lineno, "expr": ast.unparse(n.test)} for n in tests],
            "calls": sorted(calls(func)),
            "terminal_ops": sorted(ops(name, set())),
        }
    return result


def imported_modules(path: Path, tree: ast.Module):
    """``(path, tree)`` of each from-imported module that resolves to a parsable file near ``path``."""
    seen = set()
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        package = Path(*node.module.split("."))
        bases = [path.parents[node.level - 1]] if node.level else path.parents
        for relative in [package.with_suffix(".py")] + [package / f"{alias.name}.py" for alias in node.names]:
            candidate = next((base / relative for base in bases if (base / relative).is_file()), None)
            if candidate is None or candidate.resolve() in seen:
                continue
            seen.add(candidate.resolve())
            try:
                yield candidate, parse_file(candidate)
            except TraceError:
                continue  # an imported module that does not parse only loses its helpers


def find_helpers(path: Path, tree: ast.Module) -> dict[str, dict]:
    """Program-config helpers: functions that build a ttnn program / memory config or core grid (and neither define
    keys nor set attributes), plus the functions they call, in the config module and the modules it imports from."""
    helpers: dict[str, dict] = {}
    for source_path, source_tree in [(path, tree), *imported_modules(path.resolve(), tree)]:
        candidates = {f.name: f for _, f in functions(source_tree) if not f.name.startswith("__")}
        selected = {
            name
            for name, func in candidates.items()
            if any(CONFIG_CONSTRUCTOR.search(ttnn_type) for n in ast.walk(func) if (ttnn_type := ttnn_call(n)))
            and not any(defined_keys(n) or is_self_store(n) for n in ast.walk(func))  # not a set-up method
        }
        stack = list(selected)
        while stack:
            for callee in local_callees(candidates[stack.pop()], candidates) - selected:
                selected.add(callee)
                stack.append(callee)
        for name in sorted(selected):
            func = candidates[name]
            helpers.setdefault(name, describe_helper(source_path, func, local_callees(func, candidates)))
    return helpers


def local_callees(func: ast.FunctionDef, candidates: dict[str, ast.FunctionDef]) -> set[str]:
    """Names of the ``candidates`` that ``func`` calls, as ``name(...)`` or ``self.name(...)``."""
    names = {dotted(n.func) for n in ast.walk(func) if isinstance(n, ast.Call)}
    return {name.removeprefix("self.") for name in names if name} & candidates.keys() - {func.name}


def ttnn_call(node: ast.AST) -> str | None:
    chain = dotted(node.func) if isinstance(node, ast.Call) else None
    return chain if chain and chain.startswith("ttnn.") else None


def describe_helper(path: Path, func: ast.FunctionDef, calls: set[str]) -> dict:
    method_refs = {id(n.func) for n in ast.walk(func) if isinstance(n, ast.Call)}
    attrs = {
        f"self.{n.attr}"
        for n in ast.walk(func)
        if isinstance(n, ast.Attribute) and dotted(n.value) == "self" and id(n) not in method_refs
    }
    found = sorted((n for n in ast.walk(func) if isinstance(n, ast.Return) and n.value), key=lambda n: n.lineno)
    returns = [ast.unparse(n.value) for n in found]
    return {
        "file": display(path),
        "params": parameters(func.args),
        "uses_self_attrs": sorted(attrs),
        "calls": sorted(calls),
        "returns": [r if len(r) <= RETURN_EXPR_LIMIT else r[:RETURN_EXPR_LIMIT] + "..." for r in returns[:MAX_RETURNS]],
        "line_start": func.lineno,
        "line_end": func.end_lineno,
    }


def dependency_closure(config: ConfigModule, start: set[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Follow dependencies transitively: ``(derivations of inner nodes, leaves by category)``."""
    derivations: dict[str, list[str]] = {}
    leaves: dict[str, set[str]] = defaultdict(set)
    stack, seen = sorted(start), set(start)
    while stack:
        node = stack.pop()
        deps = config.expand(node)
        if not deps:
            if not (node.startswith("helper:") or node.removeprefix("self.") in config.methods):  # reads nothing
                leaves[leaf_category(node, deps)].add(node)
            continue
        derivations[node] = sorted(deps)
        stack.extend(sorted(deps - seen))
        seen |= deps
    categories = ("hf_config_fields", "model_args_inputs", "hardware", "builtins", "constants", "unresolved")
    return dict(sorted(derivations.items())), {name: sorted(leaves[name]) for name in categories}


def leaf_category(node: str, deps: set[str] | None) -> str:
    kind, _, name = node.partition(":")
    if kind == "hw" or (kind == "builtin" and name in HARDWARE_PROBES):
        return "hardware"
    categories = {"hf": "hf_config_fields", "init": "model_args_inputs", "env": "model_args_inputs"}
    if kind in categories:
        return categories[kind]
    if kind == "builtin":
        return "builtins"
    return "constants" if deps is not None else "unresolved"


def hierarchy(roots: dict, derivations: dict, used_keys: list[str], per_call: list[dict], ops: dict) -> dict:
    """The six levels, from the analysis: leaves by category, then each ModelArgs attribute by its direct inputs."""

    def entry(name: str, kind: str, depends_on=()) -> dict:
        return {"name": name, "kind": kind, "depends_on": list(depends_on)}

    levels: dict[str, list[dict]] = {name: [] for name, _ in LEVELS}
    levels["level_0_hardware"] = [entry(name, "hardware") for name in roots["hardware"]]
    levels["level_1_model_config"] = [entry(name, "hf_field") for name in roots["hf_config_fields"]]
    levels["level_3_runtime_config"] = [entry(name, "model_args_input") for name in roots["model_args_inputs"]]
    for node, deps in derivations.items():
        if not node.startswith("self."):
            continue
        kinds = {dep.partition(":")[0] for dep in deps}
        level = "level_1_model_config" if "hf" in kinds else "level_3_runtime_config" if kinds & {"init", "env"} else ""
        levels[level or "level_2_derived"].append(entry(node, "model_args", deps))
    levels["level_2_derived"] += [entry(name, "constant") for name in roots["constants"] if name.startswith("self.")]
    levels["level_3_runtime_config"] += [
        entry(f"config:{key}", "config_key", derivations.get(f"config:{key}", ())) for key in used_keys
    ]
    levels["level_4_per_call"] = per_call
    levels["level_5_terminal_ops"] = [entry(op, "ttnn_op") for op in ops["module"]] + [
        entry(op, "ccl_op", users) for op, users in ops["ccl"].items()
    ]
    return {name: {"description": description, "params": levels[name]} for name, description in LEVELS}


# ---------------------------------------------------------------------------------------------------------------------
# Report


def display(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def trace(module_path: Path, config_path: Path, ccl_path: Path) -> dict:
    """The whole analysis as a JSON-serialisable dict following SCHEMA_FILE."""
    module_tree, config_tree = parse_file(module_path), parse_file(config_path)
    ccl_tree = parse_file(ccl_path) if ccl_path.is_file() else None
    config = ConfigModule(config_tree)
    visitor = ModuleVisitor(Path(CCL_FILE_NAME).stem)
    visitor.visit(module_tree)

    mapping = self_to_args(module_tree, config)
    conditions = [
        {
            "attribute": chain,
            "args_attr": condition_args_attr(chain, mapping),
            "lines": sorted(entry.lines),
            "via": sorted(entry.via),
        }
        for chain, entry in sorted(visitor.conditions.items())
    ]
    accesses = sorted(visitor.config_accesses, key=lambda a: (a.line, a.key))
    used_keys = sorted({access.key for access in accesses})
    args_used = sorted(visitor.args_used | set(mapping.values()))
    start = {f"self.{attr}" for attr in args_used} | {f"config:{key}" for key in used_keys}
    derivations, roots = dependency_closure(config, start)

    ccl_names = sorted(name for name, calls in visitor.ccl_functions.items() if calls)
    definitions = analyse_ccl(ccl_tree, ccl_names) if ccl_tree else dict.fromkeys(ccl_names)
    ccl_ops: dict[str, list[str]] = defaultdict(list)
    for name, definition in definitions.items():
        for op in definition["terminal_ops"] if definition else []:
            ccl_ops[op].append(name)
    ops = {"module": sorted(visitor.ttnn_ops), "ccl": dict(sorted(ccl_ops.items()))}

    return {
        "schema_version": SCHEMA_VERSION,
        "source_file": display(module_path),
        "config_file": display(config_path),
        "ccl_file": display(ccl_path) if ccl_tree else None,
        "config_accesses": [{"key": a.key, "line": a.line, "in_condition": a.in_condition} for a in accesses],
        "condition_attributes": conditions,
        "mode_switches": [{"line": line, "expr": expr} for line, expr in sorted(visitor.mode_switches)],
        "config_definitions": {
            key: [
                {
                    "line_start": d.line_start,
                    "line_end": d.line_end,
                    "kind": d.kind,
                    "dependencies": sorted(d.dependencies),
                }
                for d in config.definitions.get(key, [])
            ]
            for key in used_keys
        },
        "root_parameters": {**roots, "derivations": derivations},
        "ccl_functions": {
            name: {"call_sites": visitor.ccl_functions[name], "definition": definitions[name]} for name in ccl_names
        },
        "matmul_helpers": find_helpers(config_path, config_tree),
        "args_used": args_used,
        "parameters": hierarchy(roots, derivations, used_keys, per_call_inputs(module_tree), ops),
    }


def render_text(report: dict, show_helpers: bool) -> str:
    """The seven sections as terminal text."""
    config_name = Path(report["config_file"]).name
    ccl_file = report["ccl_file"]
    lines = [f"Analyzing: {report['source_file']}  (config: {report['config_file']}, ccl: {ccl_file or 'not found'})"]

    def section(number: int):
        lines.extend(["", "=" * RULE_WIDTH, f"## {number}. {SECTION_TITLES[number - 1]}", "=" * RULE_WIDTH])

    def listing(label: str, items, indent: str = "    "):
        text = ", ".join(items) or "(none)"
        lines.append(textwrap.fill(text, TEXT_WIDTH, initial_indent=f"{indent}{label}: ", subsequent_indent=indent * 2))

    def params(entries) -> list[str]:
        return [e["name"] + (f": {e['type']}" if "type" in e else "") + (f"={e['default']}" if "default" in e else "")
                for e in entries]  # fmt: skip

    section(1)
    for access in report["config_accesses"]:
        marker = "  [IN CONDITION]" if access["in_condition"] else ""
        lines.append(f'  L{access["line"]:<5} model_config["{access["key"]}"]{marker}')

    section(2)
    for cond in report["condition_attributes"]:
        target = f" → ModelArgs.{cond['args_attr']}" if cond["args_attr"] else ""
        via = f" (via {', '.join(cond['via'])})" if cond["via"] else ""
        lines.append(f"  {cond['attribute']}{target}{via}: L{', L'.join(map(str, cond['lines']))}")
    lines.append("  Mode switch:")
    lines.extend(f"    L{m['line']}: {m['expr']}" for m in report["mode_switches"])

    section(3)
    for key, definitions in report["config_definitions"].items():
        lines.append(f"### {key}" + ("" if definitions else f"  WARNING: definition not found in {config_name}"))
        for d in definitions:
            listing(f"{config_name} L{d['line_start']}-{d['line_end']} ({d['kind']}) depends on", d["dependencies"])

    section(4)
    for category, values in report["root_parameters"].items():
        if category != "derivations":
            listing(category, values, indent="  ")
    listing("ModelArgs attributes read by the module", report["args_used"], indent="  ")

    section(5)
    if ccl_file is None:
        lines.append(f"  {CCL_FILE_NAME} not found next to {report['config_file']}: CCL definitions not analysed")
    for name, info in report["ccl_functions"].items():
        lines.append(f"### {name}")
        for site in info["call_sites"]:
            call_args = site["args"] + [f"{key}={value}" for key, value in site["keywords"].items()]
            listing(f"L{site['line']}: call", call_args)
        if definition := info["definition"]:
            lines.append(f"    Defined at: {ccl_file} L{definition['line']}")
            listing("Parameters", params(definition["parameters"]))
            lines.extend(f"    if L{c['line']}: {c['expr']}" for c in definition["conditions"])
            listing("Calls", definition["calls"])
            listing("Terminal ttnn ops", definition["terminal_ops"])
        elif ccl_file:
            lines.append(f"    WARNING: not defined in {ccl_file}")

    section(6)
    helpers = report["matmul_helpers"]
    if not show_helpers:
        lines.append(f"  {len(helpers)} program-config helpers found; run with --matmul-helpers to list them")
    for name, helper in helpers.items() if show_helpers else ():
        lines.append(f"### {name}()  {helper['file']} L{helper['line_start']}-{helper['line_end']}")
        listing("Parameters", params(helper["params"]))
        listing("Uses self attrs", helper["uses_self_attrs"])
        listing("Calls", helper["calls"])
        lines.extend(f"    return {expr}" for expr in helper["returns"])

    section(7)
    for index, (name, _) in enumerate(LEVELS):
        level = report["parameters"][name]
        lines.append(f"LEVEL {index}: {level['description']}")
        for param in level["params"]:
            deps = param["depends_on"]
            more = f", … (+{len(deps) - DEPS_SHOWN})" if len(deps) > DEPS_SHOWN else ""
            lines.append(
                f"  • {param['name']} [{param['kind']}]" + (f" ← {', '.join(deps[:DEPS_SHOWN])}{more}" if deps else "")
            )
        lines.append("  ↓" if index < len(LEVELS) - 1 else "")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# CLI


def resolve(argument: str) -> Path:
    """A path as given, or relative to the repository root when it does not exist relative to the working dir."""
    path = Path(argument)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Trace the parameters that drive a TTTv1 module's behaviour.")
    parser.add_argument("module_path", nargs="?", help=f"default: {DEFAULT_MODULE}")
    parser.add_argument("config_path", nargs="?", help=f"default: {DEFAULT_CONFIG}")
    parser.add_argument(
        "--matmul-helpers", "--matmul-helper", dest="matmul_helpers", action="store_true", help="list the helpers"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--json-file", metavar="PATH", help="write JSON to PATH")
    options = parser.parse_args(argv)

    module_path = resolve(options.module_path) if options.module_path else REPO_ROOT / DEFAULT_MODULE
    config_path = resolve(options.config_path) if options.config_path else REPO_ROOT / DEFAULT_CONFIG
    try:
        report = trace(module_path, config_path, config_path.parent / CCL_FILE_NAME)
        if options.json_file:
            Path(options.json_file).write_text(json.dumps(report, indent=2) + "\n")
    except TraceError as error:
        print(f"trace_dependencies: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"trace_dependencies: error: cannot write {options.json_file}: {error.strerror}", file=sys.stderr)
        return 2
    if options.json_file:
        print(f"JSON output written to: {options.json_file}")
    if options.json:
        print(json.dumps(report, indent=2))
    elif not options.json_file:
        print(render_text(report, options.matmul_helpers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
