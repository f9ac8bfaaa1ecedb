"""Artifact path rules: every traversal payload is refused; harmless spellings normalise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitml.artifacts.paths import confined_path, normalize_artifact_path, walk_local_dir
from gitml.artifacts.uri import format_runs_uri, resolve_runs_uri
from gitml.exceptions import InvalidParameterValue, InvalidPath, ResourceDoesNotExist

# MLflow's path-traversal CVE classes, and their encoded and platform variants.
TRAVERSAL = [
    "..",
    "../x",
    "a/../../x",
    "a/..",
    "/etc/passwd",
    "//etc/passwd",
    "C:/Windows",
    "c:evil",
    "..\\x",
    "a\\..\\..\\x",
    "a\0b",
    "a/b\0",
    "%2e%2e/x",
    "a/%2E%2E/b",
    "..%2fx",
    "%2e%2e%5cx",
    "a/\x01b",
]


@pytest.mark.parametrize("payload", TRAVERSAL)
def test_traversal_payloads_are_refused(payload: str) -> None:
    with pytest.raises(InvalidPath):
        normalize_artifact_path(payload)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, ""),
        ("", ""),
        (".", ""),
        ("a", "a"),
        ("./a//b/", "a/b"),
        ("a/./b", "a/b"),
        ("dir/file.txt", "dir/file.txt"),
        ("...", "..."),
        ("..a/b..", "..a/b.."),
        ("with space/é.txt", "with space/é.txt"),
    ],
)
def test_harmless_spellings_normalise(given: str | None, expected: str) -> None:
    assert normalize_artifact_path(given) == expected


def test_root_refused_where_a_file_is_needed() -> None:
    with pytest.raises(InvalidPath):
        normalize_artifact_path("./", allow_root=False)
    with pytest.raises(InvalidPath):
        normalize_artifact_path(None, allow_root=False)


def test_invalid_path_is_an_invalid_parameter_value() -> None:
    with pytest.raises(InvalidParameterValue) as info:
        normalize_artifact_path("../x")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "'../x'" in info.value.message


def test_confined_path_stays_inside(tmp_path: Path) -> None:
    assert confined_path(tmp_path, "a/b") == Path(os.path.realpath(tmp_path)) / "a" / "b"
    with pytest.raises(InvalidPath):
        confined_path(tmp_path, "../b")


def test_confined_path_refuses_a_planted_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "sub").symlink_to(outside)
    with pytest.raises(InvalidPath, match="outside"):
        confined_path(dst, "sub/file.txt")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_walk_lists_every_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"b.txt": "bb", "a/x.txt": "x", "a/y/z.txt": "zzz"})
    got = [(rel, Path(local).read_text()) for rel, local in walk_local_dir(root)]
    assert sorted(got) == [("a/x.txt", "x"), ("a/y/z.txt", "zzz"), ("b.txt", "bb")]


def test_walk_refuses_a_link_that_escapes(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not log me")
    root = _tree(tmp_path / "d", {"ok.txt": "ok"})
    (root / "leak.txt").symlink_to(secret)
    with pytest.raises(InvalidPath, match="outside the folder"):
        list(walk_local_dir(root))


def test_walk_refuses_a_folder_link_that_escapes(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0")
    root = _tree(tmp_path / "d", {"ok.txt": "ok"})
    (root / "etc").symlink_to(tmp_path / "etc")
    with pytest.raises(InvalidPath):
        list(walk_local_dir(root))


def test_walk_follows_links_that_stay_inside(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"real/a.txt": "a"})
    (root / "alias.txt").symlink_to(root / "real" / "a.txt")
    got = sorted(rel for rel, _ in walk_local_dir(root))
    assert got == ["alias.txt", "real/a.txt"]


def test_walk_refuses_a_link_cycle(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"sub/a.txt": "a"})
    (root / "sub" / "loop").symlink_to(root)
    with pytest.raises(InvalidPath, match="cycle"):
        list(walk_local_dir(root))


def test_walk_refuses_broken_links_and_fifos(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"a.txt": "a"})
    (root / "dangling").symlink_to(root / "nowhere")
    with pytest.raises(ResourceDoesNotExist, match="broken link"):
        list(walk_local_dir(root))
    (root / "dangling").unlink()
    os.mkfifo(root / "pipe")
    with pytest.raises(InvalidParameterValue, match="not a regular file"):
        list(walk_local_dir(root))


def test_walk_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ResourceDoesNotExist):
        list(walk_local_dir(tmp_path / "absent"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidParameterValue, match="not a folder"):
        list(walk_local_dir(tmp_path / "f"))


RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"runs:/{RUN}", (RUN, "")),
        (f"runs:/{RUN}/", (RUN, "")),
        (f"runs:/{RUN}/model", (RUN, "model")),
        (f"runs:/{RUN}/a/b.txt", (RUN, "a/b.txt")),
        (f"runs:///{RUN.upper()}/./a", (RUN, "a")),
    ],
)
def test_resolve_runs_uri(uri: str, expected: tuple[str, str]) -> None:
    assert resolve_runs_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [f"runs:/{RUN}/../x", f"runs:/{RUN}/a/%2e%2e/b", f"runs:/{RUN}/a\\..\\b", f"runs:/{RUN}/a\0"],
)
def test_runs_uri_traversal_refused(uri: str) -> None:
    with pytest.raises(InvalidPath):
        resolve_runs_uri(uri)


@pytest.mark.parametrize("uri", ["models:/m/1", "runs:/", "runs:/short/x", "/tmp/x", "runs:/../etc"])
def test_bad_runs_uri(uri: str) -> None:
    with pytest.raises(InvalidParameterValue):
        resolve_runs_uri(uri)


def test_format_runs_uri_round_trips() -> None:
    assert format_runs_uri(RUN) == f"runs:/{RUN}"
    assert resolve_runs_uri(format_runs_uri(RUN, "a/b")) == (RUN, "a/b")
