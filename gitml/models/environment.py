"""A model's environment files, as MLflow writes them beside `requirements.txt`:
`python_env.yaml` (for virtualenv/uv) and `conda.yaml` (for conda), both named under the
`python_function` flavor's `env` in MLmodel.

`python_env.yaml` holds this interpreter's version, the build tools (pip, setuptools, wheel;
pinned to what is installed) and `-r requirements.txt`. `conda.yaml` holds `name`, `channels`
and `dependencies`: `python=X.Y.Z`, `pip<=` the installed pip, and the model's pip
requirements. A user's `conda_env=` (a dict, or the path of its YAML file) is checked, bounded,
and written as given, its `pip:` list replaced by the requirements read from it (pinned), so the
three files agree.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gitml.exceptions import CorruptMetadata, InvalidParameterValue

__all__ = [
    "CONDA_FILE",
    "MAX_CONDA_BYTES",
    "PYTHON_ENV_FILE",
    "PipRequirements",
    "env_entry",
    "installed_version",
    "read_conda_env",
    "write_environment",
]

CONDA_FILE = "conda.yaml"
PYTHON_ENV_FILE = "python_env.yaml"
MAX_CONDA_BYTES = 1 << 20  # a conda environment file is a few KB; 1 MiB is generous
_MAX_ITEMS = 10_000  # dependencies, channels, pip requirements, variables
_MAX_TEXT = 1_000  # one entry
_KEYS = ("name", "channels", "dependencies", "variables")


class PipRequirements(list[str]):
    """pip requirements read from a user's conda environment, which travels with them (its
    content becomes the model's conda.yaml)."""

    def __init__(self, requirements: Sequence[str], conda: dict[str, Any]) -> None:
        super().__init__(requirements)
        self.conda = conda


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or "\n" in value:
        raise InvalidParameterValue(f"conda_env: {what} must be a non-empty one-line string, got {str(value)[:80]!r}")
    return value


def _texts(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > _MAX_ITEMS:
        raise InvalidParameterValue(f"conda_env: {what} must be a list (at most {_MAX_ITEMS} entries)")
    return [_text(v, f"each of {what}") for v in value]


def _check(env: Any) -> dict[str, Any]:
    if not isinstance(env, Mapping):
        raise InvalidParameterValue("conda_env must be a dict or the path of a conda environment YAML file")
    unknown = [str(k) for k in env if k not in (*_KEYS, "prefix")]
    if unknown:
        raise InvalidParameterValue(
            f"conda_env has unknown key(s) {', '.join(sorted(unknown))[:200]}: a conda environment "
            f"holds {', '.join(_KEYS)}"
        )
    out: dict[str, Any] = {}  # `prefix` (a path of the machine that exported it) is left out
    if env.get("name") is not None:
        out["name"] = _text(env["name"], "name")
    if env.get("channels") is not None:
        out["channels"] = _texts(env["channels"], "channels")
    deps: list[Any] = []
    raw = env.get("dependencies") or []
    if not isinstance(raw, list) or len(raw) > _MAX_ITEMS:
        raise InvalidParameterValue(f"conda_env: dependencies must be a list (at most {_MAX_ITEMS} entries)")
    for dep in raw:
        if isinstance(dep, Mapping):
            if set(dep) != {"pip"}:
                raise InvalidParameterValue("conda_env: a mapping among dependencies may only be {pip: [...]}")
            deps.append({"pip": _texts(dep["pip"], "the pip dependencies")})
        else:
            deps.append(_text(dep, "each dependency"))
    out["dependencies"] = deps
    if env.get("variables") is not None:
        variables = env["variables"]
        if not isinstance(variables, Mapping) or len(variables) > _MAX_ITEMS:
            raise InvalidParameterValue("conda_env: variables must be a mapping of names to strings")
        out["variables"] = {_text(k, "a variable name"): _text(str(v), "a variable value") for k, v in variables.items()}
    return out


def read_conda_env(conda_env: Any) -> PipRequirements:
    """The pip requirements of a conda environment (a dict, or the path of its YAML file: at
    most 1 MiB, no anchors or aliases), carrying the checked environment."""
    from gitml.store.bounded import load_yaml

    env = conda_env
    if isinstance(conda_env, str | Path):
        try:
            path = Path(conda_env)
            if path.stat().st_size > MAX_CONDA_BYTES:
                raise InvalidParameterValue(f"conda_env {str(conda_env)!r} is larger than {MAX_CONDA_BYTES} bytes")
            env = load_yaml(path.read_bytes(), f"conda_env {str(conda_env)!r}", max_bytes=MAX_CONDA_BYTES)
        except OSError as e:
            raise InvalidParameterValue(f"cannot read conda_env {str(conda_env)!r}: {e}") from e
        except CorruptMetadata as e:
            raise InvalidParameterValue(f"cannot read conda_env: {e}") from e
    checked = _check(env)
    pip = [p for dep in checked["dependencies"] if isinstance(dep, dict) for p in dep["pip"]]
    return PipRequirements(pip, checked)


@functools.lru_cache(maxsize=256)
def installed_version(dist: str) -> str | None:
    """The installed version of distribution `dist` without its local build tag (`+cpu`, which
    names a wheel index, not a version pip resolves), or None. Cached: each lookup scans every
    distribution on sys.path (about 10 ms), and a save asks for several."""
    try:
        return importlib.metadata.version(dist).split("+")[0]
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def _dump(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False))


def write_environment(model_dir: Path, requirements: Sequence[str], pip: Sequence[str] | None) -> None:
    """Write python_env.yaml and conda.yaml for a model whose requirements.txt holds
    `requirements`; `pip` is what the flavor was given (a `PipRequirements` when it came from
    a conda environment, whose content is kept)."""
    python = platform.python_version()
    build = [f"{d}=={v}" if (v := installed_version(d)) else d for d in ("pip", "setuptools", "wheel")]
    _dump(
        model_dir / PYTHON_ENV_FILE,
        {"python": python, "build_dependencies": build, "dependencies": ["-r requirements.txt"]},
    )
    user = pip.conda if isinstance(pip, PipRequirements) else None
    if user is not None:
        conda: dict[str, Any] = dict(user)
        deps = [d for d in conda["dependencies"] if not isinstance(d, dict)]
        if requirements:
            if not any(re.split(r"[=<>!~ ]", d, maxsplit=1)[0] == "pip" for d in deps):
                deps.append("pip")
            deps.append({"pip": list(requirements)})
        conda["dependencies"] = deps
        conda.setdefault("name", "gitml-env")
    else:
        pip_version = installed_version("pip")
        deps = [f"python={python}", f"pip<={pip_version}" if pip_version else "pip"]
        if requirements:
            deps.append({"pip": list(requirements)})
        conda = {"name": "gitml-env", "channels": ["conda-forge"], "dependencies": deps}
    _dump(model_dir / CONDA_FILE, {k: conda[k] for k in ("name", "channels", "dependencies", "variables") if k in conda})


def env_entry() -> dict[str, str]:
    """The `env` of the python_function flavor in MLmodel: which file serves which manager."""
    return {"conda": CONDA_FILE, "virtualenv": PYTHON_ENV_FILE}
