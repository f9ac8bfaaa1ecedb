"""`gitml.pytorch`: save, log and load PyTorch models (MLflow's `mlflow.pytorch` names)."""

from __future__ import annotations

from gitml.models.flavors.pytorch import FLAVOR_NAME, load_model, log_model, save_model

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]
