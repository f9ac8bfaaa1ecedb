"""What a version tag records about its model (run, source, pointer, signature, metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.exceptions import InvalidParameterValue
from gitml.registry.access import Registry
from gitml.tracking.tracker import Tracker

if TYPE_CHECKING:
    from gitml.entities import Run

__all__ = ["GIT_COMMIT_TAG", "version_info"]

# The run tag holding the code commit, as MLflow names it.
GIT_COMMIT_TAG = C.TAG_GIT_COMMIT


def version_info(
    tracker: Tracker, reg: Registry, name: str, source: str, run_id: str | None
) -> dict[str, Any]:
    """What the version tag's message records: run, source, artifact pointer, signature, metrics."""
    if not isinstance(source, str) or not source:
        raise InvalidParameterValue(f"invalid model source {source!r}")
    from gitml.artifacts.staging import has_staged, staged_runs_uri, sync_staged

    staged = staged_runs_uri(source)
    if staged is not None:
        # get_artifact_uri()'s folder: what the script saved there is logged first, and the
        # version records the portable runs:/ URI, not a path of this machine
        source = staged
        staged_run = staged.split("/")[1]
        if has_staged(tracker, staged_run):
            sync_staged(tracker, staged_run)
    if source.startswith("models:/"):
        from gitml.registry.resolve import resolve_models_uri

        source = resolve_models_uri(source, registry=reg)
    info: dict[str, Any] = {"model": name, "source": source}
    path: str | None = None
    if source.startswith("runs:/"):
        from gitml.artifacts.uri import resolve_runs_uri

        source_run, path = resolve_runs_uri(source)
        if run_id is not None and run_id != source_run:
            raise InvalidParameterValue(f"run_id {run_id} does not match the source {source}")
        run_id = source_run
    info["run_id"] = run_id
    info["artifact_path"] = path
    if run_id is None:
        info["source_commit"] = None
        return info
    run = tracker.get_run(run_id)
    commit = run.data.tags.get(GIT_COMMIT_TAG)
    info["source_commit"] = (
        commit if isinstance(commit, str) and reg.commit_exists(commit) else None
    )
    if path is not None:
        info["artifact"], info["signature"] = _model_pointer(tracker, run, path)
    info["metrics"] = {k: float(v) for k, v in sorted(run.data.metrics.items())}
    return info


def _model_pointer(
    tracker: Tracker, run: Run, path: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The artifact pointer of the model folder at `path` and the signature its MLmodel
    holds; raise when no model is there."""
    run_id = run.info.run_id
    pointers = tracker.read_artifacts(run_id)
    key = path.strip("/")
    if key in pointers and str(pointers[key].get("md5", "")).endswith(".dir"):
        found, mlmodel = _folder_mlmodel(tracker, pointers[key])
        if not found:
            raise InvalidParameterValue(
                f"runs:/{run_id}/{key} is not a model folder (no MLmodel file in it)"
            )
        return dict(pointers[key]), _signature(mlmodel)
    if f"{key}/MLmodel" in pointers:  # a folder logged file by file
        pointer = pointers[f"{key}/MLmodel"]
        folder = {
            "path": key,
            "md5": None,
            "files": {k: v for k, v in pointers.items() if k.startswith(key + "/")},
        }
        return folder, _signature(_read_object(tracker, str(pointer.get("md5", ""))))
    if key in pointers:
        raise InvalidParameterValue(f"runs:/{run_id}/{key} is a file, not a model folder")
    raise InvalidParameterValue(
        f"run {run_id} has no model at {key!r}: log one there with log_model() first"
    )


def _folder_mlmodel(tracker: Tracker, pointer: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """Whether the folder's manifest lists an MLmodel, and its content when it is local."""
    from gitml.exceptions import GitMLError

    try:
        from gitml.artifacts.runs import manifest_loader, store_for
    except ImportError:  # no artifact store in this install: trust the pointer
        return True, None
    try:
        entries = manifest_loader(store_for(tracker))(str(pointer["md5"]))
    except GitMLError:  # a manifest out of reach (remote down) must not block registration
        return True, None
    md5 = next((e.md5 for e in entries if e.relpath == "MLmodel"), None)
    if md5 is None:
        return False, None
    return True, _read_object(tracker, md5)


def _read_object(tracker: Tracker, md5: str) -> dict[str, Any] | None:
    """An MLmodel file from the local artifact cache, parsed (None if not here or not YAML)."""
    try:
        from gitml.artifacts.runs import store_for

        store = store_for(tracker)
        if not md5 or not store.exists(md5):
            return None
        with open(store.object_path(md5), "rb") as f:
            data = f.read(1_000_000)
    except (ImportError, OSError):
        return None
    from gitml.registry.history import load_message

    return load_message(data.decode("utf-8", "replace")) or None


def _signature(mlmodel: dict[str, Any] | None) -> dict[str, Any] | None:
    # MLflow's MLmodel keeps the signature as {"inputs": "<json>", "outputs": "<json>"}.
    sig = (mlmodel or {}).get("signature")
    return sig if isinstance(sig, dict) else None
