"""`gitml.pyfunc`: custom PythonModels, and loading any model as a generic predictor."""

from __future__ import annotations

from typing import Any

from gitml.fluent.models import log_flavor_model
from gitml.models.flavors.python_model import (
    ALLOW_PICKLE_ENV,
    FLAVOR_NAME,
    PythonModel,
    PythonModelContext,
    save_model,
)
from gitml.models.model import ModelInfo
from gitml.models.predictor import PyFuncModel, load_model

__all__ = [
    "ALLOW_PICKLE_ENV",
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "load_model",
    "log_model",
    "save_model",
]


def log_model(
    artifact_path: str | None = None,
    python_model: Any = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log a PythonModel to the active run (see `save_model` for the arguments)."""
    return log_flavor_model(
        save_model,
        artifact_path,
        name=name,
        registered_model_name=registered_model_name,
        python_model=python_model,
        **kwargs,
    )
