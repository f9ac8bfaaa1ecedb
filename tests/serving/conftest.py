"""Fixtures of the serving tests: free ports, real server processes, real saved models."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GITML = [sys.executable, "-c", "import sys; from gitml.cli import main; sys.exit(main())"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a server process: this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


class Server:
    """A server process on 127.0.0.1:port, stopped when the test ends."""

    def __init__(self, args: list[str], port: int, cwd: Path | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self, status: int = 200, path: str = "/ping", deadline_s: float = 30.0) -> float:
        """Poll until `path` answers `status`; the seconds since the process started."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise AssertionError(f"server exited {self.proc.returncode}: {err[-2000:]}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == status:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.url}{path} did not answer {status} within {deadline_s} s")

    def stop(self) -> tuple[int, str]:
        """Stop the process (SIGTERM, then SIGKILL); its exit status and stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def start_server() -> Iterator[object]:
    """start_server(args, port) -> Server; every server is stopped at teardown."""
    servers: list[Server] = []

    def start(args: list[str], port: int, cwd: Path | None = None) -> Server:
        server = Server(args, port, cwd)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def fake_server_args(port: int, mode: str, max_body: int = 1_000_000) -> list[str]:
    """The command line of tests/serving/fake_server.py."""
    return [sys.executable, str(HERE / "fake_server.py"), str(port), mode, str(max_body)]


@pytest.fixture(scope="session")
def columns_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real pyfunc model with a column signature (x, y, z: double), saved in gitml's format.

    (Fast to load: a skops file imports every scikit-learn estimator, about 3 s; the
    scikit-learn model is served in test_sklearn_serving.py.)
    """
    import pandas as pd

    import gitml.pyfunc
    from gitml.models import infer_signature
    from tests.serving.pymodels import Scaled

    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0], "z": [5.0, 6.0]})
    path = tmp_path_factory.mktemp("models") / "columns"
    gitml.pyfunc.save_model(
        str(path), python_model=Scaled(1.0), signature=infer_signature(frame, frame.sum(axis=1))
    )
    return path


def build_registry(root: Path, factors: list[tuple[float, float]], name: str = "scaled") -> None:
    """Log and register one `Scaled` model per (factor, accuracy) in the repo at `root`.

    Version N has factor factors[N-1][0]; its run logged accuracy factors[N-1][1].
    """
    import numpy as np

    import gitml
    from gitml.models.signature import infer_signature
    from tests.serving.pymodels import Scaled

    here = os.getcwd()
    os.chdir(root)
    try:
        signature = infer_signature(np.zeros((2, 3)), np.zeros(2))
        for factor, accuracy in factors:
            with gitml.start_run():
                gitml.log_param("factor", factor)
                gitml.log_metric("accuracy", accuracy)
                info = gitml.pyfunc.log_model(
                    "model", python_model=Scaled(factor), signature=signature
                )
            gitml.register_model(info.model_uri, name)
    finally:
        os.chdir(here)


def registry_client(root: Path) -> object:
    """A registry client on the repo at `root`."""
    from gitml.client import MlflowClient

    return MlflowClient(tracking_uri=str(root))
