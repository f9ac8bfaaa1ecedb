"""Planting helpers for the readers' hostile tests: an attacker's raw writes to the metadata
branch, made with plain `git` plumbing (no gitml code), so nothing gitml checks on write helps."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git
from tests.hostile.conftest import git_input

__all__ = ["plant", "push_branch"]

BRANCH = "refs/heads/gitml"


def _blob(clone: Path, data: bytes) -> str:
    return git_input(data, "hash-object", "-w", "--stdin", cwd=clone).strip()


def _entries(clone: Path, tree: str | None) -> dict[str, tuple[str, str, str]]:
    if tree is None:
        return {}
    out = {}
    for line in git("ls-tree", "-z", tree, cwd=clone).split("\0"):
        if not line:
            continue
        meta, name = line.split("\t", 1)
        mode, kind, sha = meta.split()
        out[name] = (mode, kind, sha)
    return out


def _mktree(clone: Path, entries: dict[str, tuple[str, str, str]]) -> str:
    body = "".join(f"{m} {k} {s}\t{n}\0" for n, (m, k, s) in sorted(entries.items()))
    return git_input(body.encode(), "mktree", "-z", cwd=clone).strip()


def _put(clone: Path, tree: str | None, parts: list[str], data: bytes) -> str:
    entries = _entries(clone, tree)
    head, rest = parts[0], parts[1:]
    if not rest:
        entries[head] = ("100644", "blob", _blob(clone, data))
    else:
        sub = entries.get(head)
        entries[head] = ("040000", "tree", _put(clone, sub[2] if sub and sub[1] == "tree" else None, rest, data))
    return _mktree(clone, entries)


def plant(clone: Path, files: dict[str, bytes], message: str = "an innocent-looking commit") -> str:
    """Commit `files` (path -> bytes; any names, `..` included) on top of the clone's metadata
    branch with git plumbing only; returns the new commit."""
    parent = git("rev-parse", "--verify", "-q", BRANCH, cwd=clone).strip()
    tree = git("rev-parse", f"{parent}^{{tree}}", cwd=clone).strip()
    for path, data in files.items():
        tree = _put(clone, tree, path.split("/"), data)
    commit = git("commit-tree", tree, "-p", parent, "-m", message, cwd=clone).strip()
    git("update-ref", BRANCH, commit, parent, cwd=clone)
    return commit


def push_branch(clone: Path) -> None:
    """The attacker pushes the metadata branch with plain git (no gitml checks on the way)."""
    git("push", "-q", "origin", f"{BRANCH}:{BRANCH}", cwd=clone)
