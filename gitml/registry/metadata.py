"""Mutable registry metadata (descriptions, tags) on the metadata branch, under `registry/`.

Layout (schemas in gitml/schemas/registry-*.schema.json):
    registry/models/<name>/model.json      name, created_at, updated_at, description, tags
    registry/models/<name>/versions.json   {<commit of the version tag>: {description, tags, updated_at}}

Versions are keyed by the commit their tag points at, which survives renumbering on push
and renaming. Writes merge key by key into what is on the branch, so concurrent writers
lose nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from gitml.constants import FORMAT_FILE, FORMAT_VERSION, REGISTRY_DIR
from gitml.exceptions import CorruptMetadata
from gitml.store.bounded import load_json
from gitml.store.repo import GitRepo

__all__ = [
    "MODEL_FILE",
    "VERSIONS_FILE",
    "MetadataView",
    "read_metadata",
    "update_model_meta",
    "update_versions_meta",
    "validate_obj",
]

MODEL_FILE = "model.json"
VERSIONS_FILE = "versions.json"
_MODELS = f"{REGISTRY_DIR}/models"
_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
_SCHEMA_OF = {
    MODEL_FILE: "registry-model.schema.json",
    VERSIONS_FILE: "registry-versions.schema.json",
}


@cache
def _validator(schema_name: str) -> Any:
    import jsonschema  # not cheap to import: only when metadata is written or read

    with open(_SCHEMAS / schema_name) as f:
        schema = json.load(f)
    return jsonschema.validators.validator_for(schema)(schema)


def validate_obj(obj: Any, schema_name: str, where: str) -> None:
    """Raise CorruptMetadata if `obj` does not match the named schema."""
    error = next(iter(_validator(schema_name).iter_errors(obj)), None)
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path)
        raise CorruptMetadata(
            f"{where} does not match {schema_name}{' at ' + at if at else ''}: {error.message}"
        )


def _path(name: str, file: str) -> str:
    return f"{_MODELS}/{name}/{file}"


def _decode(path: str, data: bytes, file: str) -> dict[str, Any]:
    obj = load_json(data, f"{path} on the metadata branch")  # bounded: size, depth, 64-bit integers
    validate_obj(obj, _SCHEMA_OF[file], path)
    assert isinstance(obj, dict)
    return obj


def _encode(path: str, obj: dict[str, Any], file: str) -> bytes:
    validate_obj(obj, _SCHEMA_OF[file], path)
    return (json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


class MetadataView:
    """All registry metadata at one commit: {model name: model.json} and {model name: versions.json}."""

    def __init__(
        self, models: dict[str, dict[str, Any]], versions: dict[str, dict[str, Any]]
    ) -> None:
        self.models = models
        self.versions = versions

    def model(self, name: str) -> dict[str, Any] | None:
        """model.json of `name`, or None."""
        return self.models.get(name)

    def version(self, name: str, commit: str) -> dict[str, Any]:
        """The metadata of the version of `name` at `commit` ({} when none)."""
        return dict(self.versions.get(name, {}).get(commit, {}))


_EMPTY = MetadataView({}, {})
_cache_lock = threading.Lock()
_cache: dict[tuple[str, str], MetadataView] = {}


def _branch_stamp(repo: GitRepo) -> tuple[object, ...]:
    # The branch moves by a rename into refs/heads/ (or a rewrite of packed-refs): stat both.
    stamp: list[object] = [str(repo.common_dir), repo.branch]
    for path in (repo.common_dir / repo.ref, repo.common_dir / "packed-refs"):
        try:
            st = os.stat(path)
            stamp.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except (FileNotFoundError, NotADirectoryError):
            stamp.append(None)
    return tuple(stamp)


_by_stamp: dict[str, tuple[tuple[object, ...], MetadataView]] = {}


def read_metadata(repo: GitRepo) -> MetadataView:
    """Read every registry metadata file at the branch tip (cached while the branch stays put)."""
    stamp = _branch_stamp(repo)
    with _cache_lock:
        known = _by_stamp.get(str(repo.common_dir))
    if known is not None and known[0] == stamp:
        return known[1]
    view = _read_metadata(repo)
    newest = max((part[0] for part in stamp[2:] if isinstance(part, tuple)), default=0)
    # A stamp younger than a file system clock tick could miss a change in the same tick.
    if time.time_ns() - newest > 50_000_000:
        with _cache_lock:
            _by_stamp[str(repo.common_dir)] = (stamp, view)
    return view


def _read_metadata(repo: GitRepo) -> MetadataView:
    tree = repo.tree_of(repo.tip())
    entry = repo.lookup(tree, _MODELS)
    if entry is None or not entry.is_tree:
        return _EMPTY
    key = (str(repo.common_dir), entry.sha)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    models: dict[str, dict[str, Any]] = {}
    versions: dict[str, dict[str, Any]] = {}
    for rel, file_entry in repo.walk_files(tree, _MODELS):
        name, _, file = rel.rpartition("/")
        if file not in _SCHEMA_OF or not name:
            continue
        obj = _decode(f"{_MODELS}/{rel}", repo.objects.read_blob(file_entry.sha), file)
        (models if file == MODEL_FILE else versions)[name] = obj
    view = MetadataView(models, versions)
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = view
    return view


def _update(
    repo: GitRepo,
    name: str,
    file: str,
    change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    message: str,
) -> None:
    path = _path(name, file)

    def build(base_tree: str) -> dict[str, bytes | None] | None:
        # Re-run on the fresh tip after a lost race: the change merges into what is there.
        data = repo.read_file(base_tree, path)
        current = _decode(path, data, file) if data is not None else None
        new = change(None if current is None else json.loads(json.dumps(current)))
        if new == current:
            return None
        changes: dict[str, bytes | None] = {path: None if new is None else _encode(path, new, file)}
        if repo.read_file(base_tree, FORMAT_FILE) is None:
            # The registry may write the branch first: name its format, as the tracker does.
            from gitml.tracking import layout

            changes[FORMAT_FILE] = layout.encode(
                FORMAT_FILE, {"format": FORMAT_VERSION, "created_by": "gitml"}
            )
        return changes

    repo.commit(build, message)


def update_model_meta(
    repo: GitRepo,
    name: str,
    change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    message: str,
) -> None:
    """Apply `change(model.json or None) -> new or None (delete)` in one commit."""
    _update(repo, name, MODEL_FILE, change, message)


def update_versions_meta(
    repo: GitRepo,
    name: str,
    change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    message: str,
) -> None:
    """Apply `change(versions.json or None) -> new or None (delete)` in one commit."""
    _update(repo, name, VERSIONS_FILE, change, message)
