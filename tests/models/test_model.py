"""The MLmodel file: round trip, schema validation, format versions, and bad model folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import gitml.pyfunc
from gitml.exceptions import CorruptMetadata, InvalidParameterValue, ResourceDoesNotExist
from gitml.models import Model, ModelSignature, Schema, TensorSpec, get_model_info
from gitml.models.model import MLMODEL_FORMAT


class Echo(gitml.pyfunc.PythonModel):
    """Returns its input."""

    def predict(self, context: object, model_input: object, params: object = None) -> object:
        return model_input


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "m"
    gitml.pyfunc.save_model(path, python_model=Echo())
    return path


def _edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load((path / "MLmodel").read_text())
    data.update(changes)
    (path / "MLmodel").write_text(yaml.safe_dump(data))


def test_round_trip(tmp_path: Path) -> None:
    sig = ModelSignature(Schema([TensorSpec("float32", (-1, 2))]))
    model = Model(artifact_path="model", run_id="a" * 32, signature=sig, metadata={"k": "v"})
    model.add_flavor("python_function", loader_module="gitml.pyfunc", python_model="m:C")
    model.save(tmp_path)
    back = Model.load(tmp_path / "MLmodel")
    assert back.to_dict() == model.to_dict()
    assert back.signature == sig
    info = back.get_model_info()
    assert info.model_uri == f"runs:/{'a' * 32}/model"
    assert info.model_uuid == model.model_uuid and len(info.model_uuid) == 32


def test_written_file_reads_as_mlflows_layout(tmp_path: Path) -> None:
    data = yaml.safe_load((_saved(tmp_path) / "MLmodel").read_text())
    assert data["gitml_format"] == MLMODEL_FORMAT
    assert data["flavors"]["python_function"]["loader_module"] == "gitml.pyfunc"
    assert {"model_uuid", "utc_time_created", "gitml_version"} <= set(data)
    assert (tmp_path / "m" / "requirements.txt").read_text().startswith("gitml")


def test_get_model_info_by_path(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    info = get_model_info(path)
    assert "python_function" in info.flavors and info.run_id is None


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _edit(path, gitml_format=MLMODEL_FORMAT + 1)
    with pytest.raises(InvalidParameterValue, match="newer than this gitml reads"):
        gitml.pyfunc.load_model(path)


def test_mlflow_model_without_gitml_format_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = yaml.safe_load((path / "MLmodel").read_text())
    del data["gitml_format"]
    data["mlflow_version"] = "3.1.0"
    (path / "MLmodel").write_text(yaml.safe_dump(data))
    with pytest.raises(CorruptMetadata, match="saved by MLflow"):
        Model.load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flavors: [unclosed", "not valid YAML"),
        ("- a list\n", "not a mapping"),
        ("gitml_format: 1\nflavors: {}\nmodel_uuid: " + "a" * 32 + "\nutc_time_created: x\n", "flavors"),
        ("gitml_format: 1\nflavors: {x: {}}\nmodel_uuid: nope\nutc_time_created: x\n", "model_uuid"),
    ],
)
def test_corrupt_mlmodel(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "MLmodel").write_text(text)
    with pytest.raises(CorruptMetadata, match=message):
        Model.load(tmp_path)


def test_missing_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(ResourceDoesNotExist, match="no MLmodel file"):
        gitml.pyfunc.load_model(tmp_path)
    with pytest.raises(ResourceDoesNotExist, match="no model at"):
        gitml.pyfunc.load_model(tmp_path / "absent")


def test_unknown_loader_module_is_never_imported(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = yaml.safe_load((path / "MLmodel").read_text())
    data["flavors"]["python_function"]["loader_module"] = "os"
    (path / "MLmodel").write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidParameterValue, match="unknown model flavor loader 'os'"):
        gitml.pyfunc.load_model(path)


def test_flavor_loader_on_the_wrong_flavor(tmp_path: Path) -> None:
    import gitml.sklearn

    path = _saved(tmp_path)
    with pytest.raises(InvalidParameterValue, match=r"no 'sklearn' flavor \(it has: python_function\)"):
        gitml.sklearn.load_model(path)


def test_no_pyfunc_flavor(tmp_path: Path) -> None:
    model = Model()
    model.add_flavor("custom", data="x")
    model.save(tmp_path)
    with pytest.raises(InvalidParameterValue, match="no 'python_function' flavor"):
        gitml.pyfunc.load_model(tmp_path)


def test_saving_over_a_model_is_refused(tmp_path: Path) -> None:
    from gitml.exceptions import ResourceAlreadyExists

    path = _saved(tmp_path)
    with pytest.raises(ResourceAlreadyExists):
        gitml.pyfunc.save_model(path, python_model=Echo())


def test_requirements_follow_mlflows_rules(tmp_path: Path) -> None:
    import torch

    import gitml.pytorch
    from tests.models.cnn import Wide

    net = Wide(2)
    gitml.pytorch.save_model(net, tmp_path / "a", init_kwargs={"width": 2})
    lines = (tmp_path / "a" / "requirements.txt").read_text().splitlines()
    assert lines[0].startswith("gitml==") and f"torch=={torch.__version__.split('+')[0]}" in lines
    gitml.pytorch.save_model(net, tmp_path / "b", init_kwargs={"width": 2}, extra_pip_requirements=["pillow>=10"])
    assert (tmp_path / "b" / "requirements.txt").read_text().splitlines()[-1] == "pillow>=10"
    gitml.pytorch.save_model(net, tmp_path / "c", init_kwargs={"width": 2}, pip_requirements=["torch>=2.4"])
    assert (tmp_path / "c" / "requirements.txt").read_text() == "torch>=2.4\n"
    with pytest.raises(InvalidParameterValue, match="not both"):
        gitml.pytorch.save_model(net, tmp_path / "d", init_kwargs={"width": 2}, pip_requirements=["x"], extra_pip_requirements=["y"])
    assert not (tmp_path / "d").exists()  # a failed save leaves no half-written model
