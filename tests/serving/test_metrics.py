"""The exposition parses as Prometheus text, and workers' counters add up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitml.serving.app import ServeOptions, model_threads_for
from gitml.serving.loading import ModelRef
from gitml.serving.metrics import MULTIPROC_ENV, ServingMetrics


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


_WORKER = """
import sys
from gitml.serving.metrics import MULTIPROC_ENV, ServingMetrics
m = ServingMetrics(sys.argv[1])
m.request("/invocations", 200)
m.model_call("m", "1", rows=int(sys.argv[2]), ok=True)
if sys.argv[3] == "render":
    sys.stdout.write(m.render())
else:
    print("counted", flush=True)
    sys.stdin.read()  # stay alive (a live worker) until the test closes stdin
"""


def test_workers_counters_are_summed(tmp_path: Path) -> None:
    # Two real worker processes in prometheus_client's multi-process mode, as `--workers 2`
    # runs them: whichever answers /metrics reports the sum of both.
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    code = [sys.executable, "-c", _WORKER, str(tmp_path)]
    first = subprocess.Popen(
        [*code, "4", "wait"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "counted"
        text = subprocess.run(
            [*code, "6", "render"], env=env, capture_output=True, text=True, check=True
        ).stdout
    finally:
        first.communicate("")
    f = families(text)
    assert f["gitml_requests_total"] == [({"endpoint": "/invocations", "status": "200"}, 2.0)]
    assert f["gitml_predictions_total"][0][1] == 10
    assert f["gitml_workers"][0][1] == 2
    assert f["gitml_batch_rows_count"][0][1] == 2


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
