"""`runs:/<run_id>/<path>` artifact URIs: parse and format."""

from __future__ import annotations

import re

from gitml.artifacts.paths import normalize_artifact_path
from gitml.exceptions import InvalidParameterValue

__all__ = ["RUNS_SCHEME", "format_runs_uri", "is_runs_uri", "resolve_runs_uri"]

RUNS_SCHEME = "runs:"
_RUN_ID = re.compile(r"^[0-9a-fA-F]{32}$")


def is_runs_uri(uri: object) -> bool:
    """Whether `uri` is a `runs:/...` URI."""
    return isinstance(uri, str) and uri.startswith(RUNS_SCHEME + "/")


def resolve_runs_uri(uri: str) -> tuple[str, str]:
    """Split `runs:/<run_id>/<path>` into (run_id, normalised path; "" for the run's root).

    The path goes through the same checks as any artifact path: `..`, NUL, backslashes
    and absolute forms are refused with InvalidPath.
    """
    if not is_runs_uri(uri):
        raise InvalidParameterValue(f"not a runs:/ URI: {uri!r} (expected runs:/<run_id>/<path>)")
    rest = uri[len(RUNS_SCHEME) :].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not _RUN_ID.match(run_id):
        raise InvalidParameterValue(f"invalid run id {run_id!r} in {uri!r}: run ids are 32 hex digits")
    return run_id.lower(), normalize_artifact_path(path)


def format_runs_uri(run_id: str, path: str | None = None) -> str:
    """`runs:/<run_id>` or `runs:/<run_id>/<path>`."""
    path = normalize_artifact_path(path)
    return f"{RUNS_SCHEME}/{run_id}/{path}" if path else f"{RUNS_SCHEME}/{run_id}"
