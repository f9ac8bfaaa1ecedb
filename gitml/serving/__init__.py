"""The scoring server: MLflow's /invocations formats on Starlette, batched, with Prometheus metrics.

Importing this package is cheap; Starlette, uvicorn, numpy and the model's framework load
only when a server is built.
"""

from __future__ import annotations

__all__ = ["ServeOptions", "create_app", "resolve_ref", "serve"]


def __getattr__(name: str) -> object:
    if name in ("ServeOptions", "create_app"):
        from gitml.serving import app

        return getattr(app, name)
    if name == "serve":
        from gitml.serving.server import serve

        return serve
    if name == "resolve_ref":
        from gitml.serving.loading import resolve_ref

        return resolve_ref
    raise AttributeError(f"module 'gitml.serving' has no attribute {name!r}")
