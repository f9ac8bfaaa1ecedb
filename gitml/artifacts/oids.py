"""Content ids (DVC's md5 object names): the one validator, used wherever an id becomes a path.

An id read from a pointer, a folder manifest or a remote listing is untrusted: a crafted
"md5" such as `../../x` or `/home/u/.ssh/id_rsa` would otherwise name a file outside the
cache when DVC's `xx/<rest>` layout turns it into a path.
"""

from __future__ import annotations

import re

from gitml.exceptions import CorruptMetadata

__all__ = ["check_oid", "is_dir_oid", "is_oid"]

_OID = re.compile(r"[0-9a-f]{32}(?:\.dir)?")
_FILE_OID = re.compile(r"[0-9a-f]{32}")


def is_oid(value: object, allow_dir: bool = True) -> bool:
    """Whether `value` is a content id: 32 lowercase hex digits, with `.dir` if `allow_dir`."""
    if not isinstance(value, str):
        return False
    return (_OID if allow_dir else _FILE_OID).fullmatch(value) is not None


def check_oid(value: object, where: str = "content id", allow_dir: bool = True) -> str:
    """`value` if it is a content id, else CorruptMetadata naming `where` (and the value, shortened)."""
    if isinstance(value, str) and (_OID if allow_dir else _FILE_OID).fullmatch(value) is not None:
        return value
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    kind = "32 lowercase hex digits" + (", optionally with .dir" if allow_dir else "")
    raise CorruptMetadata(f"{where}: {shown} is not a content id ({kind})")


def is_dir_oid(value: str) -> bool:
    """Whether content id `value` names a folder manifest."""
    return value.endswith(".dir")
