"""Logging models to runs and loading them back by runs:/ URI, in a real repository."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import gitml
import gitml.pyfunc
import gitml.pytorch
import gitml.sklearn
from gitml.exceptions import InvalidParameterValue
from gitml.models import get_model_info
from tests.models.cnn import CNN
from tests.models.pyfuncs import AddN


def test_log_and_load_pytorch_by_runs_uri(repo: Path) -> None:
    torch.manual_seed(0)
    model = CNN().eval()
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    with gitml.start_run() as run:
        info = gitml.pytorch.log_model(model, "model", input_example=x)
    run_id = run.info.run_id
    assert info.model_uri == f"runs:/{run_id}/model"
    assert info.run_id == run_id and info.artifact_path == "model"
    loaded = gitml.pytorch.load_model(info.model_uri)
    with torch.no_grad():
        assert torch.equal(loaded(torch.from_numpy(x)), model(torch.from_numpy(x)))
    pyfunc = gitml.pyfunc.load_model(f"runs:/{run_id}/model")
    meta = pyfunc.metadata.get_model_info()
    assert meta.run_id == run_id and meta.model_uuid == info.model_uuid
    assert meta.signature == info.signature
    assert np.array_equal(pyfunc.predict(x), loaded(torch.from_numpy(x)).detach().numpy())
    assert get_model_info(info.model_uri).model_uuid == info.model_uuid
    # the working tree is untouched: models live in the artifact store, not the checkout
    assert not (repo / "model").exists()


def test_log_sklearn_and_pyfunc_into_one_run(repo: Path, tmp_path: Path) -> None:
    X = np.random.default_rng(1).random((40, 2))
    y = (X[:, 0] > 0.5).astype(int)
    clf = LogisticRegression().fit(X, y)
    with gitml.start_run() as run:
        sk = gitml.sklearn.log_model(clf, "clf", input_example=X[:2])
        py = gitml.pyfunc.log_model("adder", python_model=AddN(10))
    assert sk.run_id == py.run_id == run.info.run_id
    assert sk.model_uri is not None and py.model_uri is not None
    dst = tmp_path / "dl"
    local = gitml.models.resolve_model_uri(sk.model_uri, dst)
    assert local.parent == dst and (local / "MLmodel").is_file()
    assert np.array_equal(gitml.pyfunc.load_model(sk.model_uri).predict(X), clf.predict(X))
    assert gitml.pyfunc.load_model(py.model_uri).predict({"x": [1]}) == [11]


def test_log_model_starts_a_run_when_none_is_active(repo: Path) -> None:
    info = gitml.pyfunc.log_model("m", python_model=AddN(1))
    active = gitml.active_run()
    assert active is not None and info.run_id == active.info.run_id
    gitml.end_run()


def test_log_and_load_state_dict_by_runs_uri(repo: Path) -> None:
    torch.manual_seed(0)
    model = CNN().eval()
    with gitml.start_run() as run:
        gitml.pytorch.log_state_dict(model.state_dict(), artifact_path="weights")
        gitml.pytorch.log_state_dict(state_dict={"epoch": 2, "net": model.state_dict()}, artifact_path="ckpt/last")
    run_id = run.info.run_id
    assert [a.path for a in gitml.MlflowClient().list_artifacts(run_id, "weights")] == ["weights/state_dict.pth"]
    loaded = gitml.pytorch.load_state_dict(f"runs:/{run_id}/weights")
    assert loaded.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    ckpt = gitml.pytorch.load_state_dict(f"runs:/{run_id}/ckpt/last")
    assert ckpt["epoch"] == 2 and torch.equal(ckpt["net"]["fc2.bias"], model.state_dict()["fc2.bias"])
    with pytest.raises(InvalidParameterValue, match="must be a dict"), gitml.start_run():
        gitml.pytorch.log_state_dict(model, "weights")


@pytest.mark.parametrize("bad", ["", "/abs", "../up", "a/../../b"])
def test_bad_artifact_path(repo: Path, bad: str) -> None:
    with pytest.raises(InvalidParameterValue):
        gitml.pyfunc.log_model(bad, python_model=AddN(1))


def test_unknown_run(repo: Path) -> None:
    from gitml.exceptions import GitMLError

    with pytest.raises(GitMLError):
        gitml.pyfunc.load_model(f"runs:/{'0' * 32}/model")


def test_log_model_records_the_history_tag(repo: Path) -> None:
    import json

    with gitml.start_run() as run:
        first = gitml.pyfunc.log_model("a", python_model=AddN(1), input_example={"x": [1]})
        gitml.pyfunc.log_model("b", python_model=AddN(2))
    tag = gitml.get_run(run.info.run_id).data.tags["mlflow.log-model.history"]
    history = json.loads(tag)
    assert [h["artifact_path"] for h in history] == ["a", "b"]
    assert history[0]["model_uuid"] == first.model_uuid
    assert history[0]["signature"] == first.signature_dict


def test_registered_model_name_registers_and_resolves(repo: Path) -> None:
    with gitml.start_run():
        info = gitml.pyfunc.log_model("m", python_model=AddN(3), registered_model_name="adder")
        again = gitml.pyfunc.log_model("m2", python_model=AddN(4), registered_model_name="adder")
    assert (info.registered_model_version, again.registered_model_version) == (1, 2)
    assert gitml.pyfunc.load_model("models:/adder/1").predict({"x": [1]}) == [4]
    assert gitml.pyfunc.load_model("models:/adder/latest").predict({"x": [1]}) == [5]
    assert get_model_info("models:/adder/2").model_uuid == again.model_uuid


def test_unknown_registered_model(repo: Path) -> None:
    from gitml.exceptions import ResourceDoesNotExist

    with pytest.raises(ResourceDoesNotExist):
        gitml.pyfunc.load_model("models:/nobody/1")


def test_mlflow3_name_spelling(repo: Path) -> None:
    from gitml.models import Model

    with gitml.start_run():
        info = gitml.pyfunc.log_model(name="named", python_model=AddN(1))
        default = gitml.pyfunc.log_model(python_model=AddN(1))
        with pytest.raises(InvalidParameterValue, match="not both"):
            gitml.pyfunc.log_model("a", name="b", python_model=AddN(1))
    assert info.artifact_path == "named" and default.artifact_path == "model"
    assert info.model_uri is not None
    assert Model.load(info.model_uri).model_uuid == info.model_uuid


def test_loads_by_uri_leave_no_copies_behind(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    X = np.random.default_rng(2).random((20, 2))
    clf = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))
    with gitml.start_run():
        sk = gitml.sklearn.log_model(clf, "clf")
        pt = gitml.pytorch.log_model(CNN(), "cnn", input_example=np.zeros((1, 3, 32, 32), np.float32), export=True)
        py = gitml.pyfunc.log_model("adder", python_model=AddN(1))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert sk.model_uri and pt.model_uri and py.model_uri
    x = np.ones((2, 3, 32, 32), np.float32)
    models = [
        gitml.sklearn.load_model(sk.model_uri),
        gitml.pyfunc.load_model(sk.model_uri),
        gitml.pytorch.load_model(pt.model_uri),
        gitml.pytorch.load_model(pt.model_uri, use_exported=True),
        gitml.pyfunc.load_model(pt.model_uri),
    ]
    assert get_model_info(pt.model_uri).model_uuid == pt.model_uuid
    assert list(temp.iterdir()) == []
    # and they still work: memory-mapped weights outlive their unlinked file
    assert models[0].predict(X).shape == (20,)
    assert models[2](torch.from_numpy(x)).shape == (2, 10)
    assert np.allclose(models[3](torch.from_numpy(x)).detach().numpy(), models[2](torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    assert models[4].predict(x).shape == (2, 10) and models[4].model_dir is None
    # a PythonModel may read its artifacts later: its copy is kept
    adder = gitml.pyfunc.load_model(py.model_uri)
    assert adder.model_dir is not None and adder.model_dir.is_dir()
