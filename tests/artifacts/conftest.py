"""Fixtures for artifact tests: an OpenSSH server on loopback, and helpers for remotes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SSHServer:
    """A running sshd: where to reach it and the private key it accepts."""

    host: str
    port: int
    user: str
    keyfile: Path
    root: Path  # a folder the remote may write to

    def url(self, path: Path | str) -> str:
        """An ssh:// URL for a path on this server."""
        return f"ssh://{self.user}@{self.host}:{self.port}{path}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"sshd exited at start: {out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                if s.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail("sshd did not answer within 10 s")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """An OpenSSH server on 127.0.0.1 at a high port, from its own config, with key auth."""
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed")
    if os.geteuid() != 0:
        pytest.skip("sshd from its own config needs root here")
    try:
        import dvc_ssh  # noqa: F401
    except ImportError:
        pytest.skip("dvc-ssh is not installed")
    base = tmp_path_factory.mktemp("sshd")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)], check=True)
    (base / "authorized_keys").write_text((base / "client_key.pub").read_text())
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
        f"PidFile {base / 'sshd.pid'}\nAuthorizedKeysFile {base / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin yes\nStrictModes no\nUsePAM no\nUseDNS no\n"
        "Subsystem sftp internal-sftp\nMaxStartups 100\nMaxSessions 100\n"
    )
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        _wait_for(port, proc)
        root = base / "data"
        root.mkdir()
        user = os.environ.get("USER") or "root"
        yield SSHServer("127.0.0.1", port, user, base / "client_key", root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def dead_port() -> int:
    """A loopback port nothing listens on."""
    return _free_port()


def make_files(root: Path, files: dict[str, str]) -> Path:
    """Write `files` ({relative path: text}) under `root`."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def dvc_init(root: Path) -> None:
    """`dvc init` in-process (DVC's own code, without a second interpreter start-up)."""
    from dvc.repo import Repo

    Repo.init(str(root)).close()


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server on loopback: its endpoint and a bucket per test."""

    endpoint: str

    def bucket(self, name: str) -> str:
        """Create bucket `name` (it must exist before DVC writes); returns `s3://name`."""
        import boto3

        s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        s3.create_bucket(Bucket=name)
        return f"s3://{name}"

    def use_in(self, repo: Path, url: str, name: str = "store") -> None:
        """Make `url` the default DVC remote of `repo` (`dvc init` first if needed), as
        `dvc remote add -d` and `dvc remote modify endpointurl ...` write it."""
        if not (repo / ".dvc").is_dir():
            dvc_init(repo)
        with open(repo / ".dvc/config", "a") as f:
            f.write(
                f"[core]\n    remote = {name}\n['remote \"{name}\"']\n    url = {url}\n"
                f"    endpointurl = {self.endpoint}\n    access_key_id = testing\n"
                "    secret_access_key = testing\n    region = us-east-1\n"
            )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server (`moto_server -H 127.0.0.1 -p PORT`), for the whole session."""
    try:
        import boto3  # noqa: F401
        import dvc_s3  # noqa: F401
        import moto  # noqa: F401
    except ImportError as e:
        pytest.skip(f"{e.name} is not installed (make test installs the s3 and dev extras)")
    import sys

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited at start: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not answer within 30 s")
                time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
