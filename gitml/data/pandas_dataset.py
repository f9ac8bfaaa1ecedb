"""`gitml.data.pandas_dataset` answers for `mlflow.data.pandas_dataset`."""

from __future__ import annotations

from gitml.tracking.datasets import PandasDataset, from_pandas

__all__ = ["PandasDataset", "from_pandas"]
