"""`gitml monitor`: registry metrics as Prometheus gauges, refreshed as the registry moves."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitml.serving.registry_exporter import MonitorServer, render_registry
from tests.serving.conftest import GITML, build_registry, child_env, free_port, registry_client


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def accuracy_of(text: str, stage: str) -> dict[str, float]:
    """version -> accuracy of the versions in `stage`."""
    found = samples(text, "gitml_model_metric")
    return {
        dict(k)["version"]: v
        for k, v in found.items()
        if dict(k)["stage"] == stage and dict(k)["metric"] == "accuracy"
    }


def test_monitor_exports_stage_and_alias_metrics(repo: Path, start_server: Any) -> None:
    build_registry(repo, [(1.0, 0.80), (10.0, 0.95)])
    client: Any = registry_client(repo)
    client.transition_model_version_stage("scaled", 1, "Production")
    client.set_registered_model_alias("scaled", "challenger", 2)
    port = free_port()
    server = start_server(
        [*GITML, "monitor", "--port", str(port), "--interval", "0.3"], port, cwd=repo
    )
    server.wait(path="/metrics")
    text = httpx.get(server.url + "/metrics").text
    assert accuracy_of(text, "production") == {"1": 0.80}
    assert accuracy_of(text, "challenger") == {"2": 0.95}
    assert accuracy_of(text, "latest") == {"2": 0.95}
    assert samples(text, "gitml_model_versions") == {(("model", "scaled"),): 2.0}
    labels = {"model": "scaled", "stage": "production", "kind": "stage", "version": "1", "metric": "accuracy"}
    assert samples(text, "gitml_model_metric")[tuple(sorted(labels.items()))] == 0.8

    client.transition_model_version_stage("scaled", 2, "Production")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = httpx.get(server.url + "/metrics").text
        if accuracy_of(text, "production") == {"2": 0.95}:
            break
        time.sleep(0.1)
    assert accuracy_of(text, "production") == {"2": 0.95}


def test_a_failing_refresh_keeps_the_last_values() -> None:
    calls = {"n": 0}
    good = {"metric": [((("model", "m"), ("stage", "production"), ("metric", "acc")), 0.5)]}

    def collect() -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("repository unreadable")
        return good

    server = MonitorServer(port=0, interval=0.1, collect=collect)
    server.start()
    try:
        deadline = time.monotonic() + 10
        while server.errors == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics").text
    finally:
        server.stop()
    key = (("metric", "acc"), ("model", "m"), ("stage", "production"))
    assert samples(text, "gitml_model_metric")[key] == 0.5
    assert samples(text, "gitml_monitor_refresh_errors_total")[()] >= 1
    assert server.last_error == "OSError: repository unreadable"


def test_render_escapes_labels() -> None:
    text = render_registry({"metric": [((("model", 'a"b\\c'),), 1.0)]}, 0.0, 0)
    assert 'gitml_model_metric{model="a\\"b\\\\c"} 1.0' in text


def test_monitor_outside_a_repository_fails_at_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*GITML, "monitor", "--port", str(free_port())],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ") and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("path", ["/metrics", "/"])
def test_monitor_paths(path: str) -> None:
    server = MonitorServer(port=0, collect=lambda: {})
    server.start()
    try:
        r = httpx.get(f"http://127.0.0.1:{server.port}{path}")
        assert r.status_code == 200 and "gitml_monitor_refresh_errors_total 0" in r.text
        assert httpx.get(f"http://127.0.0.1:{server.port}/other").status_code == 404
    finally:
        server.stop()


def test_collect_reads_every_model_not_the_first_page(repo: Path) -> None:
    # MLflow's search pages hold 100 models; the exporter once stopped at the first page.
    from gitml.serving.registry_exporter import collect_registry

    client: Any = registry_client(repo)
    for i in range(101):
        client.create_registered_model(f"m{i:03d}")
    found = collect_registry(client)
    assert len(found["versions"]) == 101
