"""Logging, listing and downloading artifacts of real runs in a real repository."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gitml
from gitml.artifacts import api
from gitml.artifacts.runs import read_pointers, store_for
from gitml.artifacts.staging import staged_runs_uri
from gitml.client import MlflowClient
from gitml.exceptions import (
    CorruptMetadata,
    InvalidParameterValue,
    InvalidPath,
    ResourceDoesNotExist,
)

from .conftest import make_files

ROOT = Path(__file__).resolve().parents[2]


def _cache_objects(repo: Path) -> list[Path]:
    base = repo / ".git" / "gitml" / "artifacts" / "cache" / "files" / "md5"
    return sorted(p for p in base.rglob("*") if p.is_file())


def test_log_file_stores_dvc_layout_and_pointer(repo: Path) -> None:
    (repo / "model.bin").write_bytes(b"weights" * 1000)
    with gitml.start_run() as run:
        gitml.log_artifact("model.bin", "models")
    rid = run.info.run_id
    pointers = read_pointers(run._tracker, rid)
    import hashlib

    md5 = hashlib.md5(b"weights" * 1000).hexdigest()
    assert pointers == {"models/model.bin": {"path": "models/model.bin", "md5": md5, "size": 7000, "hash": "md5"}}
    obj = repo / ".git/gitml/artifacts/cache/files/md5" / md5[:2] / md5[2:]
    assert obj.read_bytes() == b"weights" * 1000
    # the working tree and the index are untouched: no .dvc, no dvc init
    assert not (repo / ".dvc").exists()
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout == "?? model.bin\n"


def test_log_folder_writes_a_dvc_dir_manifest(repo: Path) -> None:
    make_files(repo / "out", {"a.txt": "A", "sub/b.txt": "BB"})
    with gitml.start_run() as run:
        gitml.log_artifacts("out", "plots")
    pointer = read_pointers(run._tracker, run.info.run_id)["plots"]
    assert pointer["md5"].endswith(".dir") and pointer["nfiles"] == 2 and pointer["size"] == 3
    store = store_for(run._tracker)
    manifest = json.loads(Path(store.object_path(pointer["md5"])).read_text())
    assert [e["relpath"] for e in manifest] == ["a.txt", "sub/b.txt"]
    assert set(manifest[0]) == {"md5", "relpath"}  # DVC's own .dir format


def test_list_and_download_like_mlflow(repo: Path, tmp_path: Path) -> None:
    make_files(repo / "out", {"a.txt": "A", "sub/b.txt": "BB"})
    with gitml.start_run() as run:
        gitml.log_artifacts("out")
        gitml.log_artifacts("out", "plots")
        gitml.log_text("hello", "notes/n.txt")
        gitml.log_dict({"lr": 0.1}, "cfg.json")
        gitml.log_dict({"lr": 0.1}, "cfg.yaml")
    rid = run.info.run_id
    client = MlflowClient()
    top = client.list_artifacts(rid)
    assert [(f.path, f.is_dir) for f in top] == [
        ("a.txt", False), ("cfg.json", False), ("cfg.yaml", False), ("notes", True), ("plots", True), ("sub", True)
    ]
    assert [f.file_size for f in top if not f.is_dir] == [1, len(b'{\n  "lr": 0.1\n}\n'), 8]
    assert [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(rid, "plots")] == [
        ("plots/a.txt", False, 1), ("plots/sub", True, None)
    ]
    assert client.list_artifacts(rid, "plots/sub/b.txt") == []
    assert client.list_artifacts(rid, "absent") == []

    local = client.download_artifacts(rid, "plots", str(tmp_path / "dl"))
    assert local == str(tmp_path / "dl" / "plots")
    assert (tmp_path / "dl/plots/sub/b.txt").read_text() == "BB"
    one = gitml.artifacts.download_artifacts(f"runs:/{rid}/plots/sub/b.txt", dst_path=tmp_path / "one")
    assert Path(one).read_text() == "BB" and Path(one) == tmp_path / "one/plots/sub/b.txt"
    everything = gitml.artifacts.download_artifacts(run_id=rid, dst_path=tmp_path / "all")
    files = sorted(str(p.relative_to(everything)) for p in Path(everything).rglob("*") if p.is_file())
    assert files == ["a.txt", "cfg.json", "cfg.yaml", "notes/n.txt", "plots/a.txt", "plots/sub/b.txt", "sub/b.txt"]
    assert gitml.artifacts.load_text(f"runs:/{rid}/notes/n.txt") == "hello"
    assert gitml.artifacts.load_dict(f"runs:/{rid}/cfg.yaml") == {"lr": 0.1}
    assert json.loads((Path(everything) / "cfg.json").read_text()) == {"lr": 0.1}
    # downloaded copies are the user's: writable, unlike the read-only cache
    (Path(everything) / "a.txt").write_text("changed")
    assert gitml.artifacts.load_text(f"runs:/{rid}/a.txt") == "A"


def test_default_download_goes_to_a_fresh_temp_folder(repo: Path) -> None:
    (repo / "f.txt").write_text("x")
    with gitml.start_run() as run:
        gitml.log_artifact("f.txt")
    local = Path(api.download_artifacts(run._tracker, run.info.run_id, "f.txt"))
    assert local.name == "f.txt" and local.read_text() == "x" and repo not in local.parents


def test_logging_into_a_folder_adds_to_it(repo: Path) -> None:
    make_files(repo / "one", {"a.txt": "1", "keep.txt": "k"})
    make_files(repo / "two", {"a.txt": "2", "new.txt": "n"})
    with gitml.start_run() as run:
        gitml.log_artifacts("one", "d")
        gitml.log_artifact("one/a.txt", "d/extra")
        gitml.log_artifacts("two", "d")
    rid = run.info.run_id
    pointers = read_pointers(run._tracker, rid)
    assert set(pointers) == {"d"}  # the file logged inside was folded into the one manifest
    assert pointers["d"]["nfiles"] == 4
    assert gitml.artifacts.load_text(f"runs:/{rid}/d/a.txt") == "2"
    assert gitml.artifacts.load_text(f"runs:/{rid}/d/keep.txt") == "k"
    assert gitml.artifacts.load_text(f"runs:/{rid}/d/extra/a.txt") == "1"


def test_a_file_logged_into_a_logged_folder_overrides_it(repo: Path) -> None:
    make_files(repo / "d", {"a.txt": "old"})
    (repo / "a.txt").write_text("new")
    with gitml.start_run() as run:
        gitml.log_artifacts("d", "d")
        gitml.log_artifact("a.txt", "d")
    assert gitml.artifacts.load_text(f"runs:/{run.info.run_id}/d/a.txt") == "new"


def test_same_bytes_from_many_runs_are_stored_once(repo: Path) -> None:
    (repo / "ckpt.pt").write_bytes(os.urandom(3 << 20))  # above the streaming threshold
    for _ in range(3):
        with gitml.start_run():
            gitml.log_artifact("ckpt.pt")
    assert len(_cache_objects(repo)) == 1


@pytest.mark.parametrize("payload", ["../evil", "/abs", "a/../../b", "a\\..\\b", "x\0y", "%2e%2e/z"])
def test_traversal_refused_on_logging(repo: Path, payload: str) -> None:
    (repo / "f.txt").write_text("x")
    make_files(repo / "d", {"a.txt": "a"})
    with gitml.start_run() as run:
        with pytest.raises(InvalidPath):
            gitml.log_artifact("f.txt", payload)
        with pytest.raises(InvalidPath):
            gitml.log_artifacts("d", payload)
        with pytest.raises(InvalidPath):
            gitml.log_text("x", payload)
        with pytest.raises(InvalidPath):
            gitml.log_dict({}, payload + ".json")
    assert read_pointers(run._tracker, run.info.run_id) == {}
    assert _cache_objects(repo) == []


def test_symlink_escaping_the_logged_folder_is_refused(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE")
    make_files(repo / "d", {"a.txt": "a"})
    (repo / "d" / "key").symlink_to(secret)
    with gitml.start_run() as run:
        with pytest.raises(InvalidPath, match="outside the folder"):
            gitml.log_artifacts("d", "out")
    assert read_pointers(run._tracker, run.info.run_id) == {}
    assert all(b"PRIVATE" not in p.read_bytes() for p in _cache_objects(repo))


@pytest.mark.parametrize("payload", ["../x", "/etc/passwd", "a/../../x", "..\\x", "a\0"])
def test_traversal_refused_on_download(repo: Path, tmp_path: Path, payload: str) -> None:
    (repo / "f.txt").write_text("x")
    with gitml.start_run() as run:
        gitml.log_artifact("f.txt")
    rid = run.info.run_id
    with pytest.raises(InvalidPath):
        api.download_artifacts(run._tracker, rid, payload, tmp_path / "dst")
    with pytest.raises(InvalidPath):
        gitml.artifacts.download_artifacts(f"runs:/{rid}/{payload}", dst_path=tmp_path / "dst")
    assert not (tmp_path / "x").exists()


def test_download_refuses_a_planted_link_in_dst(repo: Path, tmp_path: Path) -> None:
    make_files(repo / "d", {"a.txt": "a"})
    with gitml.start_run() as run:
        gitml.log_artifacts("d", "d")
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "d").symlink_to(outside)
    with pytest.raises(InvalidPath):
        api.download_artifacts(run._tracker, run.info.run_id, "d", dst)
    assert list(outside.iterdir()) == []


def test_a_hostile_manifest_cannot_write_outside_dst(repo: Path, tmp_path: Path) -> None:
    """A .dir object from a remote or another clone is untrusted: its relpaths are checked."""
    (repo / "f.txt").write_text("x")
    with gitml.start_run() as run:
        gitml.log_artifact("f.txt")
    rid = run.info.run_id
    store = store_for(run._tracker)
    md5 = read_pointers(run._tracker, rid)["f.txt"]["md5"]
    evil = json.dumps([{"md5": md5, "relpath": "../../escaped.txt"}]).encode()
    oid = store.add_bytes(evil) + ".dir"
    os.replace(store.object_path(oid[:-4]), store.object_path(oid))
    run._tracker.record_artifacts(rid, {"evil": {"path": "evil", "md5": oid, "size": 1, "nfiles": 1, "hash": "md5"}})
    with pytest.raises(InvalidPath):
        api.download_artifacts(run._tracker, rid, "evil", tmp_path / "a" / "b")
    assert not (tmp_path / "escaped.txt").exists()


def test_malformed_pointer_is_corrupt_metadata(repo: Path) -> None:
    with gitml.start_run() as run:
        pass
    # artifacts.json is checked against its schema when written (and when read)
    with pytest.raises(CorruptMetadata, match="artifacts.json"):
        run._tracker.record_artifacts(run.info.run_id, {"x": {"md5": "not-a-hash"}})
    assert api.list_artifacts(run._tracker, run.info.run_id) == []


def test_missing_and_unreadable_local_files(repo: Path) -> None:
    with gitml.start_run():
        with pytest.raises(ResourceDoesNotExist, match="no such file"):
            gitml.log_artifact("absent.bin")
        with pytest.raises(ResourceDoesNotExist):
            gitml.log_artifacts("absent-dir")
        os.mkfifo(repo / "fifo")
        with pytest.raises(InvalidParameterValue, match="not a regular file"):
            gitml.log_artifact("fifo")
        (repo / "empty" / "sub").mkdir(parents=True)
        gitml.log_artifacts("empty", "e")  # nothing to log, as in MLflow
        assert read_pointers(gitml.active_run()._tracker, gitml.active_run().info.run_id) == {}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(repo: Path) -> None:
    p = repo / "secret.bin"
    p.write_text("x")
    p.chmod(0)
    with gitml.start_run():
        with pytest.raises(InvalidParameterValue, match="permission denied"):
            gitml.log_artifact("secret.bin")


def test_missing_artifact_names_run_and_path(repo: Path) -> None:
    with gitml.start_run() as run:
        pass
    rid = run.info.run_id
    with pytest.raises(ResourceDoesNotExist, match=f"run {rid} has no artifact 'nope.txt'"):
        gitml.artifacts.download_artifacts(f"runs:/{rid}/nope.txt")


def test_client_methods_log_into_a_given_run(repo: Path) -> None:
    (repo / "f.txt").write_text("F")
    make_files(repo / "d", {"x.txt": "X"})
    client = MlflowClient()
    rid = client.create_run("0").info.run_id
    client.log_artifact(rid, "f.txt", "files")
    client.log_artifacts(rid, "d", "dir")
    client.log_text(rid, "T", "t.txt")
    client.log_dict(rid, {"k": [1, 2]}, "d.yml")
    assert [f.path for f in client.list_artifacts(rid)] == ["d.yml", "dir", "files", "t.txt"]
    assert gitml.artifacts.load_dict(f"runs:/{rid}/d.yml") == {"k": [1, 2]}
    with pytest.raises(InvalidParameterValue):
        client.log_text("not-a-run-id", "x", "x.txt")


def test_get_artifact_uri_and_images(repo: Path) -> None:
    np = pytest.importorskip("numpy")
    with gitml.start_run() as run:
        # a folder URI (tests/artifacts/test_artifact_folder.py), standing for the run's runs:/ URI
        assert staged_runs_uri(gitml.get_artifact_uri()) == f"runs:/{run.info.run_id}"
        assert staged_runs_uri(gitml.get_artifact_uri("a/b")) == f"runs:/{run.info.run_id}/a/b"
        gitml.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "img/black.png")
        gitml.log_image(np.ones((2, 2)), "img/white.png")
        with pytest.raises(InvalidParameterValue):
            gitml.log_image(np.full((2, 2), 7.0), "img/bad.png")
    data = Path(gitml.artifacts.download_artifacts(f"runs:/{run.info.run_id}/img/black.png")).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    import struct

    assert struct.unpack(">II", data[16:24]) == (5, 4)  # width, height from IHDR


def test_log_figure_refuses_what_is_not_a_figure(repo: Path) -> None:
    with gitml.start_run():
        with pytest.raises(InvalidParameterValue, match="figure"):
            gitml.log_figure(object(), "fig.png")


def test_log_figure_with_a_savefig_object(repo: Path) -> None:
    class Fig:  # the one method log_figure uses of a matplotlib figure
        def savefig(self, path: str) -> None:
            Path(path).write_bytes(b"%PDF-fake")

    with gitml.start_run() as run:
        gitml.log_figure(Fig(), "plots/fig.pdf")
    assert gitml.artifacts.load_text(f"runs:/{run.info.run_id}/plots/fig.pdf") == "%PDF-fake"


def test_a_thousand_small_files(repo: Path, tmp_path: Path) -> None:
    make_files(repo / "many", {f"d{i % 10}/f{i}.txt": f"content {i}" for i in range(1000)})
    with gitml.start_run() as run:
        gitml.log_artifacts("many", "many")
    rid = run.info.run_id
    assert read_pointers(run._tracker, rid)["many"]["nfiles"] == 1000
    listing = MlflowClient().list_artifacts(rid, "many/d3")
    assert len(listing) == 100 and listing[0].file_size is not None
    out = Path(gitml.artifacts.download_artifacts(f"runs:/{rid}/many", dst_path=tmp_path / "dl"))
    assert (out / "d7/f997.txt").read_text() == "content 997"
    assert sum(1 for p in out.rglob("*") if p.is_file()) == 1000


def test_runs_without_artifacts_never_import_dvc(repo: Path) -> None:
    code = (
        "import sys, gitml\n"
        "with gitml.start_run():\n"
        "    gitml.log_metric('m', 1.0)\n"
        "gitml.artifacts.resolve_runs_uri('runs:/' + 'a' * 32 + '/x')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dvc', 'dvc_data', 'dvc_objects'))\n"
        "print(bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_manifest_bytes_equal_dvc_datas_tree(repo: Path) -> None:
    """The `.dir` object written without DVC's import is byte for byte dvc-data's own."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    make_files(repo / "d", {"b.txt": "b", "a/z.txt": "z", "a-b/c.txt": "c", "A.txt": "A", "é.txt": "e"})
    with gitml.start_run() as run:
        gitml.log_artifacts("d", "d")
    store = store_for(run._tracker)
    oid = read_pointers(run._tracker, run.info.run_id)["d"]["md5"]
    tree = Tree()
    for entry in store.read_manifest(oid):
        tree.add(tuple(entry.relpath.split("/")), Meta(size=entry.size), HashInfo("md5", entry.md5))
    tree.digest()
    assert tree.oid == oid
    assert Path(store.object_path(oid)).read_bytes() == tree.as_bytes()


def test_a_cache_removed_under_a_running_process_is_made_again(repo: Path) -> None:
    (repo / "small.txt").write_text("s")
    (repo / "big.bin").write_bytes(os.urandom(2 << 20))
    with gitml.start_run() as run:
        gitml.log_artifact("small.txt")
        shutil.rmtree(repo / ".git/gitml/artifacts")
        gitml.log_artifact("small.txt", "again")
        gitml.log_artifact("big.bin")
    assert gitml.artifacts.load_text(f"runs:/{run.info.run_id}/again/small.txt") == "s"
    assert len(_cache_objects(repo)) == 2


def test_an_unchanged_large_file_is_not_hashed_again_but_a_changed_one_is(repo: Path) -> None:
    big = repo / "ckpt.pt"
    big.write_bytes(b"a" * (2 << 20))
    with gitml.start_run() as run:
        gitml.log_artifact("ckpt.pt", "one")
        state = json.loads((repo / ".git/gitml/artifacts/state.json").read_text())
        assert [v[2] for v in state.values()] == [hashlib.md5(b"a" * (2 << 20)).hexdigest()]
        gitml.log_artifact("ckpt.pt", "two")
        with open(big, "r+b") as f:  # same size, new bytes, new mtime
            f.write(b"b")
        os.utime(big, ns=(big.stat().st_atime_ns, big.stat().st_mtime_ns + 10**9))
        gitml.log_artifact("ckpt.pt", "three")
    pointers = read_pointers(run._tracker, run.info.run_id)
    assert pointers["one/ckpt.pt"]["md5"] == pointers["two/ckpt.pt"]["md5"]
    assert pointers["three/ckpt.pt"]["md5"] == hashlib.md5(b"b" + b"a" * ((2 << 20) - 1)).hexdigest()
    assert gitml.artifacts.load_text(f"runs:/{run.info.run_id}/three/ckpt.pt")[:2] == "ba"


def test_a_file_that_fails_to_read_is_refused_cleanly(repo: Path) -> None:
    """Even root cannot read /proc/self/mem at offset 0 (EIO): the error names the file."""
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("no /proc here")
    with gitml.start_run() as run:
        with pytest.raises(InvalidParameterValue, match="cannot read '/proc/self/mem'"):
            gitml.log_artifact("/proc/self/mem")
    assert read_pointers(run._tracker, run.info.run_id) == {}


def test_client_figure_and_image(repo: Path) -> None:
    np = pytest.importorskip("numpy")

    class Fig:
        def savefig(self, path: str, dpi: int = 72) -> None:
            Path(path).write_text(f"figure at {dpi} dpi")

    client = MlflowClient()
    rid = client.create_run("0").info.run_id
    client.log_figure(rid, Fig(), "figs/f.svg", save_kwargs={"dpi": 300})
    client.log_image(rid, np.zeros((3, 3), dtype=np.uint8), "figs/i.png")
    assert gitml.artifacts.load_text(f"runs:/{rid}/figs/f.svg") == "figure at 300 dpi"
    assert [f.path for f in client.list_artifacts(rid, "figs")] == ["figs/f.svg", "figs/i.png"]


def test_download_by_models_uri(repo: Path, tmp_path: Path) -> None:
    make_files(repo / "m", {"MLmodel": "flavors: {}\n", "data/w.bin": "weights"})
    with gitml.start_run() as run:
        gitml.log_artifacts("m", "model")
    gitml.register_model(f"runs:/{run.info.run_id}/model", "tiny")
    out = Path(gitml.artifacts.download_artifacts("models:/tiny/1", dst_path=tmp_path / "dl"))
    assert (out / "data/w.bin").read_text() == "weights"
