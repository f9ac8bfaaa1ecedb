"""`gitml push / pull / sync` as one library call: the metadata branch, registry tags, and the
artifact bytes of the runs that moved (when an artifact remote is configured); and autopush,
the same push after a flush that ended a run, when `gitml.autopush` is on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitml.registry.reconcile import is_registry_tag, reconcile_tags
from gitml.store import sync as branch_sync
from gitml.tracking.branch_rules import BRANCH_RULES
from gitml.tracking.tracker import Tracker, get_tracker

if TYPE_CHECKING:
    from gitml.artifacts.odb import TransferSummary

__all__ = ["Shared", "autopush", "install_autopush", "pull", "push", "sync"]


@dataclass(frozen=True)
class Shared:
    """What a push, pull or sync did: the branch and tags (`result`) and artifact transfers."""

    result: branch_sync.SyncResult
    artifacts_pushed: TransferSummary | None = None  # None when no artifact remote is set
    artifacts_pulled: TransferSummary | None = None


def _moved_runs(moved: branch_sync.Moved) -> list[str]:
    return [*moved.runs_added, *moved.runs_updated]


def _artifacts(root: Any, run_ids: list[str], direction: str) -> Any:
    if not run_ids:
        return None
    tracker = get_tracker(root)
    try:
        from gitml.artifacts.runs import has_artifact_remote, pull_artifacts, push_artifacts
    except ImportError:  # the artifacts extra is not installed: the branch alone moves
        return None
    if not has_artifact_remote(tracker):
        return None
    move = push_artifacts if direction == "push" else pull_artifacts
    return move(tracker, run_ids)


def _tags() -> dict[str, Any]:
    # The branch's meaning (merge rules, run folders) and the registry's tags, for the store.
    return {"rules": BRANCH_RULES, "tag_filter": is_registry_tag, "reconcile": reconcile_tags}


def _open(path: str | os.PathLike[str] | None) -> tuple[Any, Any]:
    repo, config = branch_sync.open_repo(path)
    get_tracker(repo.root).flush()  # what this process logged goes too
    return repo, config


def pull(
    path: str | os.PathLike[str] | None = None, remote: str | None = None, allow_purge: bool = False
) -> Shared:
    """Fetch the remote's runs and registry tags and merge them in; fetch their artifacts.

    Runs deleted permanently upstream are removed here too and reported; many of them (see
    `gitml.store.sync.PURGE_MAX_RUNS`) need `allow_purge`."""
    repo, config = _open(path)
    try:
        result = branch_sync.pull(
            repo,
            remote,
            rules=BRANCH_RULES,
            config=config,
            tag_filter=_tags()["tag_filter"],
            allow_purge=allow_purge,
        )
    finally:
        repo.close()
    return Shared(result, artifacts_pulled=_artifacts(repo.root, _moved_runs(result.pulled), "pull"))


def push(
    path: str | os.PathLike[str] | None = None, remote: str | None = None, allow_drop: bool = False
) -> Shared:
    """Push runs and registry tags (merging the remote's first, retrying until it lands),
    then the artifacts of the runs pushed."""
    repo, config = _open(path)
    try:
        result = branch_sync.push(repo, remote, config=config, allow_drop=allow_drop, **_tags())
    finally:
        repo.close()
    pulled = _artifacts(repo.root, _moved_runs(result.pulled), "pull")
    return Shared(result, _artifacts(repo.root, _moved_runs(result.pushed), "push"), pulled)


def sync(
    path: str | os.PathLike[str] | None = None, remote: str | None = None, allow_purge: bool = False
) -> Shared:
    """Pull then push; artifacts move both ways for the runs that moved."""
    repo, config = _open(path)
    try:
        result = branch_sync.sync(repo, remote, config=config, allow_purge=allow_purge, **_tags())
    finally:
        repo.close()
    pulled = _artifacts(repo.root, _moved_runs(result.pulled), "pull")
    return Shared(result, _artifacts(repo.root, _moved_runs(result.pushed), "push"), pulled)


def autopush(tracker: Tracker) -> None:
    """Push the branch and registry tags of `tracker`'s repository (the artifacts stay local)."""
    branch_sync.push(tracker.repo, remote=tracker.config.remote, config=tracker.config, **_tags())


def install_autopush(tracker: Tracker) -> Tracker:
    """Make `tracker` push after each flush that ends a run, when its config turns autopush on."""
    if tracker.config.autopush and tracker.autopush is None:
        tracker.autopush = autopush
    return tracker
