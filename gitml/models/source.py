"""Source extraction: a class or function defined in a script, a notebook cell, a function or a
module of the user's own repository, written out as one readable `.py` holding only what it needs.

The extracted file has the imports (of installed modules only) and the definitions (classes,
functions, constants) the object refers to, found transitively from its source with `symtable`,
never the script's other statements: loading it elsewhere runs no training, no data loading.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import functools
import importlib.metadata
import inspect
import linecache
import site
import symtable
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue

__all__ = ["Extracted", "extract_source", "is_installed_module", "needs_source"]

_CONSTANTS = (bool, int, float, complex, str, bytes, type(None))
# Expressions a constant's definition may use: no calls, so defining it runs nothing.
_PURE = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Tuple, ast.List, ast.Set,
    ast.Dict, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript, ast.Slice,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.Starred, ast.Lambda, ast.arguments, ast.arg,
    ast.JoinedStr, ast.FormattedValue,
)  # fmt: skip
_OPTIONS = (
    "define it in a .py file or a notebook cell (gitml ships its source with the model), "
    "pass code_paths=[...] naming the module that defines it"
)


@dataclass
class Extracted:
    """One extracted source file: its text, a file stem, and each root's name in it."""

    text: str
    stem: str
    names: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def _install_dirs() -> tuple[Path, ...]:
    dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(site.getsitepackages())
    dirs.add(site.getusersitepackages())
    return tuple(Path(d).resolve() for d in dirs if d)


@functools.lru_cache(maxsize=1)
def _distributed_names() -> frozenset[str]:
    return frozenset(importlib.metadata.packages_distributions())


@functools.lru_cache(maxsize=512)
def is_installed_module(name: str) -> bool:
    """Whether module `name` is importable wherever the model is loaded: the standard library or
    an installed distribution (editable installs included), not a file of the user's repo."""
    top = name.split(".")[0]
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()) or top == "gitml":
        return True
    if name == "__main__" or top.startswith(("gitml_src_", "gitml_source_check_")):
        return False
    module = sys.modules.get(name) or sys.modules.get(top)
    file = getattr(module, "__file__", None)
    if file:
        path = Path(file).resolve()
        if any(path.is_relative_to(d) for d in _install_dirs()):
            return True
    return top in _distributed_names()


def needs_source(obj: Any, code_paths: Sequence[str | Path] | None = None) -> bool:
    """Whether `obj` (a class or function) cannot be imported by name where the model loads:
    defined in the running script, a notebook, a function, or a module that is not installed
    and not shipped in `code_paths`."""
    module = getattr(obj, "__module__", None) or "__main__"
    qualname = getattr(obj, "__qualname__", "") or ""
    if module == "__main__" or "<locals>" in qualname or not is_installed_module(module):
        if module != "__main__" and "<locals>" not in qualname and code_paths:
            file = getattr(sys.modules.get(module), "__file__", None)
            shipped = [Path(p).resolve() for p in code_paths]
            if file and any(Path(file).resolve() == p or Path(file).resolve().is_relative_to(p) for p in shipped):
                return False
        return True
    return False


# ---------------------------------------------------------------- finding a definition


def _functions_of(cls: type) -> Iterable[Any]:
    for value in vars(cls).values():
        value = getattr(value, "__func__", value)
        if isinstance(value, property):
            value = value.fget
        if inspect.isfunction(value):
            yield value


def _lines(filename: str, module: Any) -> list[str]:
    linecache.checkcache(filename)
    return linecache.getlines(filename, getattr(module, "__dict__", None))


def _start(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *[d.lineno for d in decorators]])  # type: ignore[attr-defined]


def _find_node(tree: ast.AST, kind: type, name: str, line: int | None) -> ast.AST | None:
    """The class/def named `name` (containing `line`, when given), at any depth."""
    best: ast.AST | None = None
    for node in ast.walk(tree):
        if isinstance(node, kind) and node.name == name:  # type: ignore[attr-defined]
            if line is None:
                if best is None or node.col_offset < best.col_offset:  # type: ignore[attr-defined]
                    best = node
            elif _start(node) <= line <= (node.end_lineno or node.lineno):  # type: ignore[attr-defined]
                if best is None or _start(node) >= _start(best):  # the innermost
                    best = node
    return best


def _where(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return "the running script" if module == "__main__" else f"module {module}"


def _no_source(obj: Any, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"cannot find the source of {getattr(obj, '__qualname__', obj)!r} ({why}), which gitml "
        f"ships with the model: {_OPTIONS}"
    )


def _definition(obj: Any) -> tuple[str, str]:
    """(filename, source text dedented to column 0) of a class or function."""
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    candidates: list[tuple[str, int | None]] = []
    if inspect.isclass(obj):
        kind: type = ast.ClassDef
        for fn in _functions_of(obj):
            candidates.append((fn.__code__.co_filename, fn.__code__.co_firstlineno))
        module_file = getattr(module, "__file__", None)
        if module_file:
            candidates.append((str(module_file), None))
        if obj.__module__ == "__main__":
            # a notebook's cells: sources registered with no file behind them, newest first
            candidates.extend((name, None) for name in _cells())
    else:
        kind = ast.FunctionDef
        code = getattr(obj, "__code__", None)
        if code is None:
            raise _no_source(obj, "it is not a Python function")
        if code.co_flags & inspect.CO_COROUTINE:
            kind = ast.AsyncFunctionDef
        candidates.append((code.co_filename, code.co_firstlineno))
    name = obj.__name__
    for filename, line in candidates:
        lines = _lines(filename, module)
        tree = _tree(filename) if lines else None
        if tree is None:
            continue
        node = _find_node(tree, kind, name, line)
        if node is None:
            continue
        start, end = _start(node), node.end_lineno or node.lineno  # type: ignore[attr-defined]
        indent = node.col_offset  # type: ignore[attr-defined]
        body = [_strip_indent(text, indent) for text in lines[start - 1 : end]]
        return filename, "".join(body).rstrip() + "\n"
    if any(f.startswith("<") and not linecache.getlines(f) for f, _ in candidates):
        raise _no_source(obj, "it was defined by `python -c`, exec() or a prompt that keeps no source")
    raise _no_source(obj, "no class or def statement in its file defines it: made with type()?")


def _cells() -> list[str]:
    """A notebook's cells, newest first: sources registered in linecache with no file behind."""
    cells = [name for name, entry in list(linecache.cache.items()) if len(entry) == 4 and entry[1] is None]
    return cells[::-1]


def _strip_indent(line: str, indent: int) -> str:
    if not line.strip():
        return "\n"
    head = line[:indent]
    # a line indented less than the definition lies inside a string: kept as it is
    return line[indent:] if not head.strip() else line


def _free_names(text: str, drop_annotations: bool) -> list[str]:
    """Names the snippet reads from its module's globals (symtable: referenced, global, unbound)."""
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
            if sym.is_referenced() and sym.is_global() and not sym.is_local() and sym.get_name() not in names:
                names.append(sym.get_name())
        for child in table.get_children():
            walk(child)

    walk(symtable.symtable(text, "<source>", "exec"))
    return names


def _future_annotations(module: Any) -> bool:
    return getattr(module, "annotations", None) is __future__.annotations


# ---------------------------------------------------------------- the extractor


class _Extractor:
    def __init__(self) -> None:
        self.imports: dict[str, str] = {}  # bound name -> import statement
        self.defs: dict[str, str] = {}  # bound name -> definition text, in dependency order
        self.owners: dict[str, Any] = {}  # bound name -> the object it stands for
        self.future = False
        self._active: set[int] = set()

    def _bind(self, name: str, value: Any, text: str, is_import: bool) -> None:
        known = self.owners.get(name, _MISSING)
        if known is not _MISSING and known is not value and not (_is_constant(value) and known == value):
            raise InvalidParameterValue(
                f"two different objects are both named {name!r} in the code the model needs: rename one"
            )
        self.owners[name] = value
        (self.imports if is_import else self.defs).setdefault(name, text)

    def add(self, obj: Any, name: str | None = None) -> str:
        """Extract a class/function; returns its name in the file."""
        own = obj.__name__
        if id(obj) in self._active or self.owners.get(own) is obj:
            if name and name != own:
                self._bind(name, obj, f"{name} = {own}\n", False)
            return own
        self._active.add(id(obj))
        filename, text = _definition(obj)
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        future = _future_annotations(module)
        self.future = self.future or future
        mod_globals = _globals_of(obj, module)
        closure = _closure_names(obj)
        for free in _free_names(text, future):
            if free == own:
                continue
            if free in closure:
                raise InvalidParameterValue(
                    f"{obj.__qualname__} refers to {free!r}, a variable of the function that defines "
                    "it, which only running code sets: make it an argument or a module-level constant"
                )
            self.resolve(free, mod_globals, obj, filename)
        self._bind(own, obj, text, False)
        if name and name != own:
            self._bind(name, obj, f"{name} = {own}\n", False)
        return own

    def resolve(self, name: str, mod_globals: dict[str, Any], user: Any, filename: str) -> None:
        if name not in mod_globals:
            if hasattr(builtins, name):
                return
            raise InvalidParameterValue(
                f"{getattr(user, '__qualname__', user)} refers to {name!r}, which is not defined at the "
                f"top level of {_where(user)}: only running code defines it. Define it in the module "
                "(a constant, a function, an import) or pass it as an argument"
            )
        value = mod_globals[name]
        known = self.owners.get(name, _MISSING)
        if known is value or (known is not _MISSING and _is_constant(value) and known == value):
            return
        statement = _import_statement(name, filename, value)
        if inspect.ismodule(value):
            if not is_installed_module(value.__name__):
                raise InvalidParameterValue(
                    f"{getattr(user, '__qualname__', user)} uses module {value.__name__!r} of your "
                    f"repository through the name {name!r}: import the names it needs from it "
                    f"(from {value.__name__} import ...) so gitml can ship their source, or pass code_paths=[...]"
                )
            self._bind(name, value, statement or _module_import(name, value), True)
            return
        if inspect.isclass(value) or inspect.isfunction(value):
            if needs_source(value):
                self.add(value, name)
                return
        if _is_constant(value):
            text = None
            for file in [filename, *(_cells() if getattr(user, "__module__", "") == "__main__" else [])]:
                text = _constant_statement(name, file, value)
                if text is not None:
                    break
            if text is None:
                raise InvalidParameterValue(
                    f"{getattr(user, '__qualname__', user)} refers to {name!r}, which {_where(user)} sets by "
                    "running code (not a literal assignment at the top level): make it a literal "
                    "constant, or pass the value as an argument"
                )
            self._bind(name, value, text, False)
            for free in _free_names(text, False):
                if free != name:
                    self.resolve(free, mod_globals, user, filename)
            return
        importable = statement or _object_import(name, value)
        if importable is None:
            raise InvalidParameterValue(
                f"{getattr(user, '__qualname__', user)} refers to {name!r}, a {type(value).__name__} "
                f"that {_where(user)} creates by running code, which cannot be shipped as source: "
                "build it inside the class (or pass what builds it as an argument)"
            )
        self._bind(name, value, importable, True)

    def render(self, header: str) -> str:
        head = [f'"""{header}"""\n']
        if self.future:
            head.append("from __future__ import annotations\n")
        imports = sorted(set(self.imports.values()), key=lambda s: (not s.startswith("import "), s))
        if imports:
            head.append("".join(imports))
        body: list[str] = []
        for text in self.defs.values():
            block = text.lstrip().startswith(("class ", "def ", "async ", "@"))
            if body and (block or body[-1].endswith("\n\n")):
                body.append("\n")
            body.append(text + ("\n" if block else ""))
        return "\n".join(head) + "\n\n" + "".join(body).rstrip() + "\n"


_MISSING = object()


def _is_constant(value: Any) -> bool:
    if isinstance(value, _CONSTANTS):
        return True
    if isinstance(value, tuple | list | frozenset | set):
        return all(_is_constant(v) for v in value)
    if isinstance(value, dict):
        return all(_is_constant(k) and _is_constant(v) for k, v in value.items())
    return False


def _globals_of(obj: Any, module: Any) -> dict[str, Any]:
    fn = next(iter(_functions_of(obj)), None) if inspect.isclass(obj) else obj
    if fn is not None and getattr(fn, "__globals__", None) is not None:
        return fn.__globals__  # type: ignore[no-any-return]
    return dict(vars(module)) if module is not None else {}


def _closure_names(obj: Any) -> set[str]:
    fns = list(_functions_of(obj)) if inspect.isclass(obj) else [obj]
    return {n for fn in fns for n in fn.__code__.co_freevars if n != "__class__"}


@functools.lru_cache(maxsize=64)
def _module_tree(filename: str, size: int) -> ast.Module | None:
    try:
        return ast.parse("".join(linecache.getlines(filename)))
    except (SyntaxError, ValueError):
        return None


def _tree(filename: str) -> ast.Module | None:
    lines = linecache.getlines(filename)
    return _module_tree(filename, sum(len(x) for x in lines)) if lines else None


def _import_statement(name: str, filename: str, value: Any) -> str | None:
    """The module's own top-level import binding `name`, kept as the user wrote it (one name)."""
    tree = _tree(filename)
    for node in tree.body if tree else []:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name and is_installed_module(alias.name):
                    return f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "") + "\n"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == name and is_installed_module(node.module):
                    if inspect.isclass(value) or inspect.isfunction(value):
                        if needs_source(value):
                            return None
                    as_ = f" as {alias.asname}" if alias.asname else ""
                    return f"from {node.module} import {alias.name}{as_}\n"
    return None


def _module_import(name: str, module: Any) -> str:
    real = module.__name__
    if name == real:
        return f"import {real}\n"
    return f"import {real} as {name}\n"


def _object_import(name: str, value: Any) -> str | None:
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    if not is_installed_module(module) or module == "__main__":
        return None
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, _MISSING)
    if obj is not value:
        return None
    if "." in qualname:
        return None
    return f"from {module} import {qualname}" + (f" as {name}" if name != qualname else "") + "\n"


def _bound_by_import(tree: ast.Module | None, name: str) -> bool:
    for node in tree.body if tree else []:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                return True
    return False


def _constant_statement(name: str, filename: str, value: Any) -> str | None:
    """The single top-level `name = <literal expression>` of the module, or None."""
    tree = _tree(filename)
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
    if not found and _bound_by_import(tree, name):
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


def _stem(obj: Any) -> str:
    module_name = getattr(obj, "__module__", "") or ""
    if module_name == "__main__":
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            return str(spec.name).rsplit(".", 1)[-1]
        file = getattr(main, "__file__", None)
        return Path(file).stem if file else "notebook"
    stem = module_name.rsplit(".", 1)[-1]
    return stem.removeprefix("gitml_src_") or "model"  # a model loaded, then saved again


def extract_source(roots: Sequence[Any], what: str = "the model") -> Extracted:
    """Extract the source of `roots` (classes or functions) and what they need into one file."""
    if not roots:
        raise InvalidParameterValue("nothing to extract")
    ex = _Extractor()
    names = [ex.add(obj) for obj in roots]
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in _stem(roots[0])) or "model"
    header = (
        f"{', '.join(names)} ({what}), extracted by gitml with only the imports and definitions "
        "needed. Loading the model imports this file and nothing else."
    )
    return Extracted(ex.render(header), stem, names)
