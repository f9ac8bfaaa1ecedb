"""The scoring server's guard against slow and idle clients: a deadline to read each request,
and a cap on open connections below the process's open-file limit.

uvicorn times out idle keep-alive connections but not a request that arrives slowly (a
slowloris: headers or a body sent a byte at a time) or a connection that never sends one, and
it accepts connections until the process runs out of file descriptors; then every other client
is locked out. Its `limit_concurrency` answers 503 only once a request's headers are in, so it
does not help against requests that never finish. gitml's protocol classes (one per uvicorn
parser) add what is missing:

- a **read deadline**: from the moment a connection opens (or a response is done), the next
  request must arrive whole, headers and body, within `request_timeout_s`, or the connection
  is closed;
- a **header size cap**: more than 64 KiB before a request's headers end closes the
  connection (uvicorn's httptools parser buffers headers without limit);
- a **connection cap**: past `max_connections`, the connection that has been reading a request
  the longest is closed to make room, so a flood of half-sent requests evicts itself, not the
  clients that come after it.

A request whose body has arrived is never cut: the deadline only covers reading it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from gitml.serving.app import DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT_S

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "MAX_HEADER_BYTES",
    "configure",
    "connection_cap",
    "guarded_protocol",
    "raise_open_file_limit",
]

MAX_HEADER_BYTES = 64 * 1024  # request line and headers of one request
_RESERVED_FILES = 128  # model files, the metrics folder, logs, the listening socket...


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; returns the soft limit now."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 1 << 16
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(wanted: int, open_files: int) -> int:
    """`wanted` connections, kept below the open-file limit with room for everything else."""
    return max(8, min(wanted, open_files - _RESERVED_FILES))


class _Guard:
    """Mixed into a uvicorn HTTP protocol class (see `guarded_protocol`)."""

    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # set by uvicorn's protocol classes
    connections: set[Any]
    cycle: Any
    loop: Any
    transport: Any

    _deadline: Any = None
    _reading_since: float | None = None
    _header_bytes = 0

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]
        guard = getattr(config, "gitml_guard", None)
        if guard is not None:
            self.request_timeout_s, self.max_connections = guard

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._reading_since = time.monotonic()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._reading_since = None

    def _reading(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle.response_complete or cycle.more_body

    def _expire(self) -> None:
        self._deadline = None
        if self._reading() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()
        if len(self.connections) > self.max_connections:
            self._evict()

    def _evict(self) -> None:
        # The connection reading a request the longest makes room (possibly this new one).
        reading = [
            c for c in self.connections
            if isinstance(c, _Guard) and c._reading_since is not None and c._reading()
        ]  # fmt: skip
        if reading:
            oldest = min(reading, key=lambda c: c._reading_since or 0.0)
            oldest._disarm()
            oldest.transport.close()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not cycle:
            self._header_bytes = 0  # a request's headers are complete
        elif cycle is None or cycle.response_complete:  # still in the request line and headers
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self.transport.close()  # uvicorn's httptools parser buffers headers without limit
                return
        if self._deadline is not None and not self._reading():
            self._disarm()  # the whole request is in: the app has it now

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


_BASES = {
    "GuardedHttpToolsProtocol": ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
    "GuardedH11Protocol": ("uvicorn.protocols.http.h11_impl", "H11Protocol"),
}


def __getattr__(name: str) -> Any:
    # The classes are built on first use (uvicorn, and httptools, load only in the server), yet
    # importable by name, so that uvicorn's worker processes can unpickle a config naming them.
    if name not in _BASES:
        raise AttributeError(name)
    import importlib

    module, base_name = _BASES[name]
    base = getattr(importlib.import_module(module), base_name)
    cls = type(name, (_Guard, base), {"__module__": __name__, "__qualname__": name})
    globals()[name] = cls
    return cls


def guarded_protocol(http: str) -> type:
    """uvicorn's protocol class for `http` ("httptools" or "h11") with the guard mixed in;
    it reads its limits from the uvicorn config's `gitml_guard` (see `configure`)."""
    return __getattr__("GuardedHttpToolsProtocol" if http == "httptools" else "GuardedH11Protocol")  # type: ignore[no-any-return]


def configure(config: Any, request_timeout_s: float, max_connections: int) -> None:
    """Give a uvicorn Config the guard's limits (they travel with it to worker processes)."""
    config.gitml_guard = (float(request_timeout_s), int(max_connections))
