"""Artifacts in DVC remotes: `download_artifacts`, `list_artifacts`, `load_text`, `load_dict` by URI.

Names resolve lazily: importing `gitml.artifacts` imports neither DVC nor the tracking core.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FileInfo",
    "download_artifacts",
    "format_runs_uri",
    "list_artifacts",
    "load_dict",
    "load_text",
    "resolve_runs_uri",
]

_LAZY = {
    "FileInfo": "gitml.artifacts.pointers",
    "download_artifacts": "gitml.artifacts.fluent",
    "list_artifacts": "gitml.artifacts.fluent",
    "load_dict": "gitml.artifacts.fluent",
    "load_text": "gitml.artifacts.fluent",
    "format_runs_uri": "gitml.artifacts.uri",
    "resolve_runs_uri": "gitml.artifacts.uri",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gitml.artifacts' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
