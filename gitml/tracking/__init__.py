"""Experiment tracking: the tracker, the tracking client, the search grammar and the query index.

`gitml.tracking.MlflowClient` is MLflow's public path to the client; the client composes this
package with the registry, so this face resolves it lazily from `gitml.client` (the one
upward name in the import table, allowed for MLflow's public names only).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GitMLClient", "MlflowClient"]


def __getattr__(name: str) -> Any:
    if name in ("MlflowClient", "GitMLClient"):
        from gitml import client

        return getattr(client, name)
    raise AttributeError(f"module 'gitml.tracking' has no attribute {name!r}")
