"""Runs' artifacts: the store of a tracker, pointers read from the branch, push, pull, status, gc."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from gitml import constants as C
from gitml.artifacts.host import RunHost
from gitml.artifacts.odb import ArtifactStore, StatusResult, TransferSummary
from gitml.artifacts.pointers import ManifestLoader, pointer_oids, validate_pointer
from gitml.exceptions import CorruptMetadata
from gitml.store.bounded import load_json

__all__ = [
    "artifact_status",
    "gc_artifacts",
    "has_artifact_remote",
    "manifest_loader",
    "pull_artifacts",
    "push_artifacts",
    "read_pointers",
    "run_pointers",
    "store_for",
]

_STORES: weakref.WeakKeyDictionary[RunHost, ArtifactStore] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def _remote_setting(tracker: RunHost) -> str | None:
    # GITML_ARTIFACT_REMOTE, else `git config gitml.artifactRemote`: resolved in gitml.config.
    configured = tracker.config.artifact_remote
    return str(configured) if configured else None


def store_for(tracker: RunHost) -> ArtifactStore:
    """The artifact store of a tracker's repository (one per tracker)."""
    with _STORES_LOCK:
        store = _STORES.get(tracker)
        if store is None:
            store = ArtifactStore(tracker.root, tracker.repo.state_dir, remote=_remote_setting(tracker))
            _STORES[tracker] = store
        return store


def manifest_loader(store: ArtifactStore, remote: str | None = None) -> ManifestLoader:
    """A loader of folder manifests for the pointer views, memoised for one operation."""
    memo: dict[str, Any] = {}

    def load(oid: str) -> Any:
        if oid not in memo:
            memo[oid] = store.read_manifest(oid, remote=remote)
        return memo[oid]

    return load


def read_pointers(tracker: RunHost, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's validated artifact pointers {artifact path: pointer}."""
    raw = tracker.read_artifacts(run_id)
    return {key: validate_pointer(key, value) for key, value in raw.items()}


def _decode(path: str, data: bytes) -> Any:
    return load_json(data, path)  # bounded: size, depth, 64-bit integers


def run_pointers(
    tracker: RunHost,
    run_ids: Iterable[str] | None = None,
    include_deleted: bool = True,
    bad: dict[str, str] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{run_id: pointers} for the given runs (default: every run on the branch with artifacts).

    A run whose pointers fail their checks raises CorruptMetadata, or with `bad` is left
    out and recorded there ({run_id: why}): one hostile run must not stop a pull of the rest.
    """
    tracker.flush()
    repo = tracker.repo
    tree = repo.tree_of(repo.tip())
    ids = tracker.run_ids(tree) if run_ids is None else list(run_ids)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for run_id in ids:
        base = C.run_dir(run_id)
        data = repo.read_file(tree, f"{base}/{C.RUN_ARTIFACTS}")
        if not data:
            continue
        if not include_deleted:
            meta = repo.read_file(tree, f"{base}/{C.RUN_META}")
            if meta and _decode(f"{base}/{C.RUN_META}", meta).get("lifecycle_stage") == "deleted":
                continue
        try:
            pointers = _decode(f"{base}/{C.RUN_ARTIFACTS}", data)
            if not isinstance(pointers, dict):
                raise CorruptMetadata(f"{base}/{C.RUN_ARTIFACTS} is not a mapping")
            out[run_id] = {k: validate_pointer(k, v) for k, v in pointers.items()}
        except CorruptMetadata as e:
            if bad is None:
                raise
            bad[run_id] = e.message
    return out


def _oids(tracker: RunHost, run_ids: Iterable[str] | None, bad: dict[str, str]) -> set[str]:
    oids: set[str] = set()
    for pointers in run_pointers(tracker, run_ids, bad=bad).values():
        oids |= pointer_oids(pointers.values())
    return oids


def _with_skipped(summary: TransferSummary, bad: dict[str, str]) -> TransferSummary:
    return dataclasses.replace(summary, skipped_runs=frozenset(bad)) if bad else summary


def has_artifact_remote(tracker: RunHost) -> bool:
    """Whether a remote is configured (DVC's default remote or gitml.artifactRemote).

    `gitml push` / `gitml pull` move artifacts only then; the embedded folder remote
    under `.git/` is not one worth pushing to after every sync.
    """
    return store_for(tracker).has_configured_remote()


def push_artifacts(
    tracker: RunHost, run_ids: Iterable[str] | None = None, remote: str | None = None, jobs: int | None = None
) -> TransferSummary:
    """Push the artifacts of `run_ids` (default: every run) to the remote; returns what moved."""
    bad: dict[str, str] = {}
    return _with_skipped(store_for(tracker).push(_oids(tracker, run_ids, bad), remote=remote, jobs=jobs), bad)


def pull_artifacts(
    tracker: RunHost, run_ids: Iterable[str] | None = None, remote: str | None = None, jobs: int | None = None
) -> TransferSummary:
    """Fetch the artifacts of `run_ids` (default: every run) into the local cache.

    Objects the remote lacks come back in `failed` rather than raising, so one lost
    object does not stop the rest; runs whose pointers are malformed are skipped and named
    in `skipped_runs`.
    """
    bad: dict[str, str] = {}
    summary = store_for(tracker).fetch(_oids(tracker, run_ids, bad), remote=remote, jobs=jobs, strict=False)
    return _with_skipped(summary, bad)


def artifact_status(
    tracker: RunHost, run_ids: Iterable[str] | None = None, remote: str | None = None
) -> StatusResult:
    """Which objects of the runs' artifacts are local, remote, both or lost."""
    return store_for(tracker).status(_oids(tracker, run_ids, {}), remote=remote)


def gc_artifacts(tracker: RunHost, dry_run: bool = False, min_age_s: float = 0.0) -> list[str]:
    """Remove from the local cache gitml's objects that no live run names; returns their ids.

    Objects written or re-logged in the last `min_age_s` seconds stay: a run logging
    while gc runs writes its objects before its pointers land on the branch.

    Runs deleted (lifecycle `deleted`) do not keep their artifacts. In a DVC repository
    only objects gitml put into DVC's cache are candidates; DVC's own data is never touched.
    Remotes are left alone: they may be shared.
    """
    keep: set[str] = set()
    for pointers in run_pointers(tracker, include_deleted=False).values():
        keep |= pointer_oids(pointers.values())
    return store_for(tracker).gc(keep, dry_run=dry_run, min_age_s=min_age_s)
