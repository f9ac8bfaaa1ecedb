"""The scoring server's Prometheus metrics: counted as plain numbers, written by
`prometheus_client`.

The hot path only adds to dicts and lists (see `_Histogram` for why, with figures);
`prometheus_client` turns them into families when `/metrics` is read. Each worker counts in its own in-process registry. With several workers (`--workers N`) each
writes a snapshot of its samples beside the others once a second, and whichever worker
answers `/metrics` adds them up. That summing is ours, not prometheus_client's multi-process
mode: measured A/B with two workers, its memory-mapped values cost 42% more server CPU per
one-row request (442 against 310 us, medians of 3 rounds) and 16% fewer requests/s (762
against 902; an earlier run: 26% fewer), while one worker measured the same either way
(-4.5% CPU, +12% requests/s: noise). A metric update costs about 5 us in-process and
46-60 us in multi-process mode (medians, same machine).
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "ServingMetrics"]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# `_created` series (one per counter and histogram) say when each began: noise on /metrics.
disable_created_metrics()

# (family name, type, help, [(sample name, labels, value)])
Snapshot = list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]


def _snapshot(registry: CollectorRegistry) -> Snapshot:
    return [
        (f.name, f.type, f.documentation, [(s.name, dict(s.labels), s.value) for s in f.samples])
        for f in registry.collect()
    ]


class _Summed(Collector):
    """This worker's counters plus the other workers' latest snapshots, sample by sample."""

    def __init__(self, owner: ServingMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        totals: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for snap in [_snapshot(self.owner.own), *self.owner.others()]:
            for name, kind, doc, samples in snap:
                if name not in families:
                    families[name] = Metric(name, doc, kind)
                    totals[name] = {}
                table = totals[name]
                for sample, labels, value in samples:
                    key = (sample, tuple(sorted(labels.items())))
                    table[key] = table.get(key, 0.0) + float(value)
        for name, family in families.items():
            for (sample, pairs), value in totals[name].items():
                family.add_sample(sample, dict(pairs), value)
            yield family


class _Model(Collector):
    """The model this worker serves, read at scrape time (not summed over workers)."""

    def __init__(self, owner: ServingMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        m = self.owner
        if m.model_info:
            info = Metric("gitml_model_info", "The model being served (value 1).", "gauge")
            info.add_sample("gitml_model_info", {k: str(v) for k, v in m.model_info.items()}, 1)
            yield info
        for name, doc, value in (
            ("gitml_model_loaded", "1 when a model is loaded and /ping answers 200.",
             1 if m.model_info else 0),
            ("gitml_model_load_seconds", "Seconds the current model took to load.",
             m.model_load_seconds),
            ("gitml_start_time_seconds", "Unix time the server started.", m.started),
        ):  # fmt: skip
            family = Metric(name, doc, "gauge")
            family.add_sample(name, {}, float(value))
            yield family


class _Histogram:
    """A histogram's bucket counts as plain numbers, updated on the event loop only.

    prometheus_client's `Histogram.observe` takes a lock and walks the buckets: about 2.5 us,
    against 0.3 us here, and the server made two observations and four other updates per
    request (about 10 us of a one-row request's 60 us in the app). The exposition is still
    prometheus_client's, from `family()`.
    """

    __slots__ = ("bounds", "counts", "doc", "labels", "name", "total")

    def __init__(
        self, name: str, doc: str, bounds: Iterable[float], labels: dict[str, str] | None = None
    ) -> None:
        self.name, self.doc, self.labels = name, doc, labels or {}
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: over every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (`le` buckets: a value equal to a bound is in that bucket)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self) -> Metric:
        """The histogram as Prometheus samples: cumulative buckets, count and sum."""
        family = Metric(self.name, self.doc, "histogram")
        running = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            family.add_sample(
                f"{self.name}_bucket", {**self.labels, "le": floatToGoString(bound)}, running
            )
        family.add_sample(f"{self.name}_count", dict(self.labels), running)
        family.add_sample(f"{self.name}_sum", dict(self.labels), self.total)
        return family


class _Counts(Collector):
    """This worker's own counters, kept as plain numbers by `ServingMetrics`."""

    def __init__(self, owner: ServingMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        m = self.owner
        yield _counter("gitml_requests", "HTTP requests answered, by endpoint and status.",
                       ("endpoint", "status"), m.requests)  # fmt: skip
        yield m.latency.family()
        yield m.batch_rows.family()
        yield _counter("gitml_predictions", "Rows predicted, by model and version.",
                       ("model", "version"), m.predictions)  # fmt: skip
        yield _counter("gitml_prediction_errors", "Rows whose model call raised.",
                       ("model", "version"), m.errors)  # fmt: skip
        yield _counter("gitml_model_switches", "Model versions switched to by --follow.",
                       (), {(): m.switches})  # fmt: skip
        for name, doc, value in (
            ("gitml_requests_in_flight", "Requests being answered now.", m.in_flight),
            ("gitml_workers", "Worker processes reporting.", 1),
        ):
            family = Metric(name, doc, "gauge")
            family.add_sample(name, {}, float(value))
            yield family


def _counter(
    name: str, doc: str, labels: tuple[str, ...], values: Mapping[Any, float]
) -> Metric:
    family = Metric(name, doc, "counter")
    for key, value in values.items():
        family.add_sample(
            f"{name}_total", {k: str(v) for k, v in zip(labels, key, strict=True)}, float(value)
        )
    return family


class ServingMetrics:
    """The counters of one worker, and the text of all workers together."""

    def __init__(self, share_dir: str | Path | None = None) -> None:
        import time

        self.started = time.time()
        self.model_info: dict[str, str] = {}
        self.model_load_seconds = 0.0
        self.share_dir = Path(share_dir) if share_dir else None
        self.requests: dict[tuple[str, int], int] = {}
        self.latency = _Histogram("gitml_request_duration_seconds", "Time to answer /invocations.",
                                  LATENCY_BUCKETS, {"endpoint": "/invocations"})  # fmt: skip
        self.batch_rows = _Histogram("gitml_batch_rows", "Rows per model call (requests merged by the batcher).",
                                     BATCH_BUCKETS)  # fmt: skip
        self.predictions: dict[tuple[str, str], int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.in_flight = 0  # requests this worker is answering now
        self.switches = 0  # model versions this worker switched to (`--follow`)
        self.own = CollectorRegistry(auto_describe=False)
        self.own.register(_Counts(self))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Summed(self))
        self.registry.register(_Model(self))

    def request(self, endpoint: str, status: int) -> None:
        """Count one answered request."""
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def model_call(self, model: str, version: str, rows: int, ok: bool) -> None:
        """Count one model call of `rows` rows."""
        self.batch_rows.observe(rows)
        counts = self.predictions if ok else self.errors
        key = (model, version)
        counts[key] = counts.get(key, 0) + rows

    def snapshot(self) -> Snapshot:
        """This worker's samples, JSON-able."""
        return _snapshot(self.own)

    def write_snapshot(self) -> None:
        """Publish this worker's samples for the other workers (atomic rename)."""
        if self.share_dir is None:
            return
        path = self.share_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        os.replace(tmp, path)

    def others(self) -> Iterable[Snapshot]:
        """The other workers' latest snapshots (a file mid-write or unreadable is skipped)."""
        if self.share_dir is None:
            return []
        out = []
        for p in self.share_dir.glob("*.json"):
            if p.stem == str(os.getpid()):
                continue
            try:
                snap = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(snap, list):
                out.append(snap)
        return out

    def render(self) -> str:
        """The Prometheus text exposition of every worker's counters."""
        return generate_latest(self.registry).decode()
