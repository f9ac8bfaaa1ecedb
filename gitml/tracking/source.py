"""Where a run comes from (commit, branch, entry point), and runs as a pandas DataFrame."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.entities import Run

if TYPE_CHECKING:
    from gitml.tracking.tracker import Tracker

__all__ = ["runs_to_frame", "source_tags"]


def source_tags(tracker: Tracker, dirty: bool | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """MLflow's source tags and gitml's source record for a run started now."""
    info = tracker.repo.source_info(check_dirty=False)
    entry = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "<console>"
    if sys.argv and sys.argv[0]:
        try:
            entry = str(Path(sys.argv[0]).resolve().relative_to(tracker.root))
        except ValueError:
            pass
    tags = {C.TAG_SOURCE_NAME: entry, C.TAG_SOURCE_TYPE: "LOCAL"}
    if info.commit:
        tags[C.TAG_GIT_COMMIT] = info.commit
    if info.branch:
        tags[C.TAG_GIT_BRANCH] = info.branch
    if info.repo_url:
        tags[C.TAG_GIT_REPO_URL] = info.repo_url
    if dirty is not None:
        tags[C.TAG_GIT_DIRTY] = str(dirty).lower()
    source = {
        "commit": info.commit,
        "branch": info.branch,
        "dirty": dirty,
        "entry_point": entry,
        "repo_url": info.repo_url,
        "type": "LOCAL",
    }
    return tags, source


def runs_to_frame(pd: Any, runs: list[Run]) -> Any:
    """MLflow's search_runs DataFrame: info columns, then metrics.*, params.*, tags.*."""
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id,
            "status": r.info.status,
            "artifact_uri": r.info.artifact_uri,
            "start_time": pd.to_datetime(r.info.start_time, unit="ms", utc=True) if r.info.start_time else None,
            "end_time": pd.to_datetime(r.info.end_time, unit="ms", utc=True) if r.info.end_time else None,
        }
        row.update({f"metrics.{k}": v for k, v in r.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update({f"tags.{k}": v for k, v in r.data.tags.items()})
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=base + sorted({k for row in rows for k in row} - set(base)))
