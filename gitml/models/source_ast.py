"""Reading Python source for extraction: finding a class or def in a file or a notebook cell,
the names a snippet reads from its module, literal constants, and how a module name is used
(`helpers.f`). Pure reading: nothing here imports or runs the user's code."""

from __future__ import annotations
import __future__

import ast
import functools
import inspect
import linecache
import symtable
from collections.abc import Iterable
from typing import Any

__all__ = [
    "attribute_chains",
    "bound_by_import",
    "cells",
    "closure_names",
    "constant_statement",
    "find_node",
    "free_names",
    "functions_of",
    "future_annotations",
    "globals_of",
    "is_constant",
    "source_lines",
    "def_start",
    "strip_indent",
    "parse_file",
]


_CONSTANTS = (bool, int, float, complex, str, bytes, type(None))


# Expressions a constant's definition may use: no calls, so defining it runs nothing.
_PURE = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Tuple, ast.List, ast.Set,
    ast.Dict, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript, ast.Slice,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.Starred, ast.Lambda, ast.arguments, ast.arg,
    ast.JoinedStr, ast.FormattedValue,
)  # fmt: skip


def functions_of(cls: type) -> Iterable[Any]:
    for value in vars(cls).values():
        value = getattr(value, "__func__", value)
        if isinstance(value, property):
            value = value.fget
        if inspect.isfunction(value):
            yield value


def source_lines(filename: str, module: Any) -> list[str]:
    linecache.checkcache(filename)
    return linecache.getlines(filename, getattr(module, "__dict__", None))


def def_start(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *[d.lineno for d in decorators]])  # type: ignore[attr-defined]


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
# tree id -> (tree, {(kind, name): nodes}); the trees themselves are cached by parse_file
_indexes: dict[int, tuple[ast.AST, dict[tuple[type, str], list[ast.AST]]]] = {}


def _index(tree: ast.AST) -> dict[tuple[type, str], list[ast.AST]]:
    """Every class/def of `tree` by (kind, name): one walk of a module, not one per lookup
    (a class's methods each look its definition up; the walk is most of an extraction)."""
    known = _indexes.get(id(tree))
    if known is not None and known[0] is tree:
        return known[1]
    index: dict[tuple[type, str], list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, _DEFS):
            index.setdefault((type(node), node.name), []).append(node)
    if len(_indexes) >= 64:
        _indexes.clear()
    _indexes[id(tree)] = (tree, index)
    return index


def find_node(tree: ast.AST, kind: type, name: str, line: int | None) -> ast.AST | None:
    """The class/def named `name` (containing `line`, when given), at any depth."""
    best: ast.AST | None = None
    for node in _index(tree).get((kind, name), ()):
        if line is None:
            if best is None or node.col_offset < best.col_offset:  # type: ignore[attr-defined]
                best = node
        elif def_start(node) <= line <= (node.end_lineno or node.lineno):  # type: ignore[attr-defined]
            if best is None or def_start(node) >= def_start(best):  # the innermost
                best = node
    return best


def cells() -> list[str]:
    """A notebook's cells, newest first: sources registered in linecache with no file behind."""
    cells = [
        name
        for name, entry in list(linecache.cache.items())
        if len(entry) == 4 and entry[1] is None
    ]
    return cells[::-1]


def strip_indent(line: str, indent: int) -> str:
    if not line.strip():
        return "\n"
    head = line[:indent]
    # a line indented less than the definition lies inside a string: kept as it is
    return line[indent:] if not head.strip() else line


def free_names(text: str, drop_annotations: bool) -> list[str]:
    """Names the snippet reads from its module's globals (symtable: referenced, global, unbound)."""
    return list(_free_names(text, drop_annotations))


@functools.lru_cache(maxsize=256)
def _free_names(text: str, drop_annotations: bool) -> tuple[str, ...]:
    # Cached by the snippet's text: a class logged again (a checkpoint per epoch) is not
    # re-analysed; the analysis is most of the extraction's cost (measured in the bench).
    if drop_annotations:
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.arg):
                node.annotation = None
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                node.returns = None
            elif isinstance(node, ast.AnnAssign):
                node.annotation = ast.Constant(None)
        text = ast.unparse(tree)
    names: list[str] = []

    def walk(table: symtable.SymbolTable) -> None:
        for sym in table.get_symbols():
            if (
                sym.is_referenced()
                and sym.is_global()
                and not sym.is_local()
                and sym.get_name() not in names
            ):
                names.append(sym.get_name())
        for child in table.get_children():
            walk(child)

    walk(symtable.symtable(text, "<source>", "exec"))
    return tuple(names)


def future_annotations(module: Any) -> bool:
    return getattr(module, "annotations", None) is __future__.annotations


def attribute_chains(text: str, name: str) -> set[tuple[str, ...]] | None:
    """The attribute chains read after `name` in `text` (`helpers.f(x)` gives ("f",), `pkg.util.g`
    gives ("util", "g")); None when the name is also used bare (passed, getattr'd, assigned)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    chains: set[tuple[str, ...]] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == name):
            continue
        chain: list[str] = []
        at: ast.AST = node
        while isinstance(up := parents.get(id(at)), ast.Attribute) and up.value is at:
            chain.append(up.attr)
            at = up
        if not chain:
            return None
        chains.add(tuple(chain))
    return chains


def is_constant(value: Any) -> bool:
    if isinstance(value, _CONSTANTS):
        return True
    if isinstance(value, tuple | list | frozenset | set):
        return all(is_constant(v) for v in value)
    if isinstance(value, dict):
        return all(is_constant(k) and is_constant(v) for k, v in value.items())
    return False


def globals_of(obj: Any, module: Any) -> dict[str, Any]:
    fn = next(iter(functions_of(obj)), None) if inspect.isclass(obj) else obj
    if fn is not None and getattr(fn, "__globals__", None) is not None:
        return fn.__globals__  # type: ignore[no-any-return]
    return dict(vars(module)) if module is not None else {}


def closure_names(obj: Any) -> set[str]:
    fns = list(functions_of(obj)) if inspect.isclass(obj) else [obj]
    return {n for fn in fns for n in fn.__code__.co_freevars if n != "__class__"}


@functools.lru_cache(maxsize=64)
def _module_tree(filename: str, size: int) -> ast.Module | None:
    try:
        return ast.parse("".join(linecache.getlines(filename)))
    except (SyntaxError, ValueError):
        return None


def parse_file(filename: str) -> ast.Module | None:
    lines = linecache.getlines(filename)
    return _module_tree(filename, sum(len(x) for x in lines)) if lines else None


def bound_by_import(tree: ast.Module | None, name: str) -> bool:
    for node in tree.body if tree else []:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                return True
    return False


def constant_statement(name: str, filename: str, value: Any) -> str | None:
    """The single top-level `name = <literal expression>` of the module, or None."""
    tree = parse_file(filename)
    found: list[ast.stmt] = []
    for node in tree.body if tree else []:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if any(isinstance(t, ast.Name) and t.id == name for t in ast.walk(target)):
                found.append(node)
    if not found and bound_by_import(tree, name):
        # a constant imported from a module of the user's repository: its value, as a literal
        text = repr(value)
        try:
            same = ast.literal_eval(text) == value
        except (ValueError, SyntaxError, RecursionError):
            same = False
        return f"{name} = {text}\n" if same and len(text) < 10_000 else None
    if len(found) != 1:
        return None
    node = found[0]
    if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
        return None
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    if len(targets) != 1 or not isinstance(targets[0], ast.Name):
        return None
    if not all(isinstance(n, _PURE) for n in ast.walk(ast.Expression(node.value))):
        return None
    return f"{name} = {ast.get_source_segment(''.join(linecache.getlines(filename)), node.value) or ast.unparse(node.value)}\n"
