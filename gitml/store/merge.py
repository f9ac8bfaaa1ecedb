"""Three-way merge of metadata-branch trees, with one documented rule per file kind.

The merge descends only into subtrees that both sides changed, so two sides that each
added a thousand runs cost a few hundred tree reads, whatever the size of the branch.

Rules (``ours`` is the local branch, ``theirs`` the remote one, which was published first):

- A path only one side changed takes that side's version; paths both sides changed the
  same way are taken as they are.
- A directory is never deleted by a merge: a run or experiment that one side lacks is
  kept (a remote branch that was force-rewritten cannot drop local runs). Deletions of
  files inside a directory (history chunks replaced by compaction, ...) are merged.
- A file deleted on one side and changed on the other keeps the changed version.
- A file both sides changed is merged by its kind:

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
  ``*.jsonl``         history chunks are immutable and uniquely named; if both sides still
                      wrote one, the merge is the union of their lines.
  other JSON/YAML     maps merge key by key, recursively; conflicts take the newer side
                      (``purged.json``, the tombstones of permanent deletions, so unions).

- After the merge, the runs and experiments that ``purged.json`` names are removed, so a
  permanent deletion on one clone is not undone by a clone that still held them (an
  experiment re-created under the same name, with a new creation time, is kept).

- A JSON file that does not parse on one side (a bad hand edit) is read as YAML when it
  can be (unquoted strings, trailing commas) and merged; otherwise the other side's
  version is kept; if neither parses, the newer side's. Each such case is reported in
  ``MergeResult.warnings``; nothing raises, and the dropped version stays reachable as a
  parent of the merge commit.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from gitml import constants as C
from gitml.exceptions import CorruptMetadata
from gitml.store.bounded import NoAliasDumper, load_json, load_yaml
from gitml.store.objects import EMPTY_TREE, MODE_BLOB, MODE_TREE, Entry, parse_tree
from gitml.store.repo import GitRepo

__all__ = [
    "apply_tombstones",
    "purged_runs","MergeResult", "RunChanges", "merge_trees", "run_changes"]

_MISSING: Any = object()
_TERMINAL = {"FINISHED", "FAILED", "KILLED"}


@dataclass(frozen=True)
class MergeResult:
    """The merged root tree, the files resolved by a rule, and the files merged with loss."""

    tree: str
    resolved: tuple[str, ...] = ()  # "path: key" both sides changed, settled by the file's rule
    warnings: tuple[str, ...] = ()  # a side's version could not be merged (did not parse, ...)


@dataclass(frozen=True)
class RunChanges:
    """Runs that differ between two trees of the branch."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


# -- codecs: the same bytes the tracking layer writes ---------------------------------------
def _load(path: str, data: bytes) -> Any:
    # Bounded (size, depth, 64-bit ints) and alias-free: both sides come from remotes.
    if path.endswith((".yaml", ".yml")):
        return load_yaml(data, path)
    return load_json(data, path)


def _dump(path: str, obj: Any) -> bytes:
    if path.endswith((".yaml", ".yml")):
        return yaml.dump(
            obj, Dumper=NoAliasDumper, sort_keys=True, allow_unicode=True, default_flow_style=False
        ).encode()
    return (
        json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode()


# -- key-wise three-way merge of maps ------------------------------------------------------
Resolver = Callable[[str, Any, Any, Any], Any]


_TREES: dict[str, dict[str, Entry]] = {}


class _TreeReader:
    """Tree reads with a local cache, and many reads in one `git cat-file --batch` run."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        # Shared by every reader: a tree's entries never change for its hash.
        self.trees = _TREES

    def read_tree(self, sha: str) -> dict[str, Entry]:
        cached = self.trees.get(sha)
        return cached if cached is not None else self.repo.objects.read_tree(sha)

    def prefetch(self, shas: Iterable[str]) -> None:
        """Read many trees at once: one process instead of one round trip per tree."""
        wanted = [s for s in dict.fromkeys(shas) if s != EMPTY_TREE and s not in self.trees]
        if len(wanted) < 8:
            return
        try:
            proc = subprocess.run(
                ["git", "--git-dir", str(self.repo.git_dir), "cat-file", "--batch"],
                input="".join(s + "\n" for s in wanted).encode(),
                capture_output=True,
                check=False,
            )
        except OSError:
            return  # the one-by-one reads still work
        if len(self.trees) > 100_000:
            self.trees.clear()
        out, pos = proc.stdout, 0
        for sha in wanted:
            end = out.find(b"\n", pos)
            if end < 0:
                return
            fields = out[pos:end].split()
            pos = end + 1
            if len(fields) != 3:
                continue  # missing: the one-by-one read will say so
            size = int(fields[2])
            if fields[1] == b"tree":
                self.trees[sha] = parse_tree(out[pos : pos + size])
            pos += size + 1


@dataclass
class _Ctx:
    """State of one merge: which side is newer, and what was noted."""

    repo: GitRepo
    ours_newer: bool
    resolved: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    trees: _TreeReader = field(init=False)

    def __post_init__(self) -> None:
        self.trees = _TreeReader(self.repo)

    def newer(self, ours: Any, theirs: Any) -> Any:
        return ours if self.ours_newer else theirs


def _merge_map(
    ctx: _Ctx,
    path: str,
    base: dict[str, Any],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    resolve: Resolver,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in {**base, **ours, **theirs}:
        b, o, t = base.get(key, _MISSING), ours.get(key, _MISSING), theirs.get(key, _MISSING)
        if o == t:
            value = o
        elif o == b:
            value = t
        elif t == b:
            value = o
        elif o is _MISSING:  # deleted on one side, changed on the other: keep the change
            value = t
        elif t is _MISSING:
            value = o
        elif isinstance(o, dict) and isinstance(t, dict):
            value = _merge_map(
                ctx, f"{path}: {key}", b if isinstance(b, dict) else {}, o, t, resolve
            )
        else:
            value = resolve(key, b, o, t)
            ctx.resolved.append(f"{path}: {key}")
        if value is not _MISSING:
            out[key] = value
    return out


def _by_newer_side(ctx: _Ctx) -> Resolver:
    return lambda key, b, o, t: ctx.newer(o, t)


def _params_resolver(key: str, b: Any, o: Any, t: Any) -> Any:
    return t  # immutable: the value the remote published first wins


def _metric_key(value: Any) -> tuple[float, float]:
    if not isinstance(value, dict):
        return (float("-inf"), float("-inf"))
    step, ts = value.get("step", 0), value.get("timestamp", 0)
    return (step if isinstance(step, int | float) else 0, ts if isinstance(ts, int | float) else 0)


def _metrics_resolver(key: str, b: Any, o: Any, t: Any) -> Any:
    return o if _metric_key(o) > _metric_key(t) else t


def _num(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _run_meta_resolver(ctx: _Ctx, ours: dict[str, Any], theirs: dict[str, Any]) -> Resolver:
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


def _experiment_resolver(ctx: _Ctx) -> Resolver:
    def resolve(key: str, b: Any, o: Any, t: Any) -> Any:
        no, nt = _num(o), _num(t)
        if key in ("creation_time", "last_update_time") and no is not None and nt is not None:
            return min(o, t) if key == "creation_time" else max(o, t)
        return ctx.newer(o, t)

    return resolve


def _kind(path: str) -> str:
    parts = path.split("/")
    name = parts[-1]
    if parts[0] == C.RUNS_DIR and len(parts) == 4:
        return {
            C.RUN_META: "run_meta",
            C.RUN_PARAMS: "params",
            C.RUN_METRICS: "metrics",
        }.get(name, "map")
    if parts[0] == C.EXPERIMENTS_DIR and len(parts) == 3 and name == C.EXPERIMENT_META:
        return "experiment_meta"
    if name.endswith(".jsonl"):
        return "lines"
    if name.endswith((".json", ".yaml", ".yml")):
        return "map"
    return "opaque"


# -- files ----------------------------------------------------------------------------------
def _merge_lines(ctx: _Ctx, path: str, sides: list[bytes]) -> bytes:
    seen: dict[bytes, None] = {}
    dropped = 0
    for data in sides:
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                json.loads(line)
            except (ValueError, RecursionError):
                dropped += 1
                continue
            seen.setdefault(line, None)
    if dropped:
        ctx.warnings.append(f"{path}: {dropped} line(s) that do not parse were left out")
    return b"".join(line + b"\n" for line in seen)


def _salvage(path: str, data: bytes, kind: str) -> dict[str, Any] | None:
    """A hand edit that broke the JSON often still reads as YAML (unquoted strings, ...)."""
    if not path.endswith(".json"):
        return None
    try:
        # Never expands aliases (a bomb here once ran a pull out of memory), bounded in size.
        obj = load_yaml(data, path)
    except CorruptMetadata:
        return None
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        return None
    if kind == "params" or path.endswith("/tags.json"):  # string maps: keep them strings
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
    try:
        json.dumps(obj, allow_nan=False)  # YAML dates and the like cannot go back to JSON
    except (TypeError, ValueError):
        return None
    return obj


def _merge_file(ctx: _Ctx, path: str, base: Entry | None, ours: Entry, theirs: Entry) -> Entry:
    read = ctx.repo.objects.read_blob
    kind = _kind(path)
    o_data, t_data = read(ours.sha), read(theirs.sha)
    if kind == "lines":
        return Entry(
            MODE_BLOB, ctx.repo.objects.write_blob(_merge_lines(ctx, path, [t_data, o_data]))
        )
    if kind == "opaque":
        ctx.warnings.append(
            f"{path}: changed on both sides and not mergeable; kept the {_side(ctx)} version"
        )
        return ctx.newer(ours, theirs)

    def parse(data: bytes, side: str) -> dict[str, Any] | None:
        try:
            obj = _load(path, data)
        except CorruptMetadata:
            obj = _salvage(path, data, kind)
            if obj is None:
                return None
            ctx.warnings.append(
                f"{path}: the {side} version does not parse as JSON; merged what YAML reads of it"
            )
        return obj if isinstance(obj, dict) else None

    o, t = parse(o_data, "local"), parse(t_data, "remote")
    if o is None or t is None:
        if o is None and t is None:
            ctx.warnings.append(f"{path}: neither side parses; kept the {_side(ctx)} version")
            return ctx.newer(ours, theirs)
        bad = "local" if o is None else "remote"
        ctx.warnings.append(f"{path}: the {bad} version does not parse; kept the other one")
        return theirs if o is None else ours
    b = (parse(read(base.sha), "base") if base is not None and not base.is_tree else None) or {}

    if kind == "params":
        merged = _merge_map(ctx, path, b, o, t, _params_resolver)
    elif kind == "metrics":
        merged = _merge_map(ctx, path, b, o, t, _metrics_resolver)
    elif kind == "run_meta":
        journal = _merge_journal(b.get("journal"), o.get("journal", {}), t.get("journal", {}))
        merged = _merge_map(
            ctx,
            path,
            {k: v for k, v in b.items() if k != "journal"},
            {k: v for k, v in o.items() if k != "journal"},
            {k: v for k, v in t.items() if k != "journal"},
            _run_meta_resolver(ctx, o, t),
        )
        if "journal" in o or "journal" in t:
            merged["journal"] = journal
    elif kind == "experiment_meta":
        merged = _merge_map(ctx, path, b, o, t, _experiment_resolver(ctx))
    else:
        merged = _merge_map(ctx, path, b, o, t, _by_newer_side(ctx))
    try:
        data = _dump(path, merged)
    except (TypeError, ValueError, yaml.YAMLError):  # cannot happen for parsed input; never crash
        ctx.warnings.append(
            f"{path}: the merged content cannot be written; kept the {_side(ctx)} version"
        )
        return ctx.newer(ours, theirs)
    return Entry(ours.mode, ctx.repo.objects.write_blob(data))


def _side(ctx: _Ctx) -> str:
    return "local" if ctx.ours_newer else "remote"


# -- trees ----------------------------------------------------------------------------------
def _merge_entry(
    ctx: _Ctx, path: str, b: Entry | None, o: Entry | None, t: Entry | None
) -> Entry | None:
    if o == t:
        return o
    if b == o:
        # A directory the other side removed is kept: merges never drop runs.
        return o if t is None and o is not None and o.is_tree else t
    if b == t:
        return t if o is None and t is not None and t.is_tree else o
    if o is None or t is None:  # deleted on one side, changed on the other: keep the change
        return o or t
    if o.is_tree and t.is_tree:
        sha = _merge_tree(
            ctx, path, b.sha if b is not None and b.is_tree else EMPTY_TREE, o.sha, t.sha
        )
        return Entry(MODE_TREE, sha)
    if o.is_tree != t.is_tree:
        ctx.warnings.append(
            f"{path}: a file on one side and a directory on the other; kept the directory"
        )
        return o if o.is_tree else t
    return _merge_file(ctx, path, b if b is not None and not b.is_tree else None, o, t)


def _merge_tree(ctx: _Ctx, path: str, base: str, ours: str, theirs: str) -> str:
    read = ctx.trees.read_tree
    b, o, t = read(base), read(ours), read(theirs)
    # Subtrees both sides changed are read next: fetch them all in one go.
    ctx.trees.prefetch(
        e.sha
        for name in o.keys() & t.keys()
        if o[name] != t[name]
        and o[name].is_tree
        and t[name].is_tree
        and b.get(name) not in (o[name], t[name])
        for e in (b.get(name), o[name], t[name])
        if e is not None and e.is_tree
    )
    out: dict[str, Entry] = {}
    for name in {**o, **t}:
        sub = f"{path}/{name}" if path else name
        entry = _merge_entry(ctx, sub, b.get(name), o.get(name), t.get(name))
        if entry is not None:
            out[name] = entry
    return ctx.repo.objects.write_tree(out)


def merge_trees(
    repo: GitRepo, base: str | None, ours: str, theirs: str, ours_newer: bool = False
) -> MergeResult:
    """Merge the root trees `ours` (local) and `theirs` (remote) from their common `base` tree.

    `ours_newer` says which side's commit is newer: it settles conflicting writes to keys
    that carry no timestamp of their own (tags, artifact pointers, renames).
    """
    ctx = _Ctx(repo, ours_newer)
    # New trees and blobs go into one pack (or into the caller's batch), not thousands of files.
    with repo.objects.batch():
        entry = _merge_entry(
            ctx,
            "",
            Entry(MODE_TREE, base or EMPTY_TREE),
            Entry(MODE_TREE, ours),
            Entry(MODE_TREE, theirs),
        )
        tree = entry.sha if entry is not None else EMPTY_TREE
        tree = apply_tombstones(repo, tree, ctx.warnings)
    return MergeResult(tree=tree, resolved=tuple(ctx.resolved), warnings=tuple(ctx.warnings))


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


# -- which runs differ ----------------------------------------------------------------------
def run_changes(repo: GitRepo, old_tree: str | None, new_tree: str | None) -> RunChanges:
    """Runs added, updated and removed from `old_tree` to `new_tree` (only changed subtrees are read)."""
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    old_runs = repo.lookup(old_tree or EMPTY_TREE, C.RUNS_DIR)
    new_runs = repo.lookup(new_tree or EMPTY_TREE, C.RUNS_DIR)
    if old_runs == new_runs:
        return RunChanges()
    reader = _TreeReader(repo)

    def entries(entry: Entry | None) -> dict[str, Entry]:
        return reader.read_tree(entry.sha) if entry is not None and entry.is_tree else {}

    old_top, new_top = entries(old_runs), entries(new_runs)
    changed = [p for p in {**old_top, **new_top} if old_top.get(p) != new_top.get(p)]
    reader.prefetch(
        e.sha
        for p in changed
        for e in (old_top.get(p), new_top.get(p))
        if e is not None and e.is_tree
    )
    for prefix in {**old_top, **new_top}:
        if old_top.get(prefix) == new_top.get(prefix):
            continue
        old_ids, new_ids = entries(old_top.get(prefix)), entries(new_top.get(prefix))
        for run_id in {**old_ids, **new_ids}:
            before, after = old_ids.get(run_id), new_ids.get(run_id)
            if before == after:
                continue
            if before is None:
                added.append(run_id)
            elif after is None:
                removed.append(run_id)
            else:
                updated.append(run_id)
    return RunChanges(tuple(sorted(added)), tuple(sorted(updated)), tuple(sorted(removed)))
