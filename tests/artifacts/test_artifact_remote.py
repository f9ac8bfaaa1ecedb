"""Artifacts against real remotes: a local folder remote, another clone, DVC's own `dvc pull`."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gitml
from gitml.artifacts import api
from gitml.artifacts.runs import (
    artifact_status,
    gc_artifacts,
    has_artifact_remote,
    pull_artifacts,
    push_artifacts,
    read_pointers,
    store_for,
)
from gitml.client import MlflowClient
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.tracking.tracker import get_tracker, reset_all
from tests.conftest import git, make_repo

from .conftest import dvc_init, make_files

ROOT = Path(__file__).resolve().parents[2]
N_MANY = 150  # files for the interrupted transfers: enough to be killed half-way


def _objects(folder: Path) -> dict[str, Path]:
    """{oid: path} of the objects in a DVC-layout folder (`files/md5/xx/rest`).

    Dot files are DVC's partial uploads (`.<random>.tmp`, renamed into place when whole).
    """
    base = folder / "files" / "md5"
    return {p.parent.name + p.name: p for p in base.glob("??/*") if p.is_file() and not p.name.startswith(".")}


def _dvc(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def _add_remote(repo: Path, remote: Path) -> None:
    """What `dvc remote add -d store <remote>` writes (without a second DVC start-up)."""
    with open(repo / ".dvc/config", "a") as f:
        f.write(f"[core]\n    remote = store\n['remote \"store\"']\n    url = {remote}\n")


def _log_some(repo: Path) -> str:
    make_files(repo / "out", {"a.txt": "A", "sub/b.txt": "BB"})
    (repo / "model.bin").write_bytes(b"\x00\x01" * 5000)
    with gitml.start_run() as run:
        gitml.log_artifact("model.bin")
        gitml.log_artifacts("out", "plots")
    return str(run.info.run_id)


def test_push_to_a_folder_remote_then_fetch_on_demand(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    git("config", "gitml.artifactRemote", str(remote), cwd=repo)
    rid = _log_some(repo)
    tracker = get_tracker()
    assert has_artifact_remote(tracker)
    status = artifact_status(tracker)
    assert len(status.local_only) == 4 and not status.synced  # the model, 2 files, 1 manifest
    result = push_artifacts(tracker)
    assert result.ok and len(result.transferred) == 4
    assert set(_objects(remote)) == result.transferred
    for oid, path in _objects(remote).items():
        if not oid.endswith(".dir"):
            assert hashlib.md5(path.read_bytes()).hexdigest() == oid
    assert push_artifacts(tracker).transferred == frozenset()  # nothing new the second time

    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    assert len(artifact_status(tracker).remote_only) == 4
    # reading fetches what is missing, manifests first
    assert [f.path for f in MlflowClient().list_artifacts(rid, "plots")] == ["plots/a.txt", "plots/sub"]
    assert gitml.artifacts.load_text(f"runs:/{rid}/plots/sub/b.txt") == "BB"
    got = Path(gitml.artifacts.download_artifacts(f"runs:/{rid}/model.bin", dst_path=tmp_path / "dl"))
    assert got.read_bytes() == b"\x00\x01" * 5000


def test_another_clone_reads_the_artifacts(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    git("config", "gitml.artifactRemote", str(remote), cwd=repo)
    rid = _log_some(repo)
    push_artifacts(get_tracker())
    reset_all()

    clone = make_repo(tmp_path / "clone")
    git("fetch", "-q", str(repo), "gitml:gitml", cwd=clone)
    git("config", "gitml.artifactRemote", str(remote), cwd=clone)
    out = gitml.artifacts.download_artifacts(f"runs:/{rid}/plots", dst_path=tmp_path / "dl", tracking_uri=str(clone))
    assert (Path(out) / "sub/b.txt").read_text() == "BB"
    result = pull_artifacts(get_tracker(str(clone)))
    assert result.ok and "d" not in result.failed
    assert set(_objects(clone / ".git/gitml/artifacts/cache")) == set(_objects(remote))


def test_object_missing_on_the_remote_names_run_and_path(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    git("config", "gitml.artifactRemote", str(remote), cwd=repo)
    rid = _log_some(repo)
    tracker = get_tracker()
    push_artifacts(tracker)
    md5 = read_pointers(tracker, rid)["model.bin"]["md5"]
    _objects(remote)[md5].unlink()
    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    with pytest.raises(ResourceDoesNotExist) as info:
        api.download_artifacts(tracker, rid, "model.bin", tmp_path / "dl")
    assert rid in info.value.message and "'model.bin'" in info.value.message and md5 in info.value.message
    # the rest still pulls; the lost object is reported, not raised
    result = pull_artifacts(tracker)
    assert result.failed == frozenset({md5}) and len(result.transferred) == 3
    assert len(artifact_status(tracker).missing) == 1


def test_the_embedded_default_remote_needs_no_setup(repo: Path) -> None:
    rid = _log_some(repo)
    tracker = get_tracker()
    assert not has_artifact_remote(tracker)
    result = push_artifacts(tracker)
    embedded = repo / ".git/gitml/artifacts/remote"
    assert result.ok and len(_objects(embedded)) == 4
    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    assert gitml.artifacts.load_text(f"runs:/{rid}/plots/a.txt") == "A"


_PUSH = """
import sys
from gitml.tracking.tracker import get_tracker
from gitml.artifacts.runs import push_artifacts
print(push_artifacts(get_tracker(sys.argv[1]), jobs=1).ok)
"""


def test_interrupted_push_is_completed_by_the_next(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    git("config", "gitml.artifactRemote", str(remote), cwd=repo)
    make_files(repo / "many", {f"f{i:03d}.bin": os.urandom(16 << 10).hex() for i in range(N_MANY)})
    with gitml.start_run() as run:
        gitml.log_artifacts("many", "many")
    reset_all()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Kill the push once some objects are in: a fast machine can send them all between two
    # looks, so start again with a lower threshold before giving up on catching it half-way.
    for threshold in (20, 5, 1, 1):
        shutil.rmtree(remote, ignore_errors=True)
        for marker in (repo / ".git/gitml/artifacts").glob("pushing-*"):
            marker.unlink()
        proc = subprocess.Popen([sys.executable, "-c", _PUSH, str(repo)], env=env, stdout=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and len(_objects(remote)) < threshold:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = _objects(remote)
        if 0 < len(partial) < N_MANY + 1:
            break
    else:
        pytest.skip("every push finished before it could be interrupted")
    for oid, path in partial.items():  # whatever landed is whole: objects are renamed in place
        assert oid.endswith(".dir") or hashlib.md5(path.read_bytes()).hexdigest() == oid
    assert not any(o.endswith(".dir") for o in partial)  # the manifest goes last
    markers = list((repo / ".git/gitml/artifacts").glob("pushing-*"))
    assert len(markers) == 1  # the dead push left word that it did not finish
    # Remotes that write in place (SFTP) can leave a cut-off object under its final name:
    cut = sorted(partial.values())[0]
    cut.chmod(0o644)
    cut.write_bytes(cut.read_bytes()[:100])

    tracker = get_tracker(str(repo))
    result = push_artifacts(tracker)
    assert result.ok and len(result.transferred) == N_MANY + 1 - len(partial) + 1  # + the repaired one
    assert not list((repo / ".git/gitml/artifacts").glob("pushing-*"))
    assert len(_objects(remote)) == N_MANY + 1
    for oid, path in _objects(remote).items():
        assert oid.endswith(".dir") or hashlib.md5(path.read_bytes()).hexdigest() == oid
    status = artifact_status(tracker)
    assert len(status.synced) == N_MANY + 1 and not status.local_only
    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    out = Path(api.download_artifacts(tracker, run.info.run_id, "many", tmp_path / "dl"))
    assert len(list(out.iterdir())) == N_MANY


def test_gc_drops_only_what_no_live_run_names(repo: Path) -> None:
    make_files(repo / "shared", {"s.txt": "shared"})
    (repo / "only.txt").write_text("only in the deleted run")
    with gitml.start_run() as keep:
        gitml.log_artifacts("shared", "s")
    with gitml.start_run() as doomed:
        gitml.log_artifacts("shared", "s")
        gitml.log_artifact("only.txt")
    tracker = get_tracker()
    assert gc_artifacts(tracker, dry_run=True) == []
    MlflowClient().delete_run(doomed.info.run_id)
    only = hashlib.md5(b"only in the deleted run").hexdigest()
    assert gc_artifacts(tracker, dry_run=True) == [only]
    assert gc_artifacts(tracker, min_age_s=3600) == []  # just written: kept
    assert store_for(tracker).exists(only)
    assert gc_artifacts(tracker) == [only]
    assert not store_for(tracker).exists(only)
    assert gitml.artifacts.load_text(f"runs:/{keep.info.run_id}/s/s.txt") == "shared"


def test_dvc_repository_uses_dvcs_cache_and_remote_and_dvc_pull_reads_it(repo: Path, tmp_path: Path) -> None:
    """Objects gitml pushes are DVC's own: `dvc pull` of `.dvc` files naming them restores the bytes."""
    remote = tmp_path / "dvc-remote"
    dvc_init(repo)
    _add_remote(repo, remote)
    (repo / "tracked.csv").write_text("x,y\n1,2\n")
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        dvc_repo.add("tracked.csv")  # DVC's own data, which gc must not touch
    rid = _log_some(repo)
    tracker = get_tracker()
    assert has_artifact_remote(tracker)
    pointers = read_pointers(tracker, rid)
    cache = _objects(repo / ".dvc/cache")
    assert pointers["model.bin"]["md5"] in cache and pointers["plots"]["md5"] in cache
    assert not (repo / ".git/gitml/artifacts/cache").exists()
    assert push_artifacts(tracker).ok

    MlflowClient().delete_run(rid)
    removed = gc_artifacts(tracker)
    assert pointers["model.bin"]["md5"] in removed
    assert hashlib.md5(b"x,y\n1,2\n").hexdigest() in _objects(repo / ".dvc/cache")

    other = make_repo(tmp_path / "plain-dvc")
    dvc_init(other)
    _add_remote(other, remote)
    model, plots = pointers["model.bin"], pointers["plots"]
    (other / "model.bin.dvc").write_text(
        f"outs:\n- md5: {model['md5']}\n  size: {model['size']}\n  hash: md5\n  path: model.bin\n"
    )
    (other / "plots.dvc").write_text(
        f"outs:\n- md5: {plots['md5']}\n  size: {plots['size']}\n  nfiles: {plots['nfiles']}\n"
        "  hash: md5\n  path: plots\n"
    )
    _dvc("pull", "-q", "model.bin.dvc", "plots.dvc", cwd=other)
    assert (other / "model.bin").read_bytes() == b"\x00\x01" * 5000
    assert (other / "plots/sub/b.txt").read_text() == "BB"
    assert (other / "plots/a.txt").read_text() == "A"


def test_dvc_repository_without_a_remote_and_named_remotes(repo: Path, tmp_path: Path) -> None:
    dvc_init(repo)
    rid = _log_some(repo)
    tracker = get_tracker()
    assert not has_artifact_remote(tracker)
    # no DVC remote yet: the embedded folder remote under .git/ takes the bytes
    assert push_artifacts(tracker).ok
    assert len(_objects(repo / ".git/gitml/artifacts/remote")) == 4
    # a named, non-default DVC remote
    with open(repo / ".dvc/config", "a") as f:
        f.write(f"['remote \"side\"']\n    url = {tmp_path / 'side'}\n")
    reset_all()
    tracker = get_tracker()
    result = push_artifacts(tracker, [rid], remote="side")
    assert result.ok and set(_objects(tmp_path / "side")) == result.transferred
    with pytest.raises(InvalidParameterValue, match="no DVC remote named 'nope'"):
        push_artifacts(tracker, remote="nope")


def test_remote_names_need_dvc_and_relative_folders_are_the_repos(repo: Path) -> None:
    _log_some(repo)
    tracker = get_tracker()
    with pytest.raises(InvalidParameterValue, match="no .dvc/"):
        push_artifacts(tracker, remote="origin")
    result = push_artifacts(tracker, remote="./relative-remote")
    assert result.ok and len(_objects(repo / "relative-remote")) == 4


_PULL = """
import sys
from gitml.tracking.tracker import get_tracker
from gitml.artifacts.runs import pull_artifacts
print(pull_artifacts(get_tracker(sys.argv[1]), jobs=1).ok)
"""


def test_interrupted_pull_leaves_no_corrupt_object(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    git("config", "gitml.artifactRemote", str(remote), cwd=repo)
    make_files(repo / "many", {f"f{i:03d}.bin": os.urandom(16 << 10).hex() for i in range(N_MANY)})
    with gitml.start_run() as run:
        gitml.log_artifacts("many", "many")
    assert push_artifacts(get_tracker()).ok
    reset_all()
    cache = repo / ".git/gitml/artifacts/cache"
    shutil.rmtree(cache)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Kill the pull once some objects are in: a fast machine can copy them all between two
    # looks, so try again with a lower threshold before giving up on catching it half-way.
    for threshold in (20, 5, 1, 1):
        shutil.rmtree(cache, ignore_errors=True)
        proc = subprocess.Popen([sys.executable, "-c", _PULL, str(repo)], env=env, stdout=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and len(_objects(cache)) < threshold:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = _objects(cache)
        if 0 < len(partial) < N_MANY + 1:
            break
    else:
        pytest.skip("every pull finished before it could be interrupted")
    for oid, path in partial.items():
        assert oid.endswith(".dir") or hashlib.md5(path.read_bytes()).hexdigest() == oid
    tracker = get_tracker(str(repo))
    assert pull_artifacts(tracker).ok
    assert len(_objects(cache)) == N_MANY + 1
    out = Path(api.download_artifacts(tracker, run.info.run_id, "many", tmp_path / "dl"))
    assert len(list(out.iterdir())) == N_MANY
