"""The one-row shortcuts of the scoring server give the answers of the general path."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from gitml.serving import v2
from gitml.serving.formats import InputSpec
from gitml.serving.server import quiet_threads

COLUMNS = InputSpec(tensor=False, names=("a", "b"), required=("a", "b"))


def _request(datatype: str, values: list[object], shape: list[int] | None = None) -> dict[str, object]:
    return {"inputs": [{"name": "x", "shape": shape or [len(values)], "datatype": datatype, "data": values}]}


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_small_float_tensors_parse_as_the_general_path_does(datatype: str) -> None:
    values = [0.1, -2.5, 1e-3, 65504.0, 3.141592653589793, 7.0]
    fast = v2.parse_infer(_request(datatype, values, [2, 3]), None).data
    dtype = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}[datatype]
    general = np.asarray(values).astype(dtype).reshape(2, 3)
    assert fast.dtype == general.dtype and fast.shape == (2, 3)
    assert np.array_equal(fast, general)


def test_the_shortcut_keeps_the_checks_of_the_general_path() -> None:
    with pytest.raises(Exception, match="holds 2 elements"):
        v2.parse_infer(_request("FP32", [1.0], [2]), None)
    with pytest.raises(Exception, match="must be numbers"):
        v2.parse_infer(_request("FP64", [1.0, "x"]), None)
    with pytest.raises(Exception, match="must be integers"):
        v2.parse_infer(_request("INT32", [1.5]), None)
    ints = v2.parse_infer(_request("FP32", [1, 2]), None).data  # integers take the general path
    assert ints.dtype == np.float32 and ints.tolist() == [1.0, 2.0]


def test_one_value_columns_become_one_row() -> None:
    payload = {"inputs": [
        {"name": "b", "shape": [1], "datatype": "FP64", "data": [2.5]},
        {"name": "a", "shape": [1, 1], "datatype": "FP64", "data": [[1.5]]},
    ]}  # fmt: skip
    inp = v2.parse_infer(payload, COLUMNS)
    assert inp.kind == "frame" and inp.columns == ("a", "b") and inp.data.tolist() == [[1.5, 2.5]]


def _columns(*entries: tuple[object, object, object, object]) -> dict[str, object]:
    return {"inputs": [{"name": n, "shape": s, "datatype": d, "data": v} for n, s, d, v in entries]}


@pytest.mark.parametrize(
    "payload",
    [
        _columns(("b", [2], "FP64", [2.5, 0.1]), ("a", [2], "FP64", [1.5, 1e300])),
        _columns(("a", [3, 1], "FP32", [0.1, 0.2, 0.3]), ("b", [3], "FP32", [1.0, 2.0, 3.0])),
        _columns(("a", [1], "FP16", [0.1]), ("b", [1], "FP16", [6.0e4])),
    ],
)
def test_float_columns_parse_as_the_general_path_does(payload: dict[str, object]) -> None:
    fast = v2.parse_infer(payload, COLUMNS)
    general = v2.parse_infer({**payload, "parameters": {}}, COLUMNS)  # parameters: general path
    assert fast.kind == general.kind == "frame" and fast.columns == general.columns == ("a", "b")
    assert fast.data.dtype == general.data.dtype and fast.data.flags.c_contiguous
    assert np.array_equal(fast.data, general.data) and fast.key == general.key
    assert fast.rows == general.rows and fast.params is None


@pytest.mark.parametrize(
    "payload,error",
    [
        (_columns(("a", [True], "FP64", [1.0]), ("b", [1], "FP64", [2.0])), "list of integers"),
        (_columns(("a", [1], "FP64", [1.0]), ("a", [1], "FP64", [2.0])), "given twice"),
        (_columns(("a", [1], "FP64", [1.0]), ("c", [1], "FP64", [2.0])), "unknown input"),
        (_columns(("a", [1], "FP64", [1.0])), "missing input"),
        (_columns(("a", [1], "FP64", [1.0]), ("b", [2], "FP64", [2.0, 3.0])), "different lengths"),
        (_columns(("a", [2], "FP64", [1.0]), ("b", [2], "FP64", [2.0, 3.0])), "holds 2 elements"),
        (_columns(("a", [1, 2], "FP64", [1.0, 2.0]), ("b", [1], "FP64", [2.0])), "shape [N] or [N, 1]"),
        (_columns(("", [1], "FP64", [1.0]), ("b", [1], "FP64", [2.0])), "no 'name'"),
        (_columns((["a"], [1], "FP64", [1.0]), ("b", [1], "FP64", [2.0])), "no 'name'"),
        (_columns(("a", [1], "FP64", ["1.0"]), ("b", [1], "FP64", [2.0])), "must be numbers"),
    ],
)
def test_float_columns_keep_every_error_of_the_general_path(payload: dict[str, object], error: str) -> None:
    with pytest.raises(Exception, match=re.escape(error)):
        v2.parse_infer(payload, COLUMNS)


def test_float_columns_of_other_kinds_take_the_general_path() -> None:
    mixed = v2.parse_infer(_columns(("a", [1], "FP32", [0.1]), ("b", [1], "FP64", [0.1])), COLUMNS)
    assert mixed.data.dtype == np.float64 and mixed.data[0, 0] == np.float32(0.1)  # rounded as FP32 first
    ints = v2.parse_infer(_columns(("a", [1], "FP64", [1]), ("b", [1], "FP64", [2.0])), COLUMNS)
    assert ints.data.tolist() == [[1.0, 2.0]]


def test_responses_hold_the_same_values_and_refuse_what_json_cannot_hold() -> None:
    out = np.array([[0.1, 2.0]], dtype=np.float32)
    body = json.loads(v2.dump_infer(out, "m", "3", "req-1"))
    assert body == {
        "model_name": "m", "model_version": "3", "id": "req-1",
        "outputs": [{"name": "predict", "datatype": "FP32", "shape": [1, 2], "data": out.ravel().tolist()}],
    }  # fmt: skip
    labels = json.loads(v2.dump_infer(np.array(["cat", "dog"], dtype=object), "m", "", None))
    assert labels["outputs"][0]["datatype"] == "BYTES" and labels["outputs"][0]["data"] == ["cat", "dog"]
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError):
            v2.dump_infer(np.array([1.0, bad]), "m", "", None)


def test_model_threads_wait_asleep_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    quiet_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    quiet_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
