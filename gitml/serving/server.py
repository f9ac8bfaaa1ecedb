"""Running the scoring app on uvicorn: one process, or `workers` processes on one socket.

uvloop and httptools are used when installed (the `serve` extra brings them): they roughly
double what one worker answers per second over asyncio and h11.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from gitml.config import env_value, swap_env
from gitml.serving.app import ServeOptions, create_app

__all__ = ["OPTIONS_ENV", "serve", "worker_app"]

OPTIONS_ENV = "GITML_SERVE_OPTIONS"


def _fast(module: str, fallback: str, name: str) -> str:
    try:
        __import__(module)
    except ImportError:
        return fallback
    return name


def serve(
    options: ServeOptions,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    loader: Callable[[str], Any] | None = None,
    log_level: str = "warning",
) -> int:
    """Serve until interrupted; returns the exit status (1 when the model failed to load).

    `loader(source)` replaces the pyfunc loader (one worker only: workers are new processes).
    """
    import uvicorn

    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": _fast("uvloop", "asyncio", "uvloop"),
        "http": _fast("httptools", "h11", "httptools"),
        "log_level": log_level,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }
    options = ServeOptions(**{**options.__dict__, "workers": max(1, workers)})
    if workers <= 1:
        app = create_app(options, loader)
        server = uvicorn.Server(uvicorn.Config(app, **kwargs))
        fatal: list[str] = []

        def on_fatal(message: str) -> None:
            fatal.append(message)
            server.should_exit = True

        app.state.serving.on_fatal = on_fatal
        server.run()
        return 1 if fatal else 0
    if loader is not None:
        raise ValueError("A custom loader works with one worker only")
    share = tempfile.mkdtemp(prefix="gitml-serve-metrics-")
    try:
        opts = ServeOptions(**{**options.__dict__, "metrics_dir": share})
        swap_env({OPTIONS_ENV: opts.to_json()})  # the worker processes read it
        uvicorn.run("gitml.serving.server:worker_app", factory=True, workers=workers, **kwargs)
    finally:
        shutil.rmtree(share, ignore_errors=True)
    return 0


def worker_app() -> Any:
    """The app of one worker process, built from the options its parent put in the environment."""
    return create_app(ServeOptions.from_json(env_value(OPTIONS_ENV) or "{}"))
