"""The scoring server's Prometheus metrics, kept and written by `prometheus_client`.

One worker: the metrics live in this process's own registry. Several workers (`--workers N`):
the server sets `PROMETHEUS_MULTIPROC_DIR` before the workers start, so prometheus_client keeps
every worker's values in memory-mapped files there, and whichever worker answers `/metrics`
sums them with its `MultiProcessCollector`. What describes the model being served (its info,
load time, start time) is this worker's own state, added by a small collector.
"""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "MULTIPROC_ENV", "ServingMetrics"]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# prometheus_client's switch to multi-process mode; it must be set before a worker imports it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `_created` series (one per counter and histogram) say when each began: noise on /metrics.
disable_created_metrics()


class _ModelCollector(Collector):
    """The model this worker serves, as gauges read at scrape time (not summed over workers)."""

    def __init__(self, owner: ServingMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[GaugeMetricFamily]:
        m = self.owner
        if m.model_info:
            info = GaugeMetricFamily(
                "gitml_model_info", "The model being served (value 1).", labels=sorted(m.model_info)
            )
            info.add_metric([str(m.model_info[k]) for k in sorted(m.model_info)], 1)
            yield info
        yield GaugeMetricFamily(
            "gitml_model_loaded", "1 when a model is loaded and /ping answers 200.",
            value=1 if m.model_info else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "gitml_model_load_seconds", "Seconds the current model took to load.",
            value=m.model_load_seconds,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "gitml_start_time_seconds", "Unix time the server started.", value=m.started
        )


class ServingMetrics:
    """The counters of one worker; `render()` is the text of all workers together.

    `share_dir` is the multi-process directory (the server's `PROMETHEUS_MULTIPROC_DIR`); it
    takes effect when prometheus_client was imported with that variable set, as in a worker.
    """

    def __init__(self, share_dir: str | Path | None = None) -> None:
        from prometheus_client import values

        self.started = time.time()
        self.model_info: dict[str, str] = {}
        self.model_load_seconds = 0.0
        self.share_dir = Path(share_dir) if share_dir else None
        self.multiprocess = self.share_dir is not None and values.ValueClass is not values.MutexValue
        own = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "gitml_requests", "HTTP requests answered, by endpoint and status.",
            ["endpoint", "status"], registry=own,
        )  # fmt: skip
        duration = Histogram(
            "gitml_request_duration_seconds", "Time to answer /invocations.", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self.latency = duration.labels("/invocations")
        self.batch_rows = Histogram(
            "gitml_batch_rows", "Rows per model call (requests merged by the batcher).",
            buckets=BATCH_BUCKETS, registry=own,
        )  # fmt: skip
        self._predictions = Counter(
            "gitml_predictions", "Rows predicted, by model and version.", ["model", "version"],
            registry=own,
        )  # fmt: skip
        self._errors = Counter(
            "gitml_prediction_errors", "Rows whose model call raised.", ["model", "version"],
            registry=own,
        )  # fmt: skip
        self._switches = Counter(
            "gitml_model_switches", "Model versions switched to by --follow.", registry=own
        )
        self._in_flight = Gauge(
            "gitml_requests_in_flight", "Requests being answered now.", registry=own,
            multiprocess_mode="livesum",
        )  # fmt: skip
        workers = Gauge(
            "gitml_workers", "Worker processes reporting.", registry=own, multiprocess_mode="livesum"
        )
        workers.set(1)
        self._children: dict[tuple[Any, ...], Any] = {}  # labels() costs more than inc()
        self._in_flight_now = 0
        self._switch_count = 0
        if self.multiprocess:
            assert self.share_dir is not None
            self.registry = CollectorRegistry(auto_describe=True)
            MultiProcessCollector(self.registry, path=str(self.share_dir))
            # a worker that exits stops counting in the live gauges (in flight, workers)
            atexit.register(mark_process_dead, os.getpid(), str(self.share_dir))
        else:
            self.registry = own
        self.registry.register(_ModelCollector(self))

    def request(self, endpoint: str, status: int) -> None:
        """Count one answered request."""
        key = ("r", endpoint, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._requests.labels(endpoint, str(status))
        child.inc()

    def model_call(self, model: str, version: str, rows: int, ok: bool) -> None:
        """Count one model call of `rows` rows."""
        self.batch_rows.observe(rows)
        key = ("p" if ok else "e", model, version)
        child = self._children.get(key)
        if child is None:
            child = (self._predictions if ok else self._errors).labels(model, version)
            self._children[key] = child
        child.inc(rows)

    @property
    def in_flight(self) -> int:
        """Requests this worker is answering now."""
        return self._in_flight_now

    @in_flight.setter
    def in_flight(self, value: int) -> None:
        self._in_flight_now = value
        self._in_flight.set(value)

    @property
    def switches(self) -> int:
        """Model versions this worker switched to (`--follow`)."""
        return self._switch_count

    @switches.setter
    def switches(self, value: int) -> None:
        if value > self._switch_count:
            self._switches.inc(value - self._switch_count)
        self._switch_count = value

    def render(self) -> str:
        """The Prometheus text exposition of every worker's counters."""
        return generate_latest(self.registry).decode()
