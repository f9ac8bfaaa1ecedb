"""`--env-manager conda`: the project's `conda_env` file built into a cached conda prefix.

The file (MLflow's `conda.yaml`: `name`, `channels`, `dependencies` with an optional
`pip:` list, `variables`) is read with the bounded loader and checked before any conda
program sees it: a pip line may not be an option (`--index-url`, `-e`, ...) other than
`-r FILE`, and `prefix` is refused (gitml chooses where the environment goes). The
prefix is `<git-common-dir>/gitml/envs/<content hash>`: the same file with the same conda
program gives the same folder, which is reused once its marker is written. conda,
mamba and micromamba are found on PATH, in that order; none gives one line saying so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.projects.spec import Project
from gitml.projects.yamlmarks import MAX_BYTES, load_located

__all__ = ["CONDA_PROGRAMS", "conda_env_spec", "conda_prefix", "env_python", "find_conda"]

CONDA_PROGRAMS = ("conda", "mamba", "micromamba")
DONE = ".gitml-env-complete"
_KEYS = {"name", "channels", "dependencies", "variables"}


def find_conda() -> str:
    """The first of conda, mamba, micromamba on PATH; a one-line error when there is none."""
    for name in CONDA_PROGRAMS:
        exe = shutil.which(name)
        if exe:
            return exe
    raise ResourceDoesNotExist(
        "conda is not installed on this machine (none of conda, mamba, micromamba is on PATH): "
        "install Miniforge or micromamba, or run with --env-manager virtualenv, uv or local"
    )


def conda_env_spec(project: Project) -> tuple[Path, dict[str, Any], str]:
    """(file, checked contents, text) of the project's `conda_env` file."""
    if project.env_kind != "conda_env":
        raise InvalidParameterValue("--env-manager conda needs conda_env in the MLproject file")
    rel = str(project.env_value)
    file = (project.root / rel).resolve()
    if not file.is_relative_to(project.root.resolve()) or not file.is_file():
        raise ResourceDoesNotExist(f"conda_env file {rel} not found in the project")
    if file.stat().st_size > MAX_BYTES:
        raise InvalidParameterValue(f"{rel}: larger than {MAX_BYTES} bytes")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidParameterValue(f"{rel}: cannot be read: {e}") from e
    data = load_located(text, rel).data or {}
    if not isinstance(data, dict):
        raise InvalidParameterValue(f"{rel}: must be a mapping with channels and dependencies")
    unknown = sorted(set(map(str, data)) - _KEYS)
    if unknown:
        raise InvalidParameterValue(
            f"{rel}: unknown key '{unknown[0]}' (a conda_env file has {', '.join(sorted(_KEYS))})"
        )
    channels = data.get("channels") or []
    deps = data.get("dependencies") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise InvalidParameterValue(f"{rel}: channels must be a list of names")
    if not isinstance(deps, list):
        raise InvalidParameterValue(f"{rel}: dependencies must be a list")
    for dep in deps:
        if isinstance(dep, dict) and set(dep) == {"pip"} and isinstance(dep["pip"], list):
            for line in dep["pip"]:
                _check_pip_line(rel, line)
        elif not isinstance(dep, str | int | float) or str(dep).startswith("-"):
            raise InvalidParameterValue(
                f"{rel}: dependency {dep!r} is neither a package spec nor a pip: list"
            )
    variables = data.get("variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(v, str | int | float) for v in variables.values()
    ):
        raise InvalidParameterValue(f"{rel}: variables must map names to values")
    return file, data, text


def _check_pip_line(rel: str, line: Any) -> None:
    if not isinstance(line, str):
        raise InvalidParameterValue(f"{rel}: pip requirement {line!r} is not a string")
    parts = line.split()
    if line.startswith("-") and not (len(parts) == 2 and parts[0] in ("-r", "--requirement")):
        raise InvalidParameterValue(
            f"{rel}: pip requirement {line!r}: only '-r FILE' options are allowed"
        )


def _create_argv(conda: str, prefix: Path, file: Path) -> list[str]:
    """The create command: micromamba takes the file on `create`, conda and mamba on `env create`."""
    if Path(conda).name.startswith("micromamba"):
        return [conda, "create", "-y", "-q", "-p", str(prefix), "-f", str(file)]
    return [conda, "env", "create", "-q", "-p", str(prefix), "-f", str(file)]


def conda_prefix(
    project: Project, state_dir: Path, created: Callable[[Path], None] | None = None
) -> tuple[Path, str, dict[str, str]]:
    """(prefix, content hash, activation variables), creating the prefix on first use.

    `created(prefix)` runs once after a create succeeds, before the marker is written.

    A prefix is not relocatable, so it is created in place; a failed or interrupted
    create leaves no marker, and the next run starts that folder again from nothing.
    """
    file, data, text = conda_env_spec(project)
    conda = find_conda()
    key = hashlib.sha256(f"conda\0{Path(conda).name}\0{text}".encode()).hexdigest()[:24]
    prefix = state_dir / "envs" / key
    if not (prefix / DONE).is_file():
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            _create_argv(conda, prefix, file),
            capture_output=True,
            text=True,
            cwd=project.root,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            shutil.rmtree(prefix, ignore_errors=True)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise InvalidParameterValue(f"{Path(conda).name} env create failed: {tail[0]}")
        if created is not None:
            created(prefix)
        (prefix / DONE).write_text(f"{Path(conda).name}\n")
    variables = {str(k): str(v) for k, v in (data.get("variables") or {}).items()}
    variables.update({"CONDA_PREFIX": str(prefix), "CONDA_DEFAULT_ENV": str(prefix)})
    return prefix, key, variables


def env_python(prefix: Path) -> str:
    """The prefix's own interpreter, or this one when the environment has no Python."""
    python = prefix / "bin" / "python"
    return str(python) if os.access(python, os.X_OK) else sys.executable
