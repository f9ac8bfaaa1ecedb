"""gitml.models: the MLmodel format, signatures, model URIs and the flavors (MLflow's names)."""

from __future__ import annotations

from pathlib import Path

from gitml.models.model import Model, ModelInfo
from gitml.models.signature import (
    ColSpec,
    ModelSignature,
    Schema,
    TensorSpec,
    infer_signature,
)
from gitml.models.uri import resolve_model_uri

__all__ = [
    "ColSpec",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "Schema",
    "TensorSpec",
    "get_model_info",
    "infer_signature",
    "resolve_model_uri",
]


def get_model_info(model_uri: str | Path) -> ModelInfo:
    """The ModelInfo (uuid, run id, flavors, signature, ...) of the model at `model_uri`."""
    text = str(model_uri)
    return Model.load(text if text.startswith(("runs:/", "models:/")) else resolve_model_uri(text)).get_model_info(text)
