"""Registry tags in Git: read them all with one `git for-each-ref`, create them atomically."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gitml import constants as C
from gitml.exceptions import RepositoryError
from gitml.store.repo import GitRepo

__all__ = [
    "MAX_MESSAGE",
    "MAX_TAG_TIME",
    "NewTag",
    "RawTag",
    "create_tags",
    "list_refs",
    "parse_tag_object",
    "read_objects",
    "read_tags",
    "refs_stamp",
    "tag_exists",
]

# Tagger times past this (the year 9999) are junk: Git's own fsck flags overflowing ones,
# and Python's datetime cannot hold them. Such a tag is read with time -1 (see `bad_time`).
MAX_TAG_TIME = 253_402_300_799
# A tag message past this is not a registry event (gitml writes a few hundred bytes).
MAX_MESSAGE = 1 << 20
_ZERO = C.NULL_SHA


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


def list_refs(repo: GitRepo, namespace: str = "refs/tags") -> list[tuple[str, str, str]]:
    """(object name, object type, ref name below `namespace`) of every ref under it.

    Only Git-validated names and hex ids are printed, one ref a line: ref names can hold
    neither spaces nor newlines, so no content of any object can make a record.
    """
    proc = _git(repo, ["for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", namespace])
    if proc.returncode != 0:
        raise RepositoryError(f"cannot list tags: {proc.stderr.strip()}")
    out = []
    for line in proc.stdout.splitlines():
        sha, kind, ref = line.split(" ", 2)
        out.append((sha, kind, ref[len(namespace) + 1 :]))
    return out


def read_objects(repo: GitRepo, shas: Sequence[str]) -> dict[str, tuple[str, bytes]]:
    """{sha: (type, raw content)} read with one `git cat-file --batch`: every object comes
    with its size, so its bytes (a tag message with any separator in it) are one object."""
    if not shas:
        return {}
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo.git_dir,
        input="".join(f"{s}\n" for s in shas).encode(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RepositoryError(f"cannot read tag objects: {proc.stderr.decode(errors='replace').strip()}")
    data = proc.stdout
    out: dict[str, tuple[str, bytes]] = {}
    pos = 0
    for sha in shas:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode("ascii", "replace").split(" ")
        pos = end + 1
        if len(header) != 3:  # "<sha> missing"
            continue
        size = int(header[2])
        out[sha] = (header[1], data[pos : pos + size])
        pos += size + 1  # the object, then a newline
    return out


def parse_tag_object(name: str, sha: str, data: bytes) -> RawTag:
    """A RawTag from the raw content of an annotated tag object.

    A tagger time out of range (past the year 9999, or not a number) reads as -1, and a
    message longer than MAX_MESSAGE is cut: the caller skips such tags with a warning.
    """
    head, _, message = data.partition(b"\n\n")
    fields: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\n"):
        key, _, value = line.partition(" ")
        fields.setdefault(key, value)
    tagger = fields.get("tagger", "")
    who, _, rest = tagger.rpartition(">")
    tagger_name, _, email = who.partition(" <")
    when, _, tz = rest.strip().partition(" ")
    seconds = int(when) if when.isdigit() and len(when) <= 12 else -1
    if seconds > MAX_TAG_TIME:
        seconds = -1
    return RawTag(
        name=name,
        sha=sha,
        target=fields.get("object", ""),
        target_type=fields.get("type", ""),
        annotated=True,
        time=seconds if tagger else 0,
        tz=tz or "+0000",
        tagger_name=tagger_name.strip(),
        tagger_email=email.strip(),
        message=message[:MAX_MESSAGE].decode("utf-8", "replace"),
    )


def read_tags(repo: GitRepo, namespace: str = "refs/tags") -> list[RawTag]:
    """Every tag of the repository (or refs under `namespace`).

    Names come from `for-each-ref` (names and ids only); annotated tag objects are read
    whole, length-prefixed, by `cat-file --batch`, and parsed here: no tag message can be
    mistaken for a field or a record of another tag.
    """
    listing = list_refs(repo, namespace)
    objects = read_objects(repo, sorted({sha for sha, kind, _ in listing if kind == "tag"}))
    out: list[RawTag] = []
    for sha, kind, name in listing:
        if kind != "tag":  # lightweight: it points at the object itself
            out.append(RawTag(name, sha, sha, kind, False, 0, "+0000", "", "", ""))
            continue
        obj = objects.get(sha)
        if obj is None or obj[0] != "tag":
            continue
        out.append(parse_tag_object(name, sha, obj[1]))
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
