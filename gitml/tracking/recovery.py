"""Crash recovery: commit what a killed process left in its journal, mark its run KILLED, and
log what it wrote into its `get_artifact_uri()` staging folder, as `end_run` would have.

The journal is removed only once both are done: a recovery that fails half-way (the staging
folder could not be logged) is retried by the next one, and a second recovery of the same run
finds nothing left to do (the folder is removed once logged)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitml import constants as C
from gitml.entities import RunStatus
from gitml.store.journal import orphaned_journals, read_journal
from gitml.tracking import layout
from gitml.tracking.experiments import now_ms
from gitml.tracking.validation import check_run_id, is_run_id
from gitml.tracking.writer import Pending, merge_run_files

if TYPE_CHECKING:
    from gitml.tracking.tracker import Tracker

__all__ = ["recover_orphans"]

log = logging.getLogger("gitml")


def recover_orphans(tracker: Tracker) -> list[str]:
    """Recover every journal no live process holds; returns the run ids recovered."""
    recovered = []
    for path, fd in orphaned_journals(tracker.journal_dir):
        try:
            run_id, token = path.stem.rsplit("-", 1)
            check_run_id(run_id)
            committed = _recover_one(tracker, path, run_id, token)
            staged = _recover_staging(tracker, run_id)
            if committed or staged:  # only what reached the branch counts
                recovered.append(run_id)
            path.unlink(missing_ok=True)
        except Exception as e:  # one bad journal must not stop the others
            log.warning("gitml: could not recover journal %s: %s", path.name, e)
        finally:
            os.close(fd)
    for run_id in _left_staging(tracker):
        try:
            if _recover_staging(tracker, run_id, ended_only=True) and run_id not in recovered:
                recovered.append(run_id)
        except Exception as e:  # the folder stays for the next try
            log.warning("gitml: could not log the artifact folder of run %s: %s", run_id, e)
    return recovered


def _left_staging(tracker: Tracker) -> list[str]:
    """Runs with a staging folder and no journal: a run whose end could not log its folder
    (a link leaving it, a full disk), or one recovered before recovery logged folders."""
    root = tracker.repo.state_dir / C.STAGING_DIR
    try:
        names = sorted(p.name for p in root.iterdir())
    except OSError:
        return []  # the common case: no staging folder at all
    held = {p.name.split("-", 1)[0] for p in tracker.journal_dir.glob("*.jsonl")} if names else set()
    return [n for n in names if is_run_id(n) and n not in held]


def _recover_one(tracker: Tracker, path: Path, run_id: str, token: str) -> bool:
    """Replay the journal records the branch does not have yet (by the run's journal watermark);
    True when a commit was made."""
    repo = tracker.repo
    records = read_journal(path)
    meta_path = f"{C.run_dir(run_id)}/{C.RUN_META}"
    tree = tracker.tree()
    data = repo.read_file(tree, meta_path)
    committed = 0
    status = None
    if data is not None:
        meta = layout.decode(meta_path, data)
        committed = int((meta.get("journal") or {}).get(token, 0))
        status = meta.get("status")
    if committed >= len(records) and status is not None and RunStatus.is_terminated(status):
        return False  # a stale journal: every record is on the branch and the run has ended
    p = Pending()
    last_time = None
    for seq, rec in enumerate(records, 1):
        op = rec[0]
        if op == "m":
            last_time = rec[3]
            if seq > committed:
                p.points.append((rec[1], layout.decode_value(rec[2]), rec[3], rec[4]))
        elif op == "p":
            p.params[rec[1]] = rec[2]
        elif op == "t":
            p.tags[rec[1]] = rec[2]
            p.deleted_tags.discard(rec[1])
        elif op == "d":
            p.tags.pop(rec[1], None)
            p.deleted_tags.add(rec[1])
        elif op == "i" and seq > committed:
            p.meta.update(rec[1])
    p.seq = max(len(records), committed)  # the watermark never goes back
    final = p.meta.get("status", status)
    if final is None or not RunStatus.is_terminated(final):
        p.meta["status"] = RunStatus.KILLED
        p.meta["end_time"] = p.meta.get("end_time") or last_time or now_ms()
    p.compact = True
    if data is None and "run_id" not in p.meta:
        return False  # the journal never got as far as creating its run

    def build(tree: str) -> dict[str, bytes | None]:
        changes = tracker.format_changes(tree)
        changes.update(merge_run_files(repo, tree, run_id, token, p))
        return changes

    return repo.commit(build, f"run {run_id} recovered from journal: {p.meta.get('status', final)}") is not None


def _recover_staging(tracker: Tracker, run_id: str, ended_only: bool = False) -> bool:
    """Log the run's staging folder (files the script wrote into `get_artifact_uri()`), then
    remove it; True when something was logged. A run that never reached the branch keeps its
    folder (there is no run to log it to); with `ended_only`, so does a run not ended there."""
    if not (tracker.repo.state_dir / C.STAGING_DIR / run_id).is_dir():
        return False  # the common case costs one stat
    meta_path = f"{C.run_dir(run_id)}/{C.RUN_META}"
    data = tracker.repo.read_file(tracker.tree(), meta_path)
    if data is None:
        return False
    if ended_only and not RunStatus.is_terminated(layout.decode(meta_path, data).get("status") or ""):
        return False
    from gitml.artifacts.staging import log_staged

    return bool(log_staged(tracker, run_id))
