"""`gitml.pytorch`: save, log and load PyTorch models (MLflow's `mlflow.pytorch` names).

Written by `make faces` from the flavor registry: do not edit."""

from typing import Any

from gitml.models.flavors.pytorch.flavor import FLAVOR_NAME as FLAVOR_NAME
from gitml.models.flavors.pytorch.flavor import load_model as load_model
from gitml.models.flavors.pytorch.flavor import load_state_dict as load_state_dict
from gitml.models.flavors.pytorch.flavor import save_model as save_model
from gitml.models.flavors.pytorch.flavor import save_state_dict as save_state_dict
from gitml.models.model import ModelInfo

__all__ = [
    "FLAVOR_NAME",
    "autolog",
    "load_model",
    "load_state_dict",
    "log_model",
    "log_state_dict",
    "save_model",
    "save_state_dict",
]

def log_model(
    pytorch_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log an nn.Module to the active run (see `save_model` for the arguments)."""

def log_state_dict(state_dict: Any, artifact_path: str, **kwargs: Any) -> None:
    """Save with `save_state_dict` (same arguments) and log the folder under `artifact_path` on the active run."""

def autolog(*args: Any, **kwargs: Any) -> None:
    """Accepted so MLflow scripts run; gitml logs what the script logs, nothing automatically (it says so)."""
