"""`gitml.pyfunc`: custom PythonModels, and loading any model as a generic predictor."""

from __future__ import annotations

from gitml.models.flavors.pyfunc import (
    ALLOW_PICKLE_ENV,
    FLAVOR_NAME,
    PythonModel,
    PythonModelContext,
    log_model,
    save_model,
)
from gitml.models.pyfunc_model import PyFuncModel, load_model

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
