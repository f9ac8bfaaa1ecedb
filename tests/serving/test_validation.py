"""validate_serving_input and convert_input_example_to_serving_input (mlflow.models): a body
scored as the server would score it, on real saved and logged models."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gitml
import gitml.pyfunc
from gitml.exceptions import InvalidParameterValue
from gitml.models import (
    ColSpec,
    ModelSignature,
    Schema,
    convert_input_example_to_serving_input,
    infer_signature,
    validate_serving_input,
)
from tests.models.pyfuncs import AddN, EchoParams, NoContext


@pytest.mark.parametrize(
    ("example", "body"),
    [
        (None, None),
        (pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), {"dataframe_split": {"columns": ["x", "y"], "data": [[1, "a"], [2, "b"]]}}),
        (np.arange(4).reshape(2, 2), {"inputs": [[0, 1], [2, 3]]}),
        ({"a": np.zeros(2)}, {"inputs": {"a": [0.0, 0.0]}}),
        ([[1, 2]], {"inputs": [[1, 2]]}),
        ({"x": 1, "y": "a"}, {"dataframe_records": [{"x": 1, "y": "a"}]}),
        ([{"x": 1}, {"x": np.int64(2)}], {"dataframe_records": [{"x": 1}, {"x": 2}]}),
        (({"x": [1]}, {"k": 2}), {"inputs": {"x": [1]}, "params": {"k": 2}}),
    ],
)
def test_convert_input_example_gives_mlflows_body(example: object, body: object) -> None:
    text = convert_input_example_to_serving_input(example)
    assert (json.loads(text) if text is not None else None) == body


def test_a_column_model_scores_its_converted_example(tmp_path: Path) -> None:
    sig = ModelSignature(Schema([ColSpec("long", "x")]))
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(10), signature=sig)
    body = convert_input_example_to_serving_input(pd.DataFrame({"x": [1, 2]}))
    assert body is not None
    assert validate_serving_input(str(tmp_path / "m"), body) == [11, 12]
    assert validate_serving_input(tmp_path / "m", {"dataframe_records": [{"x": 5}]}) == [15]
    assert validate_serving_input(tmp_path / "m", {"inputs": {"x": [3]}}) == [13]
    for example, expected in (({"x": 1}, [11]), ([{"x": 1}, {"x": 2}], [11, 12]), ({"x": [4]}, [14])):
        assert validate_serving_input(tmp_path / "m", convert_input_example_to_serving_input(example)) == expected


def test_params_in_the_body_reach_the_model_checked(tmp_path: Path) -> None:
    sig = infer_signature({"x": [1]}, None, params={"k": 1})
    gitml.pyfunc.save_model(tmp_path / "m", python_model=EchoParams(), signature=sig)
    assert validate_serving_input(tmp_path / "m", '{"inputs": {"x": [1]}, "params": {"k": 4}}') == {"k": 4}
    with pytest.raises(InvalidParameterValue, match="parameter 'k' does not match"):
        validate_serving_input(tmp_path / "m", {"inputs": {"x": [1]}, "params": {"k": "four"}})


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("{not json", "Malformed JSON body"),
        ('{"instances": [[1]], "inputs": [[1]]}', "exactly one of the fields"),
        ({"rows": [1]}, "exactly one of the fields"),
        ({"dataframe_split": {"columns": ["y"], "data": [[1]]}}, r"Missing required column\(s\) \[.x.\]"),
        ({"inputs": [[1]], "params": [1]}, "'params' must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "Malformed JSON body|nest"),
        (42, "must be a JSON string or a dict"),
    ],
)
def test_a_wrong_body_raises(tmp_path: Path, body: object, match: str) -> None:
    sig = ModelSignature(Schema([ColSpec("long", "x")]))
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1), signature=sig)
    with pytest.raises(InvalidParameterValue, match=match):
        validate_serving_input(tmp_path / "m", body)  # type: ignore[arg-type]


def test_a_logged_model_by_runs_uri(repo: Path) -> None:
    with gitml.start_run():
        info = gitml.pyfunc.log_model(name="model", python_model=NoContext())
    before = set(Path(tempfile.gettempdir()).glob("gitml-*"))
    assert validate_serving_input(info.model_uri, '{"inputs": [[1, 2], [3, 4], [5, 6]]}') == 3
    assert set(Path(tempfile.gettempdir()).glob("gitml-*")) == before  # the download is gone
