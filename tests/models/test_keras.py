"""Keras 3 on the PyTorch backend (no TensorFlow): save, log, load, pyfunc, serve; Lambda layers
and tampered archives refused unless trusted."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

import gitml
import gitml.keras
import gitml.pyfunc
import gitml.tensorflow
from gitml.exceptions import GitMLError, InvalidParameterValue
from gitml.models import Schema, TensorSpec
from tests.serving.conftest import GITML, free_port
from tests.serving.conftest import start_server as start_server  # noqa: F401  (fixture)

keras = pytest.importorskip("keras", reason="the keras extra is not installed")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((32, 4), dtype=np.float32)
    return x, (x.sum(1, keepdims=True) > 2).astype(np.float32)


@pytest.fixture(scope="module")
def model(data: tuple[np.ndarray, np.ndarray]) -> Any:
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    net.compile(optimizer="adam", loss="mse")
    net.fit(*data, epochs=1, verbose=0)
    return net


def test_runs_on_the_torch_backend() -> None:
    assert keras.backend.backend() == "torch"


def test_round_trip_pyfunc_and_signature(tmp_path: Path, model: Any, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    meta = gitml.keras.save_model(model, tmp_path / "m", input_example=x[:2])
    assert meta.signature is not None
    assert meta.signature.inputs == Schema([TensorSpec("float32", (-1, 4))])
    assert meta.flavors["keras"]["keras_backend"] == "torch"
    expected = model.predict(x, verbose=0)
    assert np.array_equal(gitml.keras.load_model(tmp_path / "m").predict(x, verbose=0), expected)
    assert np.array_equal(gitml.pyfunc.load_model(tmp_path / "m").predict(x), expected)
    assert gitml.tensorflow.load_model is gitml.keras.load_model  # MLflow's other spelling


def test_log_model_and_serve(repo: Path, model: Any, data: tuple[np.ndarray, np.ndarray], start_server: Any) -> None:
    x, _ = data
    with gitml.start_run():
        info = gitml.keras.log_model(model, "model", input_example=x[:1], registered_model_name="kmodel")
    assert info.registered_model_version == 1
    port = free_port()
    server = start_server([*GITML, "models", "serve", "-m", "models:/kmodel/1", "--port", str(port)], port, cwd=repo)
    server.wait(deadline_s=180)  # torch and keras import slowly on a busy machine
    r = httpx.post(f"{server.url}/invocations", json={"inputs": x[:3].tolist()}, timeout=30)
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["predictions"], model.predict(x[:3], verbose=0), atol=1e-6)


def test_a_lambda_layer_is_refused_unless_trusted(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    gitml.keras.save_model(lam, tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match="Lambda layer.*trusted=True"):
        gitml.keras.load_model(tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match="trusted=True"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert np.allclose(gitml.keras.load_model(tmp_path / "m", trusted=True).predict(x[:1], verbose=0), x[:1] * 2)


def test_not_a_keras_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="must be a keras.Model"):
        gitml.keras.save_model(object(), tmp_path / "m")


def _rewrite_config(archive: Path, edit: Any) -> None:
    with zipfile.ZipFile(archive) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(archive, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)


def test_a_tampered_archive_runs_nothing(tmp_path: Path, model: Any) -> None:
    marker = tmp_path / "PWNED"
    gitml.keras.save_model(model, tmp_path / "m")

    def to_system(config: dict[str, Any]) -> None:
        layer = config["config"]["layers"][-1]
        layer.update(module="os", class_name="system", registered_name=None)
        layer["config"] = {"command": f"touch {marker}"}

    _rewrite_config(tmp_path / "m" / "data" / "model.keras", to_system)
    with pytest.raises(GitMLError):
        gitml.keras.load_model(tmp_path / "m")
    assert not marker.exists()
    conf = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    conf["flavors"]["keras"]["data"] = "../outside.keras"
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(conf))
    with pytest.raises(GitMLError, match="outside the model folder"):
        gitml.keras.load_model(tmp_path / "m")
