"""One repository's tracking state in this process: run writers, flushing, recovery (reads: run_reads.py).

Writers buffer and journal; a background thread flushes every `flush_interval_s`, and
`end_run`, reads and interpreter exit flush too. One commit carries every dirty run.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.config import Config, resolve_config
from gitml.entities import LifecycleStage, Run, RunStatus
from gitml.exceptions import (
    GitMLError,
    InvalidParameterValue,
    InvalidState,
    ResourceDoesNotExist,
)
from gitml.store.journal import Journal
from gitml.store.repo import GitRepo, find_repo_root
from gitml.tracking import layout
from gitml.tracking.experiments import ExperimentStore, now_ms
from gitml.tracking.run_reads import RunReads, run_from_files
from gitml.tracking.validation import check_run_id, check_timestamp
from gitml.tracking.writer import Pending, RunWriter, merge_run_files, new_token

if TYPE_CHECKING:
    from gitml.tracking.index import RunIndex

__all__ = ["Tracker", "get_tracker", "local_tracking_uri", "reset_all", "run_from_files", "uri_to_root"]

log = logging.getLogger("gitml")

_TRACKERS: dict[Path, Tracker] = {}
_TRACKERS_LOCK = threading.Lock()


_SERVER_SCHEMES = ("http://", "https://", "databricks", "sqlite:", "postgresql", "mysql", "mssql", "uc:")
_warned: set[str] = set()


def local_tracking_uri(uri: str | os.PathLike[str] | None) -> str | None:
    """The local path a tracking URI names; None (the working directory's repo) for a server.

    MLflow scripts often set a server or database URI; gitml has neither, so it says so
    once and tracks into the repository instead, rather than stopping the script.
    """
    if uri is None:
        return None
    text = os.fspath(uri)
    if text.startswith(_SERVER_SCHEMES) or text == "databricks":
        if text not in _warned:
            _warned.add(text)
            log.warning(
                "gitml: tracking URI %s names a server or database; gitml tracks into the Git "
                "repository of the working directory instead (share it with 'gitml push')",
                text,
            )
        return None
    if text.startswith("file://"):
        return text[len("file://") :]
    if text.startswith("file:"):
        return text[len("file:") :]
    if "://" in text:
        raise InvalidParameterValue(
            f"tracking URI {text!r} is not a local Git repository path; gitml tracks into a repository "
            "on disk (share it with 'gitml push' to any Git remote)"
        )
    return text


def uri_to_root(uri: str | os.PathLike[str] | None) -> Path:
    """A tracking URI (a path, `file:` URI, or None for the working directory) to a repo root.

    A path that does not exist yet (MLflow's `./mlruns`) means the repository around it.
    """
    text = local_tracking_uri(uri)
    if text is None:
        return find_repo_root(None)
    path = Path(text).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return find_repo_root(path)


def get_tracker(tracking_uri: str | os.PathLike[str] | None = None) -> Tracker:
    """The process's Tracker for the repository at `tracking_uri` (default: the working dir's)."""
    root = uri_to_root(tracking_uri)
    with _TRACKERS_LOCK:
        tracker = _TRACKERS.get(root)
        if tracker is None:
            tracker = _TRACKERS[root] = Tracker(root, resolve_config(root))
        return tracker


def reset_all() -> None:
    """Flush and forget every Tracker (tests; a forked child)."""
    with _TRACKERS_LOCK:
        trackers = list(_TRACKERS.values())
        _TRACKERS.clear()
    for tracker in trackers:
        tracker.close()


class Tracker(RunReads):
    """Everything about one repository's runs and experiments, for this process."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        # Set by the fluent floor (gitml.fluent.sharing) when config.autopush is on: pushes
        # the branch and registry tags after a flush that ended a run.
        self.autopush: Callable[[Tracker], None] | None = None
        self.repo = GitRepo(root, config.branch)
        self.experiments = ExperimentStore(self.repo, self.format_changes)
        self.journal_dir = self.repo.state_dir / "journal"
        self._writers: dict[str, RunWriter] = {}
        self._started: dict[str, Run] = {}
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._in_flight: set[str] = set()  # runs whose writes a flush has taken, not yet committed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index: RunIndex | None = None
        self._recovered = False
        self._closed = False
        self._pid = os.getpid()
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            tracker = ref()
            if tracker is not None:
                tracker.close()

        atexit.register(close_at_exit)

    # -- the branch format ---------------------------------------------------------------
    def format_changes(self, tree: str) -> dict[str, bytes | None]:
        """Adds gitml.yaml to a commit on a branch that lacks it; refuses newer formats."""
        data = self.repo.read_file(tree, C.FORMAT_FILE)
        if data is None:
            return {C.FORMAT_FILE: layout.encode(C.FORMAT_FILE, {"format": C.FORMAT_VERSION, "created_by": "gitml"})}
        self._check_format(data)
        return {}

    def _check_format(self, data: bytes) -> None:
        version = layout.decode(C.FORMAT_FILE, data)["format"]
        if version > C.FORMAT_VERSION:
            raise InvalidState(
                f"the metadata branch '{self.repo.branch}' uses format {version}; this gitml reads "
                f"format {C.FORMAT_VERSION} and older: upgrade gitml"
            )

    def tree(self) -> str:
        """The tip's root tree, after checking the format version."""
        tree = self.repo.tree_of(self.repo.tip())
        data = self.repo.read_file(tree, C.FORMAT_FILE)
        if data is not None:
            self._check_format(data)
        return tree

    # -- writers and flushing ------------------------------------------------------------
    def _start_flusher(self) -> None:
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._flush_loop, name="gitml-flush", daemon=True)
            self._thread.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.config.flush_interval_s):
            try:
                self.flush()
            except Exception as e:  # the journal still holds everything: retry next time
                log.warning("gitml: background flush failed, will retry: %s", e)

    def _new_writer(self, run_id: str, params: dict[str, str]) -> RunWriter:
        token = new_token()
        journal = Journal(self.journal_dir / f"{run_id}-{token}.jsonl")
        writer = RunWriter(run_id, token, journal, params)
        self._writers[run_id] = writer
        self._start_flusher()
        return writer

    def writer(self, run_id: str) -> RunWriter:
        """This process's writer for a run, attaching to an existing run on first use."""
        with self._lock:
            writer = self._writers.get(run_id)
            if writer is not None:
                return writer
            check_run_id(run_id)
            self.recover()
            tree = self.tree()
            base = C.run_dir(run_id)
            meta_data = self.repo.read_file(tree, f"{base}/{C.RUN_META}")
            if meta_data is None:
                raise ResourceDoesNotExist(f"run '{run_id}' not found")
            meta = layout.decode(f"{base}/{C.RUN_META}", meta_data)
            if meta["lifecycle_stage"] == LifecycleStage.DELETED:
                raise InvalidState(f"run '{run_id}' is deleted: restore it before writing to it")
            params_data = self.repo.read_file(tree, f"{base}/{C.RUN_PARAMS}")
            params = layout.decode(f"{base}/{C.RUN_PARAMS}", params_data) if params_data else {}
            return self._new_writer(run_id, params)

    def flush(self, compact: tuple[str, ...] = ()) -> None:
        """Commit every pending write of this process in one commit."""
        with self._flush_lock:
            with self._lock:
                writers = [w for w in self._writers.values() if w.dirty or w.run_id in compact]
            if not writers:
                return
            for w in writers:
                if w.run_id in compact:
                    w.request_compaction()
            with self._lock:  # taken and marked in flight at once: a reader sees one or the other
                taken = [(w, w.take()) for w in writers]
                taken = [(w, p) for w, p in taken if not p.empty()]
                self._in_flight.update(w.run_id for w, _ in taken)
            if not taken:
                return

            def build(tree: str) -> dict[str, bytes | None]:
                changes = self.format_changes(tree)
                for w, p in taken:
                    changes.update(merge_run_files(self.repo, tree, w.run_id, w.token, p))
                return changes

            try:
                self.repo.commit(build, lambda: _flush_message(taken))
            except BaseException:
                with self._lock:
                    for w, p in taken:
                        w.give_back(p)
                    self._in_flight.clear()
                raise
            with self._lock:
                self._in_flight.clear()
                for w, _ in taken:
                    if w.ended and not w.dirty:
                        w.journal.close(delete=True)
                        self._writers.pop(w.run_id, None)
        if self.config.autopush and any(w.ended for w, _ in taken):
            self._autopush()

    def _autopush(self) -> None:
        if self.autopush is None:
            return
        try:
            self.autopush(self)
        except Exception as e:  # CI must not fail a training run over a push: the next push carries it
            log.warning("gitml: autopush failed (the next push will carry these runs): %s", e)

    def close(self) -> None:
        """Flush, end nothing, stop the flusher. Runs still active stay RUNNING (journaled)."""
        if self._closed or self._pid != os.getpid():
            return
        self._stop.set()
        try:
            self.flush()
        except Exception as e:
            log.warning("gitml: final flush failed; the journal keeps the data for recovery: %s", e)
        with self._lock:
            for w in self._writers.values():
                if not w.dirty and w.ended:
                    w.journal.close(delete=True)
                else:
                    w.journal.close()
            self._writers.clear()
        self.repo.close()
        self._closed = True

    # -- runs ----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        run_name: str | None,
        start_time: int | None,
        tags: dict[str, str],
        user_id: str | None,
        source: dict[str, Any],
    ) -> str:
        """Start a RUNNING run; it reaches the branch at its first flush."""
        self.recover()
        exp = self.experiments.get(experiment_id, self.tree())  # tree(): refuses newer formats
        if exp.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState(f"experiment {experiment_id} is deleted: restore it to add runs")
        run_id = uuid.uuid4().hex
        meta = {
            "run_id": run_id,
            "experiment_id": str(experiment_id),
            "run_name": run_name,
            "status": RunStatus.RUNNING,
            "start_time": check_timestamp(start_time, "start_time") if start_time is not None else now_ms(),
            "end_time": None,
            "lifecycle_stage": LifecycleStage.ACTIVE,
            "user_id": user_id,
            "artifact_uri": f"runs:/{run_id}",
            "source": source,
        }
        with self._lock:
            writer = self._new_writer(run_id, {})
            writer.set_meta(**meta)
            for k, v in tags.items():
                writer.set_tag(k, v)
        # Not committed here: the start reaches the branch with the run's first flush (or
        # its end), one commit per short run instead of two. The journal already holds it.
        self._started[run_id] = run_from_files(
            {C.RUN_META: meta, C.RUN_PARAMS: {}, C.RUN_TAGS: dict(tags), C.RUN_METRICS: {}}
        )
        return run_id

    def started_run(self, run_id: str) -> Run:
        """The Run entity of a run this process just started (without reading the branch)."""
        run = self._started.pop(run_id, None)
        return run if run is not None else self.get_run(run_id)

    def end_run(self, run_id: str, status: str = RunStatus.FINISHED, end_time: int | None = None) -> None:
        """Mark a run terminated and commit everything it logged, compacting its history."""
        RunStatus.from_string(status)
        writer = self.writer(run_id)
        staged_error: Exception | None = None
        if RunStatus.is_terminated(status):
            try:
                self._log_staged(run_id)
            except GitMLError as e:  # the run still ends; the folder stays for a retry
                staged_error = e
        writer.set_meta(
            status=status, end_time=check_timestamp(end_time, "end_time") if end_time is not None else now_ms()
        )
        if RunStatus.is_terminated(status):
            writer.ended = True
        self.flush(compact=(run_id,) if writer.ended else ())
        if staged_error is not None:
            raise staged_error

    def _log_staged(self, run_id: str) -> None:
        """Log what the script wrote into the run's get_artifact_uri() folder, then remove it."""
        if not (self.repo.state_dir / C.STAGING_DIR / run_id).is_dir():
            return  # the common case costs one stat
        from gitml.artifacts.staging import log_staged

        log_staged(self, run_id)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Change run info fields (run_name, status...) and commit."""
        self.writer(run_id).set_meta(**fields)
        self.flush()

    def set_lifecycle(self, run_id: str, stage: str) -> None:
        """Delete (restorably) or restore a run."""
        check_run_id(run_id)
        self.flush()
        path = f"{C.run_dir(run_id)}/{C.RUN_META}"

        def build(tree: str) -> dict[str, bytes | None]:
            data = self.repo.read_file(tree, path)
            if data is None:
                raise ResourceDoesNotExist(f"run '{run_id}' not found")
            meta = layout.decode(path, data)
            meta["lifecycle_stage"] = stage
            meta["deleted_time"] = now_ms() if stage == LifecycleStage.DELETED else None
            return {path: layout.encode(path, meta)}

        verb = "deleted" if stage == LifecycleStage.DELETED else "restored"
        self.repo.commit(build, f"run {run_id} {verb}")

    def purge_run(self, run_id: str) -> None:
        """Remove a run from the branch tip (history keeps it)."""
        check_run_id(run_id)
        self.flush()
        with self._lock:
            w = self._writers.pop(run_id, None)
            if w is not None:
                w.journal.close(delete=True)

        def build(tree: str) -> dict[str, bytes | None]:
            if self.repo.lookup(tree, C.run_dir(run_id)) is None:
                raise ResourceDoesNotExist(f"run '{run_id}' not found")
            changes: dict[str, bytes | None] = {C.run_dir(run_id): None}
            changes.update(self._tombstones(tree, [run_id], {}))
            return changes

        self.repo.commit(build, f"run {run_id} permanently deleted")

    def purge_experiment(self, experiment_id: str) -> None:
        """Remove an experiment and all its runs from the branch tip."""
        if str(experiment_id) == C.DEFAULT_EXPERIMENT_ID:
            raise InvalidState("the Default experiment (id 0) cannot be deleted")
        self.flush()
        run_ids = self.index().run_ids_of_experiment(str(experiment_id))

        def build(tree: str) -> dict[str, bytes | None]:
            if self.repo.lookup(tree, C.experiment_dir(str(experiment_id))) is None:
                raise ResourceDoesNotExist(f"no experiment with id {experiment_id!r}")
            exp = self.experiments.get(str(experiment_id), tree)
            changes: dict[str, bytes | None] = {C.experiment_dir(str(experiment_id)): None}
            changes.update({C.run_dir(r): None for r in run_ids})
            changes.update(self._tombstones(tree, run_ids, {exp.experiment_id: exp.creation_time}))
            return changes

        self.repo.commit(build, f"experiment {experiment_id} permanently deleted with {len(run_ids)} runs")

    def _tombstones(
        self, tree: str, run_ids: list[str], experiments: dict[str, int | None]
    ) -> dict[str, bytes | None]:
        """Record permanent deletions in purged.json, which merges with other clones apply."""
        data = self.repo.read_file(tree, C.PURGED_FILE)
        purged = layout.decode(C.PURGED_FILE, data) if data else {}
        stamp = now_ms()
        purged.setdefault("runs", {}).update({r: stamp for r in run_ids})
        purged.setdefault("experiments", {}).update(experiments)
        return {C.PURGED_FILE: layout.encode(C.PURGED_FILE, purged)}

    # -- reading runs --------------------------------------------------------------------
    def _flush_if_dirty(self, run_id: str | None = None) -> None:
        # Reads see this process's writes: pending ones are flushed first, and writes a flush
        # (the background one, say) has taken but not yet committed are waited for; reading
        # the branch in that window would see neither, and a run just created would be "not found".
        with self._lock:
            if run_id is None:
                dirty = bool(self._in_flight) or any(w.dirty for w in self._writers.values())
            else:
                writer = self._writers.get(run_id)
                dirty = run_id in self._in_flight or (writer is not None and writer.dirty)
        if dirty:
            self.flush()

    def record_artifacts(self, run_id: str, pointers: dict[str, dict[str, Any] | None]) -> None:
        """Merge artifact pointers into the run's artifacts.json and commit at once."""

        check_run_id(run_id)
        path = f"{C.run_dir(run_id)}/{C.RUN_ARTIFACTS}"

        def build(tree: str) -> dict[str, bytes | None]:
            if self.repo.lookup(tree, f"{C.run_dir(run_id)}/{C.RUN_META}") is None:
                raise ResourceDoesNotExist(f"run '{run_id}' not found")
            data = self.repo.read_file(tree, path)
            current = layout.decode(path, data) if data else {}
            for key, value in pointers.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            return {path: layout.encode(path, current)}

        self._flush_if_dirty(run_id)
        self.repo.commit(build, f"run {run_id} artifacts: {', '.join(sorted(pointers))[:200]}")

    def index(self) -> RunIndex:
        """The SQLite query index, brought up to date with the tip."""
        if self._index is None:
            from gitml.tracking.index import RunIndex

            self._index = RunIndex(self.repo, self.repo.state_dir / "index.sqlite")
        self._flush_if_dirty()
        self._index.sync(self.repo.tip())
        return self._index

    # -- crash recovery ------------------------------------------------------------------
    def recover(self, force: bool = False) -> list[str]:
        """Commit journals left by dead processes; their runs end KILLED. Returns run ids."""
        if self._recovered and not force:
            return []
        self._recovered = True
        from gitml.tracking.recovery import recover_orphans

        return recover_orphans(self)


def _flush_message(taken: list[tuple[RunWriter, Pending]]) -> str:
    parts = []
    for w, p in taken:
        status = p.meta.get("status")
        if status and status != RunStatus.RUNNING:
            latest: dict[str, float] = {}
            for k, v, _, _ in p.points:
                latest[k] = v
            shown = ", ".join(f"{k}={v:.4g}" for k, v in list(latest.items())[:3])
            parts.append(f"run {w.run_id[:8]} {status}" + (f": {shown}" if shown else ""))
        elif status == RunStatus.RUNNING and "start_time" in p.meta:
            parts.append(f"run {w.run_id[:8]} started")
        else:
            parts.append(f"run {w.run_id[:8]}: {len(p.points)} points")
    head = "; ".join(parts[:3]) + (f" (+{len(parts) - 3} runs)" if len(parts) > 3 else "")
    if len(taken) > 1:
        return head + "\n\n" + "\n".join(f"run {w.run_id}" for w, _ in taken)
    return head + f"\n\nrun {taken[0][0].run_id}"
