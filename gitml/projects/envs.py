"""The environment an entry point runs in: this interpreter, or a cached virtualenv / uv / conda env.

Environments are built from the project's `python_env.yaml` (MLflow's format: `python`,
`build_dependencies`, `dependencies`) or `requirements.txt`, with an interpreter already
on the machine, into `<git-common-dir>/gitml/envs/<content hash>`; the same files give
the same folder, which is reused. A folder is complete only once its marker is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.projects.spec import Project

__all__ = ["ENV_MANAGERS", "Environment", "prepare_env"]

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda", "docker")
_DONE = ".gitml-env-complete"
_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


@dataclass(frozen=True)
class Environment:
    """Where the child's `python` is, what goes first on PATH, and the env's content hash."""

    manager: str
    python: str
    bin_dir: str | None = None
    env_hash: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def argv(self, argv: list[str]) -> list[str]:
        """`python ...` runs this environment's interpreter (the image's own in docker)."""
        if self.manager == "docker":
            return argv
        if argv and re.fullmatch(r"python(\d+(\.\d+)?)?", argv[0]):
            return [self.python, *argv[1:]]
        return argv

    def child_env(self, base: dict[str, str]) -> dict[str, str]:
        """The child's environment variables: `base` with this env's bin folder first on PATH."""
        env = dict(base)
        if self.bin_dir:
            env["PATH"] = self.bin_dir + os.pathsep + env.get("PATH", "")
        env.update(self.extra_env)
        return env


def _python_env_spec(project: Project) -> dict[str, Any]:
    """{python, build_dependencies, dependencies} from python_env.yaml or requirements.txt."""
    import yaml

    root = project.root
    if project.env_kind == "python_env":
        path = root / str(project.env_value)
    elif (root / "python_env.yaml").is_file():
        path = root / "python_env.yaml"
    else:
        path = None
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            raise InvalidParameterValue(f"{path.name}: {e}") from e
        if not isinstance(data, dict):
            raise InvalidParameterValue(
                f"{path.name}: must be a mapping with python and dependencies"
            )
        deps = data.get("dependencies") or []
        build = data.get("build_dependencies") or []
        if not isinstance(deps, list) or not isinstance(build, list):
            raise InvalidParameterValue(f"{path.name}: dependencies must be lists")
        py = str(data.get("python") or "")
        return {
            "python": py,
            "build_dependencies": [str(d) for d in build],
            "dependencies": [str(d) for d in deps],
        }
    reqs = root / "requirements.txt"
    return {
        "python": "",
        "build_dependencies": [],
        "dependencies": ["-r requirements.txt"] if reqs.is_file() else [],
    }


def _find_interpreter(version: str) -> str:
    if not version:
        return sys.executable
    if not _VERSION.match(version):
        raise InvalidParameterValue(f"python_env: python {version!r} is not a version like 3.11")
    short = ".".join(version.split(".")[:2])
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    if short == current and (
        version == short or version == ".".join(map(str, sys.version_info[:3]))
    ):
        return sys.executable
    for name in (f"python{short}",):
        exe = shutil.which(name)
        if exe:
            proc = subprocess.run(
                [exe, "-c", "import platform; print(platform.python_version())"],
                capture_output=True,
                text=True,
            )
            found = proc.stdout.strip()
            if proc.returncode == 0 and (
                found == version or found.startswith(version + ".") or version == short
            ):
                return exe
    raise ResourceDoesNotExist(
        f"Python {version} is not installed on this machine: install it (e.g. 'uv python install {version}' "
        f"or 'pyenv install {version}') or change python in python_env.yaml"
    )


def _requirement_files(project: Project, deps: list[str]) -> list[str]:
    texts = []
    for d in deps:
        parts = d.split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            f = (project.root / parts[1]).resolve()
            if not f.is_relative_to(project.root) or not f.is_file():
                raise ResourceDoesNotExist(f"requirements file {parts[1]} not found in the project")
            texts.append(f.read_text(encoding="utf-8", errors="replace"))
    return texts


def prepare_env(project: Project, manager: str, state_dir: Path, log: Any = None) -> Environment:
    """The environment for `manager`, building and caching it on first use."""
    if manager not in ENV_MANAGERS:
        raise InvalidParameterValue(
            f"unknown env manager '{manager}'; choose one of {', '.join(ENV_MANAGERS)}"
        )
    if manager == "local":
        return Environment("local", sys.executable, str(Path(sys.executable).parent))
    if manager == "docker":
        raise InvalidParameterValue(
            "the docker env manager is the docker backend: the runner builds it from docker_env"
        )
    if manager == "conda":
        return _conda_env(project, state_dir)
    spec = _python_env_spec(project)
    interpreter = _find_interpreter(spec["python"])
    texts = _requirement_files(project, spec["dependencies"])
    key = hashlib.sha256(
        json.dumps(
            {"m": manager, "spec": spec, "files": texts, "py": interpreter}, sort_keys=True
        ).encode()
    ).hexdigest()[:24]
    folder = state_dir / "envs" / key
    python = folder / "bin" / "python"
    if (folder / _DONE).is_file():
        return Environment(manager, str(python), str(folder / "bin"), key)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{key}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _build(manager, interpreter, tmp, spec, project.root)
        (tmp / _DONE).write_text(json.dumps(spec))
        if folder.exists():  # another process won the race; use its env
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # venvs hard-code their own path in scripts; python itself finds its prefix from its location
    return Environment(manager, str(python), str(folder / "bin"), key)


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise InvalidParameterValue(f"{what} failed: {tail[0]}")


def _gitml_pth(folder: Path, python: Path) -> None:
    """Make gitml itself importable in the env (the child logs with `import gitml`)."""
    proc = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
    )
    site = Path(proc.stdout.strip())
    if proc.returncode == 0 and site.is_dir():
        paths = {str(Path(__file__).resolve().parent.parent.parent)}  # where gitml is installed
        import yaml

        paths.add(str(Path(yaml.__file__).resolve().parent.parent))
        (site / "gitml-parent.pth").write_text("\n".join(sorted(paths)) + "\n")


def _build(manager: str, interpreter: str, folder: Path, spec: dict[str, Any], root: Path) -> None:
    deps = spec["build_dependencies"] + spec["dependencies"]
    if manager == "uv":
        beside = (
            Path(sys.executable).parent / "uv"
        )  # `pip install uv` puts it beside the interpreter
        uv = shutil.which("uv") or (str(beside) if beside.is_file() else None)
        if not uv:
            raise ResourceDoesNotExist(
                "uv is not installed on this machine: 'pip install uv', or use --env-manager virtualenv"
            )
        _run([uv, "venv", "-q", "--python", interpreter, str(folder)], "uv venv")
        python = folder / "bin" / "python"
        if deps:
            _run(
                [uv, "pip", "install", "-q", "--python", str(python), *_pip_args(deps)],
                "uv pip install",
                root,
            )
    else:
        _run(
            [interpreter, "-m", "venv", *([] if deps else ["--without-pip"]), str(folder)],
            "python -m venv",
        )
        python = folder / "bin" / "python"
        if deps:
            _run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    *_pip_args(deps),
                ],
                "pip install",
                root,
            )
    _gitml_pth(folder, python)


def _pip_args(deps: list[str]) -> list[str]:
    out: list[str] = []
    for d in deps:
        parts = d.split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            out += ["-r", parts[1]]
        elif d.startswith("-"):
            raise InvalidParameterValue(
                f"python_env dependency {d!r}: only '-r FILE' options are allowed"
            )
        else:
            out.append(d)
    return out


def _conda_env(project: Project, state_dir: Path) -> Environment:
    from gitml.projects.conda import conda_prefix, env_python

    def created(prefix: Path) -> None:
        python = env_python(prefix)
        if python != sys.executable:
            _gitml_pth(prefix, Path(python))

    prefix, key, variables = conda_prefix(project, state_dir, created)
    return Environment("conda", env_python(prefix), str(prefix / "bin"), key, variables)
