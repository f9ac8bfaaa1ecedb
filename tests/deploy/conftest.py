"""Fixtures for deploy tests: a repository with a registered model promoted to Production."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.registry._util import model_runner


@pytest.fixture
def promoted(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    """`team/fraud` versions 1 and 2 registered; version 1 in Production. (repo, run ids)"""
    new_model_run = model_runner(tmp_path)
    (tmp_path / "model-src" / "requirements.txt").parent.mkdir(parents=True, exist_ok=True)
    runs = [new_model_run({"accuracy": 0.8}), new_model_run({"accuracy": 0.9})]
    for r in runs:
        code, _, err = run_cli(capsys, "models", "register", f"runs:/{r}/model", "team/fraud")
        assert code == 0, err
    code, _, err = run_cli(
        capsys, "models", "transition-stage", "--model-name", "team/fraud", "--version", "1", "--stage", "Production"
    )
    assert code == 0, err
    capsys.readouterr()
    return repo, runs
