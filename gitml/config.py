"""Configuration, resolved in one place: environment variables and `git config gitml.*`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitml.constants import DEFAULT_BRANCH, DEFAULT_FLUSH_INTERVAL_S

__all__ = [
    "Config",
    "env_flag",
    "env_value",
    "git_config",
    "resolve_config",
    "set_tracking_uri",
    "tracking_uri",
    "truthy",
]

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

    interval = pick("GITML_FLUSH_INTERVAL", "gitml.flushinterval")
    autopush = pick("GITML_AUTOPUSH", "gitml.autopush")
    return Config(
        branch=pick("GITML_BRANCH", "gitml.branch") or DEFAULT_BRANCH,
        flush_interval_s=float(interval) if interval else DEFAULT_FLUSH_INTERVAL_S,
        autopush=truthy(autopush),
        remote=pick("GITML_REMOTE", "gitml.remote"),
        experiment_name=pick("GITML_EXPERIMENT_NAME"),
        experiment_id=pick("GITML_EXPERIMENT_ID"),
        run_name=pick("GITML_RUN_NAME"),
        run_id=pick("GITML_RUN_ID"),
        user=pick("GITML_USER") or _login_name(env),
        artifact_remote=pick("GITML_ARTIFACT_REMOTE", "gitml.artifactremote"),
    )


# The tracking URI is configuration, not run state: `gitml.set_tracking_uri` sets it for the
# process, else GITML_TRACKING_URI names it, else (None) the working directory's repository.
_tracking_uri: str | None = None


def set_tracking_uri(uri: str | None) -> None:
    """Set (None: unset) the process's tracking URI; `gitml.set_tracking_uri` validates it first."""
    global _tracking_uri
    _tracking_uri = uri


def tracking_uri(environ: Mapping[str, str] | None = None) -> str | None:
    """The tracking URI set for this process, else GITML_TRACKING_URI, else None (the cwd's repo)."""
    env = os.environ if environ is None else environ
    return _tracking_uri or env.get("GITML_TRACKING_URI") or None


def env_value(name: str) -> str | None:
    """One environment variable (None when unset or empty): the library's only door to the environment."""
    return os.environ.get(name) or None


def env_flag(name: str) -> bool:
    """Whether environment variable `name` says yes (1, true, yes, on)."""
    return truthy(os.environ.get(name))
