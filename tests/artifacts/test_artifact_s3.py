"""Artifacts on an S3 remote (moto's server on loopback, DVC's own S3 plugin): log, push,
pull, download, model loading from another clone, and the crafted-manifest attacks."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest

import gitml
from gitml.artifacts.runs import artifact_status, pull_artifacts, push_artifacts, read_pointers
from gitml.exceptions import GitMLError
from gitml.tracking.tracker import get_tracker, reset_all
from tests.conftest import git, make_repo

from .conftest import S3Server, make_files

PREFIX = "dvcstore"


@pytest.fixture
def s3_url(s3_server: S3Server) -> str:
    """A fresh bucket and the DVC remote URL inside it."""
    return f"{s3_server.bucket('b' + uuid.uuid4().hex[:20])}/{PREFIX}"


def _s3(s3_server: S3Server):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def _keys(s3_server: S3Server, url: str) -> dict[str, str]:
    """{oid: key} of the objects under the remote."""
    bucket = url[len("s3://") :].split("/", 1)[0]
    out = {}
    for page in _s3(s3_server).get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            parts = item["Key"].split("/")
            out[parts[-2] + parts[-1]] = item["Key"]
    return out


def _log_some(repo: Path) -> str:
    make_files(repo / "out", {"a.txt": "A", "sub/b.txt": "BB"})
    (repo / "model.bin").write_bytes(b"\x00\x01" * 5000)
    with gitml.start_run() as run:
        gitml.log_artifact("model.bin")
        gitml.log_artifacts("out", "plots")
    return str(run.info.run_id)


def _clone_of(repo: Path, tmp_path: Path, s3_server: S3Server, url: str) -> Path:
    clone = make_repo(tmp_path / "clone")
    git("fetch", "-q", str(repo), "gitml:gitml", cwd=clone)
    s3_server.use_in(clone, url)
    return clone


def test_push_pull_download_through_s3(repo: Path, tmp_path: Path, s3_server: S3Server, s3_url: str) -> None:
    s3_server.use_in(repo, s3_url)
    rid = _log_some(repo)
    tracker = get_tracker()
    assert len(artifact_status(tracker).local_only) == 4
    result = push_artifacts(tracker)
    assert result.ok and len(result.transferred) == 4
    assert set(_keys(s3_server, s3_url)) == result.transferred
    assert len(artifact_status(tracker).synced) == 4
    reset_all()

    clone = _clone_of(repo, tmp_path, s3_server, s3_url)
    out = gitml.artifacts.download_artifacts(f"runs:/{rid}/plots", dst_path=tmp_path / "dl", tracking_uri=str(clone))
    assert (Path(out) / "sub/b.txt").read_text() == "BB"
    pulled = pull_artifacts(get_tracker(str(clone)))
    assert pulled.ok
    got = gitml.artifacts.download_artifacts(f"runs:/{rid}/model.bin", dst_path=tmp_path / "m", tracking_uri=str(clone))
    assert Path(got).read_bytes() == b"\x00\x01" * 5000


def test_a_model_loads_from_s3_in_another_clone(
    repo: Path, tmp_path: Path, s3_server: S3Server, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    np = pytest.importorskip("numpy")
    linear = pytest.importorskip("sklearn.linear_model")
    s3_server.use_in(repo, s3_url)
    X = np.random.default_rng(0).random((20, 2))
    clf = linear.LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))
    with gitml.start_run() as run:
        info = gitml.sklearn.log_model(clf, "clf")
    push_artifacts(get_tracker())
    reset_all()
    clone = _clone_of(repo, tmp_path, s3_server, s3_url)
    monkeypatch.chdir(clone)
    loaded = gitml.pyfunc.load_model(f"runs:/{run.info.run_id}/clf")
    assert list(loaded.predict(X[:3])) == list(clf.predict(X[:3]))
    assert info.model_uri


def _plant_manifest(s3_server: S3Server, url: str, entries: list[dict[str, str]]) -> str:
    data = json.dumps(entries, sort_keys=True).encode()
    oid = hashlib.md5(data).hexdigest() + ".dir"
    bucket, _, prefix = url[len("s3://") :].partition("/")
    _s3(s3_server).put_object(Bucket=bucket, Key=f"{prefix}/files/md5/{oid[:2]}/{oid[2:]}", Body=data)
    return oid


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_crafted_manifest_on_s3_never_reaches_outside_the_cache(
    repo: Path, tmp_path: Path, s3_server: S3Server, s3_url: str, how: str
) -> None:
    secret = tmp_path / "home" / "id_rsa"
    secret.parent.mkdir()
    secret.write_bytes(b"private")
    s3_server.use_in(repo, s3_url)
    rid = _log_some(repo)
    tracker = get_tracker()
    push_artifacts(tracker)
    cache_xx = Path(tracker.repo.root) / ".dvc" / "cache" / "files" / "md5" / "ab"
    md5 = "ab" + os.path.relpath(secret, cache_xx) if how == "relative" else str(secret)
    bad = _plant_manifest(s3_server, s3_url, [{"md5": md5, "relpath": "stolen.txt"}])
    pointers = read_pointers(tracker, rid)
    # the pointer file as another clone would push it (schema-valid: the id is well formed)
    tracker.record_artifacts(rid, {"plots": {**pointers["plots"], "md5": bad}})
    reset_all()
    clone = _clone_of(repo, tmp_path, s3_server, s3_url)
    pulled = pull_artifacts(get_tracker(str(clone)))
    assert bad in pulled.corrupt
    with pytest.raises(GitMLError, match="not a content id"):
        gitml.artifacts.download_artifacts(f"runs:/{rid}/plots", dst_path=tmp_path / "dl", tracking_uri=str(clone))
    assert bad in push_artifacts(get_tracker(str(clone))).corrupt
    assert secret.read_bytes() == b"private"
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").rglob("*"))


def test_tampered_bytes_on_s3_are_corrupt_and_stay_there(
    repo: Path, tmp_path: Path, s3_server: S3Server, s3_url: str
) -> None:
    s3_server.use_in(repo, s3_url)
    rid = _log_some(repo)
    push_artifacts(get_tracker())
    md5 = read_pointers(get_tracker(), rid)["model.bin"]["md5"]
    bucket = s3_url[len("s3://") :].split("/", 1)[0]
    key = _keys(s3_server, s3_url)[md5]
    _s3(s3_server).put_object(Bucket=bucket, Key=key, Body=b"evil")
    reset_all()
    clone = _clone_of(repo, tmp_path, s3_server, s3_url)
    pulled = pull_artifacts(get_tracker(str(clone)))
    assert md5 in pulled.corrupt
    assert _s3(s3_server).get_object(Bucket=bucket, Key=key)["Body"].read() == b"evil"  # not deleted
    with pytest.raises(GitMLError, match="does not match its md5"):
        gitml.artifacts.download_artifacts(f"runs:/{rid}/model.bin", dst_path=tmp_path / "dl", tracking_uri=str(clone))
