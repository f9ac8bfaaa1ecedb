"""Artifacts on an SSH remote (dvc-ssh), served by a real OpenSSH server on loopback."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest

import gitml
from gitml.artifacts import api
from gitml.artifacts.runs import artifact_status, pull_artifacts, push_artifacts
from gitml.exceptions import RemoteError
from gitml.tracking.tracker import get_tracker
from tests.conftest import git

from .conftest import SSHServer, dead_port, dvc_init, make_files


def _log(repo: Path) -> str:
    make_files(repo / "out", {"w.bin": "weights" * 100, "cfg/c.json": "{}"})
    with gitml.start_run() as run:
        gitml.log_artifacts("out", "model")
    return str(run.info.run_id)


def _remote_files(folder: Path) -> set[str]:
    return {p.parent.name + p.name for p in (folder / "files/md5").glob("??/*") if not p.name.startswith(".")}


def test_dvc_ssh_remote_push_and_fetch_on_demand(repo: Path, sshd: SSHServer, tmp_path: Path) -> None:
    folder = sshd.root / "dvc-ssh-remote"
    dvc_init(repo)
    # what `dvc remote add -d box URL` and `dvc remote modify box keyfile KEY` write
    with open(repo / ".dvc/config", "a") as f:
        f.write(f"[core]\n    remote = box\n['remote \"box\"']\n    url = {sshd.url(folder)}\n    keyfile = {sshd.keyfile}\n")
    rid = _log(repo)
    tracker = get_tracker()
    result = push_artifacts(tracker)
    assert result.ok and result.remote.startswith("ssh://")
    assert _remote_files(folder) == set(result.transferred) and len(result.transferred) == 3
    assert len(artifact_status(tracker).synced) == 3

    # A push cut off mid-upload: SFTP writes in place, so a short object sits under its name.
    cut = next(p for p in (folder / "files/md5").glob("??/*") if not p.name.endswith(".dir"))
    cut.write_bytes(b"cut")
    marker = repo / ".git/gitml/artifacts" / f"pushing-{hashlib.sha256(result.remote.encode()).hexdigest()[:16]}"
    marker.write_text(result.remote)
    again = push_artifacts(tracker)
    assert again.ok and again.transferred == frozenset({cut.parent.name + cut.name})
    assert not marker.exists()

    shutil.rmtree(repo / ".dvc/cache")
    out = Path(api.download_artifacts(tracker, rid, "model", tmp_path / "dl"))
    assert (out / "w.bin").read_text() == "weights" * 100
    assert (out / "cfg/c.json").read_text() == "{}"


def test_ssh_url_remote_without_dvc_setup(repo: Path, sshd: SSHServer, tmp_path: Path) -> None:
    """gitml.artifactRemote takes any URL DVC takes; the key comes from ~/.ssh as ssh does it."""
    ssh_dir = Path.home() / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(sshd.keyfile, ssh_dir / "id_ed25519")
    (ssh_dir / "id_ed25519").chmod(0o600)
    folder = sshd.root / "url-remote"
    git("config", "gitml.artifactRemote", sshd.url(folder), cwd=repo)
    rid = _log(repo)
    tracker = get_tracker()
    assert push_artifacts(tracker).ok
    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    assert pull_artifacts(tracker).ok
    assert gitml.artifacts.load_text(f"runs:/{rid}/model/w.bin") == "weights" * 100


def test_a_remote_that_is_down_is_a_remote_error(repo: Path, tmp_path: Path) -> None:
    port = dead_port()
    git("config", "gitml.artifactRemote", f"ssh://nobody@127.0.0.1:{port}{tmp_path}/r", cwd=repo)
    rid = _log(repo)
    tracker = get_tracker()
    start = time.monotonic()
    with pytest.raises(RemoteError, match=f"127.0.0.1:{port}"):
        push_artifacts(tracker)
    with pytest.raises(RemoteError):
        artifact_status(tracker)
    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    with pytest.raises(RemoteError) as info:
        api.download_artifacts(tracker, rid, "model/w.bin", tmp_path / "dl")
    assert rid in info.value.message and "model/w.bin" in info.value.message
    assert time.monotonic() - start < 30


def test_crafted_manifest_and_tampered_bytes_on_ssh(repo: Path, sshd: SSHServer, tmp_path: Path) -> None:
    """The hostile-remote attacks, on an SSH remote: nothing outside the cache is touched,
    tampered bytes are named corrupt and stay on the remote."""
    import json
    import os

    from gitml.artifacts.runs import read_pointers
    from gitml.exceptions import GitMLError

    folder = sshd.root / "dvc-ssh-hostile"
    dvc_init(repo)
    with open(repo / ".dvc/config", "a") as f:
        f.write(f"[core]\n    remote = box\n['remote \"box\"']\n    url = {sshd.url(folder)}\n    keyfile = {sshd.keyfile}\n")
    rid = _log(repo)
    tracker = get_tracker()
    push_artifacts(tracker)
    secret = tmp_path / "id_rsa"
    secret.write_bytes(b"private")
    cache_xx = repo / ".dvc" / "cache" / "files" / "md5" / "ab"
    entries = [{"md5": "ab" + os.path.relpath(secret, cache_xx), "relpath": "stolen.txt"}]
    data = json.dumps(entries).encode()
    bad = hashlib.md5(data).hexdigest() + ".dir"
    (folder / "files/md5" / bad[:2]).mkdir(parents=True, exist_ok=True)
    (folder / "files/md5" / bad[:2] / bad[2:]).write_bytes(data)
    pointer = read_pointers(tracker, rid)["model"]
    tracker.record_artifacts(rid, {"model": {**pointer, "md5": bad}})
    shutil.rmtree(repo / ".dvc/cache")
    assert bad in pull_artifacts(tracker).corrupt
    with pytest.raises(GitMLError, match="not a content id"):
        api.download_artifacts(tracker, rid, "model", tmp_path / "dl")
    assert secret.read_bytes() == b"private"
    # tampered bytes of a good object
    tracker.record_artifacts(rid, {"model": pointer})
    victim = next(p for p in (folder / "files/md5").glob("??/*") if p.name.endswith(".dir") is False)
    victim.chmod(0o644)
    victim.write_bytes(b"evil")
    oid = victim.parent.name + victim.name
    shutil.rmtree(repo / ".dvc/cache", ignore_errors=True)
    assert oid in pull_artifacts(tracker).corrupt
    assert victim.read_bytes() == b"evil"  # still there: a pull never deletes from the remote
