"""Registry tags in Git: read them all with one `git for-each-ref`, create them atomically."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gitml.exceptions import RepositoryError
from gitml.store.repo import GitRepo

__all__ = ["NewTag", "RawTag", "create_tags", "read_tags", "refs_stamp", "tag_exists"]

_FIELDS = (
    "%(refname)%1f%(objecttype)%1f%(objectname)%1f%(object)%1f%(type)%1f"
    "%(taggerdate:raw)%1f%(taggername)%1f%(taggeremail:trim)%1f%(contents)%1e"
)
_ZERO = "0" * 40


@dataclass(frozen=True, slots=True)
class RawTag:
    """One tag as Git stores it; `annotated` is False for lightweight tags (GTO ignores those)."""

    name: str  # without refs/tags/
    sha: str  # the tag object (the commit for a lightweight tag)
    target: str  # the object it tags
    target_type: str
    annotated: bool
    time: int  # tagger time, seconds since the epoch
    tz: str
    tagger_name: str
    tagger_email: str
    message: str


@dataclass(frozen=True, slots=True)
class NewTag:
    """A tag to create: annotated, pointing at a commit, with a tagger time."""

    name: str
    target: str
    message: str
    time: int
    tagger: str | None = None  # "Name <email>"; default: the repository's identity
    tz: str | None = None  # "+0100"; default: the local time zone


def _git(
    repo: GitRepo, args: list[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo.git_dir, input=stdin, capture_output=True, text=True, check=False
    )


# directory -> (its stat, its sub-directories): a directory whose stat is unchanged has the
# same entries, so only changed directories are listed again (refs/tags may hold 10,000 files).
_SUBDIRS: dict[str, tuple[tuple[int, int], list[str]]] = {}
_SUBDIRS_LOCK = threading.Lock()


def refs_stamp(repo: GitRepo) -> tuple[object, ...] | None:
    """What changes whenever a tag is created, moved or deleted; None when it cannot be told.

    Git writes refs by renaming a lock file into place, which changes the mtime of the
    directory holding the ref; packed refs live in one file. So the stamps of packed-refs
    and of every directory under refs/tags tell whether the tags changed. A stamp younger
    than the file system's clock tick could miss a second change in the same tick, so such
    a stamp is not returned (None: read again), as Git treats a "racily clean" index.
    """
    common = repo.common_dir
    if (common / "reftable").exists():
        return None
    stamp: list[object] = []
    newest = 0
    try:
        st = os.stat(common / "packed-refs")
        stamp.append(("packed", st.st_mtime_ns, st.st_size, st.st_ino))
        newest = st.st_mtime_ns
    except FileNotFoundError:
        stamp.append(("packed", None))
    stack = [str(common / "refs" / "tags")]
    while stack:
        path = stack.pop()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            stamp.append((path, None))
            continue
        key = (st.st_mtime_ns, st.st_ino)
        with _SUBDIRS_LOCK:
            known = _SUBDIRS.get(path)
        if known is None or known[0] != key:
            try:
                with os.scandir(path) as entries:
                    subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except FileNotFoundError:
                continue
            with _SUBDIRS_LOCK:
                _SUBDIRS[path] = (key, subdirs)
        else:
            subdirs = known[1]
        stack.extend(subdirs)
        stamp.append((path, *key))
        newest = max(newest, st.st_mtime_ns)
    if time.time_ns() - newest < _RACY_NS:
        return None
    return tuple(stamp)


# Coarser than any file system clock tick Git runs on (Linux: a jiffy, 1 to 10 ms).
_RACY_NS = 50_000_000


def read_tags(repo: GitRepo, namespace: str = "refs/tags") -> list[RawTag]:
    """Every tag of the repository (or refs under `namespace`), read with one `git for-each-ref`."""
    proc = _git(repo, ["for-each-ref", namespace, f"--format={_FIELDS}"])
    if proc.returncode != 0:
        raise RepositoryError(f"cannot list tags: {proc.stderr.strip()}")
    out: list[RawTag] = []
    for record in proc.stdout.split("\x1e\n"):
        if not record:
            continue
        fields = record.split("\x1f", 8)
        if len(fields) != 9:
            continue
        ref, kind, sha, target, target_type, date, tagger, email, message = fields
        annotated = kind == "tag"
        stamp, _, tz = date.partition(" ")
        out.append(
            RawTag(
                name=ref[len(namespace) + 1 :],
                sha=sha,
                target=target if annotated else sha,
                target_type=target_type if annotated else kind,
                annotated=annotated,
                time=int(stamp) if stamp.isdigit() else 0,
                tz=tz or "+0000",
                tagger_name=tagger,
                tagger_email=email,
                message=message,
            )
        )
    return out


_tz_lock = threading.Lock()


def _local_tz() -> str:
    with _tz_lock:
        return time.strftime("%z") or "+0000"


def _tag_object(repo: GitRepo, tag: NewTag) -> str:
    body = (
        f"object {tag.target}\ntype commit\ntag {tag.name}\n"
        f"tagger {tag.tagger or repo.identity()} {tag.time} {tag.tz or _local_tz()}\n\n{tag.message.rstrip()}\n"
    )
    return repo.objects.write("tag", body.encode())


def create_tags(repo: GitRepo, tags: Sequence[NewTag], extra: Sequence[str] = ()) -> bool:
    """Create all `tags` in one ref transaction, or none; False if one of the names exists.

    Each ref is created with the all-zero old value, so Git refuses to overwrite a tag
    that another process created first: the caller re-reads and retries with new names.
    `extra` holds more `git update-ref --stdin` commands for the same transaction.
    """
    if not tags and not extra:
        return True
    lines = ["start"]
    for tag in tags:
        lines.append(f"create refs/tags/{tag.name} {_tag_object(repo, tag)}")
    lines += [*extra, "prepare", "commit", ""]
    proc = _git(repo, ["update-ref", "--stdin"], stdin="\n".join(lines))
    if proc.returncode == 0:
        return True
    err = proc.stderr
    if "already exists" in err or "cannot lock ref" in err or "reference already exists" in err:
        return False
    raise RepositoryError(f"cannot create tags {[t.name for t in tags]}: {err.strip()}")


def tag_exists(repo: GitRepo, name: str) -> bool:
    """Whether refs/tags/<name> exists."""
    return repo.read_ref(f"refs/tags/{name}") is not None
