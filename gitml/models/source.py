"""Source extraction: a class or function defined in a script, a notebook cell, a function or a
module of the user's own repository, written out as one readable `.py` holding only what it needs.

The extracted file has the imports (of installed modules only) and the definitions (classes,
functions, constants) the object refers to, found transitively from its source with `symtable`,
never the script's other statements: loading it elsewhere runs no training, no data loading.

A module of the user's repository used by attribute (`import helpers` ... `helpers.f(x)`, or
`import pkg.util as u` ... `u.g()`) becomes a file of its own beside the first one, holding only
the names used from it (and what they need), and the first file imports it under the same name
(`import gitml_src_train__helpers as helpers`): the code reads as the user wrote it, and the
module's own top-level statements never run.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.metadata
import inspect
import linecache
import site
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.models.source_ast import (
    attribute_chains,
    cells,
    closure_names,
    constant_statement,
    def_start,
    find_node,
    free_names,
    functions_of,
    future_annotations,
    globals_of,
    is_constant,
    parse_file,
    source_lines,
    strip_indent,
)

__all__ = ["Extracted", "extract_source", "is_installed_module", "needs_source"]

_OPTIONS = (
    "define it in a .py file or a notebook cell (gitml ships its source with the model), "
    "pass code_paths=[...] naming the module that defines it"
)


@dataclass
class Extracted:
    """One extracted source file: its text, a file stem, and each root's name in it; plus the
    files of the user's modules it imports, as (module name, text)."""

    text: str
    stem: str
    names: list[str] = field(default_factory=list)
    modules: list[tuple[str, str]] = field(default_factory=list)


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
    if (
        top in sys.builtin_module_names
        or top in getattr(sys, "stdlib_module_names", ())
        or top == "gitml"
    ):
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
            if file and any(
                Path(file).resolve() == p or Path(file).resolve().is_relative_to(p) for p in shipped
            ):
                return False
        return True
    return False


# ---------------------------------------------------------------- finding a definition


def _where(obj: Any) -> str:
    if isinstance(obj, _ModuleUser):
        return f"module {obj.__module__}"
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
        for fn in functions_of(obj):
            candidates.append((fn.__code__.co_filename, fn.__code__.co_firstlineno))
        module_file = getattr(module, "__file__", None)
        if module_file:
            candidates.append((str(module_file), None))
        if obj.__module__ == "__main__":
            # a notebook's cells: sources registered with no file behind them, newest first
            candidates.extend((name, None) for name in cells())
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
        lines = source_lines(filename, module)
        tree = parse_file(filename) if lines else None
        if tree is None:
            continue
        node = find_node(tree, kind, name, line)
        if node is None:
            continue
        start, end = def_start(node), node.end_lineno or node.lineno  # type: ignore[attr-defined]
        indent = node.col_offset  # type: ignore[attr-defined]
        body = [strip_indent(text, indent) for text in lines[start - 1 : end]]
        return filename, "".join(body).rstrip() + "\n"
    if any(f.startswith("<") and not linecache.getlines(f) for f, _ in candidates):
        raise _no_source(
            obj, "it was defined by `python -c`, exec() or a prompt that keeps no source"
        )
    raise _no_source(obj, "no class or def statement in its file defines it: made with type()?")


# ---------------------------------------------------------------- the extractor


class _Extractor:
    def __init__(self, modules: _Modules) -> None:
        self.modules = modules
        self.imports: dict[str, str] = {}  # bound name -> import statement
        self.defs: dict[str, str] = {}  # bound name -> definition text, in dependency order
        self.owners: dict[str, Any] = {}  # bound name -> the object it stands for
        self.future = False
        self._active: set[int] = set()

    def _bind(self, name: str, value: Any, text: str, is_import: bool) -> None:
        known = self.owners.get(name, _MISSING)
        if (
            known is not _MISSING
            and known is not value
            and not (is_constant(value) and known == value)
        ):
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
        future = future_annotations(module)
        self.future = self.future or future
        mod_globals = globals_of(obj, module)
        closure = closure_names(obj)
        for free in free_names(text, future):
            if free == own:
                continue
            if free in closure:
                raise InvalidParameterValue(
                    f"{obj.__qualname__} refers to {free!r}, a variable of the function that defines "
                    "it, which only running code sets: make it an argument or a module-level constant"
                )
            self.resolve(free, mod_globals, obj, filename, text)
        self._bind(own, obj, text, False)
        if name and name != own:
            self._bind(name, obj, f"{name} = {own}\n", False)
        return own

    def resolve(
        self, name: str, mod_globals: dict[str, Any], user: Any, filename: str, text: str | None
    ) -> None:
        """Bind `name` (read by `text`, the source of `user`) to an import or a definition."""
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
        if known is value or (known is not _MISSING and is_constant(value) and known == value):
            return
        statement = _import_statement(name, filename, value)
        if inspect.ismodule(value):
            if not is_installed_module(value.__name__):
                chains = attribute_chains(text or "", name)
                if not chains:
                    raise InvalidParameterValue(
                        f"{getattr(user, '__qualname__', user)} uses module {value.__name__!r} of your "
                        f"repository through the name {name!r} other than as {name}.<attribute>, so gitml "
                        f"cannot tell what to ship from it: write {name}.<name> where it is used, import "
                        f"the names it needs (from {value.__name__} import ...), or pass code_paths=[...]"
                    )
                stem = self.modules.request(value, chains)
                self._bind(name, value, f"import {stem} as {name}\n", True)
                return
            self._bind(name, value, statement or _module_import(name, value), True)
            return
        if inspect.isclass(value) or inspect.isfunction(value):
            if needs_source(value):
                self.add(value, name)
                return
        if is_constant(value):
            text = None
            for file in [
                filename,
                *(cells() if getattr(user, "__module__", "") == "__main__" else []),
            ]:
                text = constant_statement(name, file, value)
                if text is not None:
                    break
            if text is None:
                raise InvalidParameterValue(
                    f"{getattr(user, '__qualname__', user)} refers to {name!r}, which {_where(user)} sets by "
                    "running code (not a literal assignment at the top level): make it a literal "
                    "constant, or pass the value as an argument"
                )
            self._bind(name, value, text, False)
            for free in free_names(text, False):
                if free != name:
                    self.resolve(free, mod_globals, user, filename, text)
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
        text = "".join(body).rstrip()
        return "\n".join(head) + ("\n\n" + text + "\n" if text else "")


_MISSING = object()


class _ModuleUser:
    """Stands for a module of the user's in error messages (what reads a name from it)."""

    def __init__(self, module: Any) -> None:
        self.__qualname__ = f"the model's use of module {module.__name__}"
        self.__module__ = module.__name__


@dataclass
class _Job:
    module: Any
    stem: str
    chains: set[tuple[str, ...]] = field(default_factory=set)
    text: str = ""
    dirty: bool = True


class _Modules:
    """The user's modules used by attribute, each with the chains read from it, extracted until
    no new use turns up (a module's definitions may use further modules)."""

    def __init__(self, namer: Callable[[str], str]) -> None:
        self.namer = namer
        self.jobs: dict[str, _Job] = {}

    def request(self, module: Any, chains: set[tuple[str, ...]]) -> str:
        """The file (module) name the extracted `module` gets; records the chains used."""
        job = self.jobs.get(module.__name__)
        if job is None:
            job = self.jobs[module.__name__] = _Job(module, self.namer(module.__name__))
        if not chains <= job.chains:
            job.chains |= chains
            job.dirty = True
        return job.stem

    def extract(self, names: Sequence[str]) -> list[tuple[str, str]]:
        """Extract every requested module (until none changes): (file stem, text) each."""
        while dirty := [job for job in self.jobs.values() if job.dirty]:
            for job in dirty:
                job.dirty = False
                job.text = self._one(job, names)
        return [(job.stem, job.text) for job in self.jobs.values()]

    def _one(self, job: _Job, names: Sequence[str]) -> str:
        module, user = job.module, _ModuleUser(job.module)
        ex = _Extractor(self)
        mod_globals: dict[str, Any] = vars(module)
        filename = str(getattr(module, "__file__", "") or "")
        firsts: dict[str, set[tuple[str, ...]]] = {}
        for chain in sorted(job.chains):
            firsts.setdefault(chain[0], set()).add(chain[1:])
        for first, rests in firsts.items():
            value = mod_globals.get(first, _MISSING)
            if inspect.ismodule(value) and not is_installed_module(value.__name__):
                if () in rests:
                    raise InvalidParameterValue(
                        f"the model uses {module.__name__}.{first}, a module of your repository, other "
                        f"than as {module.__name__}.{first}.<attribute>: gitml cannot tell what to ship "
                        "from it; import the names it needs, or pass code_paths=[...]"
                    )
                stem = self.request(value, rests)
                ex._bind(first, value, f"import {stem} as {first}\n", True)
                continue
            if value is _MISSING and not hasattr(builtins, first):
                raise InvalidParameterValue(
                    f"the model uses {module.__name__}.{first}, which module {module.__name__} does not "
                    "define at its top level: only running code sets it"
                )
            ex.resolve(first, mod_globals, user, filename, None)
        header = (
            f"What {', '.join(names)} uses of {module.__name__} ({', '.join(sorted(firsts))}), extracted "
            "by gitml with only the imports and definitions needed; the module's other statements are left out."
        )
        return ex.render(header)


def _import_statement(name: str, filename: str, value: Any) -> str | None:
    """The module's own top-level import binding `name`, kept as the user wrote it (one name)."""
    tree = parse_file(filename)
    for node in tree.body if tree else []:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name and is_installed_module(alias.name):
                    return (
                        f"import {alias.name}"
                        + (f" as {alias.asname}" if alias.asname else "")
                        + "\n"
                    )
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


def _module_suggestion(stem: str, module_name: str) -> str:
    """`train__helpers` for module `helpers` used by `train`'s classes (a module extracted by an
    earlier save keeps its own name: `gitml_src_train__helpers` stays `train__helpers`)."""
    name = module_name.removeprefix("gitml_src_").removeprefix(f"{stem}__")
    return f"{stem}__" + "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def extract_source(
    roots: Sequence[Any], what: str = "the model", namer: Callable[[str], str] | None = None
) -> Extracted:
    """Extract the source of `roots` (classes or functions) and what they need into one file,
    plus one file per module of the user's used by attribute. `namer` turns a suggested stem
    (`train__helpers`) into the importable module name its file gets (default: `gitml_src_` +
    the suggestion)."""
    if not roots:
        raise InvalidParameterValue("nothing to extract")
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in _stem(roots[0])) or "model"
    name_file = namer or (lambda suggested: f"gitml_src_{suggested}")
    modules = _Modules(lambda module_name: name_file(_module_suggestion(stem, module_name)))
    ex = _Extractor(modules)
    names = [ex.add(obj) for obj in roots]
    header = (
        f"{', '.join(names)} ({what}), extracted by gitml with only the imports and definitions "
        "needed. Loading the model imports this file and nothing else."
    )
    return Extracted(ex.render(header), stem, names, modules.extract(names))
