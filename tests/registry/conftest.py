"""Fixtures for registry tests: runs that logged a real model folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.registry._util import model_runner


@pytest.fixture
def new_model_run(repo: Path, tmp_path: Path) -> Callable[..., str]:
    """A function logging a run with a model folder at `model`; returns the run id."""
    return model_runner(tmp_path)
