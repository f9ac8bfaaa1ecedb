"""`gitml models build-docker` on a real Docker engine: the image serves, runs as non-root,
carries its labels, and a model-only rebuild reuses the dependency layers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import run_cli
from tests.deploy.conftest import BASE_IMAGE, REPO_ROOT, DockerEngine
from tests.serving.conftest import free_port


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of gitml and everything its serve+sklearn extras need: the image installs offline."""
    out = tmp_path_factory.mktemp("wheels")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "-w", str(out), f"{REPO_ROOT}[serve,sklearn]"],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot gather the wheels the image installs: {proc.stderr.strip().splitlines()[-1:]}")
    return out


def _register(repo: Path, capsys: pytest.CaptureFixture[str], C: float) -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import gitml
    import gitml.sklearn
    from gitml.models import infer_signature

    X, y = load_iris(return_X_y=True, as_frame=True)
    est = LogisticRegression(max_iter=300, C=C).fit(X, y)
    with gitml.start_run():
        info = gitml.sklearn.log_model(est, "model", signature=infer_signature(X, est.predict(X)))
    version = gitml.register_model(info.model_uri, "iris").version
    code, _, err = run_cli(capsys, "models", "transition-stage", "--model-name", "iris", "--version", str(version), "--stage", "Production")
    assert code == 0, err
    return X, est


def _layers(engine: DockerEngine, image: str) -> list[str]:
    return json.loads(engine.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image).stdout)


@pytest.fixture
def engine_env(docker_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[DockerEngine]:
    monkeypatch.setenv("DOCKER_HOST", docker_engine.env["DOCKER_HOST"])
    yield docker_engine


def test_image_serves_as_non_root_with_labels_and_rebuilds_one_layer(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], engine_env: DockerEngine, wheelhouse: Path
) -> None:
    engine = engine_env
    X, est = _register(repo, capsys, 1.0)
    build = ["models", "build-docker", "-m", "models:/iris/Production", "-n", "iris-model:latest",
             "--base-image", BASE_IMAGE, "--wheelhouse", str(wheelhouse), "-d", str(tmp_path / "ctx")]
    code, out, err = run_cli(capsys, *build)
    assert code == 0, err
    inspect = json.loads(engine.docker("image", "inspect", "iris-model:latest").stdout)[0]
    config = inspect["Config"]
    assert config["User"] == "10001:10001"
    assert config["Labels"]["dev.gitml.model-version"] == "1"
    assert config["Labels"]["dev.gitml.registry-tag"] == "iris@v1.0.0"
    assert len(config["Labels"]["org.opencontainers.image.revision"]) == 40
    assert "/ping" in " ".join(config["Healthcheck"]["Test"])
    size_mb = inspect["Size"] / 1e6

    port = free_port()
    cid = engine.docker("run", "-d", "--network", "host", "iris-model:latest",
                        "models", "serve", "-m", "/opt/gitml/model", "--host", "127.0.0.1", "--port", str(port)).stdout.strip()
    try:
        assert engine.docker("exec", cid, "id", "-u").stdout.strip() == "10001"
        # what only installing and testing need is not in the image; what serving needs is
        probe = ("import importlib.util as u, pathlib, sys; import numpy, scipy.sparse, sklearn.linear_model; "
                 "site = pathlib.Path(numpy.__file__).parents[1]; "
                 "print(u.find_spec('pip'), sum(1 for p in site.glob('*/**/tests') if p.is_dir()))")
        assert engine.docker("exec", cid, "python", "-c", probe).stdout.split() == ["None", "0"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(engine.docker("logs", cid, check=False).stderr[-2000:])
        body = {"dataframe_split": X.head(5).to_dict(orient="split")}
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == est.predict(X.head(5)).tolist()
    finally:
        engine.docker("rm", "-f", cid, check=False)

    before = _layers(engine, "iris-model:latest")
    _register(repo, capsys, 0.5)  # retrained: same requirements, new weights, version 2 in Production
    started = time.perf_counter()
    code, out, err = run_cli(capsys, *build)
    rebuild_s = time.perf_counter() - started
    assert code == 0, err
    after = _layers(engine, "iris-model:latest")
    assert after[:-1] == before[:-1] and after[-1] != before[-1], "only the model layer may change"
    labels = json.loads(engine.docker("image", "inspect", "iris-model:latest").stdout)[0]["Config"]["Labels"]
    assert labels["dev.gitml.model-version"] == "2"
    print(f"image {size_mb:.0f} MB; model-only rebuild {rebuild_s:.1f} s")
    assert size_mb < 400, f"the iris image is {size_mb:.0f} MB"
    assert rebuild_s < 30  # 4-5 s measured; generous for a loaded machine
