"""Artifact path rules: relative, normalised, confined; used on logging and on download."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from gitml.exceptions import InvalidParameterValue, InvalidPath, ResourceDoesNotExist

__all__ = [
    "check_local_file",
    "confined_path",
    "join_artifact_path",
    "normalize_artifact_path",
    "walk_local_dir",
]

# A Windows drive ("C:") or UNC start: absolute on some platform, so never a relative path.
_DRIVE = re.compile(r"^[A-Za-z]:")


def _bad(path: object, why: str) -> InvalidPath:
    return InvalidPath(f"invalid artifact path {path!r}: {why}")


def normalize_artifact_path(path: str | os.PathLike[str] | None, allow_root: bool = True) -> str:
    """The canonical form of an artifact path inside a run: `a/b/c`, or "" for the root.

    Harmless spellings are normalised (`./a//b/` is `a/b`); anything that could reach
    outside the run is refused with InvalidPath: `..` (also percent-encoded), absolute
    paths, drive letters, backslashes, NUL and other control characters.
    """
    if path is None:
        if allow_root:
            return ""
        raise _bad(path, "a path is required")
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise _bad(path, "must be a string")
    if "\0" in path:
        raise _bad(path, "contains a NUL byte")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise _bad(path, "contains a control character")
    # Backslashes are separators on Windows; `..\\x` is a classic traversal payload.
    if "\\" in path:
        raise _bad(path, "contains a backslash")
    if path.startswith("/") or _DRIVE.match(path):
        raise _bad(path, "must be relative")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        # Some layer (a URL, an HTTP server) may decode `%2e%2e` later: refuse it here.
        decoded = unquote(part)
        if decoded in ("..", ".") or "/" in decoded or "\\" in decoded or "\0" in decoded:
            raise _bad(path, "must not contain '..'")
        parts.append(part)
    out = "/".join(parts)
    if not out and not allow_root:
        raise _bad(path, "must name a file or folder inside the run")
    return out


def join_artifact_path(*parts: str | None) -> str:
    """Join artifact path pieces, each validated, into one normalised path."""
    return "/".join(p for p in (normalize_artifact_path(x) for x in parts) if p)


def _within(child: Path, root: Path) -> bool:
    return child == root or root in child.parents


def confined_path(root: str | os.PathLike[str], rel: str) -> Path:
    """The local path for artifact path `rel` under `root`, refusing any escape.

    `rel` is validated, and links already present under `root` that would carry a
    write outside it (a `dst/sub` symlink to `/etc`) are refused too.
    """
    rel = normalize_artifact_path(rel)
    base = Path(os.path.realpath(root))
    target = base.joinpath(*rel.split("/")) if rel else base
    # Resolve what exists of the path: a pre-existing link must not lead outside.
    if not _within(Path(os.path.realpath(target)), base):
        raise InvalidPath(f"invalid artifact path {rel!r}: it leads outside {os.fspath(root)!r}")
    return target


def check_local_file(path: str | os.PathLike[str]) -> os.stat_result:
    """Stat a local file to log, with errors a user can act on."""
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        raise ResourceDoesNotExist(f"no such file to log: {os.fspath(path)!r}") from e
    except OSError as e:
        raise InvalidParameterValue(f"cannot read {os.fspath(path)!r}: {e.strerror}") from e
    if not stat.S_ISREG(st.st_mode):
        raise InvalidParameterValue(f"{os.fspath(path)!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise InvalidParameterValue(f"cannot read {os.fspath(path)!r}: permission denied")
    return st


def walk_local_dir(local_dir: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """Every file under `local_dir`, as (relative posix path, local path), sorted per folder.

    Links are followed only while they stay inside `local_dir` (a link that escapes is
    MLflow's symlink CVE class: refused with InvalidPath); link cycles are refused too.
    Sockets, FIFOs and devices are refused: reading them would block or make no sense.
    """
    top = os.fspath(local_dir)
    try:
        st = os.stat(top)
    except FileNotFoundError as e:
        raise ResourceDoesNotExist(f"no such folder to log: {top!r}") from e
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidParameterValue(f"{top!r} is not a folder")
    real_top = Path(os.path.realpath(top))
    seen = {real_top}
    stack: list[tuple[str, str]] = [("", top)]
    while stack:
        prefix, folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise InvalidParameterValue(f"cannot read folder {folder!r}: {e.strerror}") from e
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            normalize_artifact_path(rel, allow_root=False)
            # The common case costs no system call: the folder listing gives the type.
            if entry.is_file(follow_symlinks=False):
                yield rel, entry.path
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((rel + "/", entry.path))
                continue
            if entry.is_symlink():
                real = Path(os.path.realpath(entry.path))
                if not _within(real, real_top):
                    raise InvalidPath(
                        f"refusing to log {entry.path!r}: it is a link to {os.fspath(real)!r}, "
                        f"outside the folder {top!r}"
                    )
                if not os.path.exists(entry.path):
                    raise ResourceDoesNotExist(f"broken link in the folder to log: {entry.path!r}")
            try:
                st = entry.stat()  # follows links, now known to stay inside
            except OSError as e:
                raise InvalidParameterValue(f"cannot read {entry.path!r}: {e.strerror}") from e
            if stat.S_ISDIR(st.st_mode):
                real = Path(os.path.realpath(entry.path))
                if real in seen or any(real == Path(os.path.realpath(a)) for a in _ancestors(folder, top)):
                    raise InvalidPath(f"refusing to log {entry.path!r}: a link cycle")
                seen.add(real)
                stack.append((rel + "/", entry.path))
            elif stat.S_ISREG(st.st_mode):
                yield rel, entry.path
            else:
                raise InvalidParameterValue(
                    f"refusing to log {entry.path!r}: not a regular file or folder"
                )


def _ancestors(folder: str, top: str) -> Iterator[str]:
    """`folder` and the folders above it, up to `top`."""
    current = folder
    while True:
        yield current
        if current == top or os.path.dirname(current) == current:
            return
        current = os.path.dirname(current)
