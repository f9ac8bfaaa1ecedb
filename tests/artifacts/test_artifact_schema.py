"""schemas/artifacts.schema.json accepts what gitml writes and refuses bad keys and pointers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import gitml
from gitml.artifacts.runs import read_pointers

from .conftest import make_files

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "artifacts.schema.json").read_text())
MD5 = "0123456789abcdef0123456789abcdef"


def _valid(doc: Any) -> bool:
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError:
        return False
    return True


def test_what_gitml_writes_validates(repo: Path) -> None:
    make_files(repo / "d", {"a.txt": "a", "s/b.txt": "b"})
    with gitml.start_run() as run:
        gitml.log_artifacts("d")
        gitml.log_artifacts("d", "nested/folder")
        gitml.log_text("t", "x/y.txt")
    doc = read_pointers(run._tracker, run.info.run_id)
    assert len(doc) == 4 and _valid(doc)


@pytest.mark.parametrize("key", ["../x", "/abs", "a/../b", "a//b", "a/", ".", "a\\b", "a\u0000b", ""])
def test_bad_keys_are_refused(key: str) -> None:
    assert not _valid({key: {"path": key, "md5": MD5, "size": 1}})


@pytest.mark.parametrize(
    "pointer",
    [
        {"path": "p", "md5": "xyz", "size": 1},
        {"path": "p", "md5": MD5, "size": -1},
        {"path": "p", "md5": MD5 + ".dir", "size": 1},  # a folder needs nfiles
        {"path": "p", "md5": MD5, "size": 1, "hash": "sha256"},
        {"path": "p", "size": 1},
    ],
)
def test_bad_pointers_are_refused(pointer: dict[str, Any]) -> None:
    assert not _valid({"p": pointer})


def test_good_pointers() -> None:
    assert _valid({"a/b.bin": {"path": "a/b.bin", "md5": MD5, "size": 0, "hash": "md5"}})
    assert _valid({"..a/b..": {"path": "..a/b..", "md5": MD5 + ".dir", "size": 3, "nfiles": 2}})
