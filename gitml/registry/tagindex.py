"""A disposable on-disk index of the repository's tags, so a new process reads them without Git.

`.git/gitml/registry-tags.json` holds every tag as `read_tags` returns it, with the refs
stamp it was read at. A process whose stamp matches loads it and starts no Git process;
otherwise it lists the tags cheaply (names and hashes only), reads only tag objects it has
not seen, and writes the index again. Deleting the file is always safe.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from gitml.exceptions import RepositoryError
from gitml.registry.refs import RawTag, list_refs, parse_tag_object, read_tags
from gitml.store.repo import GitRepo

__all__ = ["INDEX_FILE", "load_tags", "parse_tag_object"]

INDEX_FILE = "registry-tags.json"
_FORMAT = 1
# With more unseen tag objects than this, one `for-each-ref` reading all is faster.
_MAX_SINGLE_READS = 300


def _jsonable(stamp: tuple[object, ...]) -> Any:
    return json.loads(json.dumps(stamp))


def _read_index(repo: GitRepo) -> dict[str, Any] | None:
    try:
        with open(repo.state_dir / INDEX_FILE, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != _FORMAT
        or not isinstance(data.get("tags"), list)
    ):
        return None
    return data


def _write_index(repo: GitRepo, stamp: tuple[object, ...], tags: list[RawTag]) -> None:
    rows = [
        [
            t.name,
            t.sha,
            t.target,
            t.target_type,
            t.annotated,
            t.time,
            t.tz,
            t.tagger_name,
            t.tagger_email,
            t.message,
        ]
        for t in tags
    ]
    body = json.dumps({"format": _FORMAT, "stamp": stamp, "tags": rows}, ensure_ascii=False)
    try:
        repo.state_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=repo.state_dir, prefix=".registry-tags-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, repo.state_dir / INDEX_FILE)
    except OSError:  # a read-only repository: the index is only an optimisation
        return


def _row_tag(row: list[Any]) -> RawTag | None:
    try:
        name, sha, target, ttype, annotated, when, tz, tagger, email, message = row
        return RawTag(
            str(name),
            str(sha),
            str(target),
            str(ttype),
            bool(annotated),
            int(when),
            str(tz),
            str(tagger),
            str(email),
            str(message),
        )
    except (TypeError, ValueError):
        return None


def _listing(repo: GitRepo) -> list[tuple[str, str, str]] | None:
    try:
        return list_refs(repo)
    except RepositoryError:
        return None


def load_tags(repo: GitRepo, stamp: tuple[object, ...] | None) -> list[RawTag]:
    """Every tag, from the index when `stamp` (refs_stamp) matches it, else from Git (updating it)."""
    index = _read_index(repo)
    if index is not None and stamp is not None and index.get("stamp") == _jsonable(stamp):
        rows = [_row_tag(r) for r in index["tags"]]
        if all(t is not None for t in rows):
            return [t for t in rows if t is not None]
    tags = _incremental(repo, index) if index is not None else None
    if tags is None:
        tags = read_tags(repo)
    if stamp is not None:
        _write_index(repo, stamp, tags)
    return tags


def _incremental(repo: GitRepo, index: dict[str, Any]) -> list[RawTag] | None:
    """The tags, re-using the index for tag objects already read; None to read them all."""
    listing = _listing(repo)
    if listing is None:
        return None
    known: dict[str, RawTag] = {}
    for row in index["tags"]:
        tag = _row_tag(row)
        if tag is not None:
            known[tag.sha] = tag
    missing = [(sha, name) for sha, kind, name in listing if kind == "tag" and sha not in known]
    if len(missing) > _MAX_SINGLE_READS:
        return None
    out: list[RawTag] = []
    for sha, kind, name in listing:
        tag = known.get(sha)
        if tag is not None:
            out.append(tag if tag.name == name else _renamed(tag, name))
        elif kind != "tag":  # lightweight: it points at the object itself
            out.append(RawTag(name, sha, sha, kind, False, 0, "+0000", "", "", ""))
        else:
            objtype, data = repo.objects.read(sha)
            if objtype != "tag":
                return None
            out.append(parse_tag_object(name, sha, data))
    return out


def _renamed(tag: RawTag, name: str) -> RawTag:
    return RawTag(
        name,
        tag.sha,
        tag.target,
        tag.target_type,
        tag.annotated,
        tag.time,
        tag.tz,
        tag.tagger_name,
        tag.tagger_email,
        tag.message,
    )
