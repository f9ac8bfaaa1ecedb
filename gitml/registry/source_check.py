"""The model source a version tag records, checked: tag messages come from whoever can push.

A registered version names its model as `runs:/<run_id>/<path>` (from `run_id` and
`artifact_path`), or by the `source` the registering user gave. Read back from a tag, that
must not name an arbitrary file of the reader's machine (`/home/u/.ssh`, `file:///etc`):
what `models:/` loads and `gitml models current` hands to deploy scripts is one of

- `runs:/<32 hex>/<confined path>`;
- a relative path without `..` (resolved where the reader works, like any relative path);
- a remote URI (`s3://`, `gs://`, `https://`, `ssh://` ...), which a loader fetches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue

__all__ = ["checked_source", "source_of"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_REMOTE = re.compile(r"(s3|gs|gcs|azure|az|abfs|abfss|wasbs|hdfs|http|https|ssh|sftp|oss|dbfs)://[^\s\x00]+")


def checked_source(value: object, where: str = "version source") -> str:
    """`value` if it is a source a version tag may name (see the module), else CorruptMetadata."""
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise CorruptMetadata(f"{where} is not a usable model source: {str(value)[:80]!r}")
    if value.startswith("runs:/"):
        from gitml.artifacts.uri import resolve_runs_uri

        try:
            resolve_runs_uri(value)
        except InvalidParameterValue as e:
            raise CorruptMetadata(f"{where}: {e.message}") from e
        return value
    if _REMOTE.fullmatch(value):
        return value
    from gitml.artifacts.paths import normalize_artifact_path

    try:
        rel = normalize_artifact_path(value, allow_root=False)
    except InvalidParameterValue as e:
        raise CorruptMetadata(
            f"{where} {value[:80]!r} names a local path outside the working folder; a tag from the "
            "shared remote may only name runs:/ URIs, remote URIs or relative paths"
        ) from e
    if ":" in rel.split("/", 1)[0]:  # file:, models:, any other scheme without a remote form
        raise CorruptMetadata(f"{where} {value[:80]!r} is not a runs:/, remote or relative source")
    return value


def source_of(meta: Mapping[str, Any], where: str = "version source") -> str | None:
    """The checked source a version's tag message names (None when it names none)."""
    run_id, path = meta.get("run_id"), meta.get("artifact_path")
    if isinstance(run_id, str) and isinstance(path, str):
        if not _RUN_ID.fullmatch(run_id):
            raise CorruptMetadata(f"{where}: run id {run_id[:80]!r} is not 32 hex digits")
        return checked_source(f"runs:/{run_id}/{path}", where)
    source = meta.get("source")
    if isinstance(source, str) and source:
        return checked_source(source, where)
    return None
