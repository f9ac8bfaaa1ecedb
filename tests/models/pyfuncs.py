"""PythonModels used by the pyfunc tests, importable by name as saved models record them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gitml.pyfunc

__all__ = ["AddN", "EchoParams", "Lookup", "NoContext"]


class AddN(gitml.pyfunc.PythonModel):
    """Adds `n` (a JSON attribute saved with the model) to every input value."""

    def __init__(self, n: int) -> None:
        self.n = n

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return [v + self.n for v in model_input["x"]]


class Lookup(gitml.pyfunc.PythonModel):
    """Reads a vocabulary artifact in load_context; maps words to their line numbers."""

    def load_context(self, context: gitml.pyfunc.PythonModelContext) -> None:
        words = Path(context.artifacts["vocab"]).read_text().split()
        self.index = {w: i for i, w in enumerate(words)}
        self.default = context.model_config.get("default", -1)

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return [self.index.get(w, self.default) for w in model_input["word"]]


class NoContext(gitml.pyfunc.PythonModel):
    """MLflow 3 style: predict without a context argument."""

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        return len(model_input)


class EchoParams(gitml.pyfunc.PythonModel):
    """Returns the params it was given, to show what the signature made of them."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return params
