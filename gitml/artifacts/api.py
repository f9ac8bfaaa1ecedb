"""Log, list and download a run's artifacts, given the tracker and the run id (the fluent `log_*` are gitml.fluent.artifacts)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.artifacts.host import RunHost
from gitml.artifacts.paths import (
    check_local_file,
    confined_path,
    join_artifact_path,
    normalize_artifact_path,
    walk_local_dir,
)
from gitml.artifacts.pointers import (
    FileInfo,
    ManifestEntry,
    ManifestLoader,
    dir_pointer,
    file_pointer,
    files_under,
    list_children,
    require_files,
)
from gitml.artifacts.runs import manifest_loader, read_pointers, store_for
from gitml.exceptions import (
    RemoteError,
    ResourceDoesNotExist,
)

if TYPE_CHECKING:
    from gitml.artifacts.odb import ArtifactStore

__all__ = [
    "naming_loader",
    "dict_bytes",
    "download_artifacts",
    "download_run_artifacts",
    "list_artifacts",
    "list_run_artifacts",
    "log_run_artifact",
    "log_run_artifacts",
    "log_run_bytes",
    "log_run_figure",
    "log_run_image",
    "log_run_step_image",
]


# -- logging (tracker level: the client and the fluent API call these) ----------------------
def log_run_bytes(tracker: RunHost, run_id: str, data: bytes, artifact_file: str) -> dict[str, Any]:
    """Store `data` as artifact file `artifact_file` of the run; returns its pointer."""
    dest = normalize_artifact_path(artifact_file, allow_root=False)
    store = store_for(tracker)
    oid = store.add_bytes(data)
    pointer = file_pointer(dest, oid, len(data))
    tracker.record_artifacts(run_id, {dest: pointer})
    return pointer


def log_run_artifact(
    tracker: RunHost, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> dict[str, Any]:
    """Log one local file (a folder is logged whole) under `artifact_path`; returns its pointer."""
    local = os.fspath(local_path)
    base = normalize_artifact_path(artifact_path)
    name = os.path.basename(local.rstrip("/" + os.sep))
    dest = join_artifact_path(base, name)
    if os.path.isdir(local):
        return log_run_artifacts(tracker, run_id, local, dest)[dest]
    check_local_file(local)
    md5, size = store_for(tracker).add_file(local)
    pointer = file_pointer(dest, md5, size)
    tracker.record_artifacts(run_id, {dest: pointer})
    return pointer


def _merge_folder(
    store: ArtifactStore, pointers: dict[str, dict[str, Any]], dest: str, new: list[ManifestEntry]
) -> tuple[dict[str, Any], list[str]]:
    """One folder pointer at `dest` holding what was there and `new` (new files win).

    Logging into a folder adds to it, as MLflow's does; pointers below `dest` are folded
    into the one manifest and their keys dropped.
    """
    entries: dict[str, ManifestEntry] = {}
    if any(k == dest or k.startswith(dest + "/") or dest.startswith(k + "/") for k in pointers):
        for rel, (md5, size) in files_under(pointers, dest, manifest_loader(store)).items():
            if rel:
                entries[rel] = ManifestEntry(rel, md5, size)
    for entry in new:
        entries[entry.relpath] = entry
    oid, total, nfiles = store.write_manifest(entries.values())
    stale = [k for k in pointers if k.startswith(dest + "/")]
    return dir_pointer(dest, oid, total, nfiles), stale


def log_run_artifacts(
    tracker: RunHost, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> dict[str, dict[str, Any]]:
    """Log the contents of a local folder under `artifact_path`; returns the pointers written.

    Under a named path the folder becomes one DVC folder object (a `.dir` manifest). At the
    run's root each top-level file and folder gets its own pointer.
    """
    base = normalize_artifact_path(artifact_path)
    files = list(walk_local_dir(local_dir))  # validates every path and link first
    if not files:
        return {}  # MLflow logs nothing for an empty folder either
    store = store_for(tracker)
    entries = store.add_files(files)
    current = read_pointers(tracker, run_id)
    changes: dict[str, dict[str, Any] | None] = {}
    if base:
        pointer, stale = _merge_folder(store, current, base, entries)
        changes.update(dict.fromkeys(stale))
        changes[base] = pointer
    else:
        groups: dict[str, list[ManifestEntry]] = {}
        for entry in entries:
            head, sep, rest = entry.relpath.partition("/")
            if sep:
                groups.setdefault(head, []).append(ManifestEntry(rest, entry.md5, entry.size))
            else:
                changes[head] = file_pointer(head, entry.md5, entry.size or 0)
        for head, group in groups.items():
            pointer, stale = _merge_folder(store, current, head, group)
            changes.update(dict.fromkeys(stale))
            changes[head] = pointer
    if changes:
        tracker.record_artifacts(run_id, changes)
    return {k: v for k, v in changes.items() if v is not None}


def list_artifacts(tracker: RunHost, run_id: str, path: str | None = None) -> list[FileInfo]:
    """The direct children of artifact folder `path` of the run (MLflow's `list_artifacts`)."""
    pointers = read_pointers(tracker, run_id)
    store = store_for(tracker)
    try:
        return list_children(pointers, path, manifest_loader(store))
    except ResourceDoesNotExist as e:
        raise ResourceDoesNotExist(f"run {run_id}, artifact {path or '/'!r}: {e.message}") from e


def naming_loader(store: ArtifactStore, where: str) -> ManifestLoader:
    """A manifest loader whose remote errors name the run and artifact being read."""
    load = manifest_loader(store)

    def named(oid: str) -> list[ManifestEntry]:
        try:
            return load(oid)  # type: ignore[no-any-return]
        except (ResourceDoesNotExist, RemoteError) as e:
            raise type(e)(f"{where}: {e.message}") from e

    return named


def _copy_out(src: str, dst: Path) -> None:
    # A plain copy (sendfile): the cache object is read-only, the user's copy is not.
    if dst.is_symlink():
        dst.unlink()  # replace a link that stays inside dst rather than write through it
    shutil.copyfile(src, dst)


def download_artifacts(
    tracker: RunHost, run_id: str, path: str | None = None, dst_path: str | os.PathLike[str] | None = None
) -> str:
    """Copy artifact `path` of the run (a file or folder; "" for all) under `dst_path`.

    Returns the local path (`dst_path/<path>`, MLflow's layout); `dst_path` defaults to a new
    temporary folder. Objects missing from the local cache are fetched from the remote.
    """
    rel = normalize_artifact_path(path)
    pointers = read_pointers(tracker, run_id)
    store = store_for(tracker)
    where = f"run {run_id}, artifact {rel or '/'!r}"
    files = require_files(pointers, run_id, rel, naming_loader(store, where))
    missing = {md5 for md5, _ in files.values() if not store.exists(md5)}
    if missing:
        try:
            store.fetch(missing, deep=False)
        except (ResourceDoesNotExist, RemoteError) as e:
            raise type(e)(f"{where}: {e.message}") from e
    dst_root = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="gitml-artifacts-"))
    dst_root.mkdir(parents=True, exist_ok=True)
    made: set[Path] = set()
    for sub, (md5, _) in sorted(files.items()):
        target = confined_path(dst_root, join_artifact_path(rel, sub))
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
            # Re-check after creating parents: a link planted meanwhile must not win.
            target = confined_path(dst_root, join_artifact_path(rel, sub))
        _copy_out(store.object_path(md5), target)
    return str(confined_path(dst_root, rel))


def dict_bytes(dictionary: Any, artifact_file: str) -> bytes:
    """A dict (any JSON/YAML-able value) as the bytes of JSON, or YAML for `.yaml`/`.yml` files."""
    if artifact_file.lower().endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_dump(dictionary, default_flow_style=False, sort_keys=False, allow_unicode=True).encode()
    return (json.dumps(dictionary, indent=2) + "\n").encode()


def _log_via_temp(tracker: RunHost, run_id: str, write: Callable[[str], object], artifact_file: str) -> dict[str, Any]:
    dest = normalize_artifact_path(artifact_file, allow_root=False)
    with tempfile.TemporaryDirectory(prefix="gitml-") as tmp:
        local = os.path.join(tmp, dest.rsplit("/", 1)[-1])
        write(local)
        check_local_file(local)
        md5, size = store_for(tracker).add_file(local)
    pointer = file_pointer(dest, md5, size)
    tracker.record_artifacts(run_id, {dest: pointer})
    return pointer


def log_run_figure(
    tracker: RunHost, run_id: str, figure: Any, artifact_file: str, save_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Save a matplotlib or plotly figure as artifact file `artifact_file` of the run."""
    from gitml.artifacts.media import save_figure

    return _log_via_temp(tracker, run_id, lambda local: save_figure(figure, local, save_kwargs), artifact_file)


def log_run_image(tracker: RunHost, run_id: str, image: Any, artifact_file: str) -> dict[str, Any]:
    """Save a numpy array or Pillow image as artifact file `artifact_file` of the run."""
    from gitml.artifacts.media import save_image

    return _log_via_temp(tracker, run_id, lambda local: save_image(image, local), artifact_file)


def log_run_step_image(
    tracker: RunHost, run_id: str, image: Any, key: str, step: int, timestamp: int
) -> list[str]:
    """Log a step-indexed image (MLflow's `log_image(key=, step=)`): the PNG and its WebP
    preview under `images/` (see `media`), in one commit; returns their artifact paths."""
    from gitml.artifacts.media import save_step_image, step_image_names

    image_file, preview_file = step_image_names(key, step, timestamp)
    with tempfile.TemporaryDirectory(prefix="gitml-") as tmp:
        folder = Path(tmp, "images")
        folder.mkdir()
        save_step_image(image, str(Path(tmp, image_file)), str(Path(tmp, preview_file)))
        log_run_artifacts(tracker, run_id, folder, "images")
    return [image_file, preview_file]


# Longer names some callers use for the tracker-level functions.
list_run_artifacts = list_artifacts
download_run_artifacts = download_artifacts
