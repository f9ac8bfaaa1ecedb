"""`gitml monitor`: a Prometheus exporter of the registry, refreshed at an interval.

For every registered model, the metrics of the run behind each version that holds a stage or
an alias, e.g. `gitml_model_metric{model="cnn",stage="production",version="3",
metric="accuracy"} 0.97`. The text is rebuilt in a background thread; a scrape only reads it.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gitml.entities import Run
    from gitml.registry.entities import ModelVersion

__all__ = ["MonitorServer", "RegistryReader", "collect_registry", "render_registry"]

Sample = tuple[tuple[tuple[str, Any], ...], float]


def _family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> Any:
    """One metric family of (labels, value) samples, for prometheus_client to write."""
    from prometheus_client.metrics_core import Metric

    family = Metric(name, help_text, kind)
    sample_name = f"{name}_total" if kind == "counter" else name
    for labels, value in samples:
        family.add_sample(sample_name, {k: str(v) for k, v in labels}, float(value))
    return family


_MAX_MODELS = 100_000  # as the fluent search's "all"


class RegistryReader(Protocol):
    """What the exporter reads: a RegistryClient's listings and a TrackingClient's runs (an
    MlflowClient has both)."""

    def search_registered_models(self, filter_string: str | None = None, max_results: int = 100) -> Iterable[Any]:
        """The registered models (up to `max_results`)."""

    def get_latest_versions(self, name: str) -> list[ModelVersion]:
        """The newest version of `name` per stage."""

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version `alias` points to."""

    def get_run(self, run_id: str) -> Run:
        """The run behind a version."""


class _Reader:
    """The registry and the runs behind it, over one Tracker (the configured repository)."""

    def __init__(self) -> None:
        from gitml import config
        from gitml.registry.client import RegistryClient
        from gitml.tracking.client import TrackingClient
        from gitml.tracking.tracker import get_tracker

        tracker = get_tracker(config.tracking_uri())
        self._registry = RegistryClient(tracker=tracker)
        self._runs = TrackingClient(tracker=tracker)

    def search_registered_models(self, filter_string: str | None = None, max_results: int = 100) -> Iterable[Any]:
        return self._registry.search_registered_models(filter_string, max_results)

    def get_latest_versions(self, name: str) -> list[ModelVersion]:
        return self._registry.get_latest_versions(name)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._registry.get_model_version_by_alias(name, alias)

    def get_run(self, run_id: str) -> Run:
        return self._runs.get_run(run_id)


def _client() -> RegistryReader:
    return _Reader()


def collect_registry(client: RegistryReader | None = None) -> dict[str, list[Sample]]:
    """Samples per metric name, read from the registry and the runs behind its versions."""
    client = client or _client()
    metric: list[Sample] = []
    info: list[Sample] = []
    versions_total: list[Sample] = []
    skipped: list[Sample] = []
    run_cache: dict[str, dict[str, float]] = {}

    def run_metrics(mv: Any) -> dict[str, float]:
        run_id = getattr(mv, "run_id", None)
        if not run_id:
            return dict(getattr(mv, "metrics", None) or {})
        if run_id not in run_cache:
            try:
                run_cache[run_id] = dict(client.get_run(run_id).data.metrics)
            except Exception:  # the run is not in this clone: the metrics at registration
                run_cache[run_id] = dict(getattr(mv, "metrics", None) or {})
        return run_cache[run_id]

    # Every model, not the first page: MLflow's default page is 100 models.
    for rm in client.search_registered_models(None, _MAX_MODELS):
        try:  # a model's samples count only when all of them were read
            one: tuple[list[Sample], list[Sample], list[Sample]] = ([], [], [])
            _collect_model(client, rm, run_metrics, *one)
            metric += one[0]
            info += one[1]
            versions_total += one[2]
        except Exception as e:  # one model's bad tag or run must not stop or freeze the others
            skipped.append(((("model", str(rm.name)[:200]), ("error", type(e).__name__)), 1))
    return {"metric": metric, "info": info, "versions": versions_total, "skipped": skipped}


def _number(value: Any) -> float | None:
    """A gauge value, or None for what is no number (an int too big for a float is +-inf)."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")
    except (TypeError, ValueError):
        return None


def _collect_model(
    client: RegistryReader,
    rm: Any,
    run_metrics: Callable[[Any], dict[str, float]],
    metric: list[Sample],
    info: list[Sample],
    versions_total: list[Sample],
) -> None:
    name = rm.name
    held: list[tuple[str, str, Any]] = []  # (stage or alias, kind, version)
    for mv in client.get_latest_versions(name):
        stage = str(getattr(mv, "current_stage", "None") or "None")
        if stage.lower() != "none":
            held.append((stage.lower(), "stage", mv))
    for alias in sorted(getattr(rm, "aliases", {}) or {}):
        try:
            held.append((alias, "alias", client.get_model_version_by_alias(name, alias)))
        except Exception:  # an alias whose version was deregistered since listing
            continue
    count = len(getattr(rm, "latest_versions", []) or [])
    with_latest = client.get_latest_versions(name)
    if with_latest:
        newest = max(with_latest, key=lambda v: int(v.version))
        held.append(("latest", "latest", newest))
        count = max(count, int(newest.version))
    versions_total.append(((("model", name),), count))
    for where, kind, mv in held:
        labels = (
            ("model", name),
            ("stage", where),
            ("kind", kind),
            ("version", str(mv.version)),
        )
        info.append(((*labels, ("run_id", str(getattr(mv, "run_id", "") or ""))), 1))
        for key, value in sorted(run_metrics(mv).items()):
            number = _number(value)
            if number is not None:
                metric.append(((*labels, ("metric", key)), number))


def render_registry(samples: dict[str, list[Sample]], refreshed: float, errors: int) -> str:
    """The exposition text of `collect_registry`'s samples and the exporter's own health."""
    from prometheus_client import CollectorRegistry, generate_latest

    families = [
        _family(
            "gitml_model_metric", "gauge",
            "Metric of the run behind a model version in a stage or alias.", samples.get("metric", []),
        ),
        _family(
            "gitml_model_version_info", "gauge",
            "A model version holding a stage or alias (value 1).", samples.get("info", []),
        ),
        _family(
            "gitml_model_versions", "gauge", "Highest version number of each registered model.",
            samples.get("versions", []),
        ),
        _family(
            "gitml_monitor_skipped_model", "gauge",
            "A registered model that could not be read (value 1; the error's type as a label).",
            samples.get("skipped", []),
        ),
        _family(
            "gitml_monitor_last_refresh_timestamp_seconds", "gauge",
            "Unix time of the last successful registry read.", [((), refreshed)],
        ),
        _family(
            "gitml_monitor_refresh_errors", "counter", "Registry reads that failed.", [((), errors)]
        ),
    ]  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry).decode()


class _Families:
    """A prometheus_client collector of families built beforehand."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return iter(self.families)


class MonitorServer:
    """The exporter: an HTTP server on `host:port` answering `/metrics`, refreshed every `interval`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9465,
        interval: float = 15.0,
        collect: Callable[[], dict[str, list[Sample]]] | None = None,
    ) -> None:
        self.interval = max(0.1, float(interval))
        self.collect = collect or collect_registry
        self.text = render_registry({}, 0.0, 0)
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._samples: dict[str, list[Sample]] = {}
        self._refreshed = 0.0
        # the first read is not guarded: a repository that cannot be read fails at start
        self._samples = self.collect()
        self._refreshed = time.time()
        self.text = render_registry(self._samples, self._refreshed, 0)
        self._serving = False
        self.httpd = http.server.ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self.httpd.server_address[1])

    def refresh(self) -> None:
        """Read the registry now; on failure keep the last good values and count the error."""
        try:
            samples = self.collect()
        except Exception as e:  # a registry mid-update or a repo gone: keep serving last values
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            self.text = render_registry(self._samples, self._refreshed, self.errors)
            return
        self._samples = samples
        self._refreshed = time.time()
        self.text = render_registry(samples, self._refreshed, self.errors)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                if self.path.split("?", 1)[0] in ("/metrics", "/"):
                    body = server.text.encode()
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                    status = 200
                elif self.path == "/ping":
                    body, ctype, status = b"ok\n", "text/plain", 200
                else:
                    body, ctype, status = b"not found\n", "text/plain", 404
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds would flood the terminal

        return Handler

    def _refresher(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def start(self) -> None:
        """Serve and refresh in background threads."""
        self._serving = True
        for target in (self.httpd.serve_forever, self._refresher):
            t = threading.Thread(target=target, daemon=True, name="gitml-monitor")
            t.start()
            self._threads.append(t)

    def serve_forever(self) -> None:
        """Refresh in the background and serve in the calling thread until `stop`."""
        t = threading.Thread(target=self._refresher, daemon=True, name="gitml-monitor-refresh")
        t.start()
        self._threads.append(t)
        self._serving = True
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and refreshing."""
        self._stop.set()
        if self._serving:  # shutdown() waits for a serve_forever loop that must have started
            self.httpd.shutdown()
        self.httpd.server_close()
