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
from gitml.serving.protection import (
    configure,
    connection_cap,
    guarded_protocol,
    raise_open_file_limit,
)

__all__ = ["OPTIONS_ENV", "quiet_threads", "serve", "worker_app"]

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
    quiet_threads()
    import uvicorn

    # Slow or idle clients: a deadline to read each request and a connection cap below the
    # open-file limit (gitml.serving.protection), plus uvicorn's idle keep-alive timeout.
    cap = connection_cap(options.max_connections, raise_open_file_limit())
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": _fast("uvloop", "asyncio", "uvloop"),
        "http": guarded_protocol(_fast("httptools", "h11", "httptools")),
        "log_level": log_level,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 64 * 1024,  # headers over 64 KiB: 400 (h11 parser)
    }
    options = ServeOptions(**{**options.__dict__, "workers": max(1, workers)})
    if workers <= 1:
        app = create_app(options, loader)
        config = uvicorn.Config(app, **kwargs)
        configure(config, options.request_timeout_s, cap)
        server = uvicorn.Server(config)
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
        # the worker processes read the options there
        swap_env({OPTIONS_ENV: opts.to_json()})
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config("gitml.serving.server:worker_app", factory=True, workers=workers, **kwargs)
        configure(config, options.request_timeout_s, cap)  # travels to the workers with the config
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        shutil.rmtree(share, ignore_errors=True)
    return 0


def quiet_threads() -> None:
    """Model threads that sleep while they wait (OpenMP's passive policy), unless the
    environment chose already; set before torch or a BLAS library loads OpenMP.

    OpenMP's default has idle threads spin. Measured with the seed's CNN, one row a request,
    2 model threads on 2 cores with other work on the machine (load 7-9): 12-33 requests/s
    spinning against 205-255 passive, and 1 thread answered 158-309 either way. Spinning
    threads also burn a container's CPU quota.
    """
    if env_value("OMP_WAIT_POLICY") is None:
        swap_env({"OMP_WAIT_POLICY": "PASSIVE"})


def worker_app() -> Any:
    """The app of one worker process, built from the options its parent put in the environment."""
    return create_app(ServeOptions.from_json(env_value(OPTIONS_ENV) or "{}"))
