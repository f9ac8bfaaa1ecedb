"""Fixtures for deploy tests: a repository with a registered model promoted to Production."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.registry._util import model_runner


@pytest.fixture
def promoted(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    """`team/fraud` versions 1 and 2 registered; version 1 in Production. (repo, run ids)"""
    new_model_run = model_runner(tmp_path)
    (tmp_path / "model-src" / "requirements.txt").parent.mkdir(parents=True, exist_ok=True)
    runs = [new_model_run({"accuracy": 0.8}), new_model_run({"accuracy": 0.9})]
    for r in runs:
        code, _, err = run_cli(capsys, "models", "register", f"runs:/{r}/model", "team/fraud")
        assert code == 0, err
    code, _, err = run_cli(
        capsys, "models", "transition-stage", "--model-name", "team/fraud", "--version", "1", "--stage", "Production"
    )
    assert code == 0, err
    capsys.readouterr()
    return repo, runs


REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_TAR = REPO_ROOT / ".test-cache" / "docker-base-bookworm-slim.tar"
BASE_IMAGE = "gitml-test-base:bookworm"


class DockerEngine:
    """A Docker engine of the tests' own (data root, exec root, socket in a temporary folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "wb")  # noqa: SIM115 (open for the daemon's life)
        self.proc = subprocess.Popen(
            [
                "dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "docker.pid"), "--host", f"unix://{self.sock}",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "dockerd.log").read_text()[-2000:])
            if self.docker("info", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError("dockerd did not answer within 60 s")

    def docker(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {proc.stderr[-2000:]}")
        return proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.docker("ps", "-q", check=False)
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """A running Docker engine with the locally built base image imported (or a skip naming why)."""
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("no Docker engine: dockerd is not installed (scripts/sysdeps.sh installs docker.io)")
    if os.geteuid() != 0:
        pytest.skip("the tests' Docker engine runs as root")
    if not BASE_TAR.is_file():
        pytest.skip(f"no base image tarball ({BASE_TAR.name}): `make docker-base` builds it with debootstrap")
    # short path: a unix socket path must stay under ~100 bytes
    root = Path(tempfile.mkdtemp(prefix="gd-"))
    engine = DockerEngine(root)
    try:
        engine.start()
        engine.docker("import", str(BASE_TAR), BASE_IMAGE, timeout=300)
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)
