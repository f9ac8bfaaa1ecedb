"""Request parsing: MLflow's four JSON formats and CSV, and every malformed body named."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from gitml.exceptions import InvalidParameterValue
from gitml.models.signature import ColSpec, ModelSignature, Schema, TensorSpec
from gitml.serving.formats import (
    InputSpec,
    UnsupportedContentType,
    dump_predictions,
    input_spec,
    merge_inputs,
    parse_request,
    split_predictions,
)

JSON = "application/json"


class _Model:
    def __init__(self, schema: Schema) -> None:
        self.metadata = type("Meta", (), {"signature": ModelSignature(inputs=schema)})()


COLUMNS = input_spec(_Model(Schema([ColSpec("double", "a"), ColSpec("double", "b")])))
TENSOR = input_spec(_Model(Schema([TensorSpec("float32", (-1, 2, 2))])))
NAMED = input_spec(
    _Model(Schema([TensorSpec("float32", (-1, 2), "x"), TensorSpec("int64", (-1,), "y")]))
)


def parse(payload: Any, spec: InputSpec | None = None, ctype: str = JSON) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_request(body, ctype, spec)


def test_signatures_are_read() -> None:
    assert COLUMNS is not None and not COLUMNS.tensor and COLUMNS.required == ("a", "b")
    assert TENSOR is not None and TENSOR.tensor and TENSOR.tensors[""][1] == (-1, 2, 2)
    assert NAMED is not None and NAMED.names == ("x", "y")
    assert input_spec(object()) is None


@pytest.mark.parametrize(
    ("payload", "spec", "kind", "rows"),
    [
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
            COLUMNS,
            "frame",
            2,
        ),
        ({"dataframe_split": {"data": [[1, 2]]}}, COLUMNS, "frame", 1),
        ({"dataframe_records": [{"a": 1, "b": 2}, {"b": 4, "a": 3}]}, COLUMNS, "frame", 2),
        ({"dataframe_records": [{"a": "x", "b": 2}]}, None, "frame", 1),
        ({"instances": [[1, 2], [3, 4], [5, 6]]}, None, "tensor", 3),
        ({"instances": [{"x": [1, 2], "y": 1}]}, NAMED, "named", 1),
        ({"inputs": [[[1, 2], [3, 4]]]}, TENSOR, "tensor", 1),
        ({"inputs": {"x": [[1, 2], [3, 4]], "y": [1, 2]}}, NAMED, "named", 2),
        ({"inputs": {"a": [1, 3], "b": [2, 4]}}, COLUMNS, "frame", 2),
        ({"inputs": [[1.0]], "params": {"k": 1}}, None, "tensor", 1),
    ],
)
def test_formats_parse(payload: Any, spec: InputSpec | None, kind: str, rows: int) -> None:
    inp = parse(payload, spec)
    assert (inp.kind, inp.rows) == (kind, rows)
    data = merge_inputs([inp])
    if kind == "frame":
        assert list(data.columns)[:2] == list(inp.columns)[:2]
        assert len(data) == rows
    if "params" in payload:
        assert inp.params == {"k": 1} and inp.key is None


def test_tensor_dtype_follows_the_signature() -> None:
    inp = parse({"inputs": [[[1, 2], [3, 4]]]}, TENSOR)
    assert inp.data.dtype == np.float32 and inp.data.shape == (1, 2, 2)
    named = parse({"inputs": {"x": [[1, 2]], "y": [7]}}, NAMED)
    assert named.data["y"].dtype == np.int64


def test_csv() -> None:
    inp = parse(b"a,b\n1,2\n3,4\n", COLUMNS, "text/csv")
    assert inp.rows == 2 and list(merge_inputs([inp])["b"]) == [2, 4]


@pytest.mark.parametrize(
    ("payload", "spec", "ctype", "needle"),
    [
        (b"{not json", None, JSON, "Malformed JSON"),
        ([1, 2], None, JSON, "must be an object"),
        ({"rows": [[1]]}, None, JSON, "exactly one of"),
        ({"inputs": [[1]], "instances": [[1]]}, None, JSON, "exactly one of"),
        ({"inputs": []}, None, JSON, "Empty batch"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": []}}, COLUMNS, JSON, "Empty batch"),
        ({"dataframe_records": []}, None, JSON, "Empty batch"),
        ({"inputs": [[1, 2], [3]]}, None, JSON, "Ragged"),
        ({"inputs": [[1, 2], [3, 4]]}, TENSOR, JSON, "Wrong shape"),
        ({"inputs": [[["a", "b"], ["c", "d"]]]}, TENSOR, JSON, "Cannot convert"),
        ({"inputs": 3}, None, JSON, "must be a list"),
        ({"inputs": {"x": [[1, 2]]}}, NAMED, JSON, "Missing input(s) ['y']"),
        (
            {"dataframe_split": {"columns": ["a"], "data": [[1]]}},
            COLUMNS,
            JSON,
            "Missing required column(s) ['b']",
        ),
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}},
            COLUMNS,
            JSON,
            "Each row must have 2",
        ),
        ({"dataframe_split": [1]}, None, JSON, "'dataframe_split' must be an object"),
        ({"dataframe_records": [1, 2]}, None, JSON, "list of objects"),
        ({"inputs": [[1]], "params": [1]}, None, JSON, "'params'"),
        (b"a,,b\n1,2,3\n", None, "text/csv", "Bad CSV header"),
        (b"a,c\n1,2\n", COLUMNS, "text/csv", "Missing required column(s) ['b']"),
        (b"a,b\n", COLUMNS, "text/csv", "Empty batch"),
        (b"", COLUMNS, "text/csv", "Empty batch"),
    ],
)
def test_malformed_bodies_name_the_problem(
    payload: Any, spec: InputSpec | None, ctype: str, needle: str
) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        parse(payload, spec, ctype)
    assert needle in info.value.message
    assert info.value.to_dict()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "ctype", [None, "text/plain", "application/xml", "application/octet-stream"]
)
def test_unsupported_content_types(ctype: str | None) -> None:
    with pytest.raises(UnsupportedContentType) as info:
        parse_request(b"{}", ctype, None)
    assert info.value.status == 415


def test_json_with_charset_is_json() -> None:
    assert parse_request(b'{"inputs": [[1]]}', "application/json; charset=utf-8", None).rows == 1


def test_merge_and_split_round_trip() -> None:
    a = parse({"inputs": [[1, 2]]})
    b = parse({"inputs": [[3, 4], [5, 6]]})
    assert a.key == b.key
    merged = merge_inputs([a, b])
    assert merged.shape == (3, 2)
    parts = split_predictions(merged.sum(axis=1), [1, 2])
    assert parts is not None and [p.tolist() for p in parts] == [[3], [7, 11]]
    f1 = parse({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}, COLUMNS)
    f2 = parse({"dataframe_records": [{"a": 3, "b": 4}]}, COLUMNS)
    frame = merge_inputs([f1, f2])
    assert frame.to_dict(orient="list") == {"a": [1, 3], "b": [2, 4]}
    assert split_predictions(5.0, [1, 1]) is None  # an aggregate cannot be split
    dict_parts = split_predictions({"p": np.arange(3)}, [2, 1])
    assert dict_parts is not None and dict_parts[1]["p"].tolist() == [2]


def test_keys_keep_incompatible_requests_apart() -> None:
    ints = parse({"inputs": [[1, 2]]})
    floats = parse({"inputs": [[1.5, 2]]})
    wide = parse({"inputs": [[1, 2, 3]]})
    assert len({ints.key, floats.key, wide.key}) == 3


def test_dump_predictions_shapes() -> None:
    import pandas as pd

    assert json.loads(dump_predictions(np.array([1, 2]))) == {"predictions": [1, 2]}
    frame = pd.DataFrame({"p": [0.5]})
    assert json.loads(dump_predictions(frame)) == {"predictions": [{"p": 0.5}]}
    assert json.loads(dump_predictions(pd.Series([1.0]))) == {"predictions": [1.0]}
    out = json.loads(dump_predictions({"a": np.array([[1.0]]), "b": np.float32(2)}))
    assert out == {"predictions": {"a": [[1.0]], "b": 2.0}}
    assert json.loads(dump_predictions(np.arange(4)[::2])) == {"predictions": [0, 2]}
