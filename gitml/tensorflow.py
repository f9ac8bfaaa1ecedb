"""`gitml.tensorflow`: MLflow's `mlflow.tensorflow` names for Keras 3 models (`gitml.keras`);
the backend is the user's choice (`KERAS_BACKEND=tensorflow`), PyTorch when unset."""

from __future__ import annotations

from gitml.keras import FLAVOR_NAME, load_model, log_model, save_model

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]
