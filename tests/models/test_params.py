"""Inference params in signatures: inference from defaults, MLflow's JSON form, predict-time
checks, and a hostile `signature.params` refused with bounded parsing."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

import gitml.pyfunc
from gitml.exceptions import InvalidParameterValue
from gitml.models import ModelSignature, infer_signature
from gitml.models.signature import COLUMN_TYPES, ColSpec, ParamSchema, ParamSpec
from gitml.types import DataType
from tests.models.pyfuncs import EchoParams

DEFAULTS = {
    "temperature": 0.5,
    "max_tokens": 10,
    "greedy": False,
    "prefix": "hi",
    "stop": ["a", "b"],
    "when": dt.datetime(2024, 1, 2, 3, 4, 5),
}


def test_infer_signature_with_params_writes_mlflows_json() -> None:
    sig = infer_signature(np.zeros((2, 3)), None, params=DEFAULTS)
    assert sig.params is not None
    assert json.loads(sig.to_dict()["params"]) == [
        {"name": "temperature", "type": "double", "default": 0.5, "shape": None},
        {"name": "max_tokens", "type": "long", "default": 10, "shape": None},
        {"name": "greedy", "type": "boolean", "default": False, "shape": None},
        {"name": "prefix", "type": "string", "default": "hi", "shape": None},
        {"name": "stop", "type": "string", "default": ["a", "b"], "shape": [-1]},
        {"name": "when", "type": "datetime", "default": "2024-01-02T03:04:05", "shape": None},
    ]
    assert ModelSignature.from_dict(sig.to_dict()) == sig
    assert infer_signature(np.zeros((2, 3)), None, params={}).params is None


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"x": None}, "cannot infer a parameter type from NoneType"),
        ({"x": [1, "a"]}, "values of one type"),
        ({"x": []}, "empty list"),
        ({"x": {"nested": 1}}, "cannot infer"),
        ([("x", 1)], "must be a dict"),
    ],
)
def test_uninferable_params_are_refused(params: object, match: str) -> None:
    with pytest.raises(InvalidParameterValue, match=match):
        infer_signature(None, None, params=params)


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (ParamSpec("a", "double", 1.0), 2, 2.0),
        (ParamSpec("a", "long", 1), np.int64(3), 3),
        (ParamSpec("a", "string", ["s"], (-1,)), np.array(["x", "y"]), ["x", "y"]),
        (ParamSpec("a", "datetime", None), "2024-05-06", dt.datetime(2024, 5, 6)),
        (ParamSpec("a", "boolean", True), False, False),
    ],
)
def test_values_are_cast_to_the_declared_type(spec: ParamSpec, value: object, expected: object) -> None:
    assert spec.validate(value) == expected


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (ParamSpec("a", "long", 1), 1.5),
        (ParamSpec("a", "long", 1), True),
        (ParamSpec("a", "double", 1.0), "1.0"),
        (ParamSpec("a", "string", "s"), ["x"]),
        (ParamSpec("a", "string", ["s"], (-1,)), "x"),
        (ParamSpec("a", "integer", 1), 2**40),
    ],
)
def test_wrong_values_are_refused(spec: ParamSpec, value: object) -> None:
    with pytest.raises(InvalidParameterValue, match="parameter 'a' does not match its signature"):
        spec.validate(value)


def test_predict_checks_params_against_the_signature(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sig = infer_signature({"x": [1]}, None, params={"k": 3, "mode": "fast", "w": [0.5]})
    gitml.pyfunc.save_model(tmp_path / "m", python_model=EchoParams(), signature=sig)
    assert yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["signature"]["params"] == sig.params.to_json()
    model = gitml.pyfunc.load_model(tmp_path / "m")
    assert model.metadata.get_params_schema() == sig.params
    assert model.predict({"x": [1]}) == {"k": 3, "mode": "fast", "w": [0.5]}
    with caplog.at_level(logging.WARNING, logger="gitml.models.params"):
        got = model.predict({"x": [1]}, params={"k": 7, "w": [1, 2], "typo": 1})
    assert got == {"k": 7, "mode": "fast", "w": [1.0, 2.0]}
    assert "unrecognised params ['typo'] are ignored" in caplog.text
    with pytest.raises(InvalidParameterValue, match="parameter 'k' does not match its signature: expected long, got str"):
        model.predict({"x": [1]}, params={"k": "seven"})


def test_params_without_a_params_schema_are_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=EchoParams())
    with caplog.at_level(logging.WARNING, logger="gitml.models.params"):
        assert gitml.pyfunc.load_model(tmp_path / "m").predict([1], params={"k": 1}) is None
    assert "declares no params" in caplog.text


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ("[" * 5000 + "]" * 5000, "not valid JSON, or not bounded"),
        (json.dumps([{"name": "a", "type": "long", "default": [[[[1]]]], "shape": [-1]}]), "not bounded"),
        ("x" * (2 << 20), "not bounded"),
        (json.dumps([{"name": f"p{i}", "type": "long", "default": 1} for i in range(1001)]), "more than 1000"),
        (json.dumps([{"name": "a", "type": "long", "default": "one"}]), "expected long, got str"),
        (json.dumps([{"name": "a", "type": "tensor", "default": 1}]), "unknown type 'tensor'"),
        (json.dumps([{"name": "a", "type": "long", "default": [1] * 10_001, "shape": [-1]}]), "longer than"),
        (json.dumps([{"name": "a", "type": "long", "default": 1, "shape": [2, 2]}]), "shape must be"),
        (json.dumps([{"name": "a", "type": "long"}, {"name": "a", "type": "long"}]), "duplicated"),
        (json.dumps({"name": "a"}), "must be a list"),
        (json.dumps([{"name": "a", "type": "binary", "default": [1], "shape": [-1]}]), "not a byte string"),
        (json.dumps([{"name": "a", "type": "binary", "default": "\u20ac"}]), "not a byte string"),
        (json.dumps([{"name": "a", "type": "long", "default": 1, "shape": "x"}]), "shape must be a list"),
        (json.dumps([{"name": 7, "type": "long", "default": 1}]), "a string of 1 to 1000 characters"),
        (json.dumps([{"name": "n" * 5000, "type": "long", "default": 1}]), "a string of 1 to 1000 characters"),
        (json.dumps([["name", "a"]]), "malformed parameter spec"),
    ],
)
def test_a_hostile_params_section_is_refused(tmp_path: Path, params: str, match: str) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=EchoParams())
    mlmodel = tmp_path / "m" / "MLmodel"
    data = yaml.safe_load(mlmodel.read_text())
    data["signature"] = {"inputs": None, "outputs": None, "params": params}
    mlmodel.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidParameterValue, match=match):
        gitml.pyfunc.load_model(tmp_path / "m")


def test_schema_round_trips_binary_and_datetime_lists() -> None:
    schema = ParamSchema(
        [ParamSpec("b", "binary", b"\x00\xff"), ParamSpec("d", "datetime", [dt.date(2024, 1, 1)], (-1,))]
    )
    assert ParamSchema.from_json(schema.to_json()) == schema


def test_mlflows_datatype_enum_names_the_types() -> None:
    assert [t.name for t in DataType] == list(COLUMN_TYPES)
    assert ColSpec(DataType.double, "x") == ColSpec("double", "x")
    assert ColSpec(DataType.long).to_dict() == {"type": "long", "required": True}
    assert ParamSpec("k", DataType.long, 3).to_dict()["type"] == "long"
