"""Shared fixtures for the hostile-remote suite: an attacker clone, a victim clone, one bare
Git remote and one artifact remote they both use.

The attacker has push access (a teammate, a fork's CI job, a stolen token): whatever it
writes reaches the victim only through the real remotes, with plain `git` plumbing, so each
test plants its attack exactly as an attacker would.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import git, make_repo

__all__ = ["World", "git_input", "in_clone", "world"]


def git_input(data: bytes, *args: str, cwd: Path) -> str:
    """Run git with `data` on stdin; returns stdout (raises on failure)."""
    proc = subprocess.run(["git", *args], cwd=cwd, input=data, check=True, capture_output=True)
    return proc.stdout.decode()


@contextlib.contextmanager
def in_clone(clone: Path) -> Iterator[Path]:
    """Work inside `clone` (the fluent API's current repository), forgetting its state after."""
    from gitml.fluent import tracking as _fluent
    from gitml.tracking import tracker as _tracker

    old = os.getcwd()
    os.chdir(clone)
    try:
        yield clone
    finally:
        _fluent.reset()
        _tracker.reset_all()
        os.chdir(old)


@dataclass(frozen=True)
class World:
    """A bare remote, an attacker clone, a victim clone and their shared artifact remote."""

    bare: Path
    attacker: Path
    victim: Path
    artifacts: Path  # a folder remote in DVC's layout (`files/md5/xx/rest`)
    home: Path  # where the victim keeps files the attacker wants (outside every clone)

    def log_run(self, clone: Path, artifacts: dict[str, bytes] | None = None, **metrics: float) -> str:
        """Log one finished run in `clone` (with artifact files, as one folder `data`); its id."""
        import gitml

        with in_clone(clone):
            with gitml.start_run() as run:
                for k, v in metrics.items():
                    gitml.log_metric(k, v)
                if artifacts:
                    folder = clone.parent / f"art-{run.info.run_id}"
                    for rel, data in artifacts.items():
                        p = folder / rel
                        p.parent.mkdir(parents=True, exist_ok=True)
                        p.write_bytes(data)
                    gitml.log_artifacts(str(folder), "data")
            return str(run.info.run_id)

    def push(self, clone: Path, **kw: object) -> object:
        """`gitml push` from `clone` (library call)."""
        from gitml.fluent import sharing

        with in_clone(clone):
            return sharing.push(clone, **kw)  # type: ignore[arg-type]

    def pull(self, clone: Path, **kw: object) -> object:
        """`gitml pull` into `clone` (library call)."""
        from gitml.fluent import sharing

        with in_clone(clone):
            return sharing.pull(clone, **kw)  # type: ignore[arg-type]

    def branch_tip(self, clone: Path, branch: str = "gitml") -> str:
        """The commit the metadata branch points at in `clone` (or in the bare remote)."""
        return git("rev-parse", f"refs/heads/{branch}", cwd=clone).strip()

    def runs_on(self, where: Path, branch: str = "gitml") -> set[str]:
        """Run ids present on the metadata branch of `where` (a clone or the bare remote)."""
        out = git("ls-tree", "-r", "--name-only", f"refs/heads/{branch}", cwd=where)
        ids = set()
        for line in out.splitlines():
            parts = line.split("/")
            if len(parts) == 4 and parts[0] == "runs" and parts[3] == "meta.json":
                ids.add(parts[2])
        return ids


@pytest.fixture
def world(tmp_path: Path) -> World:
    """Attacker and victim clones of one bare remote, sharing one artifact folder remote."""
    seed = make_repo(tmp_path / "seed")
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    git("push", "-q", str(bare), "main", cwd=seed)
    artifacts = tmp_path / "artifact-remote"
    artifacts.mkdir()
    home = tmp_path / "victim-home"
    home.mkdir()
    clones = {}
    for name in ("attacker", "victim"):
        d = tmp_path / name
        git("clone", "-q", str(bare), str(d), cwd=tmp_path)
        git("config", "gitml.artifactRemote", str(artifacts), cwd=d)
        clones[name] = d
    return World(bare, clones["attacker"], clones["victim"], artifacts, home)
