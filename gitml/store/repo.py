"""The metadata branch of a Git repository: read paths, and commit changes with compare-and-swap.

Only the object database and one ref are written; the working tree, the index, HEAD and
the current branch are never touched.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from gitml.exceptions import ConcurrencyError, RepositoryError
from gitml.store.objects import EMPTY_TREE, MODE_BLOB, MODE_TREE, Entry, ObjectStore

__all__ = ["Changes", "GitRepo", "SourceInfo", "find_repo_root"]

# path -> new content, or None to delete (a file or a whole directory)
Changes = Mapping[str, "bytes | None"]

_ZERO = "0" * 40


def _git(args: list[str], cwd: Path | str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check)


def find_repo_root(path: Path | str | None = None) -> Path:
    """The top of the Git repository containing `path` (default: the working directory)."""
    start = Path(path or os.getcwd())
    if not start.exists():
        raise RepositoryError(f"{start} does not exist")
    proc = _git(["rev-parse", "--absolute-git-dir"], cwd=start if start.is_dir() else start.parent, check=False)
    if proc.returncode != 0:
        raise RepositoryError(
            f"{start} is not inside a Git repository: run 'git init' there first, "
            "or point gitml at one with set_tracking_uri() / GITML_TRACKING_URI"
        )
    git_dir = Path(proc.stdout.strip())
    top = _git(["rev-parse", "--show-toplevel"], cwd=git_dir, check=False)
    if top.returncode == 0 and top.stdout.strip():
        return Path(top.stdout.strip())
    # A work tree's top is not reachable from inside its git dir: ask from the start path.
    top = _git(["rev-parse", "--show-toplevel"], cwd=start if start.is_dir() else start.parent, check=False)
    if top.returncode == 0 and top.stdout.strip():
        return Path(top.stdout.strip())
    return git_dir  # a bare repository


@dataclass(frozen=True)
class SourceInfo:
    """Where code runs from: the commit, the branch, and whether the work tree had changes."""

    commit: str | None
    branch: str | None
    dirty: bool | None
    repo_url: str | None


class GitRepo:
    """One repository and its metadata branch. Thread-safe; safe across processes."""

    def __init__(self, root: Path | str, branch: str) -> None:
        self.root = Path(root)
        proc = _git(
            ["rev-parse", "--absolute-git-dir", "--git-common-dir", "--is-bare-repository"],
            cwd=self.root,
            check=False,
        )
        if proc.returncode != 0:
            raise RepositoryError(f"{self.root} is not a Git repository: run 'git init' first")
        git_dir, common, bare = proc.stdout.splitlines()[:3]
        self.git_dir = Path(git_dir)
        common_path = Path(common)
        self.common_dir = common_path if common_path.is_absolute() else (self.root / common_path).resolve()
        if not self.common_dir.exists():
            self.common_dir = self.git_dir
        self.bare = bare.strip() == "true"
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        self.objects = ObjectStore(self.git_dir, self.common_dir / "objects")
        self.state_dir = self.common_dir / "gitml"
        self._identity: str | None = None
        self._commit_lock = threading.Lock()

    # -- refs ----------------------------------------------------------------------------
    def tip(self) -> str | None:
        """The commit the metadata branch points at, or None if it does not exist yet."""
        return self.read_ref(self.ref)

    def read_ref(self, ref: str) -> str | None:
        """Resolve a full ref name by reading Git's files (no subprocess on the hot path)."""
        loose = self.common_dir / ref
        try:
            value = loose.read_text().strip()
            if len(value) == 40:
                return value
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass
        try:
            with open(self.common_dir / "packed-refs") as f:
                for line in f:
                    if line.endswith(" " + ref + "\n"):
                        return line[:40]
        except FileNotFoundError:
            pass
        if (self.common_dir / "reftable").exists():
            proc = _git(["rev-parse", "-q", "--verify", ref], cwd=self.git_dir, check=False)
            return proc.stdout.strip() or None
        return None

    def update_ref(self, new: str, old: str | None, message: str) -> bool:
        """Move the branch from `old` to `new` only if it still points at `old`."""
        proc = _git(
            ["update-ref", "-m", f"gitml: {message}"[:200], self.ref, new, old or _ZERO],
            cwd=self.git_dir,
            check=False,
        )
        if proc.returncode == 0:
            return True
        err = proc.stderr
        if "cannot lock ref" in err or "but expected" in err or "reference already exists" in err or "is at" in err:
            return False
        raise RepositoryError(f"cannot update {self.ref}: {err.strip()}")

    # -- reading -------------------------------------------------------------------------
    def tree_of(self, commit: str | None) -> str:
        """The root tree of a commit (the empty tree for None)."""
        if commit is None:
            return EMPTY_TREE
        kind, data = self.objects.read(commit)
        if kind != "commit":
            raise RepositoryError(f"{commit} is not a commit")
        return data[5:45].decode()

    def parents_of(self, commit: str) -> list[str]:
        """The parent commits of a commit."""
        _, data = self.objects.read(commit)
        head = data.split(b"\n\n", 1)[0]
        return [line[7:].decode() for line in head.splitlines() if line.startswith(b"parent ")]

    def lookup(self, tree: str, path: str) -> Entry | None:
        """The entry at `path` under `tree`, or None."""
        entry = Entry(MODE_TREE, tree)
        for part in path.strip("/").split("/"):
            if not part:
                continue
            if not entry.is_tree:
                return None
            found = self.objects.read_tree(entry.sha).get(part)
            if found is None:
                return None
            entry = found
        return entry

    def read_file(self, tree: str, path: str) -> bytes | None:
        """Content of the file at `path` under `tree`, or None."""
        entry = self.lookup(tree, path)
        if entry is None or entry.is_tree:
            return None
        return self.objects.read_blob(entry.sha)

    def list_dir(self, tree: str, path: str) -> dict[str, Entry]:
        """Entries of the directory at `path` (empty if absent)."""
        entry = self.lookup(tree, path)
        if entry is None or not entry.is_tree:
            return {}
        return self.objects.read_tree(entry.sha)

    def walk_files(self, tree: str, path: str = "") -> Iterator[tuple[str, Entry]]:
        """Every file below `path`, as (relative path, entry)."""
        stack = [("", self.list_dir(tree, path) if path else self.objects.read_tree(tree))]
        while stack:
            prefix, entries = stack.pop()
            for name, entry in entries.items():
                rel = f"{prefix}{name}"
                if entry.is_tree:
                    stack.append((rel + "/", self.objects.read_tree(entry.sha)))
                else:
                    yield rel, entry

    # -- writing -------------------------------------------------------------------------
    def apply(self, tree: str, changes: Changes) -> str:
        """A new tree: `tree` with `changes` applied; only trees along changed paths are rebuilt."""
        nested: dict[str, object] = {}
        for path, content in changes.items():
            parts = [p for p in path.split("/") if p]
            node = nested
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):  # a file replaced by a directory
                    child = node[part] = {}
                node = child
            node[parts[-1]] = content
        return self._apply_node(tree, nested)

    def _apply_node(self, tree: str | None, node: dict[str, object]) -> str:
        entries = dict(self.objects.read_tree(tree)) if tree else {}
        for name, change in node.items():
            if isinstance(change, dict):
                current = entries.get(name)
                sub = self._apply_node(current.sha if current and current.is_tree else None, change)
                if sub == EMPTY_TREE:
                    entries.pop(name, None)
                else:
                    entries[name] = Entry(MODE_TREE, sub)
            elif change is None:
                entries.pop(name, None)
            else:
                assert isinstance(change, bytes)
                entries[name] = Entry(MODE_BLOB, self.objects.write_blob(change))
        if not entries:
            return EMPTY_TREE
        return self.objects.write_tree(entries)

    def identity(self) -> str:
        """`Name <email>` of the user, from Git's configuration, for commits and tags."""
        if self._identity is None:
            name = _git(["config", "user.name"], cwd=self.git_dir, check=False).stdout.strip()
            email = _git(["config", "user.email"], cwd=self.git_dir, check=False).stdout.strip()
            name = os.environ.get("GIT_COMMITTER_NAME") or name or os.environ.get("USER") or "gitml"
            email = os.environ.get("GIT_COMMITTER_EMAIL") or email or "gitml@localhost"
            self._identity = f"{name} <{email}>"
        return self._identity

    def write_commit(self, tree: str, parents: list[str], message: str) -> str:
        """Store a commit object; it is on no branch until a ref points at it."""
        stamp = f"{int(time.time())} {time.strftime('%z') or '+0000'}"
        who = self.identity()
        lines = [f"tree {tree}"]
        lines += [f"parent {p}" for p in parents]
        lines += [f"author {who} {stamp}", f"committer {who} {stamp}", "", message.rstrip(), ""]
        return self.objects.write("commit", "\n".join(lines).encode())

    def commit(
        self,
        build: Callable[[str], Changes | None],
        message: str | Callable[[], str],
        attempts: int = 200,
    ) -> str | None:
        """Commit the changes that `build(tip_tree)` returns onto the branch, atomically.

        On a race with another writer the tip is re-read and `build` runs again on it,
        so writers that merge their changes into what is there never lose each other's.
        Returns the new commit, or None when `build` had nothing to change.
        """
        delay = 0.001
        with self._commit_lock:
            for _ in range(attempts):
                tip = self.tip()
                base_tree = self.tree_of(tip)
                changes = build(base_tree)
                if not changes:
                    return None
                tree = self.apply(base_tree, changes)
                if tree == base_tree:
                    return tip
                text = message() if callable(message) else message
                new = self.write_commit(tree, [tip] if tip else [], text)
                if self.update_ref(new, tip, text.splitlines()[0]):
                    return new
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.2)
        raise ConcurrencyError(f"gave up moving {self.ref} after {attempts} races with other writers")

    # -- the code's own state ------------------------------------------------------------
    def source_info(self) -> SourceInfo:
        """The commit and branch HEAD is on and whether the work tree is dirty."""
        head = _git(["rev-parse", "-q", "--verify", "HEAD"], cwd=self.root, check=False).stdout.strip() or None
        branch = _git(["symbolic-ref", "-q", "--short", "HEAD"], cwd=self.root, check=False).stdout.strip() or None
        dirty: bool | None = None
        if not self.bare:
            status = _git(["status", "--porcelain", "--untracked-files=no"], cwd=self.root, check=False)
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        url = _git(["config", "remote.origin.url"], cwd=self.git_dir, check=False).stdout.strip() or None
        return SourceInfo(commit=head, branch=branch, dirty=dirty, repo_url=url)

    def close(self) -> None:
        """Release the object reader."""
        self.objects.close()
