"""Compare the latest finished run of two code revisions: params and metrics, side by side.

A side is a run id, or a commit, branch or tag of the code; a revision's run is the latest
FINISHED, active run whose source commit is that commit (the run's `source.commit`, or
its `mlflow.source.git.commit` tag). When the commit itself has no such run, its
first-parent ancestors are tried (up to `max_ancestors`), so a pull request compares
against the last evaluated commit of its base. Runs are found through the SQLite query
index when it is built, else with one `git grep` over the branch (a fresh CI clone has no
index, and building one reads every run); either way only the matching runs are read.

Whether higher is better is decided by the metric's name: names with a word such as
loss, error, err, mse, mae, rmse, mape, perplexity, latency, time, duration, wer or cer
are lower-is-better; every other metric is higher-is-better (`lower_is_better` overrides).
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.exceptions import InvalidParameterValue, RepositoryError, ResourceDoesNotExist
from gitml.tracking import layout

if TYPE_CHECKING:
    from gitml.entities import Run
    from gitml.tracking.tracker import Tracker

__all__ = [
    "Change",
    "DiffSide",
    "NoBaselineRun",
    "RunDiff",
    "diff_runs",
    "format_markdown",
    "format_table",
    "higher_is_better",
]

_LOWER_WORDS = {
    "loss", "error", "err", "errors", "mse", "mae", "rmse", "mape", "smape", "msle", "rmsle",
    "perplexity", "ppl", "latency", "time", "duration", "seconds", "ms", "wer", "cer", "fpr",
    "fnr", "cost", "regret", "distance", "nll", "bpd", "fid",
}  # fmt: skip
_LOWER_SUFFIXES = ("loss", "error", "mse", "mae", "rmse")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def higher_is_better(metric: str, lower_is_better: Iterable[str] = ()) -> bool:
    """The name heuristic: False for losses, errors and durations, True otherwise."""
    if metric in set(lower_is_better):
        return False
    low = metric.lower()
    words = set(re.split(r"[^a-z0-9]+", low))
    return not (words & _LOWER_WORDS or low.endswith(_LOWER_SUFFIXES))


@dataclass(frozen=True)
class DiffSide:
    """One side of the comparison: what the user named, the commit, and the run found for it."""

    ref: str
    commit: str | None
    run_id: str
    run_name: str | None
    run_commit: str | None  # the commit the run ran on (an ancestor when `commit` had none)
    dirty: bool = False  # the run ran with uncommitted changes (its `gitml.source.dirty` tag)


@dataclass(frozen=True)
class Change:
    """One param or metric on both sides; numbers get an absolute and a relative change."""

    key: str
    old: Any
    new: Any
    change: float | None = None
    relative: float | None = None  # change / |old|; None when old is 0 or not a number
    better: bool | None = (
        None  # metrics only: did it move the right way (None: unchanged or unknown)
    )


@dataclass(frozen=True)
class RunDiff:
    """Params and metrics of two runs, side by side."""

    a: DiffSide
    b: DiffSide
    params: tuple[Change, ...]
    metrics: tuple[Change, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats as strings)."""
        return _clean(asdict(self))


def _clean(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return "NaN" if o != o else ("Infinity" if o > 0 else "-Infinity")
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


class NoBaselineRun(ResourceDoesNotExist):
    """The base side (A) has no finished run while the head side (B) has one: a first pull
    request, or the first push after the pipelines were set up. `head` and `head_run` are
    B's side and run, so a caller can still report B's metrics and check value gates."""

    def __init__(self, message: str, base: str, head: DiffSide, head_run: Run) -> None:
        super().__init__(message)
        self.base = base
        self.head = head
        self.head_run = head_run


# -- finding the runs ---------------------------------------------------------------------------
def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except OSError as e:
        raise RepositoryError(f"cannot run git: {e}") from e


def _rev(root: Path, ref: str) -> str | None:
    out = _git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}").stdout.strip()
    return out or None


def _default_base(root: Path, target: str | None = None) -> tuple[str, str]:
    """The merge base of HEAD with the pull request's target branch when CI names it, else
    with the default branch (HEAD's parent when HEAD is on it)."""
    head = _rev(root, "HEAD")
    if head is None:
        raise RepositoryError("the repository has no commits yet")
    candidates = [f"origin/{target}", target] if target else []
    origin_head = _git(
        root, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD"
    ).stdout.strip()
    if origin_head:
        candidates.append(origin_head)
    candidates += ["origin/main", "origin/master", "main", "master"]
    for name in candidates:
        other = _rev(root, name)
        if other is None:
            continue
        base = _git(root, "merge-base", head, other).stdout.strip()
        if not base:
            raise RepositoryError(
                f"HEAD and {name} share no history here (a shallow clone?): fetch more history "
                "(fetch-depth: 0 in CI) or name both sides: gitml diff A B"
            )
        if base != head:
            return base, name
        parent = _rev(root, "HEAD^")
        if parent is not None:
            return parent, "HEAD^"
        raise ResourceDoesNotExist(
            "HEAD has no parent to compare with: name both sides: gitml diff A B"
        )
    raise ResourceDoesNotExist(
        "no default branch (main or master) to compare with: name both sides: gitml diff A B"
    )


def _latest(runs: Iterable[Run]) -> Run | None:
    done = [r for r in runs if r.info.status == "FINISHED" and r.info.lifecycle_stage == "active"]
    if not done:
        return None
    return max(done, key=lambda r: (r.info.end_time or 0, r.info.start_time or 0, r.info.run_id))


class _IndexLookup:
    """Runs by source commit through the SQLite query index (when it is already built)."""

    def __init__(self, tracker: Tracker) -> None:
        self.index = tracker.index()

    def run(self, run_id: str) -> Run | None:
        found = self.index.load([run_id])
        return found[0] if found else None

    def runs_at(self, commits: list[str], by_tags: bool = False) -> dict[str, list[Run]]:
        out = {}
        for commit in commits:
            ids = set(self.index.runs_at_commit(commit))
            tagged, _ = self.index.search(
                None, f"tags.`{C.TAG_GIT_COMMIT}` = '{commit}'", max_results=1000
            )
            ids |= {r.info.run_id for r in tagged}
            out[commit] = self.index.load(sorted(ids))
        return out


class _GrepLookup:
    """Runs by source commit with one `git grep` over the branch: no index to build first.

    A fresh CI clone that just pulled thousands of runs has no query index; building one
    reads every run, while `git grep` finds the few files naming the commits, in C.
    """

    def __init__(self, tracker: Tracker) -> None:
        from gitml.tracking.tracker import run_from_files

        tracker.flush()  # this process's pending writes first, as the index path does
        self.tracker = tracker
        self.tip = tracker.repo.tip()
        self.tree = tracker.repo.tree_of(self.tip)
        self.build = run_from_files
        self.found: dict[str, list[Run]] = {}  # commit -> runs naming it
        self.done: set[tuple[str, str]] = set()  # (commit, file) already searched
        self.read: set[str] = set()  # run ids already read

    def run(self, run_id: str) -> Run | None:
        try:
            return self.build(self.tracker.read_run_files(self.tree, run_id))
        except ResourceDoesNotExist:
            return None

    def runs_at(self, commits: list[str], by_tags: bool = False) -> dict[str, list[Run]]:
        # meta.json records the source commit; tags only matter for runs attributed by hand
        # (`mlflow.source.git.commit` set to another commit): the caller asks when needed.
        file = "tags.json" if by_tags else "meta.json"
        missing = [c for c in commits if (c, file) not in self.done]
        if missing and self.tip is not None:
            self._collect(missing, file)
        self.done.update((c, file) for c in missing)
        return {c: self.found.get(c, []) for c in commits}

    def _collect(self, commits: list[str], file: str) -> None:
        args = ["grep", "-F", "-l", "--no-color"]
        for c in commits:
            args += ["-e", c]
        args += [self.tip or "", "--", f"runs/*/{file}"]
        proc = _git(Path(self.tracker.repo.git_dir), *args)
        ids = {line.rsplit("/", 2)[-2] for line in proc.stdout.splitlines() if line.count("/") >= 3}
        wanted = set(commits)
        for run_id in sorted(ids - self.read):
            self.read.add(run_id)
            try:
                files = self.tracker.read_run_files(self.tree, run_id)
            except ResourceDoesNotExist:
                continue
            run = self.build(files)
            source = files[C.RUN_META].get("source") or {}
            named = {source.get("commit") if isinstance(source, dict) else None}
            named.add(run.data.tags.get(C.TAG_GIT_COMMIT))
            for commit in named & wanted:
                self.found.setdefault(str(commit), []).append(run)


class _CommitMapLookup(_GrepLookup):
    """Runs by source commit from `commits/<sha>.json` (the latest finished runs of each
    commit): two reads, no scan. A commit whose listed runs were all deleted is searched."""

    def runs_at(self, commits: list[str], by_tags: bool = False) -> dict[str, list[Run]]:
        if by_tags:  # runs attributed by hand through the tag: only a search finds them
            return super().runs_at(commits, by_tags)
        out: dict[str, list[Run]] = {}
        unsure: list[str] = []
        for commit in commits:
            path = C.commit_runs_path(commit)
            data = self.tracker.repo.read_file(self.tree, path)
            ids = sorted(layout.decode(path, data)) if data else []
            found = [r for r in (self.run(i) for i in ids) if r is not None]
            if ids and _latest(found) is None:
                unsure.append(commit)
            out[commit] = found
        if unsure:
            out.update(super().runs_at(unsure, by_tags))
        return out


def _lookup(tracker: Tracker) -> _IndexLookup | _GrepLookup:
    # The index answers in milliseconds once built; building it reads every run. Without
    # it, the branch's commit map answers; branches written before the map get a grep.
    if (tracker.repo.state_dir / "index.sqlite").exists():
        return _IndexLookup(tracker)
    tree = tracker.repo.tree_of(tracker.repo.tip())
    if tracker.repo.lookup(tree, C.COMMITS_DIR) is not None:
        return _CommitMapLookup(tracker)
    return _GrepLookup(tracker)


def _history(root: Path, ref: str, max_ancestors: int) -> tuple[str, list[str]]:
    """The commit `ref` names and its first-parent ancestors (itself first)."""
    commit = _rev(root, ref)
    if commit is None:
        raise InvalidParameterValue(
            f"{ref!r} is neither a run id nor a commit, branch or tag of this repository"
        )
    history = _git(
        root, "rev-list", "--first-parent", f"--max-count={max_ancestors + 1}", commit
    ).stdout.split()
    return commit, history or [commit]


def _pick(
    lookup: _IndexLookup | _GrepLookup,
    ref: str,
    commit: str,
    history: list[str],
    max_ancestors: int,
) -> tuple[DiffSide, Run]:
    # The nearest commit with a run wins, whichever file names it: runs whose commit is
    # only in their tags (set by hand, or by `gitml run`) are searched up to the nearest
    # commit meta.json found, so an ancestor's run never hides one of the commit itself.
    found = lookup.runs_at(history)
    nearest = next(
        (i for i, c in enumerate(history) if _latest(found.get(c, [])) is not None),
        len(history),
    )
    tagged = lookup.runs_at(history[:nearest], by_tags=True) if nearest else {}
    for candidate in history:
        run = _latest([*found.get(candidate, []), *tagged.get(candidate, [])])
        if run is not None:
            return DiffSide(
                ref, commit, run.info.run_id, run.info.run_name, candidate, _dirty(run)
            ), run
    raise ResourceDoesNotExist(
        f"no finished run for {ref} ({commit[:12]}) or its last {max_ancestors} first-parent ancestors: "
        "log one there, or `gitml pull` the runs of the team first"
    )


def _sides(
    lookup: _IndexLookup | _GrepLookup, root: Path, refs: list[str], max_ancestors: int
) -> list[tuple[DiffSide, Run]]:
    resolved: list[tuple[DiffSide, Run] | tuple[str, list[str]]] = []
    for ref in refs:
        run = lookup.run(ref) if _RUN_ID.match(ref) else None
        if run is not None:
            commit = run.data.tags.get(C.TAG_GIT_COMMIT)
            resolved.append(
                (
                    DiffSide(ref, commit, run.info.run_id, run.info.run_name, commit, _dirty(run)),
                    run,
                )
            )
        else:
            resolved.append(_history(root, ref, max_ancestors))
    # Both sides' commits in one search (one `git grep` when there is no index).
    lookup.runs_at([c for r in resolved if isinstance(r[0], str) for c in r[1]])
    out: list[tuple[DiffSide, Run]] = []
    # The head (last) first: a head without a run is an error even when the base has none.
    for ref, r in reversed(list(zip(refs, resolved, strict=True))):
        if isinstance(r[0], DiffSide):
            out.insert(0, (r[0], r[1]))
            continue
        try:
            out.insert(0, _pick(lookup, ref, r[0], r[1], max_ancestors))
        except ResourceDoesNotExist as e:
            if len(out) != 1:
                raise
            raise NoBaselineRun(e.message, ref, out[0][0], out[0][1]) from None
    return out


# -- comparing --------------------------------------------------------------------------------
def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _compare(key: str, old: Any, new: Any, higher: bool | None) -> Change:
    a, b = _number(old), _number(new)
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return Change(key, old, new)
    delta = b - a
    rel = delta / abs(a) if a != 0 else None
    better = None if delta == 0 or higher is None else (delta > 0) == higher
    return Change(key, old, new, delta, rel, better)


def diff_runs(
    a: str | None = None,
    b: str | None = None,
    *,
    tracking_uri: str | None = None,
    all_keys: bool = False,
    lower_is_better: Iterable[str] = (),
    max_ancestors: int = 50,
    base_branch: str | None = None,
) -> RunDiff:
    """Params and metrics of the latest finished run of `a` and of `b`.

    `a` and `b` are run ids or code revisions; the defaults are the merge base of HEAD with
    `base_branch` (a pull request's target, as CI names it) or else the default branch, and
    HEAD. Unchanged keys are left out unless `all_keys`.
    """
    from gitml.tracking.tracker import get_tracker

    tracker = get_tracker(tracking_uri)
    root = Path(tracker.repo.root)
    ref_b = b or "HEAD"
    lookup = _lookup(tracker)
    ref_a, label = _default_base(root, base_branch) if a is None else (a, a)
    try:
        (side_a, run_a), (side_b, run_b) = _sides(lookup, root, [ref_a, ref_b], max_ancestors)
    except NoBaselineRun as e:
        if label != ref_a:  # the default base: name the branch, and the merge base's commit
            e.message = e.message.replace(f"for {ref_a} (", f"for {label} (merge base ", 1)
            e.args = (e.message,)
        e.base = label
        raise
    side_a = replace(side_a, ref=label)
    lower = tuple(lower_is_better)
    params = []
    pa, pb = run_a.data.params, run_b.data.params
    for key in sorted(set(pa) | set(pb)):
        if all_keys or pa.get(key) != pb.get(key):
            params.append(_compare(key, pa.get(key), pb.get(key), None))
    metrics = []
    ma, mb = run_a.data.metrics, run_b.data.metrics
    for key in sorted(set(ma) | set(mb)):
        old, new = ma.get(key), mb.get(key)
        same = old == new or (
            isinstance(old, float) and isinstance(new, float) and old != old and new != new
        )
        if all_keys or not same:
            metrics.append(_compare(key, old, new, higher_is_better(key, lower)))
    return RunDiff(side_a, side_b, tuple(params), tuple(metrics))


def _dirty(run: Run) -> bool:
    return bool(run.data.tags.get(C.TAG_GIT_DIRTY) == "true")


# Rendering lives in diff_format.py; its two functions are importable from here too.
from gitml.ci.diff_format import format_markdown, format_table  # noqa: E402
