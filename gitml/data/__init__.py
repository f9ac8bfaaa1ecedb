"""`gitml.data` answers for `mlflow.data`: datasets to log as a run's inputs.

`from_pandas` and `from_numpy` build datasets (pandas and numpy are imported only then);
`gitml.log_input(dataset, context="training")` records one on the active run.
"""

from __future__ import annotations

from gitml.entities import Dataset as DatasetEntity
from gitml.entities import DatasetInput, InputTag
from gitml.tracking.datasets import (
    NumpyDataset,
    PandasDataset,
    TrackedDataset,
    from_numpy,
    from_pandas,
)

Dataset = TrackedDataset  # MLflow's base class name in mlflow.data

__all__ = [
    "Dataset",
    "DatasetEntity",
    "DatasetInput",
    "InputTag",
    "NumpyDataset",
    "PandasDataset",
    "from_numpy",
    "from_pandas",
]
