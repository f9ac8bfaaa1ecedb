"""The exposition parses as Prometheus text, and workers' counters add up."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gitml.serving.app import ServeOptions, model_threads_for
from gitml.serving.loading import ModelRef
from gitml.serving.metrics import ServingMetrics


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def test_exposition_parses_and_counts() -> None:
    m = ServingMetrics()
    m.request("/invocations", 200)
    m.request("/invocations", 200)
    m.request("/invocations", 400)
    m.latency.observe(0.003)
    m.latency.observe(7.0)
    m.model_call("cnn", "3", rows=5, ok=True)
    m.model_call("cnn", "3", rows=2, ok=False)
    m.model_info = {"model": 'we"ird\\name', "version": "3", "uri": "models:/cnn/Production"}
    f = families(m.render())
    assert ({"endpoint": "/invocations", "status": "200"}, 2.0) in f["gitml_requests_total"]
    buckets = dict((s[0]["le"], s[1]) for s in f["gitml_request_duration_seconds_bucket"])
    assert buckets["0.005"] == 1 and buckets["5.0"] == 1 and buckets["+Inf"] == 2
    assert f["gitml_request_duration_seconds_count"][0][1] == 2
    assert f["gitml_batch_rows_sum"][0][1] == 7
    assert f["gitml_predictions_total"] == [({"model": "cnn", "version": "3"}, 5.0)]
    assert f["gitml_prediction_errors_total"] == [({"model": "cnn", "version": "3"}, 2.0)]
    assert f["gitml_model_info"][0][0]["model"] == 'we"ird\\name'
    assert f["gitml_model_loaded"][0][1] == 1


def test_workers_counters_are_summed(tmp_path: Path) -> None:
    mine = ServingMetrics(tmp_path)
    mine.request("/invocations", 200)
    mine.model_call("m", "1", rows=4, ok=True)
    mine.latency.observe(0.003)
    other = ServingMetrics(tmp_path)
    other.request("/invocations", 200)
    other.request("/ping", 503)
    other.model_call("m", "1", rows=6, ok=True)
    other.latency.observe(7.0)
    (tmp_path / "999999.json").write_text(json.dumps(other.snapshot()))  # another worker's pid
    (tmp_path / "1000000.json").write_text("{half a wri")  # a worker mid-write is skipped
    f = families(mine.render())
    assert ({"endpoint": "/invocations", "status": "200"}, 2.0) in f["gitml_requests_total"]
    assert ({"endpoint": "/ping", "status": "503"}, 1.0) in f["gitml_requests_total"]
    assert f["gitml_predictions_total"][0][1] == 10
    assert f["gitml_workers"][0][1] == 2
    assert f["gitml_batch_rows_count"][0][1] == 2
    buckets = dict((s[0]["le"], s[1]) for s in f["gitml_request_duration_seconds_bucket"])
    assert buckets["0.005"] == 1 and buckets["+Inf"] == 2
    mine.write_snapshot()
    assert json.loads((tmp_path / f"{os.getpid()}.json").read_text())


@pytest.mark.parametrize(
    ("threads", "workers", "omp", "expected"),
    [
        (3, 1, None, 3),
        (0, 1, "4", None),
        (0, 64, None, 1),
        (0, 1, None, len(os.sched_getaffinity(0))),
    ],
)
def test_model_threads(
    threads: int,
    workers: int,
    omp: str | None,
    expected: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    options = ServeOptions(ref=ModelRef("x", "x"), workers=workers, model_threads=threads)
    assert model_threads_for(options) == expected


def test_options_round_trip_for_workers() -> None:
    options = ServeOptions(ref=ModelRef("models:/m/1", "models:/m/1", "m", "1"), max_wait_ms=2.5)
    assert ServeOptions.from_json(options.to_json()) == options


def test_histograms_expose_what_prometheus_client_would() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from gitml.serving.metrics import LATENCY_BUCKETS

    values = [0.0, 0.0005, 0.0007, 0.001, 0.3, 10.0, 11.0, 0.0025]  # bounds land in their bucket
    m = ServingMetrics()
    reference = CollectorRegistry()
    theirs = Histogram("gitml_request_duration_seconds", "Time to answer /invocations.", ["endpoint"],
                       buckets=LATENCY_BUCKETS, registry=reference).labels("/invocations")  # fmt: skip
    for v in values:
        m.latency.observe(v)
        theirs.observe(v)

    def samples(text: str) -> list[Any]:
        return [s for fam in text_string_to_metric_families(text) for s in fam.samples
                if fam.name == "gitml_request_duration_seconds"]  # fmt: skip

    assert samples(m.render()) == samples(generate_latest(reference).decode())
