"""Pull, push and sync the metadata branch and the registry tags with a Git remote: the policy
(merge, retry, what a pull may remove); the Git plumbing is gitml/store/remote.py.

Pull fetches the branch by an explicit refspec (so shallow, single-branch CI clones get
it too) into a remote-tracking ref, then merges it into the local branch with
`gitml.store.merge` and a compare-and-swap ref update. Push pulls, then pushes the
branch and the registry tags in one `git push --atomic`; when another clone pushed in
between, it fetches, merges and pushes again, with back-off, until the push lands.
Only the user's own Git (its credentials, its transports) talks to the remote.

The store knows files and folders, not runs: what the branch's files mean (their merge
rules, which folders are the runs reported as moved, which were deleted on purpose) is
handed in as `BranchRules` by the tracking layer (gitml/tracking/branch_rules.py).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitml import constants as C
from gitml.config import Config, resolve_config
from gitml.exceptions import InvalidState, RemoteError
from gitml.store.fanout import FanOut, Moves
from gitml.store.merge import MergeRules, merge_trees
from gitml.store.remote import (
    commit_time,
    fetch_refs,
    has_object,
    is_ancestor,
    ls_remote,
    read_local_tags,
    remote_error,
    resolve_remote,
    run_git,
    tracking_ref,
)
from gitml.store.repo import GitRepo, find_repo_root

__all__ = [
    "BranchRules",
    "PURGE_MAX_RUNS",
    "PURGE_MAX_SHARE",
    "Moved",
    "SyncResult",
    "open_repo",
    "pull",
    "push",
    "resolve_remote",
    "sync",
]

_ZERO = C.NULL_SHA
# Git's messages are parsed to tell a race from a refusal: ask for them untranslated.
_RACE = (
    "fetch first",
    "non-fast-forward",
    "stale info",
    "failed to update ref",
    "cannot lock ref",
    "failed to lock",
    "incorrect old value",
    "already exists",
)

@dataclass(frozen=True)
class Moved:
    """What moved in one direction: runs added and updated, registry tags added."""

    runs_added: tuple[str, ...] = ()
    runs_updated: tuple[str, ...] = ()
    tags_added: tuple[str, ...] = ()
    runs_removed: tuple[str, ...] = ()  # pull: purged upstream; push: deleted permanently here

    @property
    def empty(self) -> bool:
        """True when nothing moved."""
        return not (self.runs_added or self.runs_updated or self.tags_added or self.runs_removed)


@dataclass(frozen=True)
class SyncResult:
    """The outcome of a pull, push or sync with one remote."""

    remote: str
    branch: str
    tip: str | None  # the local branch afterwards
    remote_tip: str | None  # the remote branch afterwards, as last seen
    pulled: Moved = field(default_factory=Moved)
    pushed: Moved = field(default_factory=Moved)
    merged: bool = False  # a merge commit was made
    rewritten: bool = False  # the remote branch was force-rewritten since the last fetch
    attempts: int = 1  # push attempts (more than one when other clones pushed at the same time)
    warnings: tuple[str, ...] = ()
    renamed_tags: tuple[tuple[str, str], ...] = ()  # (old, new): local tags renumbered on a clash


def _none_purged(repo: GitRepo, tree: str) -> set[str]:
    return set()


@dataclass(frozen=True)
class BranchRules:
    """What the layer above knows about the branch, handed to pull, push and sync.

    `merge`: the merge rules of the files; `units`: the fanned-out folders that count as
    moved, added, updated or removed (runs); `purged(repo, tree)`: the units of `tree`
    deleted on purpose, which a push may remove from the remote."""

    merge: MergeRules
    units: FanOut
    purged: Callable[[GitRepo, str], set[str]] = _none_purged


def _changes(repo: GitRepo, rules: BranchRules, old: str | None, new: str | None) -> Moves:
    """The units added, updated and removed from commit `old` to commit `new`."""
    return rules.units.moves(repo, repo.tree_of(old), repo.tree_of(new))


# (repo, remote, clashing tag names, the remote's tags) -> objects with .old and .new names:
# renumbers local registry tags whose names the remote gave to other tags (see gitml.registry.reconcile).
Reconcile = Callable[[GitRepo, str, list[str], dict[str, str]], Sequence[Any]]


def _no_tags(name: str) -> bool:
    return False


def open_repo(path: str | os.PathLike[str] | None = None) -> tuple[GitRepo, Config]:
    """The repository containing `path` (a path or `file://` URI; default: the working directory)."""
    text = os.fspath(path) if path is not None else None
    if text is not None and text.startswith("file://"):
        text = text[len("file://") :]
    root = find_repo_root(text)
    config = resolve_config(root)
    return GitRepo(root, config.branch), config


# -- running git ------------------------------------------------------------------------------
PURGE_MAX_RUNS = 10
PURGE_MAX_SHARE = 0.10


def _check_removals(
    repo: GitRepo,
    rules: BranchRules,
    remote: str,
    ours: str,
    removed: Sequence[str],
    allow_purge: bool,
    warnings: list[str],
) -> None:
    """Report runs of this clone (at `ours`) that the pull would remove; refuse above the
    threshold unless `allow_purge` (InvalidState, nothing changed)."""
    if not removed:
        return
    total = rules.units.count(repo, repo.tree_of(ours))
    shown = ", ".join(removed[:5]) + (" ..." if len(removed) > 5 else "")
    # One purged run always passes (a small branch would otherwise need the flag for every purge).
    many = len(removed) > PURGE_MAX_RUNS or (len(removed) > 1 and len(removed) > PURGE_MAX_SHARE * total)
    if many and not allow_purge:
        raise InvalidState(
            f"refusing to pull from '{remote}': it would remove {len(removed)} of the {total} runs "
            f"of this clone (deleted permanently there: {shown}). If that is intended, pull again "
            "with --allow-purge; the runs stay here until then"
        )
    warnings.append(f"the pull removed {len(removed)} of {total} run(s) deleted permanently on '{remote}': {shown}")


# -- pull -------------------------------------------------------------------------------------
@dataclass
class _Pulled:
    remote_tip: str | None
    remote_tags: dict[str, str]
    tags_fetched: list[str]
    rewritten: bool
    warnings: list[str]


# Another gitml (or git) process of this clone updating the same local ref at that moment.
def _fetch(repo: GitRepo, remote: str, tracking: str, tag_filter: Callable[[str], bool]) -> _Pulled:
    state = ls_remote(repo, remote, tag_filter)
    local_tags = read_local_tags(repo, tag_filter)
    warnings: list[str] = []
    new_tags = [n for n in sorted(state.tags) if n not in local_tags]
    previous = repo.read_ref(tracking)
    refspecs: list[str] = []
    if state.tip is not None and (previous != state.tip or not has_object(repo, state.tip)):
        refspecs.append(f"+refs/heads/{repo.branch}:{tracking}")
    shallow = (repo.common_dir / "shallow").exists()
    tag_specs = [f"refs/tags/{n}:refs/tags/{n}" for n in new_tags]
    if shallow and tag_specs:
        # Tags point at code commits: in a shallow clone fetch just those commits, not all history.
        fetch_refs(repo, remote, ["--depth=1"], tag_specs)
        tag_specs = []
    if refspecs or tag_specs:
        fetch_refs(repo, remote, [], refspecs + tag_specs)
    tip = repo.read_ref(tracking) if state.tip is not None else None
    rewritten = False
    if (
        previous
        and tip
        and previous != tip
        and has_object(repo, previous)
        and not is_ancestor(repo, previous, tip)
    ):
        rewritten = True
        warnings.append(
            f"'{remote}' rewrote its {repo.branch} branch (force-push): runs it dropped are kept here "
            "and the next push restores them"
        )
    if state.tip is None and previous is not None:
        run_git(repo, ["update-ref", "-d", tracking])
    return _Pulled(tip, state.tags, new_tags, rewritten, warnings)


def _merge_into_local(
    repo: GitRepo,
    rules: BranchRules,
    remote: str,
    theirs: str | None,
    warnings: list[str],
    allow_purge: bool = False,
) -> tuple[bool, str | None]:
    """Bring the local branch up to `theirs`; returns (merge commit made, new local tip)."""
    if theirs is None:
        return False, repo.tip()
    for _ in range(100):
        ours = repo.tip()
        if ours == theirs:
            return False, ours
        base = run_git(repo, ["merge-base", ours, theirs]).stdout.strip() or None if ours else None
        if ours is None or base == ours:
            if ours is not None:
                removed = _changes(repo, rules, ours, theirs).removed
                _check_removals(repo, rules, remote, ours, removed, allow_purge, warnings)
            if repo.update_ref(theirs, ours, f"pull {remote}: fast-forward"):
                return False, theirs
            continue
        if base == theirs:
            return False, ours
        # The merged trees and the merge commit go into one pack.
        with repo.objects.batch():
            result = merge_trees(
                repo,
                repo.tree_of(base) if base else None,
                repo.tree_of(ours),
                repo.tree_of(theirs),
                ours_newer=commit_time(repo, ours) > commit_time(repo, theirs),
                rules=rules.merge,
            )
            changes = rules.units.moves(repo, repo.tree_of(ours), result.tree)
            _check_removals(repo, rules, remote, ours, changes.removed, allow_purge, warnings)
            message = f"merge {remote}/{repo.branch}: {len(changes.added)} runs added, {len(changes.updated)} updated"
            notes = [
                *(f"warning: {w}" for w in result.warnings),
                *(f"resolved: {r}" for r in result.resolved),
            ]
            if notes:
                message += "\n\n" + "\n".join(notes)
            commit = repo.write_commit(result.tree, [ours, theirs], message)
        if repo.update_ref(commit, ours, message.splitlines()[0]):
            warnings.extend(result.warnings)
            return True, commit
        # A local writer committed meanwhile: merge again from its commit.
    raise InvalidState(f"the local {repo.branch} branch kept moving during the merge; try again")


def pull(
    repo: GitRepo,
    remote: str | None = None,
    *,
    rules: BranchRules,
    config: Config | None = None,
    tag_filter: Callable[[str], bool] = _no_tags,
    allow_purge: bool = False,
) -> SyncResult:
    """Fetch the metadata branch and registry tags from `remote` and merge them into the local branch.

    Runs of this clone that the remote deleted permanently are removed and reported (in
    `pulled.runs_removed` and a warning); more than PURGE_MAX_RUNS of them, or more than
    PURGE_MAX_SHARE of the clone's runs, is refused (InvalidState) unless `allow_purge`.
    """
    name = resolve_remote(repo, remote, config)
    tracking = tracking_ref(repo, name)
    before = repo.tip()
    got = _fetch(repo, name, tracking, tag_filter)
    local_tags = read_local_tags(repo, tag_filter)
    for n in sorted(local_tags):
        if got.remote_tags.get(n, local_tags[n]) != local_tags[n]:
            got.warnings.append(
                f"tag {n} is another tag on '{name}': kept the local one (gitml push renumbers it)"
            )
    merged, tip = _merge_into_local(repo, rules, name, got.remote_tip, got.warnings, allow_purge)
    changes = _changes(repo, rules, before, tip)
    return SyncResult(
        remote=name,
        branch=repo.branch,
        tip=tip,
        remote_tip=got.remote_tip,
        pulled=Moved(changes.added, changes.updated, tuple(got.tags_fetched), changes.removed),
        merged=merged,
        rewritten=got.rewritten,
        warnings=tuple(got.warnings),
    )


# -- push -------------------------------------------------------------------------------------
def _push_once(
    repo: GitRepo, remote: str, tip: str | None, remote_tip: str | None, tags: list[str]
) -> tuple[str, str]:
    """One atomic push; returns ("ok" | "race", detail) or raises RemoteError for a refusal."""
    specs = [f"refs/tags/{t}:refs/tags/{t}" for t in tags]
    lease: list[str] = []
    if tip is not None:
        specs.insert(0, f"{tip}:refs/heads/{repo.branch}")
        # Compare-and-swap on the remote: the push lands only onto the tip just merged.
        lease = [f"--force-with-lease=refs/heads/{repo.branch}:{remote_tip or ''}"]
    # --no-verify: the user's pre-push hooks guard their code (tests, linters), not metadata;
    # running them at the end of every training run would be slow and surprising.
    proc = run_git(repo, ["push", "--atomic", "--porcelain", "--no-verify", *lease, "--", remote, *specs])
    if proc.returncode == 0:
        return "ok", ""
    refused = [ln for ln in proc.stdout.splitlines() if ln.startswith("!")]
    if not refused:
        raise remote_error("push", remote, proc.stderr)
    reasons = [ln.split("\t")[-1] for ln in refused]
    real = [r for r in reasons if "atomic" not in r]
    if not real or any(s in r for r in real for s in _RACE):
        return "race", "; ".join(reasons)
    said = [
        ln[len("remote:") :].strip() for ln in proc.stderr.splitlines() if ln.startswith("remote:")
    ]
    said = [s for s in said if s]
    raise RemoteError(
        f"'{remote}' refused the push: {'; '.join(real)}"
        + (f" (the remote said: {' / '.join(said[-3:])})" if said else "")
        + ". Nothing was lost: the runs stay on the local branch and the next push carries them"
    )


def push(
    repo: GitRepo,
    remote: str | None = None,
    *,
    rules: BranchRules,
    config: Config | None = None,
    tag_filter: Callable[[str], bool] = _no_tags,
    reconcile: Reconcile | None = None,
    allow_drop: bool = False,
    allow_purge: bool = False,
    timeout_s: float = 300.0,
) -> SyncResult:
    """Merge the remote's branch in, then push the branch and registry tags until the push lands.

    Races with other clones are retried (fetch, merge, push) with randomised back-off
    until `timeout_s`; authentication, network and refusal errors raise RemoteError at
    once. A push that would remove runs from the remote is refused (InvalidState) unless
    `allow_drop`. A local registry tag whose name the remote gave to another tag is
    renumbered by `reconcile` when given (the registry's rule), else left unpushed with a
    warning.
    """
    name = resolve_remote(repo, remote, config)
    tracking = tracking_ref(repo, name)
    before = repo.tip()
    deadline = time.monotonic() + timeout_s
    warnings: list[str] = []
    fetched_tags: list[str] = []
    renamed: list[tuple[str, str]] = []
    merged_any = rewritten = False
    attempt = 0
    while True:
        attempt += 1
        got = _fetch(repo, name, tracking, tag_filter)
        warnings.extend(w for w in got.warnings if w not in warnings)
        fetched_tags.extend(t for t in got.tags_fetched if t not in fetched_tags)
        rewritten = rewritten or got.rewritten
        merged, tip = _merge_into_local(repo, rules, name, got.remote_tip, warnings, allow_purge)
        merged_any = merged_any or merged
        local_tags = read_local_tags(repo, tag_filter)
        clashes = sorted(n for n, sha in local_tags.items() if got.remote_tags.get(n, sha) != sha)
        if clashes and reconcile is not None:
            renamed += [(r.old, r.new) for r in reconcile(repo, name, clashes, got.remote_tags)]
            local_tags = read_local_tags(repo, tag_filter)
            clashes = sorted(
                n for n, sha in local_tags.items() if got.remote_tags.get(n, sha) != sha
            )
        for n in clashes:
            note = f"tag {n} is another tag on '{name}': the local one was not pushed (rename it to push it)"
            if note not in warnings:
                warnings.append(note)
        tags = sorted(n for n in local_tags if n not in got.remote_tags)
        done = tip is None or tip == got.remote_tip
        if done and not tags:
            return _pushed_result(
                repo, rules, name, before, tip, got.remote_tip, got.remote_tip, [], fetched_tags,
                merged_any, rewritten, attempt, warnings, renamed,
            )  # fmt: skip
        if tip is not None:
            dropped = _changes(repo, rules, got.remote_tip, tip).removed
            if dropped:  # deleted permanently on purpose: that removal is meant to spread
                purged = rules.purged(repo, repo.tree_of(tip))
                dropped = tuple(r for r in dropped if r not in purged)
            if dropped and not allow_drop:
                shown = ", ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else "")
                raise InvalidState(
                    f"refusing to push: it would remove {len(dropped)} run(s) from '{name}' ({shown}). "
                    f"They are still in {tracking}; restore them on the local {repo.branch} branch "
                    f"(for example: git restore --source={tracking} on a worktree of the branch, then "
                    "commit), or push with --allow-drop if removing them is intended"
                )
        outcome, detail = _push_once(repo, name, tip, got.remote_tip, tags)
        if outcome == "ok":
            if tip is not None:
                run_git(repo, ["update-ref", tracking, tip])
            return _pushed_result(
                repo, rules, name, before, tip, got.remote_tip, tip or got.remote_tip, tags, fetched_tags,
                merged_any, rewritten, attempt, warnings, renamed,
            )  # fmt: skip
        if time.monotonic() > deadline:
            raise RemoteError(
                f"gave up pushing to '{name}' after {attempt} attempts ({detail}): other clones kept "
                "pushing. Nothing was lost: the next push carries the local runs"
            )
        # Randomised exponential back-off spreads racing clones apart.
        time.sleep(random.uniform(0.02, min(2.0, 0.05 * 2 ** min(attempt, 6))))


def _pushed_result(
    repo: GitRepo,
    rules: BranchRules,
    remote: str,
    before: str | None,
    tip: str | None,
    remote_before: str | None,
    remote_after: str | None,
    tags: list[str],
    fetched_tags: list[str],
    merged: bool,
    rewritten: bool,
    attempts: int,
    warnings: list[str],
    renamed: list[tuple[str, str]],
) -> SyncResult:
    pulled = _changes(repo, rules, before, tip)
    pushed = _changes(repo, rules, remote_before, remote_after)
    return SyncResult(
        remote=remote,
        branch=repo.branch,
        tip=tip,
        remote_tip=remote_after,
        pulled=Moved(pulled.added, pulled.updated, tuple(fetched_tags), pulled.removed),
        pushed=Moved(pushed.added, pushed.updated, tuple(tags), pushed.removed),
        merged=merged,
        rewritten=rewritten,
        attempts=attempts,
        warnings=tuple(warnings),
        renamed_tags=tuple(renamed),
    )


def sync(
    repo: GitRepo,
    remote: str | None = None,
    *,
    rules: BranchRules,
    config: Config | None = None,
    tag_filter: Callable[[str], bool] = _no_tags,
    reconcile: Reconcile | None = None,
    allow_drop: bool = False,
    allow_purge: bool = False,
) -> SyncResult:
    """Pull, then push: afterwards the local and the remote branch hold the same runs."""
    return push(
        repo,
        remote,
        rules=rules,
        config=config,
        tag_filter=tag_filter,
        reconcile=reconcile,
        allow_drop=allow_drop,
        allow_purge=allow_purge,
    )
