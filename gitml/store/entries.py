"""Tree entries read from Git: the one validator of their modes and names.

The metadata branch is written by every clone that can push, so its trees are untrusted.
Git accepts some non-canonical modes (a zero-padded `040000` is a folder to Git) and flags
others; an entry gitml misread as "not a folder" would make the next write rebuild that
folder from nothing and drop everything in it. So modes are normalised as Git reads them,
and entries Git's own fsck flags (bad modes, `.`/`..`/`.git`, names with `/` or empty,
duplicates) are refused with CorruptMetadata naming the tree.
"""

from __future__ import annotations

from gitml.exceptions import CorruptMetadata

__all__ = ["canonical_mode", "check_entry_name", "is_flagged_name"]

# Git's canonical modes, as they appear in a tree object: the fast path.
_CANONICAL = {
    b"100644": "100644",
    b"40000": "40000",
    b"100755": "100755",
    b"120000": "120000",
    b"160000": "160000",
}
_S_IFMT = 0o170000
_S_IFDIR = 0o040000
_S_IFREG = 0o100000
_S_IFLNK = 0o120000
_S_IFGITLINK = 0o160000


def canonical_mode(raw: bytes, tree: str = "a tree") -> str:
    """The canonical mode of a raw tree-entry mode, as Git reads it (`040000` is `40000`,
    `100664` is `100644`); CorruptMetadata for a mode Git could not read either."""
    mode = _CANONICAL.get(raw)
    if mode is not None:
        return mode
    if not raw or len(raw) > 7 or any(c not in b"01234567" for c in raw):
        raise CorruptMetadata(f"{tree} has an entry with a bad mode {raw[:16]!r}")
    value = int(raw, 8)
    kind = value & _S_IFMT
    if kind == _S_IFDIR:
        return "40000"
    if kind == _S_IFREG:
        return "100755" if value & 0o100 else "100644"
    if kind == _S_IFLNK:
        return "120000"
    if kind == _S_IFGITLINK:
        return "160000"
    raise CorruptMetadata(f"{tree} has an entry with a bad mode {raw.decode()!r}")


def check_entry_name(name: str, tree: str = "a tree") -> None:
    """Refuse a tree-entry name that makes paths ambiguous: empty, or holding `/` (a NUL
    cannot occur: it ends the name in the raw tree)."""
    if name and "/" not in name:
        return  # the common case, in two checks
    if not name:
        raise CorruptMetadata(f"{tree} has an entry with an empty name")
    raise CorruptMetadata(f"{tree} has an entry named {name[:80]!r}: names cannot hold '/'")


def is_flagged_name(name: str) -> bool:
    """Whether Git's fsck flags this name (`.`, `..`, `.git` in any case): never a run,
    experiment or file name gitml writes."""
    return name in (".", "..") or name.lower() == ".git"
