"""Shared fixtures: every test gets a clean Git environment and real repositories."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def git(*args: str, cwd: Path | str) -> str:
    """Run git and return its stdout (raises on failure)."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(autouse=True)
def clean_git_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A temporary HOME with a test identity; no system or user git config leaks in."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(home / "dvc-site-cache"))
    for name in list(os.environ):
        if name.startswith(("GITML_", "MLFLOW_", "GIT_AUTHOR", "GIT_COMMITTER", "GIT_DIR", "GIT_WORK_TREE")):
            monkeypatch.delenv(name, raising=False)
    # A short flush interval keeps background flushing exercised without slowing tests.
    monkeypatch.setenv("GITML_FLUSH_INTERVAL", "5")
    yield
    from gitml.fluent import tracking as _fluent
    from gitml.tracking import tracker as _tracker

    _fluent.reset()
    _tracker.reset_all()


def make_repo(path: Path) -> Path:
    """A fresh repository at `path` with one commit on main."""
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=path)
    (path / "train.py").write_text("print('hello')\n")
    git("add", "train.py", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh repository with one commit; the working directory is inside it."""
    root = make_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in-process: (exit code, stdout, stderr)."""
    from gitml.cli import main

    code = 0
    try:
        main(list(args))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A bare remote holding a main branch, and two clones of it: (bare, a, b)."""
    seed = make_repo(tmp_path / "seed")
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    git("push", "-q", str(bare), "main", cwd=seed)
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        git("clone", "-q", str(bare), str(d), cwd=tmp_path)
    return bare, a, b
