"""Bounded decoding of anything read from a remote: size cap, depth limit, no YAML aliases,
integers that fit SQLite and every consumer (64-bit), floats that are floats.

Everything gitml reads back from the metadata branch, tags or model folders goes through
`load_json` / `load_yaml` (or `check_tree` after another parser); a violation is one
`CorruptMetadata` naming the item, so the caller can skip it and keep the rest readable.
Branch files are then checked by their JSON Schema, whose integer fields carry the 64-bit
range (so `load_*(..., walk=False)` there: the schema is the faster check).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import yaml

from gitml.exceptions import CorruptMetadata

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "NoAliasDumper",
    "check_int",
    "check_tree",
    "load_json",
    "load_yaml",
]

MAX_FILE_BYTES = 64 << 20  # one metadata file; the largest real ones (params of a sweep) are KBs
MAX_DEPTH = 32  # gitml's own files nest 4 deep at most
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

try:  # libyaml when present: ten times faster than the pure-Python codec
    _Loader: Any = yaml.CSafeLoader
    _BaseDumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Loader, _BaseDumper = yaml.SafeLoader, yaml.SafeDumper


class NoAliasDumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """A safe dumper that never writes anchors/aliases (readers refuse them)."""

    def ignore_aliases(self, data: Any) -> bool:
        """Always: an object met twice is written out twice."""
        return True


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _check_size(data: bytes | str, what: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise CorruptMetadata(f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit")


def check_int(value: Any, what: str) -> int:
    """`value` as a 64-bit integer, or CorruptMetadata naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
        raise CorruptMetadata(f"{what}: {str(value)[:40]!r} is not a 64-bit integer")
    return value


def check_tree(obj: Any, what: str, max_depth: int = MAX_DEPTH, int64: bool = True) -> Any:
    """Walk a parsed value (without recursion): depth at most `max_depth`, integers 64-bit,
    floats finite or the float overflow of a literal (JSON's 1e400 reads as inf, which is fine)."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth >= max_depth:
                raise CorruptMetadata(f"{what} nests deeper than {max_depth} levels")
            for k, v in node.items():
                if not isinstance(k, str | int | float | bool) and k is not None:
                    raise CorruptMetadata(f"{what} has a key of type {type(k).__name__}")
                stack.append((v, depth + 1))
        elif isinstance(node, list | tuple):
            if depth >= max_depth:
                raise CorruptMetadata(f"{what} nests deeper than {max_depth} levels")
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, int) and not isinstance(node, bool):
            if int64 and not INT64_MIN <= node <= INT64_MAX:
                raise CorruptMetadata(f"{what} holds an integer out of the 64-bit range ({str(node)[:20]}...)")
        elif node is None or isinstance(node, str | float | bool | datetime.date):
            continue
        else:  # a YAML set, bytes...: not what gitml writes
            raise CorruptMetadata(f"{what} holds a value of type {type(node).__name__}")
    return obj


def load_json(
    data: bytes | str,
    what: str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    max_depth: int = MAX_DEPTH,
    int64: bool = True,
    walk: bool = True,
) -> Any:
    """Parse JSON read from a remote, bounded; CorruptMetadata names `what` on any violation."""
    _check_size(data, what, max_bytes)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError, MemoryError) as e:  # ValueError: also a 5,000-digit int
        raise CorruptMetadata(f"{what} does not parse: {_first_line(e)}") from e
    # `walk=False` for data a schema checks next (its ranges bound the integers): the walk
    # costs ~100 us for a 20-key file, the parser's own recursion limit already bounds depth.
    return check_tree(obj, what, max_depth, int64) if walk else obj


def _has_alias(data: bytes | str) -> bool:
    marks = (b"&", b"*") if isinstance(data, bytes) else ("&", "*")
    if marks[0] not in data and marks[1] not in data:  # type: ignore[operator]
        return False  # the common case: no anchor or alias character at all
    for event in yaml.parse(data, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            return True
    return False


def load_yaml(
    data: bytes | str,
    what: str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    max_depth: int = MAX_DEPTH,
    int64: bool = True,
    walk: bool = True,
) -> Any:
    """Parse YAML read from a remote with the safe loader, refusing anchors and aliases (an
    alias bomb expands to gigabytes), bounded like `load_json`."""
    _check_size(data, what, max_bytes)
    try:
        if _has_alias(data):
            raise CorruptMetadata(f"{what} uses YAML anchors or aliases, which gitml never writes")
        obj = yaml.load(data, Loader=_Loader)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, ValueError, RecursionError, MemoryError) as e:
        raise CorruptMetadata(f"{what} does not parse: {_first_line(e)}") from e
    # `walk=False` for data a schema checks next (its ranges bound the integers): the walk
    # costs ~100 us for a 20-key file, the parser's own recursion limit already bounds depth.
    return check_tree(obj, what, max_depth, int64) if walk else obj
