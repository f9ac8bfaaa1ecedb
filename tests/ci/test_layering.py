"""gitml/ci/ imports only what is below it (DESIGN.md: cli -> fluent -> serving -> deploy -> ci
-> projects -> models -> registry -> tracking -> artifacts -> store -> config, entities), lazy
imports too."""

from __future__ import annotations

import ast
from pathlib import Path

CI = Path(__file__).resolve().parents[2] / "gitml" / "ci"
ALLOWED = (
    "gitml.ci", "gitml.projects", "gitml.models", "gitml.registry", "gitml.tracking",
    "gitml.artifacts", "gitml.store", "gitml.config", "gitml.constants", "gitml.exceptions",
    "gitml.escape", "gitml.entities",
)  # fmt: skip


def test_ci_imports_only_go_down() -> None:
    offenders = []
    for path in sorted(CI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "gitml" and node.level == 0:
                names = [f"gitml.{a.name}" for a in node.names]  # from gitml import constants
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith("gitml") and not (name + ".").startswith(
                    tuple(a + "." for a in ALLOWED)
                ):
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
                if name == "click" or name.startswith(("click.", "httpx")):
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert offenders == []
