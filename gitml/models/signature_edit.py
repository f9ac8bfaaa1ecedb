"""`set_signature(model_uri, signature)`: rewrite the signature in a saved or logged model's
MLmodel (MLflow's `mlflow.models.set_signature`), for a model logged without one.

A local folder's MLmodel is rewritten in place. For `runs:/<run_id>/<path>` only the MLmodel
is fetched; the new one is logged back into the run's model folder, whose other files are
kept as they are (one new folder manifest, committed once). `models:/` is refused, as in
MLflow, and so is a `runs:/` model that a registered version was made from: a version loads
its run's files, and the registry recorded its signature when it was registered, so a
version must not change behind the registry's back (register a new one instead).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from gitml import config
from gitml.exceptions import InvalidParameterValue
from gitml.models.model import MLMODEL_FILE, Model
from gitml.models.signature import ModelSignature
from gitml.models.uri import model_file, parse_runs_uri

__all__ = ["set_signature"]


def set_signature(model_uri: str | Path, signature: ModelSignature) -> None:
    """Set the signature of the model at `model_uri` (a local path, `file://` or `runs:/`)."""
    if not isinstance(signature, ModelSignature):
        raise InvalidParameterValue(
            f"signature must be a ModelSignature (see infer_signature), not {type(signature).__name__}"
        )
    text = str(model_uri)
    if text.startswith("models:/"):
        raise InvalidParameterValue(
            f"cannot set the signature of {text}: a registered version does not change; set it on "
            "the version's runs:/ source and register a new version"
        )
    if text.startswith("runs:/"):
        _refuse_registered(*parse_runs_uri(text))
    with model_file(text) as mlmodel:
        if not mlmodel.is_file():
            raise InvalidParameterValue(f"{text} is not a model folder (no MLmodel file in it)")
        meta = Model.load(mlmodel)
        meta.signature = signature
        if not text.startswith("runs:/"):
            meta.save(mlmodel)
            return
    run_id, path = parse_runs_uri(text)
    from gitml.artifacts.api import log_run_artifacts
    from gitml.tracking.tracker import get_tracker

    with tempfile.TemporaryDirectory(prefix="gitml-signature-") as tmp:
        meta.save(Path(tmp) / MLMODEL_FILE)
        log_run_artifacts(get_tracker(config.tracking_uri()), run_id, tmp, path or None)


def _refuse_registered(run_id: str, path: str) -> None:
    from gitml.registry.client import RegistryClient
    from gitml.tracking.tracker import get_tracker

    client = RegistryClient(tracker=get_tracker(config.tracking_uri()))
    for mv in client.search_model_versions(f"run_id = '{run_id}'"):
        source = str(mv.source or "")
        if source.startswith("runs:/") and parse_runs_uri(source).path == path:
            raise InvalidParameterValue(
                f"runs:/{run_id}/{path} is registered as {mv.name} version {mv.version}, which must "
                "not change: log the model again with the signature and register a new version"
            )
