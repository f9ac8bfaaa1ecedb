"""A run's artifact folder on disk, as MLflow's local store gives one: `get_artifact_uri()`.

MLflow scripts write into `mlflow.get_artifact_uri()` as a folder (a Keras checkpoint
callback, `model.save(os.path.join(uri, ...))`) and read what was logged back from it.
gitml's artifacts live in a content-addressed cache, so each run gets a staging folder
`<git dir>/gitml/staging/<run_id>/artifacts`:

- asking for the URI of a logged path copies that path's files into the folder (only
  files not there yet: what the script wrote wins);
- what the script wrote or changed there is logged as the run's artifacts when the run
  ends (and before a URI naming the folder is read through gitml or registered), then the
  folder is removed at the end of the run;
- `staged_runs_uri` turns a URI or path inside the folder back into `runs:/<id>/<path>`, so
  wherever a `runs:/` URI is taken, the folder's URI works too.

A file counts as changed when its size or modification time differs from when gitml wrote
it; the record of what gitml wrote is `materialized.json` beside the folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from gitml.artifacts.host import RunHost
from gitml.artifacts.paths import (
    confined_path,
    join_artifact_path,
    normalize_artifact_path,
    walk_local_dir,
)
from gitml.artifacts.pointers import files_under
from gitml.artifacts.runs import manifest_loader, read_pointers, store_for
from gitml.artifacts.uri import format_runs_uri
from gitml.constants import STAGING_DIR

__all__ = [
    "STAGING_DIR",
    "has_staged",
    "log_staged",
    "stage",
    "staged_runs_uri",
    "staging_folder",
    "sync_staged",
]

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_STAGED = re.compile(r"/gitml/staging/([0-9a-f]{32})/artifacts(?:/(.*))?$")
_RECORD = "materialized.json"


def _run_dir(tracker: RunHost, run_id: str) -> Path:
    if not _RUN_ID.match(run_id):  # it becomes a path
        raise ValueError(f"invalid run id {run_id!r}")
    return Path(tracker.repo.state_dir) / STAGING_DIR / run_id


def staging_folder(tracker: RunHost, run_id: str) -> Path:
    """The run's staging folder (not created)."""
    return _run_dir(tracker, run_id) / "artifacts"


def has_staged(tracker: RunHost, run_id: str) -> bool:
    """Whether the run has a staging folder (a cheap check, no import of DVC)."""
    return staging_folder(tracker, run_id).is_dir()


def _read_record(tracker: RunHost, run_id: str) -> dict[str, list[int]]:
    try:
        data = json.loads((_run_dir(tracker, run_id) / _RECORD).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, list) and len(v) == 2}


def _write_record(tracker: RunHost, run_id: str, record: dict[str, list[int]]) -> None:
    path = _run_dir(tracker, run_id) / _RECORD
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, path)


def _stamp(path: str | os.PathLike[str]) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def stage(tracker: RunHost, run_id: str, artifact_path: str | None = None) -> Path:
    """The local folder (or file) for `artifact_path` of the run inside its staging folder.

    Files logged at or below `artifact_path` are copied in first (fetched from the remote if
    the cache lacks them), unless the folder already holds a file at that place.
    """
    rel = normalize_artifact_path(artifact_path)
    root = staging_folder(tracker, run_id)
    root.mkdir(parents=True, exist_ok=True)
    store = store_for(tracker)
    files = files_under(read_pointers(tracker, run_id), rel, manifest_loader(store))
    record = _read_record(tracker, run_id)
    todo = {}
    for sub, (md5, _) in files.items():
        key = join_artifact_path(rel, sub)
        if not os.path.lexists(confined_path(root, key)):
            todo[key] = md5
    if todo:
        missing = {md5 for md5 in todo.values() if not store.exists(md5)}
        if missing:
            store.fetch(missing, deep=False)
        for key, md5 in sorted(todo.items()):
            target = confined_path(root, key)
            target.parent.mkdir(parents=True, exist_ok=True)
            target = confined_path(root, key)  # re-checked once the parents exist
            shutil.copyfile(store.object_path(md5), target)
            record[key] = _stamp(target)
        _write_record(tracker, run_id, record)
    target = confined_path(root, rel) if rel else root
    if rel and not files:
        target.parent.mkdir(parents=True, exist_ok=True)  # a place to write to, as MLflow's folder
    return target


def sync_staged(tracker: RunHost, run_id: str) -> list[str]:
    """Log what the script wrote or changed in the run's staging folder; returns those paths."""
    from gitml.artifacts.api import log_run_artifacts

    root = staging_folder(tracker, run_id)
    if not root.is_dir():
        return []
    record = _read_record(tracker, run_id)
    changed = [(rel, local) for rel, local in walk_local_dir(root) if record.get(rel) != _stamp(local)]
    if not changed:
        return []
    with tempfile.TemporaryDirectory(prefix=".sync-", dir=root.parent) as tmp:
        for rel, local in changed:
            dest = Path(tmp, *rel.split("/"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(local, dest)
            except OSError:
                shutil.copyfile(local, dest)
        log_run_artifacts(tracker, run_id, tmp, None)
    for rel, local in changed:
        record[rel] = _stamp(local)
    _write_record(tracker, run_id, record)
    return [rel for rel, _ in changed]


def log_staged(tracker: RunHost, run_id: str) -> list[str]:
    """At the end of a run: log the staging folder's changes, then remove it."""
    logged = sync_staged(tracker, run_id)
    shutil.rmtree(_run_dir(tracker, run_id), ignore_errors=True)
    return logged


def staged_runs_uri(uri: object) -> str | None:
    """`runs:/<run_id>/<path>` for a `file:` URI or path inside a run's staging folder, else None."""
    if not isinstance(uri, str):
        return None
    text = uri
    if text.startswith("file:"):
        text = unquote(urlparse(text).path)
    m = _STAGED.search(text.replace(os.sep, "/").rstrip("/"))
    if m is None:
        return None
    return format_runs_uri(m.group(1), m.group(2) or None)
