"""Three-way merge of metadata-branch trees: files and folders, with the merge rules of the
files handed in by the layer that knows what they hold (gitml/tracking/branch_rules.py).

The merge descends only into subtrees that both sides changed, so two sides that each
added a thousand runs cost a few hundred tree reads, whatever the size of the branch.

What the store decides (``ours`` is the local branch, ``theirs`` the remote one, which was
published first):

- A path only one side changed takes that side's version; paths both sides changed the
  same way are taken as they are.
- A directory is never deleted by a merge: a folder that one side lacks is kept (a remote
  branch that was force-rewritten cannot drop local runs). Deletions of files inside a
  directory (history chunks replaced by compaction, ...) are merged.
- A file deleted on one side and changed on the other keeps the changed version.
- A file both sides changed is merged by its format: ``*.jsonl`` files are the union of
  their lines (immutable, uniquely named chunks); JSON and YAML maps are merged key by key,
  three-way and recursively, by the `MapRule` that `MergeRules.rule_for` gives for the path
  (default: a key both sides changed takes the side whose commit is newer); any other file
  takes the newer side's version, with a warning.
- `MergeRules.finish` rewrites the merged tree last (permanent deletions).
- A JSON file that does not parse on one side (a bad hand edit) is read as YAML when it
  can be (unquoted strings, trailing commas) and merged; otherwise the other side's
  version is kept; if neither parses, the newer side's. Each such case is reported in
  ``MergeResult.warnings``; nothing raises, and the dropped version stays reachable as a
  parent of the merge commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from gitml.exceptions import CorruptMetadata
from gitml.store.bounded import NoAliasDumper, load_json, load_yaml
from gitml.store.objects import EMPTY_TREE, MODE_BLOB, MODE_TREE, Entry
from gitml.store.repo import GitRepo
from gitml.store.trees import TreeReader

__all__ = [
    "MISSING",
    "MapRule",
    "MergeContext",
    "MergeResult",
    "MergeRules",
    "Resolver",
    "merge_newer",
    "merge_trees",
]

MISSING: Any = object()  # a key absent on one side, as a resolver sees it


@dataclass(frozen=True)
class MergeResult:
    """The merged root tree, the files resolved by a rule, and the files merged with loss."""

    tree: str
    resolved: tuple[str, ...] = ()  # "path: key" both sides changed, settled by the file's rule
    warnings: tuple[str, ...] = ()  # a side's version could not be merged (did not parse, ...)


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
# (key, base, ours, theirs) -> the value of a key both sides changed (MISSING: absent)
Resolver = Callable[[str, Any, Any, Any], Any]


@dataclass
class MergeContext:
    """State of one merge, as a rule sees it: which side is newer, and what was noted."""

    repo: GitRepo
    ours_newer: bool
    resolved: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    trees: TreeReader = field(init=False)

    def __post_init__(self) -> None:
        self.trees = TreeReader(self.repo)

    def newer(self, ours: Any, theirs: Any) -> Any:
        """The value of the side whose commit is newer."""
        return ours if self.ours_newer else theirs

    def merge_map(
        self,
        path: str,
        base: dict[str, Any],
        ours: dict[str, Any],
        theirs: dict[str, Any],
        resolve: Resolver,
    ) -> dict[str, Any]:
        """Key by key, three-way and recursively into maps; `resolve(key, base, ours, theirs)`
        settles a key both sides changed differently (and is noted in `resolved`)."""
        out: dict[str, Any] = {}
        for key in {**base, **ours, **theirs}:
            b, o, t = base.get(key, MISSING), ours.get(key, MISSING), theirs.get(key, MISSING)
            if o == t:
                value = o
            elif o == b:
                value = t
            elif t == b:
                value = o
            elif o is MISSING:  # deleted on one side, changed on the other: keep the change
                value = t
            elif t is MISSING:
                value = o
            elif isinstance(o, dict) and isinstance(t, dict):
                value = self.merge_map(
                    f"{path}: {key}", b if isinstance(b, dict) else {}, o, t, resolve
                )
            else:
                value = resolve(key, b, o, t)
                self.resolved.append(f"{path}: {key}")
            if value is not MISSING:
                out[key] = value
        return out


def merge_newer(
    ctx: MergeContext, path: str, base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]
) -> dict[str, Any]:
    """The default map rule: key by key; a key both sides changed takes the newer side."""
    return ctx.merge_map(path, base, ours, theirs, lambda key, b, o, t: ctx.newer(o, t))


# (context, path, base, ours, theirs) -> the merged map
MapMerge = Callable[
    [MergeContext, str, dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]
]


@dataclass(frozen=True)
class MapRule:
    """How a JSON/YAML map that both sides changed is merged.

    `merge` gives the merged map; `strings` says its values are all strings (a side salvaged
    from a broken hand edit keeps them strings)."""

    merge: MapMerge = merge_newer
    strings: bool = False


_DEFAULT_RULE = MapRule()


def _no_rule(path: str) -> MapRule | None:
    return None


@dataclass(frozen=True)
class MergeRules:
    """What the layer above knows about the branch's files, handed to `merge_trees`.

    `rule_for(path)` is the rule of a map file (None: the default rule); `finish(repo,
    tree, warnings)` rewrites the merged tree last and returns it (None: as merged)."""

    rule_for: Callable[[str], MapRule | None] = _no_rule
    finish: Callable[[GitRepo, str, list[str]], str] | None = None


# -- files ----------------------------------------------------------------------------------
def _merge_lines(ctx: MergeContext, path: str, sides: list[bytes]) -> bytes:
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


def _salvage(path: str, data: bytes, strings: bool) -> dict[str, Any] | None:
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
    if strings:  # string maps: keep them strings
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
    try:
        json.dumps(obj, allow_nan=False)  # YAML dates and the like cannot go back to JSON
    except (TypeError, ValueError):
        return None
    return obj


def _kind(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".jsonl"):
        return "lines"
    if name.endswith((".json", ".yaml", ".yml")):
        return "map"
    return "opaque"


def _merge_file(
    ctx: MergeContext, rules: MergeRules, path: str, base: Entry | None, ours: Entry, theirs: Entry
) -> Entry:
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
    rule = rules.rule_for(path) or _DEFAULT_RULE

    def parse(data: bytes, side: str) -> dict[str, Any] | None:
        try:
            obj = _load(path, data)
        except CorruptMetadata:
            obj = _salvage(path, data, rule.strings)
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
    merged = rule.merge(ctx, path, b, o, t)
    try:
        data = _dump(path, merged)
    except (TypeError, ValueError, yaml.YAMLError):  # cannot happen for parsed input; never crash
        ctx.warnings.append(
            f"{path}: the merged content cannot be written; kept the {_side(ctx)} version"
        )
        return ctx.newer(ours, theirs)
    return Entry(ours.mode, ctx.repo.objects.write_blob(data))


def _side(ctx: MergeContext) -> str:
    return "local" if ctx.ours_newer else "remote"


# -- trees ----------------------------------------------------------------------------------
def _merge_entry(
    ctx: MergeContext,
    rules: MergeRules,
    path: str,
    b: Entry | None,
    o: Entry | None,
    t: Entry | None,
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
            ctx, rules, path, b.sha if b is not None and b.is_tree else EMPTY_TREE, o.sha, t.sha
        )
        return Entry(MODE_TREE, sha)
    if o.is_tree != t.is_tree:
        ctx.warnings.append(
            f"{path}: a file on one side and a directory on the other; kept the directory"
        )
        return o if o.is_tree else t
    return _merge_file(ctx, rules, path, b if b is not None and not b.is_tree else None, o, t)


def _merge_tree(
    ctx: MergeContext, rules: MergeRules, path: str, base: str, ours: str, theirs: str
) -> str:
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
        entry = _merge_entry(ctx, rules, sub, b.get(name), o.get(name), t.get(name))
        if entry is not None:
            out[name] = entry
    return ctx.repo.objects.write_tree(out)


def merge_trees(
    repo: GitRepo,
    base: str | None,
    ours: str,
    theirs: str,
    ours_newer: bool = False,
    *,
    rules: MergeRules,
) -> MergeResult:
    """Merge the root trees `ours` (local) and `theirs` (remote) from their common `base` tree.

    `ours_newer` says which side's commit is newer: it settles conflicting writes to keys
    that carry no timestamp of their own (tags, artifact pointers, renames). `rules` are the
    merge rules of the files (gitml.tracking.branch_rules.BRANCH_RULES.merge for gitml's
    branch; `MergeRules()` merges every map by the default rule).
    """
    ctx = MergeContext(repo, ours_newer)
    # New trees and blobs go into one pack (or into the caller's batch), not thousands of files.
    with repo.objects.batch():
        entry = _merge_entry(
            ctx,
            rules,
            "",
            Entry(MODE_TREE, base or EMPTY_TREE),
            Entry(MODE_TREE, ours),
            Entry(MODE_TREE, theirs),
        )
        tree = entry.sha if entry is not None else EMPTY_TREE
        if rules.finish is not None:
            tree = rules.finish(repo, tree, ctx.warnings)
    return MergeResult(tree=tree, resolved=tuple(ctx.resolved), warnings=tuple(ctx.warnings))
