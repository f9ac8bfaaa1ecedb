"""Projects from elsewhere: `GIT-URL[#subdir]` and `--version REV`, cloned into a throw-away folder.

The URL reaches git after `--` (never as an option); `ext::` URLs and a `#subdir` that
leaves the clone are refused; the revision is resolved with `rev-parse --verify` first.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from gitml.exceptions import InvalidParameterValue, RemoteError, ResourceDoesNotExist

__all__ = ["fetch_project", "is_git_uri", "split_uri"]

_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://", "git@")


def split_uri(uri: str) -> tuple[str, str]:
    """(repository, subdirectory) of `REPO#subdir` (subdir '' when absent)."""
    repo, _, sub = uri.partition("#")
    return repo, sub


def is_git_uri(uri: str) -> bool:
    """Whether `uri` names a Git repository to clone rather than a local project folder."""
    repo, _ = split_uri(uri)
    return repo.startswith(_SCHEMES) or (repo.endswith(".git") and not Path(repo).is_dir())


def _git(args: list[str], cwd: Path | None, what: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RemoteError(f"{what}: {tail[0]}")
    return proc.stdout


def fetch_project(uri: str, version: str | None) -> tuple[Path, Path]:
    """(throw-away folder, project folder inside it): a clone of the repository at `version`."""
    repo, sub = split_uri(uri)
    if not repo or repo.startswith("-") or repo.lower().startswith("ext::") or "\0" in uri:
        raise InvalidParameterValue(f"{uri!r} is not a Git URL or project folder")
    if sub and (sub.startswith("/") or ".." in Path(sub).parts):
        raise InvalidParameterValue(
            f"subdirectory {sub!r} of {repo} must be a relative path inside it"
        )
    if version is not None and (
        not version or version.startswith("-") or not re.fullmatch(r"[\w./@{}^~-]+", version)
    ):
        raise InvalidParameterValue(f"--version {version!r} is not a revision")
    if not repo.startswith(_SCHEMES) and not Path(repo).exists():
        raise ResourceDoesNotExist(f"project {repo} does not exist")
    holder = Path(tempfile.mkdtemp(prefix="gitml-project-"))
    dest = holder / "src"
    try:
        _git(
            ["-c", "protocol.ext.allow=never", "clone", "-q", "--", repo, str(dest)],
            None,
            f"cloning {repo}",
        )
        if version is not None:
            commit = None
            for candidate in (version, f"origin/{version}"):
                proc = subprocess.run(
                    [
                        "git",
                        "rev-parse",
                        "-q",
                        "--verify",
                        "--end-of-options",
                        f"{candidate}^{{commit}}",
                    ],
                    cwd=dest,
                    capture_output=True,
                    text=True,
                )
                if proc.returncode == 0:
                    commit = proc.stdout.strip()
                    break
            if commit is None:
                raise ResourceDoesNotExist(f"revision {version} not found in {repo}")
            _git(["checkout", "-q", "--detach", commit], dest, f"checking out {version}")
        project = (dest / sub).resolve() if sub else dest
        if not project.is_relative_to(dest.resolve()) or not project.is_dir():
            raise ResourceDoesNotExist(f"{repo} has no folder {sub}")
        return holder, project
    except BaseException:
        shutil.rmtree(holder, ignore_errors=True)
        raise
