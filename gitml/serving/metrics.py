"""The scoring server's Prometheus metrics: plain counters on the event loop, written as text.

Everything is updated from the server's event loop thread (one per worker process), so the
hot path is a dict increment and a bisect, with no locks and no client library. With several
workers, each writes a snapshot beside the others every second and `/metrics` sums them.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "BATCH_BUCKETS",
    "LATENCY_BUCKETS",
    "Histogram",
    "ServingMetrics",
    "escape_label",
    "render_samples",
]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def escape_label(value: Any) -> str:
    """A label value escaped for Prometheus' text format."""
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, Any]]) -> str:
    inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Histogram:
    """Cumulative-on-render histogram: per-bucket counts, a sum and a count."""

    __slots__ = ("buckets", "counts", "sum", "count")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot."""
        return {"counts": self.counts, "sum": self.sum, "count": self.count}

    def add(self, snap: Mapping[str, Any]) -> None:
        """Add another worker's snapshot into this one."""
        for i, c in enumerate(snap["counts"][: len(self.counts)]):
            self.counts[i] += c
        self.sum += snap["sum"]
        self.count += snap["count"]

    def render(self, name: str, labels: tuple[tuple[str, Any], ...] = ()) -> list[str]:
        """The `_bucket`, `_sum` and `_count` lines."""
        out = []
        acc = 0
        for bound, c in zip((*self.buckets, float("inf")), self.counts, strict=True):
            acc += c
            le = "+Inf" if bound == float("inf") else str(bound)
            out.append(f"{name}_bucket{_labels((*labels, ('le', le)))} {acc}")
        out.append(f"{name}_sum{_labels(labels)} {_num(self.sum)}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


def render_samples(
    name: str,
    kind: str,
    help_text: str,
    samples: Iterable[tuple[tuple[tuple[str, Any], ...], float]],
) -> list[str]:
    """HELP, TYPE and one line per (labels, value) sample."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{_labels(labels)} {_num(value)}" for labels, value in samples)
    return lines


class ServingMetrics:
    """The counters of one worker, and the text of all workers together."""

    def __init__(self, share_dir: str | Path | None = None) -> None:
        self.started = time.time()
        self.requests: dict[tuple[str, int], int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.predictions: dict[tuple[str, str], int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.switches = 0
        self.in_flight = 0
        self.model_info: dict[str, str] = {}
        self.model_load_seconds = 0.0
        self.share_dir = Path(share_dir) if share_dir else None

    def request(self, endpoint: str, status: int) -> None:
        """Count one answered request."""
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def model_call(self, model: str, version: str, rows: int, ok: bool) -> None:
        """Count one model call of `rows` rows."""
        self.batch_rows.observe(rows)
        key = (model, version)
        table = self.predictions if ok else self.errors
        table[key] = table.get(key, 0) + rows

    def snapshot(self) -> dict[str, Any]:
        """This worker's counters as JSON-able data."""
        return {
            "pid": os.getpid(),
            "requests": [[e, s, n] for (e, s), n in self.requests.items()],
            "latency": self.latency.to_dict(),
            "batch_rows": self.batch_rows.to_dict(),
            "predictions": [[m, v, n] for (m, v), n in self.predictions.items()],
            "errors": [[m, v, n] for (m, v), n in self.errors.items()],
            "switches": self.switches,
            "in_flight": self.in_flight,
        }

    def write_snapshot(self) -> None:
        """Publish this worker's counters for the other workers (atomic rename)."""
        if self.share_dir is None:
            return
        path = self.share_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        os.replace(tmp, path)

    def _others(self) -> list[dict[str, Any]]:
        if self.share_dir is None:
            return []
        out = []
        for p in self.share_dir.glob("*.json"):
            if p.stem == str(os.getpid()):
                continue
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):  # a worker mid-write or gone: skip this scrape
                continue
        return out

    def render(self) -> str:
        """The Prometheus text exposition of every worker's counters."""
        requests = dict(self.requests)
        latency = Histogram(LATENCY_BUCKETS)
        latency.add(self.latency.to_dict())
        batch = Histogram(BATCH_BUCKETS)
        batch.add(self.batch_rows.to_dict())
        predictions = dict(self.predictions)
        errors = dict(self.errors)
        in_flight = self.in_flight
        others = self._others()
        for snap in others:
            for e, s, n in snap["requests"]:
                requests[(e, s)] = requests.get((e, s), 0) + n
            latency.add(snap["latency"])
            batch.add(snap["batch_rows"])
            for m, v, n in snap["predictions"]:
                predictions[(m, v)] = predictions.get((m, v), 0) + n
            for m, v, n in snap["errors"]:
                errors[(m, v)] = errors.get((m, v), 0) + n
            in_flight += snap["in_flight"]
        lines: list[str] = []
        lines += render_samples(
            "gitml_requests_total", "counter", "HTTP requests answered, by endpoint and status.",
            [((("endpoint", e), ("status", s)), n) for (e, s), n in sorted(requests.items())],
        )  # fmt: skip
        lines += [
            "# HELP gitml_request_duration_seconds Time to answer /invocations.",
            "# TYPE gitml_request_duration_seconds histogram",
            *latency.render("gitml_request_duration_seconds", (("endpoint", "/invocations"),)),
            "# HELP gitml_batch_rows Rows per model call (requests merged by the batcher).",
            "# TYPE gitml_batch_rows histogram",
            *batch.render("gitml_batch_rows"),
        ]
        lines += render_samples(
            "gitml_predictions_total", "counter", "Rows predicted, by model and version.",
            [((("model", m), ("version", v)), n) for (m, v), n in sorted(predictions.items())],
        )  # fmt: skip
        lines += render_samples(
            "gitml_prediction_errors_total", "counter", "Rows whose model call raised.",
            [((("model", m), ("version", v)), n) for (m, v), n in sorted(errors.items())],
        )  # fmt: skip
        if self.model_info:
            lines += render_samples(
                "gitml_model_info", "gauge", "The model being served (value 1).",
                [(tuple(sorted(self.model_info.items())), 1)],
            )  # fmt: skip
        lines += render_samples(
            "gitml_model_loaded", "gauge", "1 when a model is loaded and /ping answers 200.",
            [((), 1 if self.model_info else 0)],
        )  # fmt: skip
        lines += render_samples(
            "gitml_model_load_seconds", "gauge", "Seconds the current model took to load.",
            [((), self.model_load_seconds)],
        )  # fmt: skip
        lines += render_samples(
            "gitml_model_switches_total", "counter", "Model versions switched to by --follow.",
            [((), self.switches + sum(s.get("switches", 0) for s in others))],
        )  # fmt: skip
        lines += render_samples(
            "gitml_requests_in_flight", "gauge", "Requests being answered now.", [((), in_flight)]
        )
        lines += render_samples(
            "gitml_workers", "gauge", "Worker processes reporting.", [((), 1 + len(others))]
        )
        lines += render_samples(
            "gitml_start_time_seconds", "gauge", "Unix time the server started.",
            [((), self.started)],
        )  # fmt: skip
        return "\n".join(lines) + "\n"
