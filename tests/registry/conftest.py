"""Fixtures for registry tests: runs that logged a real model folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def new_model_run(repo: Path, tmp_path: Path) -> Callable[..., str]:
    """A function logging a run with a model folder (MLmodel + weights) at `model`; returns the run id."""
    import gitml
    from gitml.artifacts.api import log_artifacts

    folder = tmp_path / "model-src"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "weights.bin").write_bytes(b"\x00\x01")

    def make(metrics: dict[str, float] | None = None, path: str = "model") -> str:
        with gitml.start_run() as run:
            gitml.log_metrics(metrics or {"accuracy": 0.9})
            log_artifacts(str(folder), path)
        return str(run.info.run_id)

    return make
