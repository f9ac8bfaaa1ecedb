"""Small real pyfunc models for serving tests: importable, JSON state, no pickle."""

from __future__ import annotations

from typing import Any

import numpy as np

from gitml.pyfunc import PythonModel

__all__ = ["Scaled"]


class Scaled(PythonModel):
    """Row sums times `factor`: each registered version answers differently."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """Row sums of a 2-D input, scaled."""
        return np.asarray(model_input, dtype=np.float64).sum(axis=1) * self.factor
