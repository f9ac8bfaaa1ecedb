"""`gitml models serve` and `gitml monitor` on the command line: exit codes, stderr, help."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import GITML, build_registry, child_env, free_port
from tests.serving.conftest import start_server as start_server  # noqa: F401  (fixture)


def gitml(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GITML, *args], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("models:/nope/Production", "nope"),
        ("models:/nope@champion", "nope"),
        ("models:/", "Cannot read model URI"),
        ("no/such/folder", "does not exist"),
    ],
)
def test_a_uri_that_does_not_resolve_exits_non_zero(repo: Path, uri: str, needle: str) -> None:
    proc = gitml("models", "serve", "-m", uri, "--port", str(free_port()), cwd=repo)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0]
    assert proc.stdout == ""


def test_a_stage_without_versions_is_named(repo: Path) -> None:
    build_registry(repo, [(1.0, 0.5)])
    proc = gitml("models", "serve", "-m", "models:/scaled/Production", cwd=repo)
    assert proc.returncode == 1
    assert "stage 'Production'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_follow_needs_a_registry_uri(repo: Path) -> None:
    proc = gitml("models", "serve", "-m", str(repo), "--follow", cwd=repo)
    assert proc.returncode == 2 and "--follow needs a models:/ URI" in proc.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["models", "serve", "--help"], ["--model-uri", "--workers", "--follow", "--max-batch-size", "--max-wait-ms", "--max-body-bytes"]),
        (["monitor", "--help"], ["--port", "--interval"]),
        (["models", "--help"], ["serve"]),
    ],
)  # fmt: skip
def test_help(repo: Path, args: list[str], needles: list[str]) -> None:
    proc = gitml(*args, cwd=repo)
    assert proc.returncode == 0
    for needle in needles:
        assert needle in proc.stdout


def test_serve_a_registered_version_with_two_workers(repo: Path, start_server: Any) -> None:
    build_registry(repo, [(2.0, 0.5)])
    port = free_port()
    server = start_server(
        [*GITML, "models", "serve", "-m", "models:/scaled/1", "--port", str(port), "-w", "2"],
        port,
        cwd=repo,
    )
    server.wait()
    # Each worker loads the model on its own: until both are ready, one may answer 503.
    import time as _time

    ready_by = _time.monotonic() + 60
    ok = 0
    while ok < 20:
        r = httpx.post(server.url + "/invocations", json={"inputs": [[1, 2, 3]]})
        if r.status_code == 503 and _time.monotonic() < ready_by:
            _time.sleep(0.1)
            continue
        assert r.json() == {"predictions": [12.0]}
        ok += 1
    health = httpx.get(server.url + "/health").json()
    assert health["model"]["version"] == "1" and health["model"]["model"] == "scaled"
    # workers publish their counters each second; any worker's /metrics sums them all
    import time

    deadline = time.monotonic() + 10
    total = 0
    while time.monotonic() < deadline:
        text = httpx.get(server.url + "/metrics").text
        line = [
            x for x in text.splitlines() if x.startswith('gitml_predictions_total{model="scaled"')
        ]
        total = int(float(line[0].rsplit(" ", 1)[1])) if line else 0
        if total >= 20 and "gitml_workers 2.0" in text.splitlines():
            break
        time.sleep(0.3)
    assert total >= 20
    assert "gitml_workers 2.0" in text.splitlines()
    assert "Serving models:/scaled/1 (scaled version 1)" in server.stop()[1]


def test_serve_with_repo_option_from_elsewhere(
    repo: Path, tmp_path: Path, start_server: Any
) -> None:
    build_registry(repo, [(3.0, 0.5)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    args = [
        *GITML,
        "-C",
        str(repo),
        "models",
        "serve",
        "-m",
        "models:/scaled/latest",
        "--port",
        str(port),
    ]
    server = start_server(args, port, cwd=elsewhere)
    server.wait()
    r = httpx.post(server.url + "/invocations", json={"inputs": [[1, 1, 1]]})
    assert r.json() == {"predictions": [9.0]}
