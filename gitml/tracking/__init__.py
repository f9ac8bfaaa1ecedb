"""Experiment tracking: entities, the client, the search grammar and the query index."""

from __future__ import annotations

from typing import Any

__all__ = ["GitMLClient", "MlflowClient"]


def __getattr__(name: str) -> Any:
    if name in ("MlflowClient", "GitMLClient"):
        from gitml.tracking import client

        return getattr(client, name)
    raise AttributeError(f"module 'gitml.tracking' has no attribute {name!r}")
