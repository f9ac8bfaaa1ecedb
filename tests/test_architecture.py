"""The house's rules, enforced over the source: one table of allowed imports, read from every
import (top-level or deferred) and every module name given to `importlib` as a string.

The layers, top to bottom (docs/architecture.md draws them):

    cli
    faces: gitml (the package), client, data, types, faces (gitml.pytorch, gitml.sklearn, gitml.pyfunc ...
           have no file: `faces` builds them from the flavor registry in models/)
    fluent
    serving
    deploy
    ci
    projects
    models
    registry
    tracking
    artifacts
    store
    base: config, entities, escape, constants, exceptions

A unit is a package under gitml/ or a top-level module. Each may import only the units
`ALLOWED` lists for it (itself always). Deferring an import for speed is fine; pointing it
up is not, deferred or not.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gitml"

_BASE = {"config", "constants", "entities", "escape", "exceptions"}
_STORE = {"store"} | _BASE
_ARTIFACTS = {"artifacts"} | _STORE
_TRACKING = {"tracking"} | _ARTIFACTS
_REGISTRY = {"registry"} | _TRACKING
_MODELS = {"models"} | _REGISTRY
_PROJECTS = {"projects"} | _MODELS
_CI = {"ci"} | _PROJECTS
_DEPLOY = {"deploy"} | _CI
_SERVING = {"serving"} | _DEPLOY
_FLUENT = {"fluent"} | _SERVING
_FACES = {"client", "data", "faces", "types"}

# THE table: unit -> the units it may import.
ALLOWED: dict[str, set[str]] = {
    "__main__": {"cli"},
    "cli": {"gitml"} | _FACES | _FLUENT,
    "gitml": _FACES | _FLUENT,  # the package's lazy names (`gitml.cli` too, by a computed name)
    "client": _FLUENT,
    "faces": _FLUENT,
    "data": _FLUENT,
    "types": _FLUENT,
    "fluent": _SERVING,
    "serving": _DEPLOY,
    "deploy": _CI,
    "ci": _PROJECTS,
    "projects": _MODELS,
    "models": _REGISTRY,
    "registry": _TRACKING,
    "tracking": _ARTIFACTS,
    "artifacts": _STORE,
    "store": _BASE,
    "config": {"constants", "exceptions"},
    "entities": {"constants", "exceptions"},
    "escape": {"constants", "exceptions"},
    "constants": set(),
    "exceptions": set(),
}

# MLflow's public paths that span layers: a package's face resolves these names lazily from
# above (`mlflow.tracking.MlflowClient`, `mlflow.tracking.client.MlflowClient`,
# `mlflow.artifacts.download_artifacts` ...): in a module-level `__getattr__` or a table of
# names it reads, never by an import statement at module level.
FACE_NAMES: dict[str, set[str]] = {
    "tracking/__init__.py": {"gitml.client"},
    "tracking/client.py": {"gitml.client"},
    "artifacts/__init__.py": {"gitml.fluent.artifacts"},
    "models/__init__.py": {"gitml.serving.validation"},  # mlflow.models.validate_serving_input
}

# Strings that look like module names but are data: the `loader_module` an MLmodel file
# records (MLflow's field), matched by the models package, never imported from there.
DATA_STRINGS: set[str] = set()  # the faces' names (`gitml.pytorch` ...) have no file: not modules


@functools.cache
def _face_names() -> frozenset[str]:
    """The registered flavors' faces: `gitml.<face>` is built by the `faces` unit."""
    from gitml.faces import face_names

    return frozenset(face_names())

_IMPORTERS = {"import_module", "find_spec", "__import__"}


def modules(sub: str = "") -> list[Path]:
    root = PACKAGE / sub if sub else PACKAGE
    return sorted(root.rglob("*.py"))


def unit_of_path(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return "gitml" if rel.name == "__init__.py" else rel.stem
    return rel.parts[0]


@functools.cache
def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "gitml":
        return False
    base = PACKAGE.joinpath(*parts[1:])
    return len(parts) == 1 or base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _is_module_string(text: str) -> bool:
    return "." in text and _is_module(text)  # "gitml" alone is a name (the branch, a dir)


def unit_of_module(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "gitml":
        return None
    if len(parts) == 2 and parts[1] in _face_names():
        return "faces"  # `import gitml.pyfunc` reaches the face layer
    return "gitml" if len(parts) == 1 else parts[1]


def _module_name(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = ["gitml", *rel.parts]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _in_lazy_getattr(tree: ast.Module) -> set[int]:
    """Line numbers inside a module-level `def __getattr__`."""
    lines: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            lines |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """(module name, line) for every import in `path`, anywhere in it, and every string
    naming a gitml module (what `importlib.import_module` and lazy tables receive).
    A string's line is given as its negative, so a face can tell a name from an import."""
    tree = ast.parse(path.read_text())
    me, is_package = _module_name(path)
    in_fstring: set[int] = set()
    in_logger: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            in_fstring |= {id(v) for v in node.values}
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger":
            in_logger |= {id(a) for a in node.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_package else me.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names if _is_module(f"{module}.{a.name}")]
            if len(subs) < len(node.names):  # a name defined in `module` itself
                yield module, node.lineno
            for sub in subs:  # `from gitml import fluent` imports gitml.fluent
                yield sub, node.lineno
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in _IMPORTERS and node.args and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    yield node.args[0].value, -node.lineno
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in in_fstring
            and id(node) not in in_logger
            and node.value not in DATA_STRINGS
            and _is_module_string(node.value)
        ):
            yield node.value, -node.lineno


@functools.cache
def edges() -> tuple[tuple[str, str, str], ...]:
    """(from unit, to unit, where) for every cross-unit import, less the face names."""
    return tuple(_edges())


def _edges() -> Iterator[tuple[str, str, str]]:
    for path in modules():
        rel = str(path.relative_to(PACKAGE))
        me = unit_of_path(path)
        tree = ast.parse(path.read_text())
        lazy = _in_lazy_getattr(tree)
        for module, line in imports_of(path):
            to = unit_of_module(module)
            if to is None or to == me:
                continue
            lazily = line < 0 or line in lazy  # a name in a lazy table, or inside __getattr__
            if lazily and any(module == f or module.startswith(f + ".") for f in FACE_NAMES.get(rel, ())):
                continue
            yield me, to, f"{rel}:{abs(line)} imports {module}"


def test_every_unit_is_in_the_table() -> None:
    units = {unit_of_path(p) for p in modules()}
    assert units - set(ALLOWED) == set()


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_imports_only_go_down(unit: str) -> None:
    offenders = [where for a, b, where in edges() if a == unit and b not in ALLOWED[unit]]
    assert offenders == []


def test_the_table_and_the_code_have_no_cycles() -> None:
    graph: dict[str, set[str]] = {u: set(allowed) - {u} for u, allowed in ALLOWED.items()}
    found: dict[str, set[str]] = {}
    for a, b, _ in edges():
        found.setdefault(a, set()).add(b)
    for g in (graph, found):
        state: dict[str, int] = {}

        def visit(u: str, trail: list[str], g: dict[str, set[str]] = g, state: dict[str, int] = state) -> None:
            state[u] = 1
            for v in sorted(g.get(u, ())):
                if state.get(v) == 1:
                    raise AssertionError(f"cycle: {' -> '.join([*trail, u, v])}")
                if v not in state:
                    visit(v, [*trail, u])
            state[u] = 2

        for u in sorted(g):
            if u not in state:
                visit(u, [])


def test_face_names_are_only_lazy() -> None:
    """A face's upward name is resolved in `__getattr__`, never at import."""
    offenders = []
    for rel, targets in FACE_NAMES.items():
        path = PACKAGE / rel
        lazy = _in_lazy_getattr(ast.parse(path.read_text()))
        for module, line in imports_of(path):
            if any(module == t or module.startswith(t + ".") for t in targets) and line > 0 and line not in lazy:
                offenders.append(f"{rel}:{line} imports {module}")
    assert offenders == []


def test_importlib_strings_are_seen() -> None:
    """The reader sees a module named only in a string (as `importlib.import_module` gets it)."""
    found = {m for m, _ in imports_of(PACKAGE / "__init__.py")}
    assert "gitml.fluent.tracking" in found


def test_only_config_reads_the_environment() -> None:
    offenders = []
    for p in modules():
        rel = p.relative_to(PACKAGE)
        if str(rel) == "config.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
                if node.attr in ("environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"):
                    offenders.append(f"{rel}:{node.lineno} os.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "os":
                for alias in node.names:
                    if alias.name in ("environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"):
                        offenders.append(f"{rel}:{node.lineno} from os import {alias.name}")
    assert offenders == []


def test_only_the_cli_imports_click() -> None:
    offenders = [
        f"{p.relative_to(PACKAGE)}:{line}"
        for p in modules()
        if "cli" not in p.relative_to(PACKAGE).parts
        for m, line in imports_of(p)
        if line > 0 and (m == "click" or m.startswith("click."))
    ]
    assert offenders == []


def test_library_code_never_prints_or_exits() -> None:
    offenders = []
    for p in modules():
        rel = p.relative_to(PACKAGE)
        if "cli" in rel.parts or rel.name == "__main__.py":
            continue
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id == "print":
                    offenders.append(f"{rel}:{node.lineno} print()")
                if isinstance(f, ast.Attribute) and f.attr == "exit" and isinstance(f.value, ast.Name) and f.value.id == "sys":
                    offenders.append(f"{rel}:{node.lineno} sys.exit()")
    assert offenders == []


def test_every_module_has_a_docstring_and_all() -> None:
    missing = []
    for p in modules():
        rel = p.relative_to(PACKAGE)
        tree = ast.parse(p.read_text())
        if not ast.get_docstring(tree):
            missing.append(f"{rel}: no module docstring")
        if rel.name not in ("__main__.py", "__init__.py") and not any(
            isinstance(n, (ast.Assign, ast.AnnAssign))
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))
            for n in tree.body
        ):
            missing.append(f"{rel}: no __all__")
    assert missing == []


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (or other bare string statements)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def test_well_known_tag_keys_are_spelled_once() -> None:
    """`mlflow.source.git.commit`, `gitml.provenance.python` ...: the keys are `C.TAG_*` in
    gitml/constants.py; a string anywhere else that spells one (alone or inside a filter,
    a message, an f-string) is flagged."""
    from gitml import constants

    keys = sorted(
        (v for k, v in vars(constants).items() if k.startswith("TAG_") and isinstance(v, str)),
        key=len,
        reverse=True,
    )
    assert "mlflow.source.git.commit" in keys and "gitml.provenance.python" in keys
    spelled = re.compile("|".join(rf"(?<![\w.]){re.escape(k)}(?![\w])" for k in keys))
    offenders = []
    for p in modules():
        rel = p.relative_to(PACKAGE)
        if str(rel) == "constants.py":
            continue
        tree = ast.parse(p.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                found = spelled.search(node.value)
                if found:
                    offenders.append(f"{rel}:{node.lineno} {found.group(0)!r}")
    assert offenders == []


def test_the_store_knows_files_not_runs() -> None:
    """gitml/store/ names no run or experiment layout (folders, file names, tags, tombstones):
    the merge rules and the run folders are handed to it by gitml/tracking/branch_rules.py."""
    from gitml import constants

    layout = {
        name
        for name in vars(constants)
        if name.startswith(("RUN", "EXPERIMENT", "TAG_", "PURGED", "COMMITS"))
        or name in ("run_dir", "experiment_dir", "commit_runs_path")
    }
    assert {"RUNS_DIR", "RUN_META", "run_dir", "PURGED_FILE"} <= layout
    offenders = []
    for p in modules("store"):
        for node in ast.walk(ast.parse(p.read_text())):
            named = (
                node.attr
                if isinstance(node, ast.Attribute)
                else node.id
                if isinstance(node, ast.Name)
                else None
            )
            if named in layout:
                offenders.append(f"{p.relative_to(PACKAGE)}:{node.lineno} {named}")
            if isinstance(node, ast.ImportFrom) and node.module == "gitml.constants":
                offenders += [f"{p.relative_to(PACKAGE)}:{node.lineno} {a.name}" for a in node.names if a.name in layout]
    assert offenders == []
