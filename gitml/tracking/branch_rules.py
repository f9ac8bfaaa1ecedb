"""What gitml's branch files mean to a merge and a sync, handed down to the store (which
knows files and folders, not runs): the merge rule of each run and experiment file, the run
folders, and permanent deletions (`BRANCH_RULES`).

A file both sides changed is merged by its kind (``ours`` is the local branch, ``theirs``
the remote one, which was published first):

  ``params.json``     key by key; a key both sides set differently keeps the remote value
                      (params are immutable: the value published first wins).
  ``metrics.json``    key by key; the latest value by (step, timestamp) wins.
  ``tags.json``,      key by key (three-way, so deletions merge); a key both sides changed
  ``artifacts.json``  takes the side whose commit is newer.
  run ``meta.json``   field by field: a terminal status beats RUNNING/SCHEDULED (two terminal
                      ones: the later end_time), end_time is the max, start_time the min,
                      journal maps merge key-wise by max, other fields take the side that
                      changed them (both: the newer commit).
  experiment          creation_time is the earliest, last_update_time the latest, other
  ``meta.yaml``       fields as above.
  other JSON/YAML     maps merge key by key, recursively; conflicts take the newer side
                      (``purged.json``, the tombstones of permanent deletions, so unions).

The store's own rules (folders are never deleted by a merge, ``*.jsonl`` chunks and a run's
``inputs.jsonl`` are unions of lines, files that do not parse) are in gitml/store/merge.py. After the merge, the runs
and experiments that ``purged.json`` names are removed, so a permanent deletion on one clone
is not undone by a clone that still held them (an experiment re-created under the same
name, with a new creation time, is kept).
"""

from __future__ import annotations

from typing import Any

from gitml import constants as C
from gitml.exceptions import CorruptMetadata
from gitml.store.bounded import load_json, load_yaml
from gitml.store.fanout import Moves
from gitml.store.merge import MapRule, MergeContext, MergeRules, Resolver
from gitml.store.repo import GitRepo
from gitml.store.sync import BranchRules
from gitml.tracking.layout import RUN_DIRS

__all__ = [
    "BRANCH_RULES",
    "MERGE_RULES",
    "apply_tombstones",
    "purged_runs",
    "rule_for",
    "run_changes",
]

_TERMINAL = {"FINISHED", "FAILED", "KILLED"}


def _num(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _params(
    ctx: MergeContext, path: str, b: dict[str, Any], o: dict[str, Any], t: dict[str, Any]
) -> dict[str, Any]:
    # Immutable: the value the remote published first wins.
    return ctx.merge_map(path, b, o, t, lambda key, bv, ov, tv: tv)


def _metric_key(value: Any) -> tuple[float, float]:
    if not isinstance(value, dict):
        return (float("-inf"), float("-inf"))
    step, ts = value.get("step", 0), value.get("timestamp", 0)
    return (step if isinstance(step, int | float) else 0, ts if isinstance(ts, int | float) else 0)


def _metrics(
    ctx: MergeContext, path: str, b: dict[str, Any], o: dict[str, Any], t: dict[str, Any]
) -> dict[str, Any]:
    return ctx.merge_map(
        path, b, o, t, lambda key, bv, ov, tv: ov if _metric_key(ov) > _metric_key(tv) else tv
    )


def _run_meta_resolver(ctx: MergeContext, ours: dict[str, Any], theirs: dict[str, Any]) -> Resolver:
    def resolve(key: str, b: Any, o: Any, t: Any) -> Any:
        if key == "status":
            o_done, t_done = o in _TERMINAL, t in _TERMINAL
            if o_done != t_done:
                return o if o_done else t
            o_end, t_end = _num(ours.get("end_time")), _num(theirs.get("end_time"))
            if o_end is not None and t_end is not None and o_end != t_end:
                return o if o_end > t_end else t
            return ctx.newer(o, t)
        if key in ("end_time", "start_time"):
            no, nt = _num(o), _num(t)
            if no is None or nt is None:
                return o if nt is None else t
            return max(o, t) if key == "end_time" else min(o, t)
        return ctx.newer(o, t)

    return resolve


def _merge_journal(base: Any, ours: Any, theirs: Any) -> Any:
    if not isinstance(ours, dict) or not isinstance(theirs, dict):
        return ours if isinstance(ours, dict) else theirs
    out = dict(theirs)
    for k, v in ours.items():
        cur = out.get(k)
        out[k] = v if _num(cur) is None or (_num(v) is not None and v > cur) else cur
    return out


def _run_meta(
    ctx: MergeContext, path: str, b: dict[str, Any], o: dict[str, Any], t: dict[str, Any]
) -> dict[str, Any]:
    journal = _merge_journal(b.get("journal"), o.get("journal", {}), t.get("journal", {}))
    merged = ctx.merge_map(
        path,
        {k: v for k, v in b.items() if k != "journal"},
        {k: v for k, v in o.items() if k != "journal"},
        {k: v for k, v in t.items() if k != "journal"},
        _run_meta_resolver(ctx, o, t),
    )
    if "journal" in o or "journal" in t:
        merged["journal"] = journal
    return merged


def _experiment_meta(
    ctx: MergeContext, path: str, b: dict[str, Any], o: dict[str, Any], t: dict[str, Any]
) -> dict[str, Any]:
    def resolve(key: str, bv: Any, ov: Any, tv: Any) -> Any:
        no, nt = _num(ov), _num(tv)
        if key in ("creation_time", "last_update_time") and no is not None and nt is not None:
            return min(ov, tv) if key == "creation_time" else max(ov, tv)
        return ctx.newer(ov, tv)

    return ctx.merge_map(path, b, o, t, resolve)


_RUN_FILES = {
    C.RUN_META: MapRule(_run_meta),
    C.RUN_PARAMS: MapRule(_params, strings=True),
    C.RUN_METRICS: MapRule(_metrics),
}
_STRING_MAP = MapRule(strings=True)  # tags.json, of runs and experiments
_EXPERIMENT_META = MapRule(_experiment_meta)


def rule_for(path: str) -> MapRule | None:
    """The merge rule of the map file at `path` on the branch (None: the store's default)."""
    parts = path.split("/")
    name = parts[-1]
    if parts[0] == C.RUNS_DIR and len(parts) == 4 and name in _RUN_FILES:
        return _RUN_FILES[name]
    if parts[0] == C.EXPERIMENTS_DIR and len(parts) == 3 and name == C.EXPERIMENT_META:
        return _EXPERIMENT_META
    if path.endswith("/tags.json"):
        return _STRING_MAP
    return None


def run_changes(repo: GitRepo, old_tree: str | None, new_tree: str | None) -> Moves:
    """Runs added, updated and removed from `old_tree` to `new_tree` (only changed subtrees
    are read)."""
    return RUN_DIRS.moves(repo, old_tree, new_tree)


def purged_runs(repo: GitRepo, tree: str) -> set[str]:
    """Runs deleted permanently, by the tombstones in the tree's purged.json."""
    data = repo.read_file(tree, C.PURGED_FILE)
    if not data:
        return set()
    try:
        return set(load_json(data, C.PURGED_FILE).get("runs") or {})
    except (CorruptMetadata, AttributeError):
        return set()


def apply_tombstones(repo: GitRepo, tree: str, warnings: list[str] | None = None) -> str:
    """Remove from a merged tree the runs and experiments that a side deleted permanently."""
    data = repo.read_file(tree, C.PURGED_FILE)
    if not data:
        return tree
    try:
        purged = load_json(data, C.PURGED_FILE)
        runs = dict(purged.get("runs") or {})
        experiments = dict(purged.get("experiments") or {})
    except (CorruptMetadata, AttributeError, TypeError, ValueError):
        if warnings is not None:
            warnings.append(f"{C.PURGED_FILE} does not parse: permanent deletions were not applied")
        return tree
    changes: dict[str, bytes | None] = {}
    for run_id in runs:
        if repo.lookup(tree, C.run_dir(run_id)) is not None:
            changes[C.run_dir(run_id)] = None
    for exp_id, created in experiments.items():
        meta = repo.read_file(tree, f"{C.experiment_dir(exp_id)}/{C.EXPERIMENT_META}")
        if meta is None:
            continue
        try:
            loaded = load_yaml(meta, f"{C.experiment_dir(exp_id)}/{C.EXPERIMENT_META}")
            same = isinstance(loaded, dict) and loaded.get("creation_time") == created
        except CorruptMetadata:
            same = False
        if same:  # a new experiment that reuses the id (same name) is not the deleted one
            changes[C.experiment_dir(exp_id)] = None
    return repo.apply(tree, changes) if changes else tree


MERGE_RULES = MergeRules(rule_for=rule_for, finish=apply_tombstones)
BRANCH_RULES = BranchRules(merge=MERGE_RULES, units=RUN_DIRS, purged=purged_runs)
