"""Tables as run artifacts: MLflow's `log_table` and `load_table`.

A table is a JSON file in pandas' "split" layout without the index (`{"columns": [...],
"data": [[...], ...]}`), as MLflow writes it; logging to a file that the run already has
appends the rows. The run's `mlflow.loggedArtifacts` tag lists its tables, as MLflow's does,
so `load_table` finds them across an experiment's runs.
"""

from __future__ import annotations

import io
import json
from typing import Any

from gitml import constants as C
from gitml.artifacts.api import log_run_bytes
from gitml.exceptions import InvalidParameterValue, MissingDependency, ResourceDoesNotExist
from gitml.fluent import tracking as fluent
from gitml.fluent.artifacts import _target, load_text

__all__ = ["load_table", "log_table"]

LOGGED_ARTIFACTS_TAG = C.TAG_LOGGED_ARTIFACTS


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:
        raise MissingDependency("pandas", "pandas") from e
    return pandas


def _check_name(artifact_file: str) -> None:
    if not isinstance(artifact_file, str) or not artifact_file.endswith(".json"):
        raise InvalidParameterValue(f"a table is a .json artifact file, got {artifact_file!r}")


def _read(run_id: str, artifact_file: str) -> Any:
    """The table a run holds at `artifact_file`, or None when it has none."""
    pd = _pandas()
    try:
        text = load_text(f"runs:/{run_id}/{artifact_file}")
    except ResourceDoesNotExist:
        return None
    try:
        return pd.read_json(io.StringIO(text), orient="split")
    except ValueError as e:
        raise InvalidParameterValue(
            f"run {run_id}, artifact {artifact_file!r} is not a table in the split layout: {e}"
        ) from e


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a DataFrame or a dict of columns as a JSON table artifact of the active run (or
    `run_id`); rows are appended when the run already has that table."""
    pd = _pandas()
    _check_name(artifact_file)
    if isinstance(data, dict):
        try:
            data = pd.DataFrame(data)
        except ValueError as e:
            raise InvalidParameterValue(f"cannot make a table of this dict: {e}") from e
    if not isinstance(data, pd.DataFrame):
        raise InvalidParameterValue(
            f"log_table takes a pandas DataFrame or a dict of columns, not {type(data).__name__}"
        )
    tracker, rid = _target(run_id)
    before = _read(rid, artifact_file)
    if before is not None:
        data = pd.concat([before, data], ignore_index=True)
    body = data.to_json(orient="split", index=False, date_format="iso")
    log_run_bytes(tracker, rid, body.encode("utf-8"), artifact_file)
    run = fluent.get_run(rid)
    listed = _listed(run.data.tags.get(LOGGED_ARTIFACTS_TAG))
    if not any(e.get("path") == artifact_file for e in listed):
        listed.append({"path": artifact_file, "type": "table"})
        fluent._client().set_tag(rid, LOGGED_ARTIFACTS_TAG, json.dumps(listed))


def _listed(tag: str | None) -> list[dict[str, Any]]:
    try:
        value = json.loads(tag) if tag else []
    except ValueError:
        return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def load_table(
    artifact_file: str,
    run_ids: list[str] | None = None,
    extra_columns: list[str] | None = None,
) -> Any:
    """One DataFrame of the table `artifact_file` from `run_ids` (default: every run of the
    active experiment that logged it); `extra_columns=["run_id"]` adds each row's run id."""
    pd = _pandas()
    _check_name(artifact_file)
    for column in extra_columns or []:
        if column != "run_id":
            raise InvalidParameterValue(f"unknown extra column {column!r}; only 'run_id' is known")
    if run_ids is None:
        runs = fluent._client().search_runs([fluent._active_experiment_id()], max_results=50_000)
        run_ids = [
            r.info.run_id
            for r in runs
            if any(
                e.get("path") == artifact_file
                for e in _listed(r.data.tags.get(LOGGED_ARTIFACTS_TAG))
            )
        ]
    frames = []
    for rid in run_ids:
        frame = _read(rid, artifact_file)
        if frame is None:
            continue
        if extra_columns:
            frame["run_id"] = rid
        frames.append(frame)
    if not frames:
        raise ResourceDoesNotExist(f"no run has the table artifact {artifact_file!r}")
    return pd.concat(frames, ignore_index=True)
