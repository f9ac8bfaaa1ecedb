"""`gitml.data.numpy_dataset` answers for `mlflow.data.numpy_dataset`."""

from __future__ import annotations

from gitml.tracking.datasets import NumpyDataset, from_numpy

__all__ = ["NumpyDataset", "from_numpy"]
