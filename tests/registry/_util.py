"""Helpers for registry tests: hand-made tags at chosen times, GTO's own view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import git

# Tag times after every commit's time: GTO counts a version's commit time as an event of
# the model, so a tag older than its commit would not read as the newest event.
BASE_TIME = int(time.time()) + 100_000
GTO = str(Path(sys.executable).parent / "gto")


def tag(repo: Path, name: str, when: int, target: str = "HEAD", message: str | None = None) -> None:
    """An annotated tag made by plain git with a chosen tagger time."""
    # Small numbers are not read as epoch seconds by git: count from a fixed base.
    env = {**os.environ, "GIT_COMMITTER_DATE": f"{BASE_TIME + when} +0000"}
    subprocess.run(
        ["git", "tag", "-a", name, target, "-m", message or f"hand-made {name}"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )


def commit(repo: Path, text: str) -> str:
    """A new commit on the current branch; returns its sha."""
    (repo / "file.txt").write_text(text)
    git("add", "file.txt", cwd=repo)
    git("commit", "-q", "-m", text, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def gto(repo: Path, *args: str) -> Any:
    """What `gto show [NAME] --json` says, from the real GTO (its API in-process: no start-up cost)."""
    from gto.api import show

    assert args[0] == "show" and len(args) <= 2, args
    result = show(str(repo), args[1]) if len(args) == 2 else show(str(repo))
    # The command line's JSON, as it prints it (datetimes as strings).
    return json.loads(json.dumps(result, default=str))


def gto_cli(repo: Path, *args: str) -> Any:
    """Run the real GTO command line and parse its --json output."""
    proc = subprocess.run(
        [GTO, *args, "--json"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def model_runner(tmp_path: Path) -> Callable[..., str]:
    """A function logging a run with a real model folder (MLmodel + weights) at `path`."""
    import gitml
    from gitml.fluent.artifacts import log_artifacts

    folder = tmp_path / "model-src"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "weights.bin").write_bytes(b"\x00\x01")

    def make(
        metrics: dict[str, float] | None = None, path: str = "model", mlmodel: str | None = None
    ) -> str:
        if mlmodel is not None:
            (folder / "MLmodel").write_text(mlmodel)
        with gitml.start_run() as run:
            gitml.log_metrics(metrics or {"accuracy": 0.9})
            log_artifacts(str(folder), path)
        (folder / "MLmodel").write_text("flavors: {}\n")
        return str(run.info.run_id)

    return make
