"""`gitml.data.dataset` answers for `mlflow.data.dataset`: the base class of datasets."""

from __future__ import annotations

from gitml.tracking.datasets import TrackedDataset

Dataset = TrackedDataset  # MLflow's name

__all__ = ["Dataset"]
