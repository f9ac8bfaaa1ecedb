"""What the artifact functions need from the run store above them: a Protocol, not an import.

The tracking package's Tracker is the one implementation. Artifacts sit below tracking in
the import table, so they name the few members they use here instead of importing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from gitml.config import Config
from gitml.store.repo import GitRepo

__all__ = ["RunHost"]


class RunHost(Protocol):
    """One repository's runs, as the artifact functions use them (gitml.tracking's Tracker)."""

    root: Path
    config: Config
    repo: GitRepo

    def flush(self, compact: tuple[str, ...] = ()) -> None:
        """Commit every pending write of this process."""
        ...

    def record_artifacts(self, run_id: str, pointers: dict[str, dict[str, Any] | None]) -> None:
        """Merge artifact pointers into the run's artifacts.json and commit."""
        ...

    def run_ids(self, tree: str) -> list[str]:
        """The id of every run folder in the branch tree `tree`."""
        ...

    def read_artifacts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's artifact pointers {artifact_path: pointer}."""
        ...
