"""Artifacts in DVC remotes: `download_artifacts`, `list_artifacts`, `load_text`, `load_dict` by URI.

Those four are MLflow's public `mlflow.artifacts` names; they use the current repository and
resolve `models:/` through the registry, so this face resolves them lazily from the fluent
floor (`gitml.fluent.artifacts`), the one upward name allowed, for MLflow's public names only.
Importing `gitml.artifacts` imports neither DVC nor the tracking core.
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
    "FileInfo": "gitml.entities",
    "download_artifacts": "gitml.fluent.artifacts",
    "list_artifacts": "gitml.fluent.artifacts",
    "load_dict": "gitml.fluent.artifacts",
    "load_text": "gitml.fluent.artifacts",
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
