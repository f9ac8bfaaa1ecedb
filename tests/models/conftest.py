"""Fixtures for model tests: a malicious pickle that leaves a marker file if it ever runs."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest


class _Evil:
    """Unpickling this runs `exec`, which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Callable[[Path], None], Path]:
    """(plant, marker): plant(path) overwrites `path` with the malicious pickle."""
    marker = tmp_path / "PWNED"

    def plant(path: Path) -> None:
        path.write_bytes(pickle.dumps(_Evil(marker)))

    return plant, marker
