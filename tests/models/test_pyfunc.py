"""pyfunc flavor: PythonModels by import path, artifacts, config, and pickles only on opt-in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import gitml.pyfunc
from gitml.exceptions import InvalidParameterValue
from gitml.models import ColSpec, ModelSignature, Schema
from tests.models.pyfuncs import AddN, Lookup, NoContext

Evil = tuple[Callable[[Path], None], Path]


def test_instance_attributes_are_saved_as_json(tmp_path: Path) -> None:
    meta = gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(5))
    conf = meta.flavors["python_function"]
    # the tests package is not installed: the class ships as extracted source
    assert conf["python_model"] == "gitml_src_pyfuncs:AddN"
    assert "class AddN" in (tmp_path / "m" / "code" / "gitml_src_pyfuncs.py").read_text()
    assert (tmp_path / "m" / "python_model.json").read_text() == '{"n": 5}'
    model = gitml.pyfunc.load_model(tmp_path / "m")
    assert model.predict({"x": [1, 2]}) == [6, 7]
    assert type(model.unwrap_python_model()).__name__ == "AddN"


def test_artifacts_and_model_config(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("cat\ndog\nbird\n")
    sig = ModelSignature(Schema([ColSpec("string", "word")]))
    gitml.pyfunc.save_model(
        tmp_path / "m", python_model=Lookup, artifacts={"vocab": vocab}, model_config={"default": 99}, signature=sig
    )
    vocab.write_text("changed\n")  # the model holds its own copy
    model = gitml.pyfunc.load_model(tmp_path / "m")
    assert model.predict(pd.DataFrame({"word": ["dog", "fish"]})) == [1, 99]
    assert model.predict([{"word": "bird"}]) == [2]
    with pytest.raises(InvalidParameterValue, match=r"missing required column\(s\) \['word'\]"):
        model.predict({"words": ["dog"]})


def test_predict_without_context(tmp_path: Path) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=NoContext())
    assert gitml.pyfunc.load_model(tmp_path / "m").predict(np.zeros((3, 2))) == 3


def test_input_example_gives_the_signature(tmp_path: Path) -> None:
    meta = gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1), input_example=pd.DataFrame({"x": [1, 2]}))
    assert meta.signature is not None
    assert meta.signature.inputs == Schema([ColSpec("long", "x")])
    assert meta.saved_input_example_info == {"artifact_path": "input_example.json", "type": "dataframe", "pandas_orient": "split"}


def test_state_that_is_not_json_is_refused(tmp_path: Path) -> None:
    model = AddN(1)
    model.n = object()  # type: ignore[assignment]
    with pytest.raises(InvalidParameterValue, match=r"AddN.n is a builtins.object, which has no safe form.*artifacts="):
        gitml.pyfunc.save_model(tmp_path / "m", python_model=model)


def test_local_class_ships_as_source(tmp_path: Path) -> None:
    class Inner(gitml.pyfunc.PythonModel):
        def predict(self, context: object, model_input: object, params: object = None) -> object:
            return model_input

    meta = gitml.pyfunc.save_model(tmp_path / "m", python_model=Inner())
    assert meta.flavors["python_function"]["python_model"].endswith(":Inner")
    assert gitml.pyfunc.load_model(tmp_path / "m").predict([1]) == [1]


def test_class_without_source_is_refused(tmp_path: Path) -> None:
    made = type("Made", (gitml.pyfunc.PythonModel,), {"predict": lambda self, c, x, params=None: x})
    with pytest.raises(InvalidParameterValue, match=r"cannot find the source of 'Made'.*code_paths"):
        gitml.pyfunc.save_model(tmp_path / "m", python_model=made())
    assert not (tmp_path / "m").exists()


def test_pickled_model_needs_an_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(2), serialization="pickle")
    with pytest.raises(InvalidParameterValue, match="refusing"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert gitml.pyfunc.load_model(tmp_path / "m", allow_pickle=True).predict({"x": [1]}) == [3]
    monkeypatch.setenv(gitml.pyfunc.ALLOW_PICKLE_ENV, "1")
    assert gitml.pyfunc.load_model(tmp_path / "m").predict({"x": [1]}) == [3]
    with pytest.raises(InvalidParameterValue, match="refusing"):
        gitml.pyfunc.load_model(tmp_path / "m", allow_pickle=False)


def test_planted_pickle_is_refused(tmp_path: Path, evil: Evil) -> None:
    plant, marker = evil
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(2))
    plant(tmp_path / "m" / "python_model.pkl")
    data = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    data["flavors"]["python_function"]["python_model_pickle"] = "python_model.pkl"
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidParameterValue, match="unpickling runs code from the model files"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert not marker.exists()


def test_planted_pickle_as_state_is_refused(tmp_path: Path, evil: Evil) -> None:
    from gitml.exceptions import CorruptMetadata

    plant, marker = evil
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(2))
    plant(tmp_path / "m" / "python_model.json")
    with pytest.raises(CorruptMetadata, match="not the model's JSON state"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert not marker.exists()


def test_missing_python_model_class(tmp_path: Path) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(2))
    data = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    data["flavors"]["python_function"]["python_model"] = "tests.models.pyfuncs:Gone"
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidParameterValue, match="has no 'Gone'"):
        gitml.pyfunc.load_model(tmp_path / "m")


def test_predict_matrix_gives_a_python_model_its_frame(tmp_path: Path) -> None:
    # flavors without an array path get the DataFrame `predict` would build
    sig = ModelSignature(Schema([ColSpec("long", "x")]))
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(3), signature=sig)
    model = gitml.pyfunc.load_model(tmp_path / "m")
    assert list(model.predict_matrix(np.array([[1], [2]]), ("x",))) == [4, 5]
    assert list(model.predict_matrix(np.array([[1], [2]]), ("x",))) == list(model.predict(pd.DataFrame({"x": [1, 2]})))
