"""`gitml.tensorflow`: MLflow's `mlflow.tensorflow` names for Keras 3 models (`gitml.keras`);
the backend is the user's choice (`KERAS_BACKEND=tensorflow`), PyTorch when unset.

Written by `make faces` from the flavor registry: do not edit."""

from typing import Any

from gitml.models.flavors.keras.flavor import FLAVOR_NAME as FLAVOR_NAME
from gitml.models.flavors.keras.flavor import load_model as load_model
from gitml.models.flavors.keras.flavor import save_model as save_model
from gitml.models.model import ModelInfo

__all__ = [
    "FLAVOR_NAME",
    "autolog",
    "load_model",
    "log_model",
    "save_model",
]

def log_model(
    keras_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log a Keras model to the active run (see `save_model` for the arguments)."""

def autolog(*args: Any, **kwargs: Any) -> None:
    """Accepted so MLflow scripts run; gitml logs what the script logs, nothing automatically (it says so)."""
