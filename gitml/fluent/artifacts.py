"""Artifacts on the fluent floor: `gitml.log_artifact` and friends into the active run, and
`gitml.artifacts`' MLflow-shaped functions that download, list and load artifacts by URI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from gitml.artifacts import api
from gitml.artifacts.api import (
    dict_bytes,
    log_run_artifact,
    log_run_artifacts,
    log_run_bytes,
    log_run_figure,
)
from gitml.artifacts.paths import normalize_artifact_path
from gitml.artifacts.pointers import FileInfo, require_files
from gitml.artifacts.runs import read_pointers, store_for
from gitml.artifacts.staging import has_staged, stage, staged_runs_uri, sync_staged
from gitml.artifacts.uri import is_runs_uri, resolve_runs_uri
from gitml.exceptions import (
    CorruptMetadata,
    InvalidParameterValue,
    RemoteError,
    ResourceDoesNotExist,
)
from gitml.fluent import tracking as fluent
from gitml.models.uri import resolve_model_uri
from gitml.store.bounded import load_json, load_yaml
from gitml.tracking.tracker import Tracker, get_tracker

__all__ = [
    "download_artifacts",
    "get_artifact_uri",
    "list_artifacts",
    "load_dict",
    "load_text",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_text",
]

_ARTIFACT_DEPTH = 500  # a user's own dicts nest deeper than gitml's files, still short of recursion


def _tracker_for(tracking_uri: str | None) -> Tracker:
    return get_tracker(tracking_uri) if tracking_uri is not None else fluent._tracker()


def _target(run_id: str | None) -> tuple[Tracker, str]:
    """The tracker and run id to log into: `run_id`'s, else the active run (started if none)."""
    if run_id is None:
        active = fluent._get_or_start_run()
        return active._tracker, active.info.run_id
    return fluent._tracker(), run_id


def _runs_uri(artifact_uri: str, tracking_uri: str | None = None) -> str:
    """`artifact_uri`, or for a URI inside a run's get_artifact_uri() folder the `runs:/` URI
    it stands for (what the script wrote there is logged first, so it can be read back)."""
    staged = staged_runs_uri(artifact_uri)
    if staged is None:
        return artifact_uri
    tracker = _tracker_for(tracking_uri)
    run_id = staged.split("/")[1]
    if has_staged(tracker, run_id):
        sync_staged(tracker, run_id)
    return staged


def _locate(
    artifact_uri: str | None, run_id: str | None, artifact_path: str | None
) -> tuple[str, str]:
    if artifact_uri is not None:
        if run_id is not None or artifact_path is not None:
            raise InvalidParameterValue(
                "give either artifact_uri, or run_id and artifact_path; not both"
            )
        return resolve_runs_uri(_runs_uri(artifact_uri))
    if run_id is None:
        raise InvalidParameterValue("give artifact_uri (runs:/<run_id>/<path>) or run_id")
    return run_id, normalize_artifact_path(artifact_path)


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Download an artifact file or folder to a local path and return it (MLflow's signature).

    `artifact_uri` is `runs:/<run_id>/<path>`, `models:/<name>/<version|stage>` (through the
    registry), or a local path or `file://` URI (copied); alternatively give `run_id` and
    `artifact_path`.
    """
    if artifact_uri is not None:
        artifact_uri = _runs_uri(artifact_uri, tracking_uri)
    if artifact_uri is not None and artifact_uri.startswith("models:/"):
        return str(
            resolve_model_uri(artifact_uri, None if dst_path is None else os.fspath(dst_path))
        )
    if artifact_uri is not None and not is_runs_uri(artifact_uri):
        local = (
            artifact_uri[len("file://") :] if artifact_uri.startswith("file://") else artifact_uri
        )
        if "://" in local:
            raise InvalidParameterValue(
                f"unsupported artifact URI {artifact_uri!r}: use runs:/<run_id>/<path>"
            )
        if not os.path.exists(local):
            raise ResourceDoesNotExist(f"no such artifact: {artifact_uri!r}")
        if dst_path is None:
            return os.path.abspath(local)
        target = Path(dst_path) / os.path.basename(local.rstrip("/"))
        Path(dst_path).mkdir(parents=True, exist_ok=True)
        if os.path.isdir(local):
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(local, target)
        return str(target)
    rid, path = _locate(artifact_uri, run_id, artifact_path)
    return api.download_artifacts(_tracker_for(tracking_uri), rid, path, dst_path)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    """List the direct children of an artifact folder (MLflow's `mlflow.artifacts.list_artifacts`)."""
    rid, path = _locate(artifact_uri, run_id, artifact_path)
    return api.list_artifacts(_tracker_for(tracking_uri), rid, path)


def _read_artifact(artifact_uri: str, tracking_uri: str | None) -> bytes:
    rid, path = resolve_runs_uri(_runs_uri(artifact_uri, tracking_uri))
    tracker = _tracker_for(tracking_uri)
    pointers = read_pointers(tracker, rid)
    store = store_for(tracker)
    files = require_files(
        pointers, rid, path, api.naming_loader(store, f"run {rid}, artifact {path!r}")
    )
    if "" not in files:
        raise InvalidParameterValue(f"{artifact_uri} is a folder, not a file")
    md5 = files[""][0]
    if not store.exists(md5):
        try:
            store.fetch([md5], deep=False)
        except (ResourceDoesNotExist, RemoteError) as e:
            raise type(e)(f"run {rid}, artifact {path!r}: {e.message}") from e
    with open(store.object_path(md5), "rb") as f:
        return f.read()


def load_text(artifact_uri: str, tracking_uri: str | None = None) -> str:
    """The content of a text artifact (`runs:/<run_id>/<path>`)."""
    return _read_artifact(artifact_uri, tracking_uri).decode("utf-8")


def load_dict(artifact_uri: str, tracking_uri: str | None = None) -> Any:
    """The content of a JSON or YAML artifact, parsed."""
    data = _read_artifact(artifact_uri, tracking_uri)
    # Artifacts come from a shared remote: bounded parsing, no YAML aliases (an alias bomb).
    try:
        if artifact_uri.lower().endswith((".yaml", ".yml")):
            return load_yaml(data, artifact_uri, max_depth=_ARTIFACT_DEPTH, int64=False)
        return load_json(data, artifact_uri, max_depth=_ARTIFACT_DEPTH, int64=False)
    except CorruptMetadata as e:
        raise InvalidParameterValue(e.message) from e


# -- the fluent API ------------------------------------------------------------------------
def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Log a local file as an artifact of the active run (or `run_id`), under `artifact_path`."""
    tracker, rid = _target(run_id)
    log_run_artifact(tracker, rid, local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Log the contents of a local folder as artifacts of the active run (or `run_id`)."""
    tracker, rid = _target(run_id)
    log_run_artifacts(tracker, rid, local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Log a string as a text file artifact (UTF-8)."""
    tracker, rid = _target(run_id)
    log_run_bytes(tracker, rid, text.encode("utf-8"), artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a dict (or any JSON/YAML-able value) as JSON, or YAML for `.yaml`/`.yml` files."""
    tracker, rid = _target(run_id)
    normalize_artifact_path(artifact_file, allow_root=False)
    log_run_bytes(tracker, rid, dict_bytes(dictionary, artifact_file), artifact_file)


def log_figure(
    figure: Any,
    artifact_file: str,
    *,
    save_kwargs: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Log a matplotlib figure (or a plotly one, as `.html` or an image) as an artifact."""
    normalize_artifact_path(artifact_file, allow_root=False)
    tracker, rid = _target(run_id)
    log_run_figure(tracker, rid, figure, artifact_file, save_kwargs)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
    *,
    run_id: str | None = None,
) -> None:
    """Log a numpy array or PIL image, as MLflow 2.12+ does: at `artifact_file` (PNG without
    Pillow; any format with it), or per training step under `key` (with `step`, `timestamp`):
    `images/<key>+step+<step>+timestamp+<ms>+<uuid>.png` and a `+compressed.webp` preview,
    the run tagged `mlflow.loggedImages`. Logging is synchronous whatever `synchronous` says
    (MLflow returns nothing either way)."""
    from gitml.tracking.images import check_image_args
    from gitml.tracking.images import log_image as log_to

    check_image_args(artifact_file, key, step, timestamp)  # before a run is started
    if artifact_file is not None:
        normalize_artifact_path(artifact_file, allow_root=False)
    tracker, rid = _target(run_id)
    log_to(tracker, rid, image, artifact_file, key, step, timestamp)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """A `file://` URI of the active run's artifact folder (or of `artifact_path` in it), as
    MLflow's local store gives: logged files under it are copied there, and what the script
    writes there is logged when the run ends (gitml.artifacts.staging). Starts a run if none.
    The run's `runs:/` URI stays what `run.info.artifact_uri` says, and works everywhere."""
    tracker, rid = _target(None)
    return stage(tracker, rid, artifact_path).as_uri()
