"""Tree reads for walks and merges over many folders: a cache shared by every reader, and many
trees read in one `git cat-file --batch` process instead of one round trip each."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

from gitml.store.objects import EMPTY_TREE, Entry, parse_tree
from gitml.store.repo import GitRepo

__all__ = ["TreeReader"]

# Shared by every reader: a tree's entries never change for its hash.
_TREES: dict[str, dict[str, Entry]] = {}


class TreeReader:
    """Tree reads with a local cache, and many reads in one `git cat-file --batch` run."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self.trees = _TREES

    def read_tree(self, sha: str) -> dict[str, Entry]:
        """The entries of the tree `sha`."""
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
