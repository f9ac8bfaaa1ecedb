"""A folder of named folders filed under a prefix of their name, `<root>/<name[:width]>/<name>`,
walked and compared here once for every reader of the branch.

Fanning out keeps every tree level small (about a thousand entries at 100,000 folders)
and a lookup by name free of scans. The store knows the shape; what the folders are
(runs) and which names are valid is the caller's, given as a `FanOut`. A name that is not
valid, or is filed under another prefix, is never a folder of the set and never a path:
it is reported as misfiled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from gitml.store.objects import EMPTY_TREE, Entry
from gitml.store.repo import GitRepo
from gitml.store.trees import TreeReader

__all__ = ["FanOut", "FanOutChange", "FanOutDiff", "Moves"]


class FanOutChange(NamedTuple):
    """One folder that differs between two trees: its entry before and after (None: absent)."""

    name: str
    before: Entry | None
    after: Entry | None


class FanOutDiff(NamedTuple):
    """The folders that differ, and the misfiled names present in the newer tree."""

    changed: list[FanOutChange]
    misfiled: list[str]  # "<root>/<bucket>/<name>", shortened to 120 characters


class Moves(NamedTuple):
    """Folder names added, updated and removed between two trees, sorted."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def _any_name(name: str) -> bool:
    return bool(name)


@dataclass(frozen=True)
class FanOut:
    """The shape of one fanned-out folder: its root, the prefix width, the valid names."""

    root: str
    width: int = 2
    valid: Callable[[str], bool] = _any_name

    def path(self, name: str) -> str:
        """Where the folder `name` lives."""
        return f"{self.root}/{name[: self.width]}/{name}"

    def filed(self, bucket: str, name: str) -> bool:
        """True when `name` is valid and filed under its own prefix `bucket`."""
        return self.valid(name) and name[: self.width] == bucket

    def root_tree(self, repo: GitRepo, tree: str | None) -> str:
        """The tree of the root folder in the branch tree `tree` (the empty tree when absent)."""
        entry = repo.lookup(tree, self.root) if tree else None
        return entry.sha if entry is not None and entry.is_tree else EMPTY_TREE

    def names(self, repo: GitRepo, tree: str | None) -> list[str]:
        """Every folder of the set in the branch tree `tree`."""
        reader = TreeReader(repo)
        top = reader.read_tree(self.root_tree(repo, tree))
        buckets = sorted((name, e) for name, e in top.items() if e.is_tree)
        reader.prefetch(e.sha for _, e in buckets)
        return [
            name
            for bucket, e in buckets
            for name in reader.read_tree(e.sha)
            if self.filed(bucket, name)
        ]

    def count(self, repo: GitRepo, tree: str | None) -> int:
        """How many folders of the set the branch tree `tree` holds."""
        return len(self.names(repo, tree))

    def diff(self, repo: GitRepo, old: str | None, new: str | None) -> FanOutDiff:
        """The folders that differ between the branch trees `old` and `new`."""
        return self.diff_roots(
            TreeReader(repo), self.root_tree(repo, old), self.root_tree(repo, new)
        )

    def diff_roots(self, reader: TreeReader, old: str | None, new: str | None) -> FanOutDiff:
        """The folders that differ between two trees of the root folder itself (None: empty).

        Only buckets whose tree changed are read, all of them in one batch."""
        if (old or EMPTY_TREE) == (new or EMPTY_TREE):
            return FanOutDiff([], [])
        empty: dict[str, Entry] = {}
        old_top = reader.read_tree(old) if old and old != EMPTY_TREE else empty
        new_top = reader.read_tree(new) if new and new != EMPTY_TREE else empty
        buckets = [b for b in {**old_top, **new_top} if old_top.get(b) != new_top.get(b)]
        reader.prefetch(
            e.sha
            for b in buckets
            for e in (old_top.get(b), new_top.get(b))
            if e is not None and e.is_tree
        )

        def entries(entry: Entry | None) -> dict[str, Entry]:
            return reader.read_tree(entry.sha) if entry is not None and entry.is_tree else empty

        changed: list[FanOutChange] = []
        misfiled: list[str] = []
        for bucket in buckets:
            before_all, after_all = entries(old_top.get(bucket)), entries(new_top.get(bucket))
            for name in {**before_all, **after_all}:
                before, after = before_all.get(name), after_all.get(name)
                if before == after:
                    continue
                if not self.filed(bucket, name):
                    if after is not None:
                        misfiled.append(f"{self.root}/{bucket}/{name}"[:120])
                    continue
                changed.append(FanOutChange(name, before, after))
        return FanOutDiff(changed, misfiled)

    def moves(self, repo: GitRepo, old: str | None, new: str | None) -> Moves:
        """The folders added, updated and removed from branch tree `old` to `new`."""
        added: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        for change in self.diff(repo, old, new).changed:
            if change.before is None:
                added.append(change.name)
            elif change.after is None:
                removed.append(change.name)
            else:
                updated.append(change.name)
        return Moves(tuple(sorted(added)), tuple(sorted(updated)), tuple(sorted(removed)))
