"""Registry tags across clones: when two clones made the same tag name, renumber the local one.

Two clones that register a model at the same time both create `name@v3.0.0`; two that
promote at once both create `name#production#7`. Tags are never overwritten, so the
clone that pushes second keeps the remote's tag and re-creates its own under the next
free name (`name@v4.0.0`, `name#production#8`), with the same target, tagger, time and
message (its version fields updated), then pushes that. Nothing is lost, no tag moves
on the remote, and versions stay distinct.

`reconcile_tags()` does the renaming for a caller that moves refs itself (`gitml push`);
`push_registry()` is the whole loop for tags alone.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gitml.config import child_env
from gitml.exceptions import ConcurrencyError, RemoteError
from gitml.registry.history import load_message
from gitml.registry.refs import NewTag, RawTag, create_tags, read_tags
from gitml.registry.tags import (
    Action,
    format_tag,
    is_registry_tag,
    parse_tag,
    semver_key,
    semver_of_major,
)
from gitml.store.remote_names import check_remote
from gitml.store.repo import GitRepo

__all__ = [
    "INCOMING",
    "Renamed",
    "is_registry_tag",
    "push_registry",
    "reconcile_tags",
    "registry_refspecs",
]

# Where the remote's side of a conflicting tag is fetched to, while it is reconciled.
INCOMING = "refs/gitml/incoming-tags"
_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"}


@dataclass(frozen=True)
class Renamed:
    """A local tag re-created under a new name because the remote has another tag of that name."""

    old: str
    new: str



def registry_refspecs(repo: GitRepo) -> list[str]:
    """`refs/tags/X:refs/tags/X` for every registry tag of the repository (for a push)."""
    return [
        f"refs/tags/{t.name}:refs/tags/{t.name}" for t in read_tags(repo) if is_registry_tag(t.name)
    ]


def _git(
    repo: GitRepo, args: list[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:

    return subprocess.run(
        ["git", *args],
        cwd=repo.git_dir,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=child_env(_ENV),
    )


def _remote_tags(repo: GitRepo, remote: str) -> dict[str, str]:
    proc = _git(repo, ["ls-remote", "--tags", "--", check_remote(remote)])
    if proc.returncode != 0:
        raise RemoteError(f"cannot list the tags of '{remote}': {proc.stderr.strip()}")
    out = {}
    for line in proc.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/tags/") and not ref.endswith("^{}"):
            name = ref[len("refs/tags/") :]
            if is_registry_tag(name):
                out[name] = sha
    return out


def _renamed_message(raw: RawTag, semver: str, number: int) -> str:
    info = load_message(raw.message)
    if info.get("gitml") != 1:
        return raw.message  # not ours: keep it as it is
    lines = raw.message.splitlines()
    summary = lines[0] if lines and lines[0].startswith("#") else None
    info.update({"version": number, "semver": semver})
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(info, Dumper=dumper, sort_keys=False, allow_unicode=True)
    return (f"{summary} (renumbered to {semver} on sync)\n" if summary else "") + body


def reconcile_tags(
    repo: GitRepo, remote: str, names: Iterable[str], remote_tags: Mapping[str, str] | None = None
) -> list[Renamed]:
    """Take the remote's tag for each of `names` and re-create the local one under a free name.

    `names` are registry tags that exist locally and on `remote` with different objects.
    Afterwards refs/tags/<name> is the remote's, and the local tag lives on as a new name
    that is free locally and on the remote, ready to push.
    """
    names = sorted(set(names))
    if not names:
        return []
    specs = "\n".join(f"+refs/tags/{n}:{INCOMING}/{n}" for n in names) + "\n"
    proc = _git(
        repo, ["fetch", "--no-tags", "--no-write-fetch-head", "--stdin", "--", check_remote(remote)], stdin=specs
    )
    if proc.returncode != 0:
        raise RemoteError(f"cannot fetch tags {names} from '{remote}': {proc.stderr.strip()}")
    try:
        return _reconcile(repo, names, remote_tags)
    finally:
        for n in names:
            _git(repo, ["update-ref", "-d", f"{INCOMING}/{n}"])


def _reconcile(
    repo: GitRepo, names: list[str], remote_tags: Mapping[str, str] | None
) -> list[Renamed]:
    local = {t.name: t for t in read_tags(repo)}
    incoming = {t.name: t for t in read_tags(repo, INCOMING)}
    conflicts = sorted(
        (n for n in names if n in local and n in incoming and local[n].sha != incoming[n].sha),
        key=_conflict_order,
    )
    remote_names = set(remote_tags or ()) | set(incoming)
    # New names are free locally and on the remote; names given up are never reused here.
    taken = set(local) | remote_names
    renames: dict[str, str] = {}
    messages: dict[str, str] = {}
    moved: dict[tuple[str, str], str] = {}  # (model, old semver) -> new semver
    parsed_local = {n: p for n in local if (p := parse_tag(n)) is not None}

    # Versions: every version of a clashing model that is only here moves above the remote's
    # versions, keeping its order (numbers are ranks in semver order).
    clashing = sorted(
        {parsed_local[n].model for n in conflicts if parsed_local[n].action is Action.REGISTER}
    )
    for model in clashing:
        remote_versions = {
            p.version
            for n in remote_names
            if (p := parse_tag(n)) is not None and p.model == model and p.action is Action.REGISTER
        }
        mine = sorted(
            (
                n
                for n, p in parsed_local.items()
                if p.model == model
                and p.action is Action.REGISTER
                and (n in conflicts or (remote_tags is not None and n not in remote_names))
            ),
            key=lambda n: semver_key(parsed_local[n].version or ""),
        )
        major = max((semver_key(v)[0] for v in remote_versions if v), default=0)
        number = len(remote_versions)
        for name in mine:
            major += 1
            while format_tag(model, Action.REGISTER, version=semver_of_major(major)) in taken:
                major += 1
            number += 1
            semver = semver_of_major(major)
            renames[name] = format_tag(model, Action.REGISTER, version=semver)
            taken.add(renames[name])
            moved[(model, parsed_local[name].version or "")] = semver
            messages[name] = _renamed_message(local[name], semver, number)

    # Deregistrations of a moved version that are only here follow it.
    for name, p in parsed_local.items():
        if p.action is not Action.DEREGISTER or (name in remote_names and name not in conflicts):
            continue
        target = moved.get((p.model, p.version or ""))
        if target is not None:
            new = format_tag(p.model, Action.DEREGISTER, version=target, counter=p.counter)
            renames[name] = _free(new, p.model, p.action, target, None, taken)
            taken.add(renames[name])

    # Other clashes (assignments, deprecations): the next free counter of the model.
    counters: dict[str, int] = {}
    for name in conflicts:
        if name in renames:
            continue
        p = parsed_local[name]
        if p.model not in counters:
            counters[p.model] = max(
                (
                    q.counter or 0
                    for n in taken
                    if (q := parse_tag(n)) is not None and q.model == p.model
                ),
                default=0,
            )
        counters[p.model] += 1
        new = format_tag(
            p.model, p.action, version=p.version, stage=p.stage, counter=counters[p.model]
        )
        renames[name] = _free(new, p.model, p.action, p.version, p.stage, taken, counters)
        taken.add(renames[name])

    new_tags = [
        _copy(local[old], new, messages.get(old, local[old].message))
        for old, new in renames.items()
    ]
    extra = [f"update refs/tags/{n} {incoming[n].sha} {local[n].sha}" for n in conflicts]
    extra += [f"delete refs/tags/{old} {local[old].sha}" for old in renames if old not in conflicts]
    if not create_tags(repo, new_tags, extra):
        raise ConcurrencyError(
            "the local tags changed while reconciling them with the remote: try again"
        )
    return [Renamed(old, new) for old, new in renames.items()]


def _free(
    name: str,
    model: str,
    action: Action,
    version: str | None,
    stage: str | None,
    taken: set[str],
    counters: dict[str, int] | None = None,
) -> str:
    """`name`, or the same tag with the next counter that is free."""
    counter = (counters or {}).get(model, parse_tag(name).counter or 0)  # type: ignore[union-attr]
    while name in taken:
        counter += 1
        name = format_tag(model, action, version=version, stage=stage, counter=counter)
    if counters is not None:
        counters[model] = counter
    return name


def _conflict_order(name: str) -> tuple[object, ...]:
    # Versions renumber in semver order, other tags in counter order.
    parsed = parse_tag(name)
    if parsed is None:
        return ("", 0, ())
    if parsed.version is not None:
        return (parsed.model, 0, semver_key(parsed.version))
    return (parsed.model, 1, (parsed.counter or 0,))


def _copy(raw: RawTag, name: str, message: str) -> NewTag:
    tagger = f"{raw.tagger_name} <{raw.tagger_email}>" if raw.tagger_email else raw.tagger_name
    return NewTag(name, raw.target, message, raw.time, tagger=tagger or None, tz=raw.tz)


def push_registry(repo: GitRepo, remote: str, timeout_s: float = 120.0) -> list[Renamed]:
    """Push every local registry tag to `remote`, renumbering local tags that clash; retry races.

    Returns the local tags that were renamed on the way.
    """
    renamed: list[Renamed] = []
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        theirs = _remote_tags(repo, remote)
        ours = {t.name: t.sha for t in read_tags(repo) if is_registry_tag(t.name) and t.annotated}
        clashes = [n for n in ours if n in theirs and theirs[n] != ours[n]]
        if clashes:
            renamed += reconcile_tags(repo, remote, clashes, theirs)
            ours = {
                t.name: t.sha for t in read_tags(repo) if is_registry_tag(t.name) and t.annotated
            }
        todo = sorted(n for n in ours if n not in theirs)
        if not todo:
            return renamed
        specs = [f"refs/tags/{n}:refs/tags/{n}" for n in todo]
        proc = _git(repo, ["push", "--atomic", "--porcelain", "--no-verify", "--", check_remote(remote), *specs])
        if proc.returncode == 0:
            return renamed
        if "rejected" not in proc.stdout and "already exists" not in proc.stdout + proc.stderr:
            raise RemoteError(f"'{remote}' refused the registry tags: {proc.stderr.strip()}")
        if time.monotonic() > deadline:
            raise ConcurrencyError(
                f"gave up pushing registry tags to '{remote}' after {timeout_s:.0f}s of races"
            )
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)
