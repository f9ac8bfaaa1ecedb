"""The MLproject file as MLflow reads it, validated: names, environments, entry points.

Validation is strict by default (unknown keys are errors with "did you mean"), and every
error names `file:line:column`. `lenient=True` turns unknown keys into warnings, which
the caller shows. Extra keys MLflow ignores (`bool`/`choices`/`min`/`max` on parameters,
`depends_on`/`resources`/`shell` on entry points) keep a file runnable by `mlflow run`.
The same rules, as JSON Schema, are in `schemas/mlproject.schema.json`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.projects.yamlmarks import Located, load_located

__all__ = [
    "PARAM_TYPES",
    "PROJECT_FILES",
    "EntryPoint",
    "Parameter",
    "Project",
    "did_you_mean",
    "find_project_file",
    "load_project",
]

PROJECT_FILES = ("MLproject", "MLproject.yaml", "MLproject.yml")
PARAM_TYPES = ("string", "float", "int", "path", "uri", "bool")
ENV_KEYS = ("python_env", "conda_env", "docker_env")
_TOP_KEYS = ("name", *ENV_KEYS, "entry_points")
_ENTRY_KEYS = ("parameters", "command", "depends_on", "resources", "shell")
_PARAM_KEYS = ("type", "default", "choices", "min", "max")
_DOCKER_KEYS = ("image", "volumes", "environment", "run_params")
_RESOURCE_KEYS = ("gpu", "cpu", "memory")
_NO_DEFAULT = object()


def did_you_mean(word: str, candidates: Any) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of an entry point."""

    name: str
    type: str = "string"
    default: Any = _NO_DEFAULT
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None

    @property
    def has_default(self) -> bool:
        """Whether the file gives a default."""
        return self.default is not _NO_DEFAULT


@dataclass(frozen=True)
class EntryPoint:
    """A named command with its parameters and the extra keys gitml reads."""

    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)
    shell: bool = False
    where: str = ""


@dataclass(frozen=True)
class Project:
    """A project folder: its MLproject file (None when there is none) and what it declares."""

    root: Path
    file: Path | None
    name: str | None = None
    env_kind: str | None = None  # python_env / conda_env / docker_env
    env_value: Any = None
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def entry_point(self, name: str) -> EntryPoint:
        """The entry point called `name`; a `.py`/`.sh` file of the project runs as one too."""
        if name in self.entry_points:
            return self.entry_points[name]
        if name.endswith((".py", ".sh")):
            script = (self.root / name).resolve()
            if not script.is_file():
                raise ResourceDoesNotExist(f"entry point script {name} not found in {self.root}")
            runner = "python" if name.endswith(".py") else "bash"
            return EntryPoint(name=name, command=f"{runner} {_quote(name)}")
        if self.file is None:
            raise ResourceDoesNotExist(
                f"no MLproject file in {self.root} and no entry point '{name}': "
                "add an MLproject, or give a script with -e train.py"
            )
        where = f"{self.file.name}: "
        known = ", ".join(sorted(self.entry_points)) or "none"
        raise ResourceDoesNotExist(
            f"{where}no entry point '{name}'{did_you_mean(name, self.entry_points)}; entry points: {known}"
        )


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def find_project_file(root: Path) -> Path | None:
    """The project's MLproject file; two of them is an error (which one would run?)."""
    found = [root / n for n in PROJECT_FILES if (root / n).is_file()]
    if len(found) > 1:
        raise InvalidParameterValue(
            f"{root}: several project files ({', '.join(p.name for p in found)}); keep one"
        )
    return found[0] if found else None


def load_project(root: Path | str, lenient: bool = False, display: str | None = None) -> Project:
    """Read and validate the project in folder `root` (no MLproject file: scripts only)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise ResourceDoesNotExist(f"project folder {root} does not exist")
    file = find_project_file(root)
    if file is None:
        return Project(root=root, file=None)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidParameterValue(f"{file}: cannot read: {e}") from e
    loc = load_located(text, display or _display(file))
    return _Validator(loc, root, file, lenient).project()


def _display(file: Path) -> str:
    import os

    rel = os.path.relpath(file)
    return rel if not rel.startswith("..") else str(file)


class _Validator:
    def __init__(self, loc: Located, root: Path, file: Path, lenient: bool) -> None:
        self.loc, self.root, self.file, self.lenient = loc, root, file, lenient
        self.warnings: list[str] = []

    def fail(self, path: tuple[Any, ...], msg: str, key: bool = False) -> InvalidParameterValue:
        return InvalidParameterValue(f"{self.loc.where(path, key)}: {msg}")

    def mapping(self, value: Any, path: tuple[Any, ...], what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"{what} must be a mapping, not {type(value).__name__}")
        return {str(k): v for k, v in value.items()}

    def keys(
        self, data: dict[str, Any], allowed: tuple[str, ...], path: tuple[Any, ...], what: str
    ) -> None:
        for key in data:
            if key not in allowed:
                msg = f"unknown key '{key}' in {what}{did_you_mean(key, allowed)}"
                if not self.lenient:
                    raise self.fail(path + (key,), msg + " (--lenient to ignore it)", key=True)
                self.warnings.append(f"{self.loc.where(path + (key,), True)}: {msg}; ignored")

    def project(self) -> Project:
        data = self.loc.data
        if data is None:
            data = {}
        top = self.mapping(data, (), "an MLproject file")
        self.keys(top, _TOP_KEYS, (), "the project")
        name = top.get("name")
        if name is not None and not isinstance(name, str | int | float):
            raise self.fail(("name",), "name must be a string")
        envs = [k for k in ENV_KEYS if k in top]
        if len(envs) > 1:
            raise self.fail(
                (envs[1],), f"several environment keys ({', '.join(envs)}); a project has one"
            )
        env_kind = envs[0] if envs else None
        env_value = top.get(env_kind) if env_kind else None
        if env_kind in ("python_env", "conda_env"):
            if not isinstance(env_value, str) or not env_value:
                raise self.fail((env_kind,), f"{env_kind} must name a file of the project")
            target = (self.root / env_value).resolve()
            if not target.is_relative_to(self.root.resolve()) or not target.is_file():
                raise self.fail(
                    (env_kind,), f"{env_kind} file {env_value} not found in the project"
                )
        elif env_kind == "docker_env":
            d = self.mapping(env_value, ("docker_env",), "docker_env")
            self.keys(d, _DOCKER_KEYS, ("docker_env",), "docker_env")
            if not isinstance(d.get("image"), str) or not d["image"]:
                raise self.fail(("docker_env",), "docker_env needs an image")
            env_value = d
        raw_eps = self.mapping(top.get("entry_points"), ("entry_points",), "entry_points")
        eps = {str(k): self.entry_point(str(k), v) for k, v in raw_eps.items()}
        for ep in eps.values():
            for dep in ep.depends_on:
                if dep not in eps:
                    raise self.fail(
                        ("entry_points", ep.name, "depends_on"),
                        f"entry point '{ep.name}' depends on unknown step '{dep}'{did_you_mean(dep, eps)}",
                    )
        return Project(
            root=self.root,
            file=self.file,
            name=None if name is None else str(name),
            env_kind=env_kind,
            env_value=env_value,
            entry_points=eps,
            warnings=tuple(self.warnings),
        )

    def entry_point(self, name: str, value: Any) -> EntryPoint:
        path: tuple[Any, ...] = ("entry_points", name)
        ep = self.mapping(value, path, f"entry point '{name}'")
        self.keys(ep, _ENTRY_KEYS, path, f"entry point '{name}'")
        command = ep.get("command")
        if not isinstance(command, str) or not command.strip():
            raise self.fail(
                path + ("command",) if "command" in ep else path,
                f"entry point '{name}' needs a command",
            )
        params_raw = self.mapping(ep.get("parameters"), path + ("parameters",), "parameters")
        params = {k: self.parameter(k, v, path + ("parameters", k)) for k, v in params_raw.items()}
        deps = ep.get("depends_on") or []
        if isinstance(deps, str):
            deps = [deps]
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise self.fail(
                path + ("depends_on",), "depends_on must be a list of entry point names"
            )
        resources = self.mapping(ep.get("resources"), path + ("resources",), "resources")
        self.keys(resources, _RESOURCE_KEYS, path + ("resources",), "resources")
        gpu = resources.get("gpu")
        if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
            raise self.fail(
                path + ("resources", "gpu"), "resources.gpu must be a whole number of GPUs"
            )
        for k in ("cpu", "memory"):
            if k in resources and not isinstance(resources[k], str | int | float):
                raise self.fail(
                    path + ("resources", k), f"resources.{k} must be a quantity like 2 or '4Gi'"
                )
        shell = ep.get("shell", False)
        if not isinstance(shell, bool):
            raise self.fail(path + ("shell",), "shell must be true or false")
        return EntryPoint(
            name=name,
            command=command,
            parameters=params,
            depends_on=tuple(deps),
            resources=resources,
            shell=shell,
            where=self.loc.where(path + ("command",)),
        )

    def parameter(self, name: str, value: Any, path: tuple[Any, ...]) -> Parameter:
        if isinstance(value, str):  # the short form `alpha: float`
            value = {"type": value}
        p = self.mapping(value, path, f"parameter '{name}'")
        self.keys(p, _PARAM_KEYS, path, f"parameter '{name}'")
        ptype = p.get("type", "string")
        if ptype not in PARAM_TYPES:
            raise self.fail(
                path + ("type",) if "type" in p else path,
                f"parameter '{name}' has unknown type '{ptype}'{did_you_mean(ptype, PARAM_TYPES)}; "
                f"types: {', '.join(PARAM_TYPES)}",
            )
        choices = p.get("choices")
        if choices is not None and (not isinstance(choices, list) or not choices):
            raise self.fail(path + ("choices",), "choices must be a non-empty list")
        bounds: dict[str, float | None] = {}
        for k in ("min", "max"):
            b = p.get(k)
            if b is not None and (isinstance(b, bool) or not isinstance(b, int | float)):
                raise self.fail(path + (k,), f"{k} must be a number")
            bounds[k] = b
        param = Parameter(
            name=name,
            type=ptype,
            default=p["default"] if "default" in p and p["default"] is not None else _NO_DEFAULT,
            choices=tuple(choices) if choices else None,
            min=bounds["min"],
            max=bounds["max"],
        )
        if param.has_default and ptype not in ("path", "uri"):
            from gitml.projects.params import coerce

            try:
                coerce(param, param.default)
            except InvalidParameterValue as e:
                raise self.fail(path + ("default",), f"default: {e}") from e
        return param
