"""Logging a model to a run (every flavor's `log_model`): save it to a temporary folder, store it
as run artifacts, register it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitml import constants as C
from gitml.exceptions import InvalidParameterValue
from gitml.fluent import tracking as fluent
from gitml.fluent.artifacts import log_artifacts
from gitml.fluent.registry import register_model
from gitml.models.model import Model, ModelInfo
from gitml.registry.tags import validate_model_name

__all__ = ["LOG_MODEL_HISTORY_TAG", "log_flavor_model"]

LOG_MODEL_HISTORY_TAG = C.TAG_LOG_MODEL_HISTORY
_HISTORY_KEYS = {
    "artifact_path",
    "flavors",
    "model_uuid",
    "run_id",
    "saved_input_example_info",
    "signature",
    "utc_time_created",
}
# The tracking store's limit on a tag value (MLflow's).
_MAX_TAG = 8000


def _record_history(run_id: str, meta: Model) -> None:
    """Append the model to the run's `mlflow.log-model.history` tag, as MLflow does (the
    registry reads it to find models and their signatures in a run)."""
    client = fluent._client()
    try:
        history = json.loads(client.get_run(run_id).data.tags.get(LOG_MODEL_HISTORY_TAG, "[]"))
    except ValueError:
        history = []
    if not isinstance(history, list):
        history = []
    entry = {k: v for k, v in meta.to_dict().items() if k in _HISTORY_KEYS}
    history = [h for h in history if not (isinstance(h, dict) and h.get("artifact_path") == meta.artifact_path)]
    history.append(entry)
    text = json.dumps(history)
    while len(text) > _MAX_TAG and len(history) > 1:
        history.pop(0)  # the oldest entries give way; the model just logged must be there
        text = json.dumps(history)
    if len(text) > _MAX_TAG:
        entry["flavors"] = {name: {} for name in meta.flavors}
        text = json.dumps([entry])
    client.set_tag(run_id, LOG_MODEL_HISTORY_TAG, text)


def log_flavor_model(
    save_model: Callable[..., Any],
    artifact_path: str | None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
    **save_kwargs: Any,
) -> ModelInfo:
    """Save with the flavor's `save_model` into a temporary folder and log it under
    `artifact_path` of the run (the active one, started if needed, unless `run_id` is given).

    `name` is MLflow 3's spelling of `artifact_path`; either may be given (default "model").
    """
    if artifact_path is not None and name is not None and artifact_path != name:
        raise InvalidParameterValue("give artifact_path or name, not both")
    artifact_path = artifact_path if artifact_path is not None else (name or "model")
    if not artifact_path or artifact_path.startswith("/") or ".." in Path(artifact_path).parts:
        raise InvalidParameterValue(f"invalid artifact_path {artifact_path!r}: a relative path is needed")
    if registered_model_name is not None:
        validate_model_name(registered_model_name)  # before anything is logged
    if run_id is None:
        run_id = fluent._get_or_start_run().info.run_id
    meta = Model(artifact_path=artifact_path, run_id=run_id)
    with tempfile.TemporaryDirectory(prefix="gitml-model-") as tmp:
        local = Path(tmp) / "model"
        save_model(path=local, mlflow_model=meta, **save_kwargs)
        log_artifacts(str(local), artifact_path, run_id=run_id)
    _record_history(run_id, meta)
    info = meta.get_model_info(f"runs:/{run_id}/{artifact_path}")
    if registered_model_name:
        version = register_model(str(info.model_uri), registered_model_name)
        number = getattr(version, "version", None)
        info = ModelInfo(
            **{
                **info.__dict__,
                "registered_model_version": int(number) if number is not None else None,
            }
        )
    return info
