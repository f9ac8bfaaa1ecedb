"""A run's pending writes: buffered in memory, journaled to disk, merged into the branch on flush.

`log_metric` costs a dict update, a list append and one write(2) to the journal; the
branch sees the points at the next flush, as one new immutable history chunk.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.exceptions import InvalidParameterValue
from gitml.store.journal import Journal
from gitml.tracking import layout
from gitml.tracking.validation import (
    check_key,
    check_metric,
    check_param_value,
    check_tag_value,
    check_timestamp,
)

if TYPE_CHECKING:
    from gitml.store.repo import GitRepo

__all__ = ["Pending", "RunWriter", "merge_run_files"]

Point = tuple[str, float, int, int]  # key, value, timestamp ms, step
_QUOTED: dict[str, str] = {}  # metric key -> its JSON string, for journal lines
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class Pending:
    """What one flush takes from a writer (and gives back if the commit fails)."""

    points: list[Point] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    deleted_tags: set[str] = field(default_factory=set)
    meta: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    compact: bool = False

    def empty(self) -> bool:
        return not (self.points or self.params or self.tags or self.deleted_tags or self.meta or self.compact)

    def merge_back(self, newer: Pending) -> None:
        """Put a failed flush back in front of what was logged since."""
        self.points.extend(newer.points)
        self.params.update(newer.params)
        for k in newer.deleted_tags:
            self.tags.pop(k, None)
        self.deleted_tags = (self.deleted_tags - set(newer.tags)) | newer.deleted_tags
        self.tags.update(newer.tags)
        self.meta.update(newer.meta)
        self.seq = max(self.seq, newer.seq)
        self.compact = self.compact or newer.compact


def _newer(a: tuple[float, int, int], b: tuple[float, int, int]) -> bool:
    """MLflow's "latest" metric value: highest step, then highest timestamp."""
    return (a[2], a[1]) >= (b[2], b[1])


class RunWriter:
    """The in-process owner of one run's unflushed writes. Thread-safe."""

    def __init__(self, run_id: str, token: str, journal: Journal, params: dict[str, str]) -> None:
        self.run_id = run_id
        self.token = token
        self.journal = journal
        self._lock = threading.Lock()
        self._pending = Pending()
        self._seq = 0
        self._params = dict(params)  # every param of the run: immutability is checked here
        self.ended = False

    @property
    def dirty(self) -> bool:
        return not self._pending.empty()

    def _record(self, record: list[Any]) -> None:
        self._seq += 1
        self._pending.seq = self._seq
        self.journal.append(record)

    def log_metric(self, key: str, value: Any, timestamp: int, step: Any) -> None:
        """Buffer one point (a few microseconds: the journal line is formatted by hand)."""
        check_key(key)
        number, step_int = check_metric(key, value, step)
        if not _INT64_MIN <= timestamp <= _INT64_MAX:  # what every reader and SQLite can hold
            timestamp = check_timestamp(timestamp, f"metric '{key}' timestamp")
        quoted = _QUOTED.get(key)
        if quoted is None:
            quoted = _QUOTED[key] = json.dumps(key, ensure_ascii=False)
        shown = repr(number) if math.isfinite(number) else json.dumps(layout.encode_value(number))
        line = f'["m",{quoted},{shown},{int(timestamp)},{step_int}]\n'
        with self._lock:
            self._seq += 1
            self._pending.seq = self._seq
            self.journal.append_line(line)
            self._pending.points.append((key, number, timestamp, step_int))

    def log_param(self, key: str, value: Any) -> None:
        """Buffer a param; the same value again is a no-op, another value is refused."""
        check_key(key, "param")
        text = check_param_value(key, value)
        with self._lock:
            old = self._params.get(key)
            if old is not None:
                if old == text:
                    return
                raise InvalidParameterValue(
                    f"changing param values is not allowed: param '{key}' was already logged "
                    f"with value {old!r} for run {self.run_id}; attempted new value {text!r}"
                )
            self._params[key] = text
            self._record(["p", key, text])
            self._pending.params[key] = text

    def check_params(self, params: dict[str, str]) -> None:
        """Refuse, before anything is written, a param the run holds with another value."""
        with self._lock:
            for key, text in params.items():
                old = self._params.get(key)
                if old is not None and old != text:
                    raise InvalidParameterValue(
                        f"changing param values is not allowed: param '{key}' was already logged "
                        f"with value {old!r} for run {self.run_id}; attempted new value {text!r}"
                    )

    def set_tag(self, key: str, value: Any) -> None:
        """Buffer a tag (the last write wins)."""
        check_key(key, "tag")
        text = check_tag_value(key, value)
        with self._lock:
            self._record(["t", key, text])
            self._pending.tags[key] = text
            self._pending.deleted_tags.discard(key)

    def delete_tag(self, key: str) -> None:
        """Buffer a tag deletion."""
        with self._lock:
            self._record(["d", key])
            self._pending.tags.pop(key, None)
            self._pending.deleted_tags.add(key)

    def set_meta(self, **fields: Any) -> None:
        """Buffer changes to the run's info (status, end time, name...)."""
        with self._lock:
            self._record(["i", fields])
            self._pending.meta.update(fields)

    def request_compaction(self) -> None:
        """At the run's end, fold its history chunks into one."""
        with self._lock:
            self._pending.compact = True

    def take(self) -> Pending:
        """Hand the pending writes to a flush."""
        with self._lock:
            taken, self._pending = self._pending, Pending(seq=self._seq)
            return taken

    def give_back(self, taken: Pending) -> None:
        """A flush failed: keep its writes for the next one."""
        with self._lock:
            taken.merge_back(self._pending)
            self._pending = taken


def _read_json(repo: GitRepo, tree: str, path: str, default: Any) -> Any:
    data = repo.read_file(tree, path)
    return default if data is None else layout.decode(path, data)


def merge_run_files(repo: GitRepo, tree: str, run_id: str, token: str, p: Pending) -> dict[str, bytes | None]:
    """The file changes that put `p` on top of the run as it is in `tree`.

    Maps are merged key by key into what is there, so concurrent writers of one run
    (a script and a client in another process) never erase each other.
    """
    base = C.run_dir(run_id)
    out: dict[str, bytes | None] = {}

    if p.meta or p.points or p.compact or p.params or p.tags or p.deleted_tags:
        meta = _read_json(repo, tree, f"{base}/{C.RUN_META}", None)
        if meta is None:
            meta = {"run_id": run_id}
        meta.update(p.meta)
        journal = dict(meta.get("journal") or {})
        journal[token] = max(journal.get(token, 0), p.seq)
        meta["journal"] = journal
        out[f"{base}/{C.RUN_META}"] = layout.encode(f"{base}/{C.RUN_META}", meta)
        commit = (meta.get("source") or {}).get("commit")
        if commit and p.meta.get("status") == "FINISHED":
            out.update(_link_commit(repo, tree, commit, run_id, meta.get("end_time")))

    if p.params:
        path = f"{base}/{C.RUN_PARAMS}"
        params = _read_json(repo, tree, path, {})
        for k, v in p.params.items():
            params.setdefault(k, v)  # params are immutable: the first value logged stays
        out[path] = layout.encode(path, params)

    if p.tags or p.deleted_tags:
        path = f"{base}/{C.RUN_TAGS}"
        tags = _read_json(repo, tree, path, {})
        for k in p.deleted_tags:
            tags.pop(k, None)
        tags.update(p.tags)
        out[path] = layout.encode(path, tags)

    if p.points:
        path = f"{base}/{C.RUN_METRICS}"
        latest = _read_json(repo, tree, path, {})
        current = {k: (layout.decode_value(v["value"]), v["timestamp"], v["step"]) for k, v in latest.items()}
        for key, value, ts, step in p.points:
            old = current.get(key)
            if old is None or _newer((value, ts, step), old):
                current[key] = (value, ts, step)
        enc = {k: {"value": layout.encode_value(v), "timestamp": t, "step": s} for k, (v, t, s) in current.items()}
        out[path] = layout.encode(path, enc)

    hist = f"{base}/{C.RUN_HISTORY_DIR}"
    if p.compact:
        chunks = repo.list_dir(tree, hist)
        if len(chunks) + (1 if p.points else 0) > 1:
            points: list[Point] = []
            for name, entry in sorted(chunks.items()):
                points.extend(layout.decode_history(f"{hist}/{name}", repo.objects.read_blob(entry.sha)))
                out[f"{hist}/{name}"] = None
            points.extend(p.points)
            points.sort(key=lambda x: (x[0], x[3], x[2]))
            out[f"{hist}/{token}-{p.seq:010d}.jsonl"] = layout.encode_history(points)
        elif p.points:
            out[f"{hist}/{token}-{p.seq:010d}.jsonl"] = layout.encode_history(p.points)
    elif p.points:
        out[f"{hist}/{token}-{p.seq:010d}.jsonl"] = layout.encode_history(p.points)
    return out


COMMIT_MAP_KEEP = 20


def _link_commit(repo: GitRepo, tree: str, commit: str, run_id: str, end: int | None) -> dict[str, bytes | None]:
    """Record a finished run under its source commit, so `gitml diff` finds it at once.

    Only the latest few finished runs of a commit are kept: what diff needs, and a sweep
    of thousands of runs at one commit does not rewrite an ever-growing file.
    """
    path = C.commit_runs_path(commit)
    runs = _read_json(repo, tree, path, {})
    if runs.get(run_id) == end:
        return {}
    runs[run_id] = end
    if len(runs) > COMMIT_MAP_KEEP:
        keep = sorted(runs, key=lambda r: (runs[r] or 0, r), reverse=True)[:COMMIT_MAP_KEEP]
        runs = {r: runs[r] for r in keep}
    return {path: layout.encode(path, runs)}


def new_token() -> str:
    """A writer token: unique per process and run, part of history chunk names."""
    return os.urandom(4).hex()


def dumps_compact(obj: Any) -> str:
    """Compact JSON for commit messages."""
    return json.dumps(obj, separators=(",", ":"))
