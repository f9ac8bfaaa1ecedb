"""PythonModel attributes that are not JSON, saved without pickle: arrays, tensors, fitted
scikit-learn objects, functions; each hostile form of them refused on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import gitml.pyfunc
from gitml.exceptions import GitMLError, InvalidParameterValue

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
from sklearn.preprocessing import StandardScaler  # noqa: E402

OFFSET = 0.5


def shift(values: Any) -> Any:
    """A helper function kept as an attribute: shipped as extracted source."""
    return values + OFFSET


class Scored(gitml.pyfunc.PythonModel):
    """Holds an array, a tensor, a fitted scaler, a function and JSON values."""

    def __init__(self) -> None:
        self.weights = np.array([1.0, 2.0, 3.0])
        self.bias = torch.tensor([0.25])
        self.scaler = StandardScaler().fit(np.arange(12, dtype=float).reshape(4, 3))
        self.post = shift
        self.name = "scored"
        self.sizes = [1, 2]

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        x = self.scaler.transform(np.asarray(model_input, dtype=float))
        return self.post(x @ self.weights + float(self.bias[0]))


def test_attributes_round_trip_without_pickle(tmp_path: Path) -> None:
    model = Scored()
    x = np.arange(6, dtype=float).reshape(2, 3)
    meta = gitml.pyfunc.save_model(tmp_path / "m", python_model=model)
    stored = meta.flavors["python_function"]["python_model_attributes"]
    assert {k: v["kind"] for k, v in stored.items()} == {"weights": "npy", "bias": "tensor", "scaler": "skops", "post": "code"}
    assert json.loads((tmp_path / "m" / "python_model.json").read_text()) == {"name": "scored", "sizes": [1, 2]}
    loaded = gitml.pyfunc.load_model(tmp_path / "m")
    assert np.array_equal(loaded.predict(x), model.predict(None, x))
    inner = loaded.unwrap_python_model()
    assert inner.name == "scored" and inner.post.__name__ == "shift"


def test_an_attribute_with_no_safe_form_is_named(tmp_path: Path) -> None:
    model = Scored()
    model.handle = open(__file__)  # type: ignore[attr-defined]
    try:
        with pytest.raises(InvalidParameterValue, match=r"Scored.handle is a _io.TextIOWrapper.*artifacts="):
            gitml.pyfunc.save_model(tmp_path / "m", python_model=model)
    finally:
        model.handle.close()  # type: ignore[attr-defined]
    assert not (tmp_path / "m").exists()


def _tamper(model: Path, name: str, entry: dict[str, Any]) -> None:
    conf = yaml.safe_load((model / "MLmodel").read_text())
    conf["flavors"]["python_function"]["python_model_attributes"][name] = entry
    (model / "MLmodel").write_text(yaml.safe_dump(conf))


@pytest.mark.parametrize(
    "entry",
    [
        {"kind": "npy", "path": "../../etc/passwd"},
        {"kind": "pickle", "path": "python_model/weights.npy"},
        {"kind": "code", "ref": "os:system"},
        {"kind": "code", "ref": "subprocess:Popen"},
        {"kind": "skops", "path": "python_model/weights.npy"},
    ],
)
def test_tampered_attribute_entries_are_refused(tmp_path: Path, entry: dict[str, Any]) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=Scored())
    _tamper(tmp_path / "m", "weights", entry)
    with pytest.raises(GitMLError):
        gitml.pyfunc.load_model(tmp_path / "m")


def test_a_pickled_array_or_tensor_is_refused(tmp_path: Path, evil: tuple[Any, Path]) -> None:
    plant, marker = evil
    gitml.pyfunc.save_model(tmp_path / "m", python_model=Scored())
    for name in ("weights.npy", "bias.pt"):
        plant(tmp_path / "m" / "python_model" / name)
    with pytest.raises(InvalidParameterValue, match="refusing attribute"):
        gitml.pyfunc.load_model(tmp_path / "m")
    np.save(tmp_path / "m" / "python_model" / "weights.npy", np.array([1.0, 2.0, 3.0]))
    with pytest.raises(InvalidParameterValue, match="refusing attribute 'bias'"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert not marker.exists()
