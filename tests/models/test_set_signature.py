"""`gitml.models.set_signature` (MLflow's `mlflow.models.set_signature`): a local folder and a
`runs:/` model in a real repository get a new signature; the rest of the model is untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gitml
import gitml.pyfunc
from gitml.exceptions import GitMLError, InvalidParameterValue
from gitml.models import Model, infer_signature, set_signature
from tests.models.pyfuncs import AddN

X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
Y = np.array([2.0, 3.0, 4.0])


def _sig() -> object:
    return infer_signature(X, Y)


def test_local_folder(tmp_path: Path) -> None:
    gitml.pyfunc.save_model(str(tmp_path / "m"), python_model=AddN(1))
    before = Model.load(tmp_path / "m")
    assert before.signature is None
    sig = _sig()
    set_signature(tmp_path / "m", sig)
    after = Model.load(tmp_path / "m")
    assert after.signature == sig
    assert after.model_uuid == before.model_uuid and after.flavors == before.flavors
    loaded = gitml.pyfunc.load_model(str(tmp_path / "m"))
    assert loaded.metadata.signature == sig
    np.testing.assert_allclose(loaded.predict(X), Y)
    set_signature(f"file://{tmp_path / 'm' / 'MLmodel'}", infer_signature(X, Y.astype(np.float32)))  # the file names the folder
    assert Model.load(tmp_path / "m").signature == infer_signature(X, Y.astype(np.float32))


def test_runs_uri_relogs_only_the_mlmodel(repo: Path) -> None:
    with gitml.start_run() as run:
        info = gitml.pyfunc.log_model("model", python_model=AddN(2))
    client = gitml.MlflowClient()
    files = sorted(a.path for a in client.list_artifacts(run.info.run_id, "model"))
    assert gitml.models.get_model_info(info.model_uri).signature is None
    sig = _sig()
    set_signature(info.model_uri, sig)
    assert gitml.models.get_model_info(info.model_uri).signature == sig
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "model")) == files
    loaded = gitml.pyfunc.load_model(info.model_uri)
    assert loaded.metadata.signature == sig
    np.testing.assert_allclose(loaded.predict(X), Y + 1)


def test_refusals(repo: Path, tmp_path: Path) -> None:
    gitml.pyfunc.save_model(str(tmp_path / "m"), python_model=AddN(1))
    with pytest.raises(InvalidParameterValue, match="ModelSignature"):
        set_signature(tmp_path / "m", {"inputs": "[]"})  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterValue, match="registered version"):
        set_signature("models:/adder/1", _sig())
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidParameterValue, match="not a model folder"):
        set_signature(tmp_path / "plain", _sig())
    with pytest.raises(GitMLError):
        set_signature(tmp_path / "absent", _sig())
    with gitml.start_run() as run:
        gitml.log_text("x", "notes/a.txt")
    with pytest.raises(GitMLError):
        set_signature(f"runs:/{run.info.run_id}/notes", _sig())
    assert [a.path for a in gitml.MlflowClient().list_artifacts(run.info.run_id, "notes")] == ["notes/a.txt"]
    assert Model.load(tmp_path / "m").signature is None  # nothing was changed by a refusal


def test_a_registered_source_is_refused(repo: Path) -> None:
    with gitml.start_run() as run:
        info = gitml.pyfunc.log_model("model", python_model=AddN(2), registered_model_name="adder")
        other = gitml.pyfunc.log_model("other", python_model=AddN(3))
    with pytest.raises(InvalidParameterValue, match="registered as adder version 1"):
        set_signature(info.model_uri, _sig())
    assert gitml.models.get_model_info("models:/adder/1").signature is None
    set_signature(f"runs:/{run.info.run_id}/other/", _sig())  # the same run's unregistered model
    assert gitml.models.get_model_info(other.model_uri).signature == _sig()
