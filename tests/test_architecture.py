"""Layering, enforced over the source: imports only go down (cli -> library -> store)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gitml"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def modules(sub: str = "") -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py")) if sub else sorted(PACKAGE.rglob("*.py"))


def test_only_the_cli_imports_click() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in modules()
        if "cli" not in p.relative_to(PACKAGE).parts and any(m == "click" or m.startswith("click.") for m in imports_of(p))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("store", ("gitml.tracking", "gitml.registry", "gitml.models", "gitml.serving", "gitml.cli", "gitml.artifacts")),
        ("tracking", ("gitml.cli", "gitml.serving")),
        ("artifacts", ("gitml.cli", "gitml.serving", "gitml.registry")),
        ("models", ("gitml.cli", "gitml.serving")),
        ("registry", ("gitml.cli", "gitml.serving")),
        ("serving", ("gitml.cli",)),
    ],
)
def test_imports_only_go_down(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = []
    for p in modules(layer):
        for m in imports_of(p):
            if m.startswith(forbidden):
                offenders.append(f"{p.relative_to(PACKAGE)} imports {m}")
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
            isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)
            for n in tree.body
        ):
            missing.append(f"{rel}: no __all__")
    assert missing == []
