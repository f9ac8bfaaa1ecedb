"""Signatures: MLflow's JSON format, inference from examples, and input checking."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from gitml.exceptions import InvalidParameterValue
from gitml.models import ColSpec, ModelSignature, Schema, TensorSpec, infer_signature
from gitml.models.enforcement import enforce_schema
from gitml.models.signature import infer_schema


def test_tensor_spec_json_is_mlflows() -> None:
    schema = Schema([TensorSpec("float32", (-1, 3, 32, 32))])
    assert json.loads(schema.to_json()) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 32, 32]}}
    ]


def test_colspec_json_is_mlflows() -> None:
    schema = Schema([ColSpec("double", "x"), ColSpec("string", "y", required=False)])
    assert json.loads(schema.to_json()) == [
        {"type": "double", "name": "x", "required": True},
        {"type": "string", "name": "y", "required": False},
    ]


@pytest.mark.parametrize(
    "signature",
    [
        ModelSignature(Schema([TensorSpec("float32", (-1, 4))]), Schema([TensorSpec("int64", (-1,))])),
        ModelSignature(Schema([ColSpec("long", "a"), ColSpec("boolean", "b")]), None),
        ModelSignature(Schema([TensorSpec("float64", (-1, 2), "x"), TensorSpec("int32", (-1,), "y")])),
    ],
)
def test_signature_round_trips_through_dict(signature: ModelSignature) -> None:
    data = signature.to_dict()
    assert isinstance(data["inputs"], str)
    assert ModelSignature.from_dict(data) == signature


def test_infer_from_numpy_frees_the_batch_dimension() -> None:
    sig = infer_signature(np.zeros((5, 3, 32, 32), dtype=np.float32), np.zeros((5, 10), dtype=np.float32))
    assert sig.inputs == Schema([TensorSpec("float32", (-1, 3, 32, 32))])
    assert sig.outputs == Schema([TensorSpec("float32", (-1, 10))])


def test_infer_from_torch_tensor() -> None:
    assert infer_schema(torch.zeros(2, 7, dtype=torch.float64)) == Schema([TensorSpec("float64", (-1, 7))])


def test_infer_from_dataframe_gives_columns() -> None:
    frame = pd.DataFrame(
        {"i": np.array([1, 2], dtype=np.int64), "f": [0.5, 1.5], "s": ["a", "b"], "b": [True, False]}
    )
    assert infer_schema(frame) == Schema(
        [ColSpec("long", "i"), ColSpec("double", "f"), ColSpec("string", "s"), ColSpec("boolean", "b")]
    )


def test_infer_from_records_and_dicts() -> None:
    assert infer_schema([{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}]) == Schema(
        [ColSpec("double", "a"), ColSpec("string", "b")]
    )
    assert infer_schema({"x": np.zeros((2, 3), dtype=np.float32)}) == Schema(
        [TensorSpec("float32", (-1, 3), "x")]
    )


@pytest.mark.parametrize(
    "specs",
    [
        [ColSpec("double", "a"), TensorSpec("float32", (-1,), "b")],
        [ColSpec("double", "a"), ColSpec("double")],
        [ColSpec("double", "a"), ColSpec("long", "a")],
    ],
)
def test_bad_schemas_are_refused(specs: list[ColSpec | TensorSpec]) -> None:
    with pytest.raises(InvalidParameterValue):
        Schema(specs)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="unknown column type"):
        ColSpec("decimal", "a")
    with pytest.raises(InvalidParameterValue, match="unknown tensor dtype"):
        TensorSpec("floaty", (-1,))
    with pytest.raises(InvalidParameterValue, match="not valid JSON"):
        Schema.from_json("[{")


IMAGES = Schema([TensorSpec("float32", (-1, 3, 32, 32))])


def test_tensor_input_passes_and_keeps_values() -> None:
    x = np.random.rand(2, 3, 32, 32).astype(np.float32)
    out = enforce_schema(x, IMAGES)
    assert out.dtype == np.float32 and np.array_equal(out, x)


def test_lists_are_parsed_as_the_signature_says() -> None:
    out = enforce_schema(np.zeros((1, 3, 32, 32)).tolist(), IMAGES)
    assert out.dtype == np.float32 and out.shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((2, 3, 28, 28), dtype=np.float32), r"shape \(2, 3, 28, 28\) does not match the expected \(-1, 3, 32, 32\)"),
        (np.zeros((2, 3, 32), dtype=np.float32), r"shape \(2, 3, 32\)"),
        (np.zeros((2, 3, 32, 32), dtype=np.float64), "float64 cannot be safely cast to the expected float32"),
        ([["a"]], "expected float32 values"),
        ({"x": 1, "y": 2}, "one unnamed tensor"),
    ],
)
def test_wrong_tensor_input_names_the_problem(data: object, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        enforce_schema(data, IMAGES)


def test_safe_casts_are_applied() -> None:
    schema = Schema([TensorSpec("float64", (-1, 2))])
    out = enforce_schema(np.array([[1, 2]], dtype=np.int32), schema)
    assert out.dtype == np.float64 and out.tolist() == [[1.0, 2.0]]


def test_fractional_values_for_integers_are_refused() -> None:
    schema = Schema([TensorSpec("int64", (-1,))])
    assert enforce_schema([1.0, 2.0], schema).dtype == np.int64
    with pytest.raises(InvalidParameterValue, match="fractional"):
        enforce_schema([1.5], schema)


def test_named_tensors() -> None:
    schema = Schema([TensorSpec("float32", (-1, 2), "a"), TensorSpec("int64", (-1,), "b")])
    out = enforce_schema({"a": [[1, 2]], "b": [3], "extra": [0]}, schema)
    assert set(out) == {"a", "b"} and out["a"].dtype == np.float32
    with pytest.raises(InvalidParameterValue, match=r"missing tensor\(s\) \['b'\]"):
        enforce_schema({"a": [[1, 2]]}, schema)


COLUMNS = Schema([ColSpec("double", "x"), ColSpec("long", "n"), ColSpec("string", "s")])


def test_columns_from_every_input_form() -> None:
    frame = pd.DataFrame({"s": ["a"], "x": [1.5], "n": [3], "extra": [0]})
    expected = pd.DataFrame({"x": [1.5], "n": np.array([3], dtype=np.int64), "s": ["a"]})
    for data in (frame, {"x": [1.5], "n": [3], "s": ["a"]}, [{"x": 1.5, "n": 3, "s": "a"}]):
        out = enforce_schema(data, COLUMNS)
        pd.testing.assert_frame_equal(out.reset_index(drop=True), expected)


def test_integer_columns_become_doubles() -> None:
    out = enforce_schema(pd.DataFrame({"x": [1, 2], "n": [1, 2], "s": ["a", "b"]}), COLUMNS)
    assert out["x"].dtype == np.float64


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"x": [1.0], "s": ["a"]}), r"missing required column\(s\) \['n'\]"),
        (pd.DataFrame({"x": ["a"], "n": [1], "s": ["a"]}), "column 'x'"),
        (pd.DataFrame({"x": [1.0], "n": [1.5], "s": ["a"]}), "column 'n': float64 cannot be safely converted to long"),
        (pd.DataFrame({"x": [1.0], "n": [1], "s": [2.0]}), "column 's': expected string"),
    ],
)
def test_wrong_columns_name_the_problem(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        enforce_schema(frame, COLUMNS)


def test_optional_columns_may_be_absent() -> None:
    schema = Schema([ColSpec("double", "x"), ColSpec("double", "y", required=False)])
    out = enforce_schema(pd.DataFrame({"x": [1.0]}), schema)
    assert list(out.columns) == ["x"]


def test_unnamed_columns_take_a_2d_array() -> None:
    schema = Schema([ColSpec("double"), ColSpec("double")])
    out = enforce_schema([[1, 2], [3, 4]], schema)
    assert out.shape == (2, 2)
    with pytest.raises(InvalidParameterValue, match="expected 2 columns, got 3"):
        enforce_schema([[1, 2, 3]], schema)


def test_enforce_matrix_only_takes_what_it_can_check_alone() -> None:
    from gitml.models.enforcement import enforce_matrix

    doubles = Schema([ColSpec("double", "a"), ColSpec("double", "b")])
    ints = np.array([[1, 2]], dtype=np.int64)
    out = enforce_matrix(ints, ("a", "b"), doubles)
    assert out.dtype == np.float64 and out.tolist() == [[1.0, 2.0]]
    same = np.array([[1.0, 2.0]])
    assert enforce_matrix(same, ("a", "b"), doubles) is same
    # anything else is left to the DataFrame path (None): other order, other names, mixed
    # types, optional columns missing, objects, tensors, unnamed columns
    assert enforce_matrix(same, ("b", "a"), doubles) is None
    assert enforce_matrix(same, ("a", "c"), doubles) is None
    assert enforce_matrix(same, ("a", "b"), Schema([ColSpec("double", "a"), ColSpec("long", "b")])) is None
    assert enforce_matrix(same[:, :1], ("a",), doubles) is None
    assert enforce_matrix(np.array([["x", "y"]], dtype=object), ("a", "b"), doubles) is None
    assert enforce_matrix(same, ("a", "b"), Schema([ColSpec("string", "a"), ColSpec("string", "b")])) is None
    assert enforce_matrix(same, ("0", "1"), Schema([ColSpec("double"), ColSpec("double")])) is None
    assert enforce_matrix(same, ("a", "b"), Schema([TensorSpec("float64", (-1, 2), "a")])) is None
    with pytest.raises(InvalidParameterValue, match="cannot be safely converted to long"):
        enforce_matrix(same, ("a", "b"), Schema([ColSpec("long", "a"), ColSpec("long", "b")]))
