"""The scoring server under abuse, with real sockets on 127.0.0.1: huge headers and bodies are
refused fast while /ping stays responsive, slow clients are cut at the read deadline, and a
flood of half-sent requests cannot lock other clients out."""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hostile.conftest import World
from tests.serving.conftest import GITML, Server, free_port

pytest.importorskip("uvicorn", reason="uvicorn serves the model")
pytest.importorskip("pandas", reason="pandas reads CSV bodies")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real pyfunc model with columns x, y, z."""
    import pandas as pd

    import gitml.pyfunc
    from gitml.models import infer_signature
    from tests.serving.pymodels import Scaled

    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0], "z": [5.0, 6.0]})
    path = tmp_path_factory.mktemp("models") / "columns"
    gitml.pyfunc.save_model(str(path), python_model=Scaled(1.0), signature=infer_signature(frame, frame.sum(axis=1)))
    return path


@contextlib.contextmanager
def serving(model: Path, *extra: str, nofile: int | None = None) -> Iterator[Server]:
    """`gitml serve` in a child process (optionally under an open-file limit); stopped after."""
    port = free_port()
    args = [*GITML, "models", "serve", "-m", str(model), "--port", str(port), *extra]
    server = Server(args, port)
    if nofile is not None:  # restart under the limit (Server starts at once; keep its helpers)
        server.stop()
        import subprocess

        from tests.serving.conftest import child_env

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        server.proc = subprocess.Popen(
            args, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit
        )
    try:
        server.wait(200, "/ping", deadline_s=60)
        yield server
    finally:
        server.stop()


def _ping_latencies(url: str, stop: threading.Event) -> list[float]:
    out = []
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            t = time.perf_counter()
            assert client.get(url + "/ping").status_code == 200
            out.append(time.perf_counter() - t)
            time.sleep(0.02)
    return out


def _during(url: str, work: object) -> tuple[object, list[float]]:
    """Run `work()` while pinging; (its result, the ping latencies)."""
    stop = threading.Event()
    latencies: list[float] = []
    pinger = threading.Thread(target=lambda: latencies.extend(_ping_latencies(url, stop)))
    pinger.start()
    try:
        result = work()  # type: ignore[operator]
    finally:
        stop.set()
        pinger.join(30)
    return result, latencies


def test_million_column_csv_is_refused_fast_and_ping_stays_up(model: Path) -> None:
    header = ",".join(f"c{i}" for i in range(1_000_000)).encode()
    body = header + b"\n" + b",".join([b"1"] * 1_000_000) + b"\n"
    assert len(body) > 8_000_000
    with serving(model) as server:
        def post() -> httpx.Response:
            return httpx.post(server.url + "/invocations", content=body, headers={"content-type": "text/csv"}, timeout=60)

        started = time.perf_counter()
        response, latencies = _during(server.url, post)
        took = time.perf_counter() - started
        assert response.status_code == 400 and "Too many columns" in response.json()["message"]  # type: ignore[attr-defined]
        assert took < 5, took  # was 18 s
        assert max(latencies, default=0) < 1.0, latencies
        ok = httpx.post(server.url + "/invocations", content=b"x,y,z\n1,2,3\n", headers={"content-type": "text/csv"})
        assert ok.status_code == 200


def test_big_bodies_are_parsed_off_the_event_loop(model: Path) -> None:
    rows = ",".join(["[1.5,2.5,3.5]"] * 400_000)
    body = ('{"dataframe_split": {"columns": ["x","y","z"], "data": [' + rows + "]}}").encode()
    deep = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with serving(model) as server:
        def post() -> httpx.Response:
            return httpx.post(server.url + "/invocations", content=body, headers={"content-type": "application/json"}, timeout=120)

        response, latencies = _during(server.url, post)
        assert response.status_code == 200  # type: ignore[attr-defined]
        # parsed on the event loop, every ping would wait for the whole parse (seconds); off it,
        # pings keep being answered while it runs (a loaded machine may slow one of them)
        assert len(latencies) >= 2 and min(latencies) < 0.5 and sorted(latencies)[len(latencies) // 2] < 1.0, latencies
        bad = httpx.post(server.url + "/invocations", content=deep, headers={"content-type": "application/json"})
        assert bad.status_code == 400
        wide = '{"dataframe_records": [{' + ",".join(f'"c{i}": 1' for i in range(20_000)) + "}]}"
        bad = httpx.post(server.url + "/invocations", content=wide.encode(), headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "Too many columns" in bad.json()["message"]


def _half_sent(port: int, body: bool) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if body:  # whole headers, a tenth of the body
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\nx,y,")
    else:  # headers never finished
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Ty")
    return s


def _closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_slow_requests_are_cut_at_the_read_deadline(model: Path) -> None:
    with serving(model, "--request-timeout", "1") as server:
        socks = [_half_sent(server.port, body=i % 2 == 0) for i in range(20)]
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)  # never sends
        try:
            start = time.monotonic()
            assert all(_closed_by_server(s, 5) for s in [*socks, idle])
            assert time.monotonic() - start < 5
            # a whole request is answered as before, and keep-alive still works
            with httpx.Client() as client:
                for _ in range(3):
                    assert client.get(server.url + "/ping").status_code == 200
        finally:
            for s in [*socks, idle]:
                s.close()


def test_half_sent_flood_does_not_lock_others_out(model: Path) -> None:
    """1,100 half-sent requests against a server whose open-file limit is 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"this test needs 1,400 open files in the test process (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400) if hard == resource.RLIM_INFINITY else hard, hard))
    socks: list[socket.socket] = []
    try:
        with serving(model, nofile=1024) as server:
            for i in range(1100):
                try:
                    socks.append(_half_sent(server.port, body=i % 2 == 0))
                except OSError:
                    pass  # the server closed an evicted one while we connected: fine
            start = time.monotonic()
            r = httpx.get(server.url + "/ping", timeout=5)
            assert r.status_code == 200 and time.monotonic() - start < 5
            scored = httpx.post(server.url + "/invocations", content=b"x,y,z\n1,2,3\n", headers={"content-type": "text/csv"}, timeout=5)
            assert scored.status_code == 200
            code, err = server.stop()
            assert "Too many open files" not in err, err[-2000:]
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_monitor_survives_a_tag_with_a_10_400_metric(world: World) -> None:
    """One hand-made tag message with an absurd metric neither stops `gitml monitor` at start
    nor freezes the other models' gauges."""
    import uuid

    import numpy as np

    import gitml
    from gitml.models.signature import infer_signature
    from gitml.serving.registry_exporter import MonitorServer, collect_registry
    from gitml.tracking.client import MlflowClient
    from tests.conftest import git
    from tests.hostile.conftest import git_input, in_clone
    from tests.serving.pymodels import Scaled

    with in_clone(world.attacker):
        with gitml.start_run():
            gitml.log_metric("accuracy", 0.9)
            sig = infer_signature(np.zeros((2, 3)), np.zeros(2))
            info = gitml.pyfunc.log_model("model", python_model=Scaled(1.0), signature=sig)
        gitml.register_model(info.model_uri, "good")
        MlflowClient().transition_model_version_stage("good", 1, "Production")
    head = git("rev-parse", "HEAD", cwd=world.attacker).strip()
    message = (
        "gitml: 1\naction: register\nmodel: evil\nversion: 1\nsemver: v1.0.0\n"
        f"run_id: {uuid.uuid4().hex}\nmetrics:\n  accuracy: 1{'0' * 400}\n"
    )
    for tag in ("evil@v1.0.0", "evil#production#1"):
        git_input(message.encode(), "tag", "-a", tag, head, "-F", "-", cwd=world.attacker)
    world.push(world.attacker)
    git("push", "-q", "origin", "--tags", cwd=world.attacker)
    world.pull(world.victim)
    client = MlflowClient(tracking_uri=str(world.victim))
    monitor = MonitorServer(port=0, interval=60, collect=lambda: collect_registry(client))
    try:
        models = {dict(labels)["model"] for labels, _ in monitor._samples["metric"]}
        assert "good" in models
        assert 'model="good"' in monitor.text
        monitor.refresh()
        assert monitor.errors == 0
    finally:
        monitor.stop()


def test_endless_headers_are_cut(model: Path) -> None:
    """Own attack: headers that never end, sent fast (uvicorn's httptools parser keeps them all)."""
    with serving(model) as server:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            sent = 0
            with contextlib.suppress(OSError):
                while sent < 4_000_000:
                    s.sendall(b"X-Junk: " + b"a" * 1000 + b"\r\n")
                    sent += 1010
            assert sent < 4_000_000 or _closed_by_server(s, 5)
        finally:
            s.close()
        big = b"x,y,z\n" + b"1,2,3\n" * 200_000  # a large body in the first packets is no header
        r = httpx.post(server.url + "/invocations", content=big, headers={"content-type": "text/csv"}, timeout=60)
        assert r.status_code == 200
