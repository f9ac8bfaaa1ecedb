"""The SQLite query index under `.git/gitml/`: a disposable cache of the branch, kept by tree diffs.

Only run directories whose tree hash changed since the indexed commit are re-read, so a
search after one new run reads one run. A missing or corrupt index is rebuilt.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any

from gitml import constants as C
from gitml.entities import Metric, Run, RunData, RunInfo, ViewType
from gitml.escape import terminal
from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.store.objects import Entry, parse_tree
from gitml.store.repo import GitRepo
from gitml.store.trees import TreeReader
from gitml.tracking import layout
from gitml.tracking.inputs import decode_inputs
from gitml.tracking.search import compile_filter, compile_order_by

__all__ = ["RunIndex", "decode_page_token", "summarize_problems"]

log = logging.getLogger("gitml")

_SCHEMA_VERSION = "3"
_DDL = """
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(
  run_id TEXT PRIMARY KEY, tree TEXT, experiment_id TEXT, run_name TEXT, status TEXT,
  start_time INTEGER, end_time INTEGER, lifecycle_stage TEXT, user_id TEXT,
  artifact_uri TEXT, source_commit TEXT);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id, lifecycle_stage, start_time);
CREATE INDEX IF NOT EXISTS runs_by_commit ON runs(source_commit);
CREATE TABLE IF NOT EXISTS params(run_id TEXT, key TEXT, value TEXT, PRIMARY KEY(run_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS params_by_key ON params(key, value);
CREATE TABLE IF NOT EXISTS tags(run_id TEXT, key TEXT, value TEXT, PRIMARY KEY(run_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_key ON tags(key, value);
CREATE TABLE IF NOT EXISTS metrics(
  run_id TEXT, key TEXT, value REAL, is_nan INTEGER, timestamp INTEGER, step INTEGER,
  PRIMARY KEY(run_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metrics_by_key ON metrics(key, value);
"""


def summarize_problems(problems: dict[str, str], names: list[str] | None = None, limit: int = 5) -> str:
    """One line for many unreadable items: how many, the first few with why, and where to look."""
    keys = sorted(names if names is not None else problems)
    shown = terminal("; ".join(f"{k}: {problems.get(k, '?')}" for k in keys[:limit]))
    more = f"; and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{len(keys)} run(s) skipped as unreadable (the rest stay readable): {shown}{more}"


_SECONDARY = ("runs_by_experiment", "runs_by_commit", "params_by_key", "tags_by_key", "metrics_by_key")


class RunIndex:
    """Runs, params, tags and latest metrics in SQLite, answering MLflow's search."""

    def __init__(self, repo: GitRepo, path: Path) -> None:
        self.repo = repo
        self.path = path
        self._lock = threading.Lock()
        self._db = self._open()
        self.problems: dict[str, str] = {}  # run_id -> why it could not be indexed
        self._runs: dict[str, tuple[str, Run]] = {}  # run_id -> (tree, Run)
        self._bad_names: list[str] = []  # folders under runs/ that are not run ids (this sync)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = self._connect()
            if self._get(db, "schema") != _SCHEMA_VERSION:
                raise sqlite3.DatabaseError("old index schema")
            return db
        except sqlite3.DatabaseError:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            db = self._connect()
            db.execute("INSERT OR REPLACE INTO state VALUES('schema', ?)", (_SCHEMA_VERSION,))
            db.commit()
            return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-65536")
        db.execute("PRAGMA case_sensitive_like=ON")  # MLflow's LIKE is case-sensitive; ILIKE is not
        db.executescript(_DDL)
        return db

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- keeping up with the branch ------------------------------------------------------
    def sync(self, tip: str | None) -> None:
        """Bring the index to `tip` by re-reading only the run directories that changed."""
        with self._lock:
            try:
                self._sync(tip)
            except sqlite3.DatabaseError as e:
                log.warning("gitml: rebuilding the query index (%s)", e)
                self._db.close()
                self.path.unlink(missing_ok=True)
                self._db = self._open()
                self._sync(tip)

    def _sync(self, tip: str | None) -> None:
        db = self._db
        if self._get(db, "commit") == (tip or ""):
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            indexed = self._get(db, "commit") or ""
            if indexed == (tip or ""):
                db.execute("COMMIT")
                return
            old_tree = self._runs_tree(self.repo.tree_of(indexed) if indexed else None)
            new_tree = self._runs_tree(self.repo.tree_of(tip) if tip else None)
            if old_tree is not None and indexed and not self._known(indexed):
                old_tree = None
            changed, removed = self._diff(old_tree, new_tree, full=old_tree is None)
            bulk = len(changed) > 2000
            if old_tree is None:
                for table in ("runs", "params", "tags", "metrics"):
                    db.execute(f"DELETE FROM {table}")
            if bulk:  # building secondary indexes once is far cheaper than row by row
                for name in _SECONDARY:
                    db.execute(f"DROP INDEX IF EXISTS {name}")
            self._apply(changed, removed)
            if bulk:
                for stmt in _DDL.split(";"):
                    if "CREATE INDEX" in stmt:
                        db.execute(stmt)
                # Statistics let SQLite start from the most selective filter (10x at 100,000 runs).
                db.execute("ANALYZE")
            db.execute("INSERT OR REPLACE INTO state VALUES('commit', ?)", (tip or "",))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _known(self, commit: str) -> bool:
        try:
            self.repo.tree_of(commit)
            return True
        except Exception:
            return False

    def _runs_tree(self, root: str | None) -> str | None:
        return layout.RUN_DIRS.root_tree(self.repo, root)

    def _diff(self, old: str | None, new: str | None, full: bool) -> tuple[dict[str, str], list[str]]:
        """Run dirs whose tree changed ({run_id: tree}) and run ids that disappeared."""
        changed: dict[str, str] = {}
        removed: list[str] = []
        diff = layout.RUN_DIRS.diff_roots(TreeReader(self.repo), None if full else old, new)
        for where in diff.misfiled:  # `..`, `x`, a run filed under the wrong prefix
            self.problems[where] = "not a run folder name"
            self._bad_names.append(where)
        for change in diff.changed:
            if change.after is None or not change.after.is_tree:
                removed.append(change.name)
            else:
                changed[change.name] = change.after.sha
        return changed, removed

    def _apply(self, changed: dict[str, str], removed: list[str]) -> None:
        db = self._db
        gone = list(changed) + removed
        for i in range(0, len(gone), 500):
            chunk = gone[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for table in ("runs", "params", "tags", "metrics"):
                db.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
        run_rows, param_rows, tag_rows, metric_rows = [], [], [], []
        skipped, self._bad_names = self._bad_names, []
        trees, blobs = self._prefetch(changed)
        for run_id, tree in changed.items():
            try:
                files = self._read_run(run_id, trees.get(tree) or self.repo.objects.read_tree(tree), blobs)
            except CorruptMetadata as e:
                self.problems[run_id] = e.message
                skipped.append(run_id)
                continue
            self.problems.pop(run_id, None)
            meta = files[C.RUN_META]
            source = meta.get("source") or {}
            run_rows.append((
                run_id, tree, meta["experiment_id"], meta.get("run_name"), meta["status"],
                meta.get("start_time"), meta.get("end_time"), meta["lifecycle_stage"],
                meta.get("user_id"), meta.get("artifact_uri") or f"runs:/{run_id}", source.get("commit"),
            ))  # fmt: skip
            param_rows += [(run_id, k, v) for k, v in files[C.RUN_PARAMS].items()]
            tag_rows += [(run_id, k, v) for k, v in files[C.RUN_TAGS].items()]
            for k, m in files[C.RUN_METRICS].items():
                value = layout.decode_value(m["value"])
                nan = value != value
                metric_rows.append((run_id, k, None if nan else value, int(nan), m["timestamp"], m["step"]))
        db.executemany("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)", run_rows)
        db.executemany("INSERT OR REPLACE INTO params VALUES (?,?,?)", param_rows)
        db.executemany("INSERT OR REPLACE INTO tags VALUES (?,?,?)", tag_rows)
        db.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?,?)", metric_rows)
        for run_id in removed:
            self.problems.pop(run_id, None)
        if skipped:
            log.warning("gitml: %s", summarize_problems(self.problems, skipped))

    _FILES = (C.RUN_META, C.RUN_PARAMS, C.RUN_TAGS, C.RUN_METRICS)

    def _prefetch(self, changed: dict[str, str]) -> tuple[dict[str, dict[str, Entry]], dict[str, bytes]]:
        """Read the run trees, then every file the index needs, in two pipelined batches."""
        if len(changed) < 20:
            return {}, {}
        objects = self.repo.objects
        trees = {sha: parse_tree(data) for sha, data in objects.read_many(list(changed.values())).items()}
        wanted = [entries[n].sha for entries in trees.values() for n in self._FILES if n in entries]
        return trees, objects.read_many(wanted)

    def _read_run(self, run_id: str, entries: dict[str, Entry], blobs: dict[str, bytes]) -> dict[str, Any]:
        base = C.run_dir(run_id)
        if C.RUN_META not in entries:
            raise CorruptMetadata(f"{base} has no {C.RUN_META}")
        out: dict[str, Any] = {}
        for name in self._FILES:
            entry = entries.get(name)
            if entry is None:
                out[name] = {}
                continue
            data = blobs.get(entry.sha)
            if data is None:
                data = self.repo.objects.read_blob(entry.sha)
            out[name] = layout.decode(f"{base}/{name}", data)
        return out

    # -- queries -------------------------------------------------------------------------
    def run_ids_of_experiment(self, experiment_id: str) -> list[str]:
        """Every run of an experiment, deleted ones too."""
        rows = self._db.execute("SELECT run_id FROM runs WHERE experiment_id = ?", (experiment_id,))
        return [r[0] for r in rows]

    def runs_at_commit(self, commit: str) -> list[str]:
        """Runs whose source commit is `commit`, newest first."""
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE source_commit = ? ORDER BY start_time DESC", (commit,)
        )
        return [r[0] for r in rows]

    def search(
        self,
        experiment_ids: list[str] | None,
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """MLflow's search_runs: a page of runs and the token of the next page (or None)."""
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 0 <= max_results <= 50_000_000:
            raise InvalidParameterValue(f"invalid max_results {max_results!r}: expected an integer from 0")
        offset = _decode_token(page_token)
        where = compile_filter(filter_string)
        joins, terms, order_params = compile_order_by(order_by)
        if max_results == 0:
            return [], None  # MLflow answers max_results=0 with no runs (the filter still checked)
        stages = ViewType.stages(run_view_type)
        clauses = [f"r.lifecycle_stage IN ({','.join('?' * len(stages))})", where.sql]
        params: list[Any] = [*order_params, *stages, *where.params]
        if experiment_ids is not None:
            ids = [str(e) for e in experiment_ids]
            if not ids:
                return [], None
            clauses.append(f"r.experiment_id IN ({','.join('?' * len(ids))})")
            params += ids
        sql = (
            f"SELECT r.run_id, r.tree FROM runs r {' '.join(joins)} WHERE {' AND '.join(clauses)} "
            f"ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?"
        )
        with self._lock:
            try:
                rows = self._db.execute(sql, [*params, max_results + 1, offset]).fetchall()
            except (sqlite3.OperationalError, OverflowError) as e:  # SQLite's expression limits
                raise InvalidParameterValue(f"invalid filter: too complex to run ({e})") from e
            more = len(rows) > max_results
            runs = self._cached_load(rows[:max_results])
        token = _encode_token(offset + max_results) if more else None
        return runs, token

    def _cached_load(self, rows: list[tuple[str, str]]) -> list[Run]:
        # A run's tree hash names its whole content: a Run built once serves every later
        # search until the run changes, so warm searches skip rebuilding thousands of objects.
        cache = self._runs
        missing = [run_id for run_id, tree in rows if (cache.get(run_id) or ("",))[0] != tree]
        if missing:
            trees = dict(rows)
            if len(cache) > 100_000:
                cache.clear()
            for run in self.load(missing):
                tree = trees[run.info.run_id]
                base = f"{C.run_dir(run.info.run_id)}/{C.RUN_INPUTS}"
                inputs = decode_inputs(base, self.repo.read_file(tree, C.RUN_INPUTS))
                cache[run.info.run_id] = (tree, Run(run.info, run.data, inputs))
        return [_own_copy(cache[run_id][1]) for run_id, _ in rows if run_id in cache]

    def load(self, run_ids: list[str]) -> list[Run]:
        """Build Run entities from the index, in the order given."""
        if not run_ids:
            return []
        db = self._db
        infos: dict[str, Any] = {}
        params: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        tags: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        metrics: dict[str, list[Metric]] = {r: [] for r in run_ids}
        for i in range(0, len(run_ids), 900):
            chunk = run_ids[i : i + 900]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                "SELECT run_id, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, "
                f"artifact_uri, run_name FROM runs WHERE run_id IN ({marks})",
                chunk,
            ):
                infos[row[0]] = RunInfo(*row)
            for run_id, k, v in db.execute(f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", chunk):
                params[run_id][k] = v
            for run_id, k, v in db.execute(f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", chunk):
                tags[run_id][k] = v
            for run_id, k, v, nan, t, s in db.execute(
                f"SELECT run_id, key, value, is_nan, timestamp, step FROM metrics WHERE run_id IN ({marks})", chunk
            ):
                metrics[run_id].append(Metric(k, math.nan if nan else v, t, s))
        out = []
        for run_id in run_ids:
            info = infos.get(run_id)
            if info is None:
                continue
            objs = tuple(sorted(metrics[run_id], key=lambda m: m.key))
            data = RunData({m.key: m.value for m in objs}, params[run_id], tags[run_id], objs)
            out.append(Run(info, data))
        return out

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    return decode_page_token(token)


def decode_page_token(token: str) -> int:
    """The offset a page token names; InvalidParameterValue for anything else (bounded: a
    short token, a JSON object, an offset that fits 64 bits)."""
    try:
        if not isinstance(token, str) or len(token) > 200:
            raise ValueError("too long")
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 2**62:
            raise ValueError(offset)
        return offset
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError, UnicodeError) as e:
        raise InvalidParameterValue(f"invalid page_token {str(token)[:60]!r}") from e


def _own_copy(run: Run) -> Run:
    # Callers may change the dicts of what they get (MLflow hands out new objects every
    # time); the cached Run must not change with them. Info and metric objects are frozen.
    d = run.data
    data = RunData(dict(d.metrics), dict(d.params), dict(d.tags), d.metric_objs)
    return Run(run.info, data, run.inputs)
