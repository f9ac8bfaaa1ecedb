"""Configuration, resolved in one place: environment variables and `git config gitml.*`.

MLflow's own variables (`MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_NAME`,
`MLFLOW_EXPERIMENT_ID`, `MLFLOW_RUN_ID`) are honoured beside gitml's, so pipelines
written for MLflow run unchanged; where both spellings are set, the `GITML_` one wins
(for the experiment, the pair: any `GITML_EXPERIMENT_*` replaces both `MLFLOW_EXPERIMENT_*`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitml.constants import DEFAULT_BRANCH, DEFAULT_FLUSH_INTERVAL_S

__all__ = ["Config", "env_tracking_uri", "git_config", "resolve_config", "truthy"]

_TRUE = {"1", "true", "yes", "on"}


def truthy(value: str | None) -> bool:
    """Git's and the shell's spellings of yes."""
    return value is not None and value.strip().lower() in _TRUE


@dataclass(frozen=True)
class Config:
    """Everything gitml reads from the outside world, read once."""

    branch: str = DEFAULT_BRANCH
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S
    autopush: bool = False
    remote: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    run_name: str | None = None
    run_id: str | None = None
    user: str | None = None
    artifact_remote: str | None = None


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if env.get(name):
            return env[name]
    return None


def env_tracking_uri(environ: Mapping[str, str] | None = None) -> str | None:
    """The tracking URI the environment names: `GITML_TRACKING_URI`, else `MLFLOW_TRACKING_URI`.

    Read at each call (not frozen), as MLflow reads its variable, so a script that sets
    `os.environ["MLFLOW_TRACKING_URI"]` before its first call is followed.
    """
    return _first(os.environ if environ is None else environ, "GITML_TRACKING_URI", "MLFLOW_TRACKING_URI")


def git_config(root: Path | str) -> dict[str, str]:
    """All `gitml.*` keys of the repository's Git configuration (lower-cased names)."""
    proc = subprocess.run(
        ["git", "config", "--get-regexp", r"^gitml\."],
        cwd=root,
        capture_output=True,
        text=True,
    )
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        out[key.lower()] = value
    return out


def _login_name(env: Mapping[str, str]) -> str | None:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if env.get(name):
            return env[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return None


def resolve_config(root: Path | str | None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the frozen config from `environ` (default: os.environ) and the repo's git config."""
    env = os.environ if environ is None else environ
    git = git_config(root) if root is not None else {}

    def pick(env_name: str, git_name: str | None = None) -> str | None:
        if env.get(env_name):
            return env[env_name]
        return git.get(git_name) if git_name else None

    # The experiment is chosen by a pair (name, id): gitml's pair replaces MLflow's whole,
    # so GITML_EXPERIMENT_ID=3 is not checked against an MLFLOW_EXPERIMENT_NAME from CI.
    if env.get("GITML_EXPERIMENT_NAME") or env.get("GITML_EXPERIMENT_ID"):
        exp_name, exp_id = env.get("GITML_EXPERIMENT_NAME") or None, env.get("GITML_EXPERIMENT_ID") or None
    else:
        exp_name, exp_id = env.get("MLFLOW_EXPERIMENT_NAME") or None, env.get("MLFLOW_EXPERIMENT_ID") or None
    interval = pick("GITML_FLUSH_INTERVAL", "gitml.flushinterval")
    autopush = pick("GITML_AUTOPUSH", "gitml.autopush")
    return Config(
        branch=pick("GITML_BRANCH", "gitml.branch") or DEFAULT_BRANCH,
        flush_interval_s=float(interval) if interval else DEFAULT_FLUSH_INTERVAL_S,
        autopush=truthy(autopush),
        remote=pick("GITML_REMOTE", "gitml.remote"),
        experiment_name=exp_name,
        experiment_id=exp_id,
        run_name=pick("GITML_RUN_NAME"),
        run_id=_first(env, "GITML_RUN_ID", "MLFLOW_RUN_ID"),
        user=pick("GITML_USER") or _login_name(env),
        artifact_remote=pick("GITML_ARTIFACT_REMOTE", "gitml.artifactremote"),
    )
