"""Provenance pieces: stat-cached hashes of path parameters, dvc.lock, packages, GPU."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from gitml.projects.provenance import data_provenance, gpu_provenance, hash_path, packages_hash
from tests.conftest import git


def test_a_path_is_hashed_once_then_read_from_its_stat(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1\n")
    (data / "b.csv").write_text("2\n")
    cache = tmp_path / "hashcache.json"
    first = hash_path(data, cache)
    assert first.endswith(".dir") and len(json.loads(cache.read_text())) == 2
    # a cached entry is trusted while size, mtime and inode are unchanged: prove it is used
    table = json.loads(cache.read_text())
    key = str(data / "a.csv")
    table[key][1] = "f" * 32
    cache.write_text(json.dumps(table))
    assert hash_path(data, cache) != first
    (data / "a.csv").write_text("10\n")  # a real change: new stat, hashed again
    assert hash_path(data / "a.csv", cache) == hashlib.md5(b"10\n").hexdigest()
    assert json.loads(cache.read_text())[key][1] != "f" * 32


def test_dvc_lock_outs_and_deps_are_read(repo: Path) -> None:
    (repo / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n    deps:\n    - path: data/raw\n"
        "      hash: md5\n      md5: 0123456789abcdef0123456789abcdef.dir\n    outs:\n    - path: model.pkl\n"
        "      hash: md5\n      md5: fedcba9876543210fedcba9876543210\n"
    )
    git("add", "dvc.lock", cwd=repo)
    assert data_provenance(repo, repo) == {
        "data/raw": "0123456789abcdef0123456789abcdef.dir",
        "model.pkl": "fedcba9876543210fedcba9876543210",
    }


def test_the_packages_hash_is_stable_and_names_versions() -> None:
    a, n = packages_hash()
    assert a == packages_hash()[0] and n > 10


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is None, reason="no GPU here (nvidia-smi is not installed)"
)
def test_the_gpu_is_fingerprinted() -> None:
    gpu = gpu_provenance()
    assert gpu["gpu"] and gpu["gpu_driver"]


def test_pointers_in_folders_are_keyed_from_the_repo_root(repo: Path) -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    (repo / "d" / "e").mkdir(parents=True)
    for name, path in (("d/e/a.csv.dvc", "a.csv"), ("d/b.dvc", "../c.csv"), ("f.dvc", "g")):
        (repo / name).write_text(f"outs:\n- md5: {md5}\n  size: 2\n  hash: md5\n  path: {path}\n")
    git("add", "-A", cwd=repo)
    (repo / "d" / "new.csv.dvc").write_text(f"outs:\n- md5: {md5}\n  path: new.csv\n")
    assert data_provenance(repo, repo) == {"d/e/a.csv": md5, "c.csv": md5, "g": md5, "d/new.csv": md5}
    assert data_provenance(repo, repo, ["d/new.csv.dvc"]) == data_provenance(repo, repo)


def test_hostile_pointer_files_are_skipped_unread(repo: Path) -> None:
    import os

    md5 = "0123456789abcdef0123456789abcdef"
    (repo / "big.dvc").write_text(f"outs:\n- md5: {md5}\n  path: big\n" + "#" * (1 << 20))
    (repo / "bin.dvc").write_bytes(b"outs:\n- md5: \xff\xfe\n  path: x\n")
    (repo / "esc.dvc").write_text(f"outs:\n- md5: {md5}\n  path: ../../outside\n")
    os.mkfifo(repo / "fifo.dvc")  # opening it must not wait for a writer
    os.symlink("/dev/zero", repo / "zero.dvc")  # nor read an endless device
    assert data_provenance(repo, repo) == {}


def test_the_code_record_reads_branch_remote_renames_and_untracked(repo: Path) -> None:
    from gitml.projects.provenance import code_provenance

    git("remote", "add", "origin", "https://example.invalid/o.git", cwd=repo)
    git("remote", "add", "up", "https://example.invalid/up.git", cwd=repo)
    (repo / "a.txt").write_text("1\n")
    git("add", "a.txt", cwd=repo)
    git("commit", "-q", "-m", "a", cwd=repo)
    branch = git("symbolic-ref", "--short", "HEAD", cwd=repo).strip()
    code, patch, untracked = code_provenance(repo)
    assert code["branch"] == branch and code["repo_url"] == "https://example.invalid/o.git"
    assert code["dirty"] is False and patch == "" and untracked == []
    git("config", f"branch.{branch}.remote", "up", cwd=repo)
    git("mv", "a.txt", "b c.txt", cwd=repo)
    (repo / "new\tfile").write_text("n")
    code, patch, untracked = code_provenance(repo)
    assert code["repo_url"] == "https://example.invalid/up.git"
    assert code["dirty"] is True and untracked == ["new\tfile"] and "b c.txt" in patch
    assert code["commit"] == git("rev-parse", "HEAD", cwd=repo).strip()
    git("checkout", "-q", "--detach", cwd=repo)
    assert code_provenance(repo)[0]["branch"] is None


def test_a_token_in_the_remote_url_is_not_recorded(repo: Path) -> None:
    from gitml.projects.provenance import code_provenance
    from gitml.store.repo import GitRepo

    url = "https://gitlab-ci-token:s3cr3t@gitlab.example/group/p.git"
    git("remote", "add", "origin", url, cwd=repo)
    assert code_provenance(repo)[0]["repo_url"] == "https://gitlab.example/group/p.git"
    assert GitRepo(repo, "gitml").source_info(check_dirty=False).repo_url == "https://gitlab.example/group/p.git"
    git("remote", "set-url", "origin", "git@gitlab.example:group/p.git", cwd=repo)
    assert code_provenance(repo)[0]["repo_url"] == "git@gitlab.example:group/p.git"


def test_unchanged_pointers_come_from_the_cache_by_blob_and_edits_are_read(repo: Path) -> None:
    from gitml.projects.provenance import code_provenance

    a, b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
    (repo / "d").mkdir()
    pointer = "outs:\n- md5: {}\n  size: 2\n  hash: md5\n  path: x.csv\n"
    (repo / "x.csv.dvc").write_text(pointer.format(a))
    (repo / "d" / "x.csv.dvc").write_text(pointer.format(a))  # the same blob in another folder
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "data", cwd=repo)
    cache = repo / ".git" / "gitml" / "pointercache.json"

    def read() -> dict[str, str]:
        changed: set[str] = set()
        untracked = code_provenance(repo, changed)[2]
        return data_provenance(repo, repo, untracked, changed, cache)

    assert read() == {"x.csv": a, "d/x.csv": a} == data_provenance(repo, repo)
    assert len(json.loads(cache.read_text())) == 2
    # prove the cache is what answers for an unchanged pointer
    table = json.loads(cache.read_text())
    for key in table:
        table[key] = [[k, b] for k, _ in table[key]]
    cache.write_text(json.dumps(table))
    assert read() == {"x.csv": b, "d/x.csv": b}
    # an edit in the work tree is read from the file, staged or not
    (repo / "x.csv.dvc").write_text(pointer.format("1" * 32))
    assert read()["x.csv"] == "1" * 32
    git("add", "x.csv.dvc", cwd=repo)
    assert read()["x.csv"] == "1" * 32
    cache.write_text("[not a table")  # a broken cache is rebuilt, not trusted
    (repo / "x.csv.dvc").write_text(pointer.format(a))
    git("add", "x.csv.dvc", cwd=repo)
    assert read() == {"x.csv": a, "d/x.csv": a}
