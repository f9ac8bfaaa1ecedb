"""`gitml.keras`: save, log and load Keras 3 models (MLflow's `mlflow.keras` names)."""

from __future__ import annotations

from gitml.models.flavors.keras import FLAVOR_NAME, load_model, log_model, save_model

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]
