"""A scoring server over a small in-process model, for fault tests: `fake_server.py PORT MODE`.

Modes: "sum" (row sums of a float32 [-1, 4] tensor; raises on the poison value 13),
"slowload" (the same, loading for 1.5 s), "failload" (loading raises), "aggregate"
(answers one number for any batch, so predictions cannot be split per request).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from gitml.models.signature import ModelSignature, Schema, TensorSpec
from gitml.serving.app import ServeOptions
from gitml.serving.loading import ModelRef
from gitml.serving.server import serve

__all__ = ["SumModel"]


class _Meta:
    def __init__(self) -> None:
        self.signature = ModelSignature(inputs=Schema([TensorSpec("float32", (-1, 4))]))
        self.run_id = "f" * 32
        self.model_uuid = "0" * 32


class SumModel:
    """Row sums; the value 13 anywhere makes predict raise, as a broken model would."""

    def __init__(self, aggregate: bool = False) -> None:
        self.metadata = _Meta()
        self.aggregate = aggregate
        self.calls: list[int] = []

    def predict(self, data: Any, params: Any = None) -> Any:
        arr = np.asarray(data, dtype=np.float32)
        if (arr == 13).any():
            raise ValueError("unlucky input 13")
        time.sleep(0.002)  # a model call has a cost; lets concurrent requests queue up
        if self.aggregate:
            return float(arr.sum())
        return arr.sum(axis=1)


def _loader(mode: str) -> Any:
    def load(source: str) -> Any:
        if mode == "slowload":
            time.sleep(1.5)
        if mode == "failload":
            raise OSError("weights file is truncated")
        return SumModel(aggregate=mode == "aggregate")

    return load


if __name__ == "__main__":
    port, mode = int(sys.argv[1]), sys.argv[2]
    max_body = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    options = ServeOptions(ref=ModelRef(uri=f"fake:{mode}", source=mode), max_body_bytes=max_body)
    sys.exit(serve(options, port=port, loader=_loader(mode)))
