"""Git remote plumbing for the metadata branch: running `git` against a remote, naming the
remote, listing its refs, fetching refs, and turning Git's stderr into gitml's errors.

No sync policy here (what to merge, when to retry, what a pull may delete): that is
gitml/store/sync.py, which calls these.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from gitml.config import Config, child_env, env_value, resolve_config
from gitml.exceptions import RemoteError, RepositoryError
from gitml.store.remote_names import check_remote
from gitml.store.repo import GitRepo

__all__ = [
    "RemoteState",
    "commit_time",
    "fetch_refs",
    "git_env",
    "has_object",
    "interactive",
    "is_ancestor",
    "read_local_tags",
    "ls_remote",
    "remote_error",
    "resolve_remote",
    "run_git",
    "tracking_ref",
]

_ENV = {"LC_ALL": "C", "LANGUAGE": "C"}
# A push that lost a race to another clone: fetch, merge and try again.
_AUTH = (
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "error: 403",
    "error: 401",
    "the requested url returned error: 403",
    "host key verification failed",
    "access denied",
    "invalid username or password",
)
_NETWORK = (
    "could not resolve host",
    "connection refused",
    "connection timed out",
    "network is unreachable",
    "no route to host",
    "unable to access",
    "does not appear to be a git repository",
    "could not read from remote repository",
    "connection closed",
    "connection reset",
    "kex_exchange_identification",
    "no such file or directory",
)


def run_git(
    repo: GitRepo, args: list[str], stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            # ext:: remotes run commands: never, whatever a config says.
            ["git", "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "protocol.ext.allow=never", *args],
            cwd=repo.root,
            input=stdin,
            capture_output=True,
            text=True,
            env=git_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RemoteError(f"git {args[0]} timed out after {timeout:.0f} s") from e
    except OSError as e:
        raise RepositoryError(f"cannot run git: {e}") from e


def git_env() -> dict[str, str]:
    env = child_env(_ENV)
    # A person at a terminal may type a password when Git asks; a CI job or a background
    # auto-push must fail at once instead of waiting for one.
    if "GIT_TERMINAL_PROMPT" not in env and not interactive():
        env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def interactive() -> bool:
    try:
        return os.isatty(0) and not env_value("CI")
    except OSError:
        return False


def remote_error(action: str, remote: str, stderr: str) -> RemoteError:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("hint:")]
    detail = "; ".join(lines[-3:]) or "no message from git"
    low = stderr.lower()
    if any(s in low for s in _AUTH):
        return RemoteError(
            f"authentication to '{remote}' failed during {action}: check your Git credentials "
            f"(SSH key, token or credential helper) for that remote ({detail})"
        )
    if any(s in low for s in _NETWORK):
        return RemoteError(f"cannot reach remote '{remote}' during {action}: {detail}")
    return RemoteError(f"{action} with remote '{remote}' failed: {detail}")


def resolve_remote(repo: GitRepo, remote: str | None = None, config: Config | None = None) -> str:
    """The remote to use: the argument, then `gitml.remote`, then `origin`, then the only remote.

    Each is checked (`gitml.store.remote_names`): none may read as a git option."""
    if remote:
        return check_remote(remote, "the remote given")
    cfg = config or resolve_config(repo.root)
    if cfg.remote:
        return check_remote(cfg.remote, "GITML_REMOTE / git config gitml.remote")
    names = run_git(repo, ["remote"]).stdout.split()
    if "origin" in names:
        return "origin"
    if len(names) == 1:
        return names[0]
    if not names:
        raise RemoteError(
            "this repository has no Git remote: add one with 'git remote add origin <url>'"
        )
    raise RemoteError(
        f"several remotes ({', '.join(names)}) and none configured: name one, or set gitml.remote"
    )


def tracking_ref(repo: GitRepo, remote: str) -> str:
    names = run_git(repo, ["remote"]).stdout.split()
    if remote in names:
        return f"refs/remotes/{remote}/{repo.branch}"
    # A URL or a path: remember it under a name derived from it.
    digest = hashlib.sha1(remote.encode()).hexdigest()[:12]
    return f"refs/gitml/remotes/{digest}/{repo.branch}"


# -- the remote's state -----------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteState:
    tip: str | None
    tags: dict[str, str]  # registry tag name -> object


def ls_remote(repo: GitRepo, remote: str, tag_filter: Callable[[str], bool]) -> RemoteState:
    proc = run_git(repo, ["ls-remote", "--", remote, f"refs/heads/{repo.branch}", "refs/tags/*"])
    if proc.returncode != 0:
        raise remote_error("ls-remote", remote, proc.stderr)
    tip = None
    tags: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{repo.branch}":
            tip = sha
        elif ref.startswith("refs/tags/") and not ref.endswith("^{}"):
            name = ref[len("refs/tags/") :]
            if tag_filter(name):
                tags[name] = sha
    return RemoteState(tip, tags)


def read_local_tags(repo: GitRepo, tag_filter: Callable[[str], bool]) -> dict[str, str]:
    proc = run_git(repo, ["for-each-ref", "--format=%(objectname) %(refname)", "refs/tags"])
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        sha, _, ref = line.partition(" ")
        name = ref[len("refs/tags/") :]
        if tag_filter(name):
            out[name] = sha
    return out


def has_object(repo: GitRepo, sha: str) -> bool:
    return run_git(repo, ["cat-file", "-e", sha]).returncode == 0


def is_ancestor(repo: GitRepo, a: str, b: str) -> bool:
    return run_git(repo, ["merge-base", "--is-ancestor", a, b]).returncode == 0


def commit_time(repo: GitRepo, sha: str) -> int:
    _, data = repo.objects.read(sha)
    for line in data.split(b"\n\n", 1)[0].splitlines():
        if line.startswith(b"committer "):
            return int(line.rsplit(b" ", 2)[-2])
    return 0


# -- destructive pulls ------------------------------------------------------------------------
# A pull that would remove more runs than this from the clone (or more than this share of
# them, when more than one) needs `allow_purge`: a `purged.json` listing every run id is
# one commit away.


_LOCAL_RACE = ("cannot lock ref", "unable to update local ref", "is at", "failed to lock")


def fetch_refs(repo: GitRepo, remote: str, options: list[str], specs: list[str]) -> None:
    """`git fetch` of `specs`; a lost race for a local ref lock (two syncs at once on one
    clone) is retried with back-off, never shown raw."""
    for attempt in range(8):
        proc = run_git(repo, ["fetch", "--no-tags", *options, "--stdin", "--", remote], stdin="\n".join(specs) + "\n")
        if proc.returncode == 0:
            return
        if not any(s in proc.stderr for s in _LOCAL_RACE):
            raise remote_error("fetch", remote, proc.stderr)
        time.sleep(random.uniform(0.02, 0.05 * 2**attempt))
    raise RemoteError(
        f"fetch from '{remote}' kept losing the lock on a local ref to another process of this "
        "clone (two syncs at once?); try again when it is done"
    )
