"""Packs written by gitml (gitdb's pack writer) are packs Git itself reads and verifies."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from gitml.store.objects import write_pack
from gitml.store.repo import GitRepo


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("size", [0, 15, 16, 4095, 70_000])
def test_a_written_pack_verifies_and_reads_back(repo: Path, size: int) -> None:
    r = GitRepo(repo, "gitml")
    try:
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        commit = r.commit(lambda tree: {"a/blob.bin": data, "b.json": b"{}\n"}, "one pack")
    finally:
        r.close()
    assert commit is not None
    packs = sorted((repo / ".git" / "objects" / "pack").glob("pack-*.pack"))
    assert packs, "the commit went into a pack"
    for pack in packs:
        git(repo, "verify-pack", str(pack.with_suffix(".idx")))
    git(repo, "fsck", "--strict", "--no-dangling")
    shown = subprocess.run(
        ["git", "show", f"{commit}:a/blob.bin"], cwd=repo, check=True, capture_output=True
    ).stdout
    assert shown == data


def test_no_temporary_file_is_left(tmp_path: Path) -> None:
    blob = b"hello\n"
    sha = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
    pack = write_pack(tmp_path, {sha: ("blob", blob)})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [pack.with_suffix(".idx").name, pack.name]
    assert oct(pack.stat().st_mode)[-3:] == "444"  # read-only, as Git makes them
