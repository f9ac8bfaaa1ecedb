"""One step of `gitml run`, fully checked before anything is written: its parameters, its
command, its environment and its provenance, and the cache key they make together."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gitml.projects.envs import Environment
from gitml.projects.params import build_argv, resolve_params
from gitml.projects.provenance import (
    Provenance,
    code_provenance,
    data_provenance,
    env_provenance,
    hash_path,
)
from gitml.projects.spec import EntryPoint, Project

__all__ = ["StepPlan", "code_root", "logged_params", "prepare_step", "repo_relative"]


@dataclass
class StepPlan:
    """One step, fully checked: its command, params, environment and provenance."""

    entry: EntryPoint
    argv: list[str]
    final: dict[str, str]
    extra: dict[str, str]
    given: dict[str, str]
    env: Environment
    provenance: Provenance
    cache_key: str


def prepare_step(
    project: Project,
    entry: EntryPoint,
    given: dict[str, str],
    env: Environment,
    repo_root: Path,
    state_dir: Path,
    extras_allowed: bool = True,
) -> StepPlan:
    """Check the parameters, build the command, and take the provenance of one step."""
    if not extras_allowed:
        given = {k: v for k, v in given.items() if k in entry.parameters}
    final, extra = resolve_params(entry, given, project.root)
    argv = env.argv(build_argv(entry, final, extra))
    changed: set[str] = set()
    code, patch, untracked = code_provenance(repo_root, changed)
    data = data_provenance(
        repo_root, project.root, untracked, changed, state_dir / "pointercache.json"
    )
    for p in entry.parameters.values():
        if p.type == "path" and p.name in final and os.path.exists(final[p.name]):
            path = Path(final[p.name])
            rel = repo_relative(path, repo_root)
            if rel is not None and any(rel == k or rel.startswith(k + "/") for k in data):
                continue  # DVC already hashed it
            data[rel or str(path)] = hash_path(path, state_dir / "hashcache.json")
    prov = Provenance(code=code, data=data, patch=patch)
    if env.manager == "docker":  # the image's id stands for the whole environment
        prov.env = {"env_manager": "docker", "env_hash": env.env_hash, "image_id": env.env_hash}
    else:
        prov.env = env_provenance(env.python, env.manager, env.env_hash)
    prov.code["project_dir"] = repo_relative(project.root, repo_root) or "."
    key_src = {
        "tree": code.get("tree"),
        "project": prov.code["project_dir"],
        "entry": entry.name,
        "params": {**final, **extra},
        "data": prov.data_hash(),
        "env": [prov.env.get("python"), prov.env.get("packages_sha256"), env.env_hash],
    }
    cache_key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()
    return StepPlan(entry, argv, final, extra, dict(given), env, prov, cache_key)


def logged_params(plan: StepPlan) -> dict[str, str]:
    """The params as `mlflow run` logs them: shell-quoted values, `path` values as given."""
    out: dict[str, str] = {}
    for name, value in plan.final.items():
        p = plan.entry.parameters.get(name)
        if p is not None and p.type == "path":
            value = plan.given.get(name, str(p.default) if p.has_default else value)
        out[name] = shlex.quote(value)
    out.update({k: shlex.quote(v) for k, v in plan.extra.items()})
    return out


def code_root(folder: Path) -> Path:
    """The top of the Git working tree holding the project (a worktree when reproducing)."""
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True
    )
    if proc.returncode != 0:
        from gitml.exceptions import RepositoryError

        raise RepositoryError(f"project folder {folder} is not inside a Git repository")
    return Path(proc.stdout.strip())


def repo_relative(path: Path, root: Path) -> str | None:
    """`path` relative to `root` as a POSIX string, or None when it lies outside."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
