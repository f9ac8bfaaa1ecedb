"""The scoring server as a client sees it: real processes on 127.0.0.1, real HTTP requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import GITML, Server, fake_server_args, free_port

MAX_BODY = 20_000


@pytest.fixture(scope="module")
def fake() -> Iterator[Server]:
    """One fake-model server for the whole module (row sums; the value 13 makes it raise)."""
    port = free_port()
    server = Server(fake_server_args(port, "sum", MAX_BODY), port)
    server.wait()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def columns(columns_model: Path) -> Iterator[Server]:
    """`gitml models serve` over a real pyfunc model with a column signature."""
    port = free_port()
    server = Server(
        [*GITML, "models", "serve", "-m", str(columns_model), "--port", str(port)], port
    )
    server.wait(deadline_s=60)
    yield server
    server.stop()


def post(server: Server, body: Any, ctype: str = "application/json") -> httpx.Response:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return httpx.post(server.url + "/invocations", content=content, headers={"content-type": ctype})


def metric(server: Server, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(server.url + "/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_predictions_in_every_json_format(fake: Server) -> None:
    rows = [[1, 2, 3, 4], [5, 6, 7, 8]]
    for body in (
        {"inputs": rows},
        {"instances": rows},
        {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": rows}},
        {"dataframe_records": [dict(zip("abcd", r, strict=True)) for r in rows]},
    ):
        r = post(fake, body)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [10.0, 26.0]}
        assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("body", "ctype", "status", "needle"),
    [
        (b'{"inputs": [[1, 2', "application/json", 400, "Malformed JSON"),
        ({"inputs": [[1, 2, 3]]}, "application/json", 400, "Wrong shape"),
        ({"inputs": [["a", "b", "c", "d"]]}, "application/json", 400, "Cannot convert"),
        ({"data": [[1, 2, 3, 4]]}, "application/json", 400, "exactly one of"),
        ({"inputs": []}, "application/json", 400, "Empty batch"),
        ({"inputs": [[1, 2, 3, 4], [1]]}, "application/json", 400, "Ragged"),
        (b"a,b\n1,2\n", "text/csv", 400, "CSV input is for column-based models"),
        (b"1,2,3,4", "text/plain", 415, "not supported"),
        (b"x" * (MAX_BODY + 1), "application/json", 413, "over the limit"),
        ({"inputs": [[13, 0, 0, 0]]}, "application/json", 500, "unlucky input 13"),
    ],
)
def test_faults_answer_json_errors_and_the_server_keeps_serving(
    fake: Server, body: Any, ctype: str, status: int, needle: str
) -> None:
    r = post(fake, body, ctype)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) == {"error_code", "message"} and needle in err["message"]
    assert post(fake, {"inputs": [[1, 1, 1, 1]]}).json() == {"predictions": [4.0]}


def test_model_failures_are_counted(fake: Server) -> None:
    before = metric(fake, "gitml_requests_total", endpoint="/invocations", status="500")
    errors_before = metric(fake, "gitml_prediction_errors_total")
    assert post(fake, {"inputs": [[13, 1, 1, 1]]}).status_code == 500
    assert metric(fake, "gitml_requests_total", endpoint="/invocations", status="500") == before + 1
    assert metric(fake, "gitml_prediction_errors_total") == errors_before + 1
    assert fake.proc.poll() is None


def test_health_version_and_metrics(fake: Server) -> None:
    post(fake, {"inputs": [[1, 2, 3, 4]]})
    h = httpx.get(fake.url + "/health").json()
    assert h["status"] == "ok" and h["model_loaded"] is True
    assert h["model"]["uri"] == "fake:sum" and h["model"]["model_uuid"] == "0" * 32
    assert h["uptime_seconds"] > 0
    import gitml

    assert httpx.get(fake.url + "/version").text == gitml.__version__
    assert metric(fake, "gitml_predictions_total") >= 1
    assert metric(fake, "gitml_model_info", uri="fake:sum") == 1
    assert metric(fake, "gitml_model_loaded") == 1
    assert metric(fake, "gitml_request_duration_seconds_count") >= 1
    assert metric(fake, "gitml_batch_rows_count") >= 1
    assert httpx.get(fake.url + "/nope").status_code == 404
    assert httpx.get(fake.url + "/invocations").status_code == 405
    # the answer of /invocations carries its length and type, as any HTTP/1.1 client needs
    r = post(fake, {"inputs": [[1, 2, 3, 4]]})
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content) and r.json() == {"predictions": [10.0]}


def test_concurrent_clients_are_batched(fake: Server) -> None:
    import asyncio

    calls_before = metric(fake, "gitml_batch_rows_count")

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=fake.url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post("/invocations", json={"inputs": [[100 + i, 0.5, 0, 0]]})
                    for i in range(60)
                )
            )

    responses = asyncio.run(main())
    assert [r.json()["predictions"] for r in responses] == [[100.5 + i] for i in range(60)]
    calls = metric(fake, "gitml_batch_rows_count") - calls_before
    assert 0 < calls < 60, f"{calls} model calls for 60 concurrent requests"


def test_ping_means_ready_and_answers_fast(start_server: Any) -> None:
    port = free_port()
    server = start_server(fake_server_args(port, "slowload"), port)
    first_answer = server.wait(status=503)
    r = httpx.get(server.url + "/ping")
    if r.status_code == 503:
        assert "loading" in r.json()["message"]
        assert httpx.get(server.url + "/health").json()["status"] == "loading"
        assert post(server, {"inputs": [[1, 2, 3, 4]]}).status_code == 503
    ready = server.wait(status=200)
    # the port opens before the model has loaded (1.5 s here); absolute start times are
    # measured by bench/bench_serving.py, not asserted on a shared machine
    assert first_answer < ready and ready - first_answer > 0.5, (first_answer, ready)
    assert post(server, {"inputs": [[1, 2, 3, 4]]}).json() == {"predictions": [10.0]}


def test_a_model_that_cannot_load_stops_the_server(start_server: Any) -> None:
    port = free_port()
    server = start_server(fake_server_args(port, "failload"), port)
    deadline = time.monotonic() + 30
    while server.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    status, err = server.stop()
    assert status == 1
    assert "weights file is truncated" in err


def test_column_formats_and_csv(columns: Server) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [10.0, 20.0, 30.0], "z": [0.5, 0.5, 0.5]})
    expected = [11.5, 22.5, 33.5]
    shuffled = frame[["z", "x", "y"]]  # columns are matched by name, not position
    for body in (
        {"dataframe_split": frame.to_dict(orient="split")},
        {"dataframe_split": shuffled.to_dict(orient="split")},
        {"dataframe_records": frame.to_dict(orient="records")},
        {"inputs": frame.to_dict(orient="list")},
    ):
        r = post(columns, body)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == expected
    csv = frame.to_csv(index=False).encode()
    assert post(columns, csv, "text/csv").json()["predictions"] == expected


@pytest.mark.parametrize(
    ("body", "ctype", "needle"),
    [
        (b"x,,y\n1,2,3\n", "text/csv", "Bad CSV header"),
        (b"x,y\n1,2\n", "text/csv", "Missing required column(s) ['z']"),
        (b"x,y,z\n", "text/csv", "Empty batch"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1]]}}, "application/json", "Missing"),
        ({"dataframe_records": [{"x": 1, "y": 2}]}, "application/json", "['z']"),
    ],
)
def test_bad_columns_are_400(columns: Server, body: Any, ctype: str, needle: str) -> None:
    r = post(columns, body, ctype)
    assert r.status_code == 400 and needle in r.json()["message"], r.text


def test_chunked_bodies_and_clients_that_leave_mid_body(fake: Server) -> None:
    import socket

    def chunks() -> Iterator[bytes]:  # no content-length: HTTP/1.1 chunked transfer
        yield b'{"inputs": [[1, 2,'
        yield b" 3, 4]]}"

    r = httpx.post(
        fake.url + "/invocations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200 and r.json() == {"predictions": [10.0]}
    # a client that promises 1,000 bytes, sends 10 and hangs up: nothing answered, nothing broken
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", fake.port)) as s:
            s.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{\"inputs\":"
            )
    deadline = time.monotonic() + 10
    while metric(fake, "gitml_requests_in_flight") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(fake, "gitml_requests_in_flight") == 0
    assert post(fake, {"inputs": [[1, 1, 1, 1]]}).json() == {"predictions": [4.0]}
