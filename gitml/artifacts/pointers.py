"""Artifact pointers (DVC's field names) and the file tree a run's pointers describe."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitml.artifacts.oids import is_oid
from gitml.artifacts.paths import normalize_artifact_path
from gitml.entities import FileInfo
from gitml.exceptions import CorruptMetadata, ResourceDoesNotExist

__all__ = [
    "FileInfo",
    "ManifestEntry",
    "ManifestLoader",
    "dir_pointer",
    "file_pointer",
    "files_under",
    "is_dir_pointer",
    "list_children",
    "pointer_oids",
    "require_files",
    "validate_pointer",
]


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a folder's `.dir` manifest: its path inside the folder, md5 and size."""

    relpath: str
    md5: str
    size: int | None


# md5 of a `.dir` object -> its entries (fetching the manifest from the remote if needed)
ManifestLoader = Callable[[str], list[ManifestEntry]]


def file_pointer(path: str, md5: str, size: int) -> dict[str, Any]:
    """The pointer of one file, as a DVC `outs` entry names its fields."""
    return {"path": path, "md5": md5, "size": size, "hash": "md5"}


def dir_pointer(path: str, md5: str, size: int, nfiles: int) -> dict[str, Any]:
    """The pointer of a folder: the md5 of its `.dir` manifest, total size and file count."""
    return {"path": path, "md5": md5, "size": size, "nfiles": nfiles, "hash": "md5"}


def is_dir_pointer(pointer: Mapping[str, Any]) -> bool:
    """Whether the pointer names a folder (its md5 ends in `.dir`, as DVC's do)."""
    return str(pointer.get("md5", "")).endswith(".dir")


def validate_pointer(key: str, pointer: object) -> dict[str, Any]:
    """Check a pointer read from the branch (untrusted input) and return it."""
    if not isinstance(pointer, dict) or not is_oid(pointer.get("md5")):
        raise CorruptMetadata(f"artifact pointer {key!r} is malformed: {pointer!r}")
    if normalize_artifact_path(key, allow_root=False) != key:
        raise CorruptMetadata(f"artifact pointer key {key!r} is not a normalised path")
    return pointer


def pointer_oids(pointers: Iterable[Mapping[str, Any]]) -> set[str]:
    """The object ids (md5, `.dir` included) the pointers name."""
    return {str(p["md5"]) for p in pointers if p.get("md5")}


def _inside(path: str, prefix: str) -> str | None:
    """`path` relative to folder `prefix`, or None when it is not below it."""
    if not prefix:
        return path
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1 :]
    return None


def files_under(
    pointers: Mapping[str, Mapping[str, Any]], path: str, load: ManifestLoader
) -> dict[str, tuple[str, int | None]]:
    """Every file at or below artifact `path`: {relative path: (md5, size)}.

    A file exactly at `path` comes back under the key "". Pointers are laid over each
    other shallow first, so a file logged into a logged folder overrides its entry.
    """
    path = normalize_artifact_path(path)
    out: dict[str, tuple[str, int | None]] = {}
    for key in sorted(pointers, key=lambda k: (k.count("/"), k)):
        pointer = pointers[key]
        md5 = str(pointer["md5"])
        if is_dir_pointer(pointer):
            below = _inside(key, path)
            if below is not None:  # the whole folder lies inside `path`
                for entry in load(md5):
                    rel = f"{below}/{entry.relpath}" if below else entry.relpath
                    out[rel] = (entry.md5, entry.size)
                continue
            inner = _inside(path, key)
            if inner is not None:  # `path` lies inside this folder
                for entry in load(md5):
                    if entry.relpath == inner:
                        out[""] = (entry.md5, entry.size)
                    else:
                        rest = _inside(entry.relpath, inner)
                        if rest is not None:
                            out[rest] = (entry.md5, entry.size)
        else:
            size = pointer.get("size")
            if key == path:
                out[""] = (md5, size if isinstance(size, int) else None)
            else:
                below = _inside(key, path)
                if below is not None:
                    out[below] = (md5, size if isinstance(size, int) else None)
    if "" in out and len(out) > 1:
        # A file and a folder at the same path: the folder wins, as the later, wider log.
        del out[""]
    return out


def list_children(
    pointers: Mapping[str, Mapping[str, Any]], path: str | None, load: ManifestLoader
) -> list[FileInfo]:
    """The direct children of artifact folder `path` (MLflow's `list_artifacts`)."""
    base = normalize_artifact_path(path)
    files = files_under(pointers, base, load)
    if not files and base:
        known = any(k == base or k.startswith(base + "/") or base.startswith(k + "/") for k in pointers)
        if not known:
            return []
    children: dict[str, FileInfo] = {}
    for rel, (_, size) in files.items():
        if not rel:
            continue  # `path` is a file: MLflow lists nothing under a file
        head, sep, _ = rel.partition("/")
        child = f"{base}/{head}" if base else head
        if sep:
            children[head] = FileInfo(child, True, None)
        elif head not in children:
            children[head] = FileInfo(child, False, size)
    return [children[k] for k in sorted(children)]


def require_files(
    pointers: Mapping[str, Mapping[str, Any]], run_id: str, path: str, load: ManifestLoader
) -> dict[str, tuple[str, int | None]]:
    """`files_under`, raising ResourceDoesNotExist (naming run and path) when empty."""
    files = files_under(pointers, path, load)
    if not files:
        where = f"artifact {path!r}" if path else "any artifact"
        raise ResourceDoesNotExist(f"run {run_id} has no {where}")
    return files

