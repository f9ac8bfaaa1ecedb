"""`gitml.types` answers for `mlflow.types`: the schema classes of model signatures."""

from __future__ import annotations

from gitml.models.signature import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = ["ColSpec", "DataType", "ParamSchema", "ParamSpec", "Schema", "TensorSpec"]
