"""`--follow`: a promotion moves the served version under load, without a failed request."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.serving.conftest import GITML, build_registry, free_port, registry_client


def test_follow_switches_versions_without_dropping_requests(repo: Path, start_server: Any) -> None:
    build_registry(repo, [(1.0, 0.80), (10.0, 0.95)])
    client: Any = registry_client(repo)
    client.transition_model_version_stage("scaled", 1, "Production")
    port = free_port()
    args = [*GITML, "models", "serve", "-m", "models:/scaled/Production", "--port", str(port),
            "--follow", "--follow-interval", "0.3"]  # fmt: skip
    server = start_server(args, port, cwd=repo)
    server.wait()
    health = httpx.get(server.url + "/health").json()
    assert health["model"]["version"] == "1" and health["model"]["stage"] == "production"

    answers: list[tuple[int, Any]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                r = http.post("/invocations", json={"inputs": [[1, 1, 1]]})
                answers.append((r.status_code, r.json().get("predictions")))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        client.transition_model_version_stage("scaled", 2, "Production")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p == [30.0] for _, p in answers[-20:]):
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert answers and all(status == 200 for status, _ in answers), answers[-5:]
    seen = [p[0] for _, p in answers]
    assert set(seen) == {3.0, 30.0}
    first_new = seen.index(30.0)
    assert all(p == 30.0 for p in seen[first_new + 10 :]), "old version answered after the switch"
    health = httpx.get(server.url + "/health").json()
    assert health["model"]["version"] == "2"
    metrics = httpx.get(server.url + "/metrics").text
    assert "gitml_model_switches_total 1" in metrics
    assert 'version="2"' in metrics


def test_follow_keeps_serving_when_the_stage_empties(repo: Path, start_server: Any) -> None:
    build_registry(repo, [(1.0, 0.8)])
    client: Any = registry_client(repo)
    client.transition_model_version_stage("scaled", 1, "Staging")
    port = free_port()
    args = [*GITML, "models", "serve", "-m", "models:/scaled/Staging", "--port", str(port),
            "--follow", "--follow-interval", "0.2"]  # fmt: skip
    server = start_server(args, port, cwd=repo)
    server.wait()
    client.transition_model_version_stage("scaled", 1, "Archived")
    deadline = time.monotonic() + 15
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = httpx.get(server.url + "/health").json()
        if health["follow_error"]:
            break
        time.sleep(0.1)
    assert health["follow_error"] and "Staging" in health["follow_error"]
    r = httpx.post(server.url + "/invocations", json={"inputs": [[1, 2, 3]]})
    assert r.json() == {"predictions": [6.0]}
