"""Configuration, resolved in one place: environment variables and `git config gitml.*`.

MLflow's own variables (`MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_NAME`,
`MLFLOW_EXPERIMENT_ID`, `MLFLOW_RUN_ID`) are honoured beside gitml's, so pipelines
written for MLflow run unchanged; where both spellings are set, the `GITML_` one wins
(for the experiment, the pair: any `GITML_EXPERIMENT_*` replaces both `MLFLOW_EXPERIMENT_*`).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitml.constants import DEFAULT_BRANCH, DEFAULT_FLUSH_INTERVAL_S

__all__ = [
    "CIConfig",
    "Config",
    "child_env",
    "env_flag",
    "env_has",
    "env_tracking_uri",
    "env_value",
    "swap_env",
    "git_config",
    "resolve_ci_config",
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
    async_logging: bool = False  # MLFLOW_ENABLE_ASYNC_LOGGING: what synchronous=None means


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


def ensure_keras_backend(default: str = "torch") -> str:
    """The Keras backend: `KERAS_BACKEND` when the user set it (tensorflow, jax, torch), else
    `default`, written to the environment before Keras is imported (Keras reads it then, once)."""
    return os.environ.setdefault("KERAS_BACKEND", default)


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
        async_logging=truthy(env.get("MLFLOW_ENABLE_ASYNC_LOGGING")),
    )


GITHUB_PUBLIC_API = "https://api.github.com"


@dataclass(frozen=True)
class CIConfig:
    """What a CI job tells gitml about itself (GitHub Actions or GitLab CI), read once.

    `platform` is "github", "gitlab" or None (not in a known CI); the comment, summary and
    deployment code receive this object and never read the environment themselves.
    """

    platform: str | None = None
    # GitHub Actions
    github_api_url: str = GITHUB_PUBLIC_API
    github_server_url: str = "https://github.com"
    github_repository: str | None = None
    github_token: str | None = None
    github_event_path: str | None = None
    github_step_summary: str | None = None
    github_run_id: str | None = None
    # GitLab CI
    gitlab_api_url: str | None = None
    gitlab_project_id: str | None = None
    gitlab_mr_iid: str | None = None
    gitlab_token: str | None = None
    gitlab_pipeline_url: str | None = None
    gitlab_project_url: str | None = None
    # who the comment's author is when the token cannot say (`GITML_CI_COMMENT_USER`)
    comment_user: str | None = None
    # a pull request's target branch (GITHUB_BASE_REF, CI_MERGE_REQUEST_TARGET_BRANCH_NAME):
    # `gitml diff` and the comment compare with its merge base
    base_branch: str | None = None

    @property
    def pipeline_url(self) -> str | None:
        """The URL of this pipeline run, when the CI tells it."""
        if self.platform == "gitlab":
            return self.gitlab_pipeline_url
        if self.platform == "github" and self.github_repository and self.github_run_id:
            return f"{self.github_server_url}/{self.github_repository}/actions/runs/{self.github_run_id}"
        return None

    def tree_url(self, branch: str, path: str) -> str | None:
        """The web page of `path` on `branch` of this repository, when the CI tells where it is."""
        if self.platform == "gitlab" and self.gitlab_project_url:
            return f"{self.gitlab_project_url}/-/tree/{branch}/{path}"
        if self.platform == "github" and self.github_repository:
            return f"{self.github_server_url}/{self.github_repository}/tree/{branch}/{path}"
        return None


def resolve_ci_config(environ: Mapping[str, str] | None = None) -> CIConfig:
    """Read the CI's environment variables (default: os.environ) into a frozen CIConfig."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value else None

    if truthy(get("GITHUB_ACTIONS")) or get("GITHUB_REPOSITORY"):
        platform: str | None = "github"
    elif truthy(get("GITLAB_CI")) or get("CI_API_V4_URL"):
        platform = "gitlab"
    else:
        platform = None
    return CIConfig(
        platform=platform,
        github_api_url=(get("GITHUB_API_URL") or GITHUB_PUBLIC_API).rstrip("/"),
        github_server_url=(get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
        github_repository=get("GITHUB_REPOSITORY"),
        github_token=get("GITHUB_TOKEN"),
        github_event_path=get("GITHUB_EVENT_PATH"),
        github_step_summary=get("GITHUB_STEP_SUMMARY"),
        github_run_id=get("GITHUB_RUN_ID"),
        gitlab_api_url=(get("CI_API_V4_URL") or "").rstrip("/") or None,
        gitlab_project_id=get("CI_PROJECT_ID"),
        gitlab_mr_iid=get("CI_MERGE_REQUEST_IID"),
        gitlab_token=get("GITLAB_TOKEN"),
        gitlab_pipeline_url=get("CI_PIPELINE_URL"),
        gitlab_project_url=(get("CI_PROJECT_URL") or "").rstrip("/") or None,
        comment_user=get("GITML_CI_COMMENT_USER"),
        base_branch=_branch_name(
            get("GITHUB_BASE_REF") or get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
        ),
    )


_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|^[-/.]|[/.]$|\.lock$")


def _branch_name(value: str | None) -> str | None:
    """A branch name as git allows it (git check-ref-format), else None: never an option."""
    if value is None or len(value) > 255 or _BAD_BRANCH.search(value):
        return None
    return value


# The tracking URI is configuration, not run state: `gitml.set_tracking_uri` sets it for the
# process, else GITML_TRACKING_URI / MLFLOW_TRACKING_URI name it, else (None) the working
# directory's repository.
_tracking_uri: str | None = None


def set_tracking_uri(uri: str | None) -> None:
    """Set (None: unset) the process's tracking URI; `gitml.set_tracking_uri` validates it first."""
    global _tracking_uri
    _tracking_uri = uri


def tracking_uri(environ: Mapping[str, str] | None = None) -> str | None:
    """The tracking URI set for this process, else the environment's (`env_tracking_uri`), else
    None (the working directory's repository)."""
    return _tracking_uri or env_tracking_uri(environ)


def env_value(name: str) -> str | None:
    """One environment variable (None when unset or empty): the library's only door to the environment."""
    return os.environ.get(name) or None


def env_flag(name: str) -> bool:
    """Whether environment variable `name` says yes (1, true, yes, on)."""
    return truthy(os.environ.get(name))


def env_has(name: str) -> bool:
    """Whether environment variable `name` is set at all (even empty), as Git tests GIT_DIR."""
    return name in os.environ


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: this one's, with `extra` on top."""
    return {**os.environ, **(extra or {})}


def swap_env(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """Set (None: remove) environment variables for this process and its children; returns
    the previous values, which `swap_env` takes back to restore them."""
    previous = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    return previous
