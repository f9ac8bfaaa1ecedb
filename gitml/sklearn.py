"""`gitml.sklearn`: save, log and load scikit-learn models (MLflow's `mlflow.sklearn` names)."""

from __future__ import annotations

from typing import Any

from gitml.fluent.models import log_flavor_model
from gitml.models.flavors.sklearn import FLAVOR_NAME, load_model, save_model
from gitml.models.model import ModelInfo

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log a fitted estimator to the active run (see `save_model` for the arguments)."""
    return log_flavor_model(
        save_model,
        artifact_path,
        name=name,
        registered_model_name=registered_model_name,
        sk_model=sk_model,
        **kwargs,
    )
