"""`gitml ci check`: the pipeline files gitml wrote still fit the repository.

For each file that carries gitml's marker: every `gitml run ... -e ENTRY` names an entry
point of the MLproject (or a script of the project), and every `--stage STAGE` is a stage
of the registry's vocabulary (MLflow's stages, or a stage some registry tag already uses).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from gitml.exceptions import GitMLError

__all__ = ["CheckResult", "check_pipelines"]

_CANDIDATES = (".gitlab-ci.yml", ".github/workflows", ".github/actions/gitml-setup/action.yml")
_RUN = re.compile(r"gitml run (\S+) -e (\S+)")
_STAGE = re.compile(r"--stage (\S+)")


@dataclass(frozen=True)
class CheckResult:
    """The generated files found, and what no longer fits (empty: all is well)."""

    files: tuple[str, ...]
    problems: tuple[str, ...]


def _generated(root: Path) -> list[Path]:
    from gitml.ci.init import is_generated

    found: list[Path] = []
    for rel in _CANDIDATES:
        path = root / rel
        paths = sorted(path.glob("*.y*ml")) if path.is_dir() else [path] if path.is_file() else []
        for p in paths:
            try:
                if is_generated(p.read_text(encoding="utf-8")):
                    found.append(p)
            except (OSError, UnicodeDecodeError):
                continue
    return found


def _word(token: str) -> str:
    try:
        parts = shlex.split(token)
    except ValueError:
        return token
    return parts[0] if parts else token


def _known_stages(root: Path) -> set[str]:
    from gitml.registry.access import open_registry
    from gitml.registry.tags import MLFLOW_STAGES

    stages = {s.lower() for s in MLFLOW_STAGES} | set(MLFLOW_STAGES.values())
    try:
        state = open_registry(str(root)).state()
    except GitMLError:
        return stages
    for model in state.models.values():
        for version in model.versions.values():
            stages.update(version.stages)
    return stages


def check_pipelines(root: Path | str) -> CheckResult:
    """Check the generated pipeline files of the repository at `root`."""
    from gitml.exceptions import ResourceDoesNotExist
    from gitml.projects.spec import load_project

    root = Path(root)
    files = _generated(root)
    problems: list[str] = []
    project = None
    stages: set[str] | None = None
    for path in files:
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            for m in _RUN.finditer(line):
                entry = _word(m.group(2))
                if project is None:
                    try:
                        project = load_project(root, lenient=True)
                    except GitMLError as e:
                        problems.append(f"{rel}:{n}: the project does not load: {e.message}")
                        break
                try:
                    project.entry_point(entry)
                except ResourceDoesNotExist as e:
                    problems.append(f"{rel}:{n}: entry point {entry!r}: {e.message}")
            for m in _STAGE.finditer(line):
                stage = _word(m.group(1))
                if stages is None:
                    stages = _known_stages(root)
                if stage.lower() not in stages and stage not in stages:
                    known = ", ".join(sorted(stages))
                    problems.append(
                        f"{rel}:{n}: stage {stage!r} is not in the registry's vocabulary ({known})"
                    )
    return CheckResult(tuple(p.relative_to(root).as_posix() for p in files), tuple(problems))
