"""Tables as run artifacts: MLflow's `log_table` and `load_table`.

A `.json` table is a JSON file in pandas' "split" layout without the index (`{"columns":
[...], "data": [[...], ...]}`), as MLflow writes it; a `.parquet` table is a Parquet file
written and read by pyarrow (column types kept; pyarrow refuses to rebuild Python objects
from a file's extension types). Logging to a file that the run already has appends the
rows. The run's `mlflow.loggedArtifacts` tag lists its tables, as MLflow's does, so
`load_table` finds them across an experiment's runs.
"""

from __future__ import annotations

import io
import json
from typing import Any

from gitml import constants as C
from gitml.artifacts.api import log_run_bytes
from gitml.entities import ViewType
from gitml.exceptions import InvalidParameterValue, MissingDependency, ResourceDoesNotExist
from gitml.fluent import tracking as fluent
from gitml.fluent.artifacts import _read_artifact, _target
from gitml.tracking.tracker import Tracker

__all__ = ["load_table", "load_table_from", "log_table", "log_table_to"]

LOGGED_ARTIFACTS_TAG = C.TAG_LOGGED_ARTIFACTS


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:
        raise MissingDependency("pandas", "pandas") from e
    return pandas


def _is_parquet(artifact_file: str) -> bool:
    return artifact_file.lower().endswith(".parquet")


def _check_name(artifact_file: str) -> None:
    if not isinstance(artifact_file, str) or not artifact_file.lower().endswith((".json", ".parquet")):
        raise InvalidParameterValue(f"a table is a .json or .parquet artifact file, got {artifact_file!r}")
    if _is_parquet(artifact_file):
        try:
            import pyarrow  # noqa: F401
        except ImportError as e:
            raise MissingDependency("pyarrow", "tables") from e


def _encode(frame: Any, artifact_file: str) -> bytes:
    if _is_parquet(artifact_file):
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer, engine="pyarrow", index=False)
        except (ValueError, TypeError, ImportError) as e:  # pyarrow's errors are ValueError/TypeError subclasses
            raise InvalidParameterValue(f"cannot write this table as Parquet: {e}") from e
        return buffer.getvalue()
    return str(frame.to_json(orient="split", index=False, date_format="iso")).encode("utf-8")


def _decode(pd: Any, data: bytes, run_id: str, artifact_file: str) -> Any:
    try:
        if _is_parquet(artifact_file):
            return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
        return pd.read_json(io.StringIO(data.decode("utf-8")), orient="split")
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as e:  # pyarrow.ArrowInvalid is a ValueError
        layout = "Parquet" if _is_parquet(artifact_file) else "JSON in the split layout"
        raise InvalidParameterValue(f"run {run_id}, artifact {artifact_file!r} is not a table ({layout}): {e}") from e


def _read(tracker: Tracker, run_id: str, artifact_file: str) -> Any:
    """The table a run holds at `artifact_file`, or None when it has none."""
    pd = _pandas()
    try:
        data = _read_artifact(f"runs:/{run_id}/{artifact_file}", str(tracker.root))
    except ResourceDoesNotExist:
        return None
    return _decode(pd, data, run_id, artifact_file)


def log_table_to(tracker: Tracker, run_id: str, data: Any, artifact_file: str) -> None:
    """`log_table` into a given repository's run (MlflowClient.log_table)."""
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
    before = _read(tracker, run_id, artifact_file)
    if before is not None:
        data = pd.concat([before, data], ignore_index=True)
    log_run_bytes(tracker, run_id, _encode(data, artifact_file), artifact_file)
    listed = _listed(tracker.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG))
    if not any(e.get("path") == artifact_file for e in listed):
        listed.append({"path": artifact_file, "type": "table"})
        tracker.writer(run_id).set_tag(LOGGED_ARTIFACTS_TAG, json.dumps(listed))


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a DataFrame or a dict of columns as a table artifact of the active run (or
    `run_id`): JSON for `.json`, Parquet for `.parquet` (needs pyarrow); rows are appended
    when the run already has that table."""
    _check_name(artifact_file)
    tracker, rid = _target(run_id)
    log_table_to(tracker, rid, data, artifact_file)


def _listed(tag: str | None) -> list[dict[str, Any]]:
    try:
        value = json.loads(tag) if tag else []
    except ValueError:
        return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def load_table_from(
    tracker: Tracker,
    experiment_ids: list[str],
    artifact_file: str,
    run_ids: list[str] | None = None,
    extra_columns: list[str] | None = None,
) -> Any:
    """`load_table` from a given repository (MlflowClient.load_table)."""
    pd = _pandas()
    _check_name(artifact_file)
    for column in extra_columns or []:
        if column != "run_id":
            raise InvalidParameterValue(f"unknown extra column {column!r}; only 'run_id' is known")
    if run_ids is None:
        runs, _ = tracker.index().search(experiment_ids, "", ViewType.ACTIVE_ONLY, 50_000, None, None)
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
        frame = _read(tracker, rid, artifact_file)
        if frame is None:
            continue
        if extra_columns:
            frame["run_id"] = rid
        frames.append(frame)
    if not frames:
        raise ResourceDoesNotExist(f"no run has the table artifact {artifact_file!r}")
    return pd.concat(frames, ignore_index=True)


def load_table(
    artifact_file: str,
    run_ids: list[str] | None = None,
    extra_columns: list[str] | None = None,
) -> Any:
    """One DataFrame of the table `artifact_file` from `run_ids` (default: every run of the
    active experiment that logged it); `extra_columns=["run_id"]` adds each row's run id."""
    tracker = fluent._tracker()
    experiment_ids = [fluent._active_experiment_id()] if run_ids is None else []
    return load_table_from(tracker, experiment_ids, artifact_file, run_ids, extra_columns)
