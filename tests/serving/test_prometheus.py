"""A real Prometheus server scrapes the scoring server and `gitml monitor`; queried over its API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_repo
from tests.serving.conftest import (
    GITML,
    Server,
    build_registry,
    fake_server_args,
    free_port,
    registry_client,
)

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed (apt-get install prometheus)",
)


class Stack:
    """The scoring server, the exporter and Prometheus scraping both every second."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[Server] = []
        self.prometheus: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        repo = make_repo(self.root / "repo")
        build_registry(repo, [(1.0, 0.97)], name="cnn")
        client: Any = registry_client(repo)
        client.transition_model_version_stage("cnn", 1, "Production")
        p1, p2, p3 = free_port(), free_port(), free_port()
        self.scoring = Server(fake_server_args(p1, "sum"), p1)
        self.monitor = Server(
            [*GITML, "monitor", "--port", str(p2), "--interval", "1"], p2, cwd=repo
        )
        self.servers = [self.scoring, self.monitor]
        self.scoring.wait()
        self.monitor.wait(path="/metrics")
        config = self.root / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: scoring\n    static_configs:\n      - targets: ['127.0.0.1:{p1}']\n"
            f"  - job_name: registry\n    static_configs:\n      - targets: ['127.0.0.1:{p2}']\n"
        )
        self.url = f"http://127.0.0.1:{p3}"
        self.prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{p3}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def query(self, promql: str, deadline_s: float = 40.0) -> list[dict[str, Any]]:
        """Poll the instant query until it has a result (the first scrape lands after ~6 s)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                r = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=5)
                result = r.json()["data"]["result"]
                if result:
                    return list(result)
            except (httpx.TransportError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"no result for {promql!r} within {deadline_s} s")

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.terminate()
            try:
                self.prometheus.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()
        for s in self.servers:
            s.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One Prometheus for the module (starting it costs seconds)."""
    s = Stack(tmp_path_factory.mktemp("prometheus"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_prometheus_scrapes_the_scoring_server(stack: Stack) -> None:
    for _ in range(5):
        httpx.post(stack.scoring.url + "/invocations", json={"inputs": [[1, 2, 3, 4]]})
    httpx.post(stack.scoring.url + "/invocations", json={"inputs": [[13, 0, 0, 0]]})
    ok = stack.query(
        'gitml_requests_total{job="scoring",endpoint="/invocations",status="200"} >= 5'
    )
    assert float(ok[0]["value"][1]) >= 5
    failed = stack.query('gitml_requests_total{job="scoring",status="500"}')
    assert float(failed[0]["value"][1]) >= 1
    info = stack.query('gitml_model_info{job="scoring"}')
    assert info[0]["metric"]["uri"] == "fake:sum"
    p99 = stack.query(
        'histogram_quantile(0.99, sum by (le) (gitml_request_duration_seconds_bucket{job="scoring"}))'
    )
    assert 0 < float(p99[0]["value"][1]) < 10


def test_prometheus_scrapes_the_registry_exporter(stack: Stack) -> None:
    result = stack.query('gitml_model_metric{model="cnn",stage="production",metric="accuracy"}')
    assert result[0]["metric"]["version"] == "1"
    assert float(result[0]["value"][1]) == pytest.approx(0.97)
    up = stack.query('up{job="registry"}')
    assert up[0]["value"][1] == "1"
