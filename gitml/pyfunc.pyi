"""`gitml.pyfunc`: custom PythonModels, and loading any model as a generic predictor.

Written by `make faces` from the flavor registry: do not edit."""

from typing import Any

from gitml.models.flavors.pyfunc.flavor import ALLOW_PICKLE_ENV as ALLOW_PICKLE_ENV
from gitml.models.flavors.pyfunc.flavor import FLAVOR_NAME as FLAVOR_NAME
from gitml.models.flavors.pyfunc.flavor import PyFuncModel as PyFuncModel
from gitml.models.flavors.pyfunc.flavor import PythonModel as PythonModel
from gitml.models.flavors.pyfunc.flavor import PythonModelContext as PythonModelContext
from gitml.models.flavors.pyfunc.flavor import get_model_dependencies as get_model_dependencies
from gitml.models.flavors.pyfunc.flavor import load_model as load_model
from gitml.models.flavors.pyfunc.flavor import save_model as save_model
from gitml.models.model import ModelInfo

__all__ = [
    "ALLOW_PICKLE_ENV",
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "autolog",
    "get_model_dependencies",
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

def autolog(*args: Any, **kwargs: Any) -> None:
    """Accepted so MLflow scripts run; gitml logs what the script logs, nothing automatically (it says so)."""
