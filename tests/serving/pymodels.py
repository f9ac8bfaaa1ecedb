"""Small real pyfunc models for serving tests: importable, JSON state, no pickle."""

from __future__ import annotations

from typing import Any

import numpy as np

from gitml.pyfunc import PythonModel

__all__ = ["Echo", "Lengths", "Scaled"]


class Scaled(PythonModel):
    """Row sums times `factor`: each registered version answers differently."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """Row sums of a 2-D input, scaled."""
        return np.asarray(model_input, dtype=np.float64).sum(axis=1) * self.factor


class Lengths(PythonModel):
    """The length of each value of the first column: a model of strings (V2 BYTES)."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """One integer per row."""
        first = model_input.iloc[:, 0] if hasattr(model_input, "iloc") else np.asarray(model_input)[:, 0]
        return np.asarray([len(str(v)) for v in first], dtype=np.int64)


class Echo(PythonModel):
    """Its input, unchanged: outputs of every V2 datatype."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """The input itself (an array, or a dict of named arrays)."""
        return model_input
