"""The scoring server's ASGI app (Starlette): /invocations, /ping, /health, /version, /metrics.

The app starts answering at once and loads the model in a thread: `/ping` is 503 until the
model is loaded, then 200, so it means "ready" to a load balancer or a Kubernetes probe.
Errors answer MLflow's body `{"error_code", "message"}`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gitml.config import env_value
from gitml.exceptions import GitMLError, InvalidParameterValue
from gitml.serving import v2, v2_binary
from gitml.serving.batching import Batcher
from gitml.serving.formats import (
    InputSpec,
    ModelInput,
    Table,
    UnsupportedContentType,
    dump_predictions,
    input_spec,
    merge_inputs,
    merge_table,
    parse_request,
    parse_v2_body,
)
from gitml.serving.loading import LoadedModel, ModelRef, load_ref
from gitml.serving.metrics import ServingMetrics

__all__ = [
    "BodyTooLarge",
    "decode_body",
    "ScoringApp",
    "ServeOptions",
    "ServingState",
    "create_app",
    "model_threads_for",
]

DEFAULT_MAX_BODY_BYTES = 50 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT_S = 30.0
_PARSE_INLINE_BYTES = 64 * 1024  # bodies up to this size parse on the event loop (well under 1 ms)
DEFAULT_MAX_CONNECTIONS = 2048

log = logging.getLogger("gitml.serving")


class BodyTooLarge(InvalidParameterValue):
    """A request body over the configured limit (HTTP 413)."""

    status = 413


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: the resolved model, batching, limits and following."""

    ref: ModelRef
    max_batch_size: int = 256
    max_wait_ms: float = 0.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    follow: bool = False
    follow_interval_s: float = 5.0
    metrics_dir: str | None = None
    workers: int = 1
    model_threads: int = 0  # 0: automatic (see `model_threads_for`)
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S  # to read one request, headers and body
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # kept below the open-file limit
    name: str | None = None  # the name V2 clients call the model by (default: its registered name)
    repo: str | None = None  # the repository `runs:/` and `models:/` read (None: the configured one)

    def to_json(self) -> str:
        """For worker processes, which rebuild the options from the environment."""
        d = dict(self.__dict__)
        d["ref"] = dict(self.ref.__dict__)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        """The inverse of `to_json`."""
        d = json.loads(text)
        d["ref"] = ModelRef(**d["ref"])
        return cls(**d)


def model_threads_for(options: ServeOptions) -> int | None:
    """Threads for the model's math libraries (torch, BLAS, OpenMP); None leaves them alone.

    Automatic: the cores this process may use, shared by the workers. Measured on 2 cores
    with one worker, the seed's CNN answered about 1.5x more one-row requests with 2 threads
    than with 1 (the event loop mostly waits on the network while the model computes); a
    logistic regression was the same either way. OMP_NUM_THREADS set in the environment
    wins over the automatic choice.
    """
    if options.model_threads > 0:
        return options.model_threads
    if env_value("OMP_NUM_THREADS"):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, options.workers))


def _limit_threads(n: int) -> None:
    # called in the model thread: OpenMP's thread count is a per-thread setting
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    with contextlib.suppress(ImportError):
        import threadpoolctl

        threadpoolctl.threadpool_limits(n)


class ServingState:
    """The model being served, swapped atomically by `switch`, and the server's counters."""

    def __init__(self, options: ServeOptions, loader: Callable[[str], Any] | None = None) -> None:
        self.options = options
        self.loader = loader
        self.current: LoadedModel | None = None
        self.spec: InputSpec | None = None
        self.error: str | None = None
        self.metrics = ServingMetrics(options.metrics_dir)
        self.started = time.time()
        self.on_fatal: Callable[[str], None] | None = None
        self.follow_error: str | None = None
        self._labels = ("", "")
        self._threads = model_threads_for(options)
        self._threads_set: dict[int, object] = {}  # thread id -> the model limited there

    def load(self, ref: ModelRef) -> LoadedModel:
        """Load `ref` (in the calling thread); warms pandas when the model reads columns."""
        loaded = load_ref(ref, self.loader)
        spec = input_spec(loaded.model)
        if spec is None or not spec.tensor:
            with contextlib.suppress(ImportError):
                import pandas  # noqa: F401  (first DataFrame request must not pay for the import)
        return loaded

    def switch(self, loaded: LoadedModel) -> None:
        """Serve `loaded` from the next model call on; calls in flight finish on the old one."""
        self.spec = input_spec(loaded.model)
        self.current = loaded
        self.metrics.model_info = loaded.ref.labels()
        self.metrics.model_load_seconds = loaded.load_seconds

    def merge(self, inputs: list[ModelInput]) -> Any:
        """The data of one model call: a `Table` where the model scores arrays of named
        columns (no DataFrame per call), else what `merge_inputs` builds."""
        current = self.current
        if current is not None and hasattr(current.model, "predict_matrix"):
            table = merge_table(inputs)
            if table is not None:
                return table
        return merge_inputs(inputs)

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """One model call (runs in the batcher's thread)."""
        current = self.current
        if current is None:
            raise GitMLError("No model is loaded", "TEMPORARILY_UNAVAILABLE")
        self._labels = current.label
        if (
            self._threads is not None
            and self._threads_set.get(threading.get_ident()) is not current
        ):
            _limit_threads(self._threads)  # per thread: a cheap model is called on the event loop
            self._threads_set[threading.get_ident()] = current
        if isinstance(data, Table):
            return current.model.predict_matrix(data.values, data.columns, params)
        if params:
            return current.model.predict(data, params=params)
        return current.model.predict(data)

    def on_call(self, rows: int, ok: bool) -> None:
        """Count a model call (on the event loop)."""
        self.metrics.model_call(self._labels[0], self._labels[1], rows, ok)

    def health(self) -> dict[str, Any]:
        """The `/health` body."""
        status = "ok" if self.current is not None else ("failed" if self.error else "loading")
        from gitml.constants import VERSION as __version__

        return {
            "status": status,
            "model_loaded": self.current is not None,
            "model": self.current.describe() if self.current is not None else None,
            "error": self.error,
            "uptime_seconds": round(time.time() - self.started, 3),
            "gitml_version": __version__,
            "follow": self.options.follow,
            "follow_error": self.follow_error,
        }


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "message": message}).encode()


def _error(status: int, code: str, message: str) -> Any:
    from starlette.responses import Response

    return Response(_error_body(code, message), status_code=status, media_type="application/json")


class _ClientGone(Exception):
    """The client closed the connection before its request body arrived."""


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"Request body of {declared} bytes is over the limit of {limit} bytes")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """A request body sent with `Content-Encoding` gzip or deflate (Triton's and KServe's
    clients can compress requests), inflated to at most `limit` bytes: a small compressed
    body that would inflate past the limit is refused (413) before it is all in memory."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(name)
    if wbits is None:
        raise UnsupportedContentType(f"Content-Encoding {encoding!r} is not supported; use gzip or deflate")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(f"The request body inflates past the limit of {limit} bytes")
        if not inflater.eof:
            raise InvalidParameterValue(f"The {name} request body is truncated")
    except zlib.error as e:
        raise InvalidParameterValue(f"The request body is not valid {name}: {e}") from e
    return out


_JSON_HEADERS = [(b"content-type", b"application/json")]


def create_app(options: ServeOptions, loader: Callable[[str], Any] | None = None) -> Any:
    """The ASGI app serving `options.ref`; `loader(source)` replaces the pyfunc loader.

    `POST /invocations`, the hot path, is plain ASGI: Starlette's request and response
    objects and middleware cost a tenth of a one-row request's time. Every other route
    (and 405 for a wrong method, 404, lifespan) is Starlette's.
    """
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    if options.repo is not None:
        from gitml import config

        config.set_tracking_uri(options.repo)  # runs:/ and models:/ read this repository
    state = ServingState(options, loader)
    batcher = Batcher(
        state.predict, options.max_batch_size, options.max_wait_ms, state.on_call, state.merge
    )
    metrics = state.metrics
    # Two threads parse big bodies; more would only contend for the GIL with the event loop.
    parsers = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="gitml-parse")

    def hot_path(handler: Any, label: str) -> Any:
        """A plain-ASGI endpoint around `handler(scope, receive) -> (status, body[, headers])`
        (JSON unless headers are given): counted, timed, and silent when the client left
        before sending its body."""

        async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
            started = time.perf_counter()
            metrics.in_flight += 1
            try:
                result = await handler(scope, receive)
            except _ClientGone:
                return
            finally:
                metrics.in_flight -= 1
            status, body = result[0], result[1]
            headers = [*(result[2] if len(result) > 2 else _JSON_HEADERS), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            metrics.request(label, status)
            metrics.latency.observe(time.perf_counter() - started)

        return endpoint

    async def _invoke(scope: dict[str, Any], receive: Any) -> tuple[int, bytes]:
        if state.current is None:
            message = state.error or "The model is still loading"
            return 503, _error_body("TEMPORARILY_UNAVAILABLE", message)
        try:
            body = await _read_body(scope, receive, options.max_body_bytes)
            content_type = _header(scope, b"content-type")
            encoding = _header(scope, b"content-encoding")
            if len(body) <= _PARSE_INLINE_BYTES and encoding is None:  # the common small request
                inp = parse_request(body, content_type, state.spec)
            else:  # a big or compressed body is read off the event loop: /ping and small requests go on
                loop = asyncio.get_running_loop()
                inp = await loop.run_in_executor(
                    parsers, lambda: parse_request(decoded(body, encoding), content_type, state.spec)
                )
            return 200, dump_predictions(await batcher.submit(inp))
        except GitMLError as e:
            status = getattr(e, "status", None) or e.get_http_status_code()
            return status, _error_body(e.error_code, e.message)
        except _ClientGone:
            raise
        except Exception as e:  # the model's own failure: answer, count, keep serving
            message = f"Model prediction failed: {type(e).__name__}: {e}"
            return 500, _error_body("INTERNAL_ERROR", message)

    def decoded(body: bytes, encoding: str | None) -> bytes:
        return decode_body(body, encoding, options.max_body_bytes)

    def _parse_v2(body: bytes, header_length: str | None, encoding: str | None = None) -> tuple[dict[str, Any], Any, Any]:
        # the binary extension's header length counts the uncompressed JSON (Triton's clients)
        head, binary = v2_binary.split_body(decoded(body, encoding), header_length)
        payload = parse_v2_body(head)
        if binary:
            v2_binary.decode_inputs(payload, binary)
        want = v2_binary.requested_outputs(payload) if "outputs" in payload or "parameters" in payload else None
        return payload, v2.parse_infer(payload, state.spec), want

    def served() -> tuple[str, str]:
        current = state.current
        ref = current.ref if current is not None else options.ref
        return options.name or ref.labels()["model"], ref.version

    async def _v2_infer(scope: dict[str, Any], receive: Any) -> tuple[Any, ...]:
        try:
            name, version = served()
            _, _, action = v2.check_model(scope["path"], name, version)
            if action != "infer":
                return 405, v2.error_body("use GET for model metadata and readiness, POST .../infer to infer")
            if state.current is None:
                return 503, v2.error_body(state.error or "The model is still loading")
            body = await _read_body(scope, receive, options.max_body_bytes)
            header_length = _header(scope, v2_binary.HEADER)
            encoding = _header(scope, b"content-encoding")
            if len(body) <= _PARSE_INLINE_BYTES and encoding is None:
                payload, inp, want = _parse_v2(body, header_length)
            else:  # as for /invocations: a big or compressed body is read off the event loop
                loop = asyncio.get_running_loop()
                payload, inp, want = await loop.run_in_executor(parsers, _parse_v2, body, header_length, encoding)
            predictions = await batcher.submit(inp)
            if want is None:
                return 200, v2.dump_infer(predictions, name, version, payload.get("id"))
            out, json_length = v2_binary.dump_response(predictions, name, version, payload.get("id"), want)
            if json_length is None:
                return 200, out
            return 200, out, [(b"content-type", b"application/octet-stream"), (v2_binary.HEADER, str(json_length).encode())]
        except v2.V2NotFound as e:
            return 404, v2.error_body(e.message)
        except GitMLError as e:
            status = getattr(e, "status", None) or e.get_http_status_code()
            return status, v2.error_body(e.message)
        except _ClientGone:
            raise
        except Exception as e:  # the model's own failure: answer, count, keep serving
            return 500, v2.error_body(f"Model prediction failed: {type(e).__name__}: {e}")

    def _v2_json(status: int, body: Any) -> Any:
        return Response(json.dumps(body), status_code=status, media_type="application/json")

    async def v2_live(request: Any) -> Any:
        return _v2_json(200, {"live": True})

    async def v2_ready(request: Any) -> Any:
        ready = state.current is not None
        return _v2_json(200 if ready else 503, {"ready": ready})

    async def v2_server(request: Any) -> Any:
        from gitml.constants import VERSION as __version__

        return _v2_json(200, {"name": "gitml", "version": __version__, "extensions": [v2_binary.EXTENSION]})

    async def v2_model(request: Any) -> Any:
        name, version = served()
        try:
            _, _, action = v2.check_model(request.url.path, name, version)
        except v2.V2NotFound as e:
            return Response(v2.error_body(e.message), status_code=404, media_type="application/json")
        if action == "infer":
            return Response(v2.error_body("POST to infer"), status_code=405, media_type="application/json")
        ready = state.current is not None
        if action == "ready":
            return _v2_json(200 if ready else 503, {"name": name, "ready": ready})
        flavors = getattr(getattr(state.current, "model", None), "metadata", None)
        platform = ",".join(getattr(flavors, "flavors", {}) or {}) or "gitml"
        model = getattr(state.current, "model", None)
        meta = v2.model_metadata(
            name, version, state.spec, platform, v2.signature_outputs(model), v2.signature_columns(model)
        )
        return _v2_json(200, meta)

    async def not_reached(request: Any) -> Any:  # POST /invocations never gets to Starlette
        raise AssertionError("POST /invocations is served before Starlette's router")

    async def ping(request: Any) -> Any:
        ready = state.current is not None
        metrics.request("/ping", 200 if ready else 503)
        if ready:
            return Response("\n", media_type="application/json")
        return _error(503, "TEMPORARILY_UNAVAILABLE", state.error or "The model is still loading")

    async def health(request: Any) -> Any:
        body = state.health()
        status = 200 if state.current is not None else 503
        metrics.request("/health", status)
        return Response(json.dumps(body), status_code=status, media_type="application/json")

    async def version(request: Any) -> Any:
        from gitml.constants import VERSION as __version__

        metrics.request("/version", 200)
        return PlainTextResponse(__version__)

    async def metrics_endpoint(request: Any) -> Any:
        metrics.request("/metrics", 200)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    def load_initial() -> None:
        try:
            state.switch(state.load(options.ref))
        except Exception as e:  # reported on /ping and /health, and fatal to the server
            state.error = f"Cannot load model {options.ref.uri!r}: {type(e).__name__}: {e}"
            log.error("gitml: %s", state.error)
            if state.on_fatal is not None:
                state.on_fatal(state.error)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        threading.Thread(target=load_initial, name="gitml-load", daemon=True).start()
        tasks = []
        if options.metrics_dir:
            tasks.append(asyncio.create_task(_publish(state)))
        if options.follow and options.ref.name:
            from gitml.serving.follow import follow

            tasks.append(asyncio.create_task(follow(state)))
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            batcher.close()
            parsers.shutdown(wait=False, cancel_futures=True)

    routes = [
        Route("/invocations", not_reached, methods=["POST"]),  # 405 for other methods
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/v2/health/live", v2_live, methods=["GET"]),
        Route("/v2/health/ready", v2_ready, methods=["GET"]),
        Route("/v2", v2_server, methods=["GET"]),
        Route("/v2/", v2_server, methods=["GET"]),
        Route("/v2/models/{rest:path}", v2_model, methods=["GET"]),
    ]
    routes_app = Starlette(routes=routes, lifespan=lifespan)
    routes_app.state.serving = state
    invocations = hot_path(_invoke, "/invocations")
    v2_infer = hot_path(_v2_infer, "/v2/models/infer")
    return ScoringApp(invocations, routes_app, v2_infer)


class ScoringApp:
    """`POST /invocations` and V2 `POST .../infer` straight to their handlers, everything
    else to Starlette."""

    def __init__(self, invocations: Any, routes: Any, v2_infer: Any = None) -> None:
        self.invocations = invocations
        self.routes = routes
        self.v2_infer = v2_infer
        self.state = routes.state  # `state.serving`: the ServingState

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == "/invocations":
                await self.invocations(scope, receive, send)
                return
            if self.v2_infer is not None and path.startswith("/v2/models/"):
                await self.v2_infer(scope, receive, send)
                return
        await self.routes(scope, receive, send)


async def _publish(state: ServingState) -> None:
    # each worker's counters, once a second, for whichever worker answers /metrics
    while True:
        with contextlib.suppress(OSError):
            state.metrics.write_snapshot()
        await asyncio.sleep(1.0)
