"""The Open Inference Protocol's binary tensor data extension on `gitml models serve`: Triton's
own client sends and reads raw tensors of every datatype, and hostile bodies get 400s."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.serving.conftest import GITML, Server, free_port

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")

NUMERIC = ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]
MAX_BODY = 1 << 20


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    import pandas as pd

    import gitml.pyfunc
    from gitml.models import infer_signature
    from tests.serving.pymodels import Echo, Lengths, Scaled

    base = tmp_path_factory.mktemp("v2bin")
    gitml.pyfunc.save_model(str(base / "echo"), python_model=Echo())  # no signature: any tensor
    gitml.pyfunc.save_model(
        str(base / "typed"), python_model=Scaled(1.0),
        signature=infer_signature(np.zeros((2, 3), dtype=np.float32), np.zeros(2)),
    )
    frame = pd.DataFrame({"text": ["a", "bb"]})
    gitml.pyfunc.save_model(str(base / "words"), python_model=Lengths(), signature=infer_signature(frame, np.zeros(2, dtype=np.int64)))
    out = {}
    for key in ("echo", "typed", "words"):
        port = free_port()
        out[key] = Server(
            [*GITML, "models", "serve", "-m", str(base / key), "--port", str(port), "--name", key,
             "--max-body-bytes", str(MAX_BODY)],
            port,
        )
    for s in out.values():
        s.wait(deadline_s=90)
    yield out
    for s in out.values():
        s.stop()


def _client(server: Server) -> Any:
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")


def _data(datatype: str) -> np.ndarray:
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if datatype == "BYTES":
        return np.array([[b"one", b"", "\u00e9t\u00e9".encode()], [b"x" * 300, b"five", b"six"]], dtype=object)
    return (np.arange(6).reshape(2, 3) * 3 + 1).astype(datatype.lower().replace("fp", "float"))


@pytest.mark.parametrize("datatype", [*NUMERIC, "BOOL", "BYTES"])
def test_every_datatype_binary_both_ways(servers: dict[str, Server], datatype: str) -> None:
    client = _client(servers["echo"])
    data = _data(datatype)
    inp = httpclient.InferInput("input-0", list(data.shape), datatype)
    inp.set_data_from_numpy(data, binary_data=True)
    result = client.infer("echo", [inp], outputs=[httpclient.InferRequestedOutput("predict", binary_data=True)])
    got = result.as_numpy("predict")
    assert got.shape == data.shape and got.tolist() == data.tolist()
    output = result.get_response()["outputs"][0]
    assert output["datatype"] == datatype and "data" not in output and output["parameters"]["binary_data_size"] > 0
    # no outputs named: the client asks binary_data_output, and every output comes back binary
    result = client.infer("echo", [inp])
    assert result.as_numpy("predict").tolist() == data.tolist()
    assert "data" not in result.get_response()["outputs"][0]
    # binary in, JSON out
    result = client.infer("echo", [inp], outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)])
    assert result.get_response()["outputs"][0]["datatype"] == datatype
    if datatype == "BYTES":
        assert result.get_response()["outputs"][0]["data"] == [v.decode() for v in data.ravel()]
    else:
        np.testing.assert_array_equal(result.as_numpy("predict"), data)


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "INT8", "UINT16"])
def test_binary_inputs_the_typed_signature_allows(servers: dict[str, Server], datatype: str) -> None:
    client = _client(servers["typed"])
    data = _data(datatype)
    inp = httpclient.InferInput("input-0", list(data.shape), datatype)
    inp.set_data_from_numpy(data, binary_data=True)
    result = client.infer("typed", [inp])
    np.testing.assert_allclose(result.as_numpy("predict"), data.astype(np.float64).sum(axis=1))
    bad = httpclient.InferInput("input-0", [2, 4], datatype)
    bad.set_data_from_numpy(np.ones((2, 4), dtype=data.dtype), binary_data=True)
    with pytest.raises(httpclient.InferenceServerException, match="does not match"):
        client.infer("typed", [bad])


def test_bytes_column_of_a_dataframe_model(servers: dict[str, Server]) -> None:
    client = _client(servers["words"])
    inp = httpclient.InferInput("text", [3], "BYTES")
    inp.set_data_from_numpy(np.array([b"one", b"three", b"sixteen"], dtype=object), binary_data=True)
    result = client.infer("words", [inp], outputs=[httpclient.InferRequestedOutput("predict", binary_data=True)])
    assert result.as_numpy("predict").tolist() == [3, 5, 7]


def test_named_tensors_mixed_binary_and_json(servers: dict[str, Server]) -> None:
    client = _client(servers["echo"])
    a = httpclient.InferInput("a", [2, 2], "INT32")
    a.set_data_from_numpy(np.array([[1, 2], [3, 4]], dtype=np.int32), binary_data=True)
    b = httpclient.InferInput("b", [2], "FP64")
    b.set_data_from_numpy(np.array([0.5, 1.5]), binary_data=False)
    outs = [httpclient.InferRequestedOutput("b", binary_data=True), httpclient.InferRequestedOutput("a", binary_data=False)]
    result = client.infer("echo", [a, b], outputs=outs, request_id="r-1")
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["b", "a"] and response["id"] == "r-1"
    assert response["outputs"][1]["data"] == [1, 2, 3, 4]
    assert result.as_numpy("b").tolist() == [0.5, 1.5]
    with pytest.raises(httpclient.InferenceServerException, match="unknown output"):
        client.infer("echo", [a], outputs=[httpclient.InferRequestedOutput("nope")])


def test_raw_exchange_and_server_metadata(servers: dict[str, Server]) -> None:
    server = servers["echo"]
    assert "binary_tensor_data" in httpx.get(server.url + "/v2", timeout=5).json()["extensions"]
    head = json.dumps({
        "inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "parameters": {"binary_data_size": 12}}],
        "parameters": {"binary_data_output": True},
    }).encode()
    r = httpx.post(server.url + "/v2/models/echo/infer", content=head + np.array([1, 2, 3], "<f4").tobytes(),
                   headers={"Inference-Header-Content-Length": str(len(head))}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    n = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:n])
    assert meta["outputs"][0]["parameters"] == {"binary_data_size": 12}
    assert np.frombuffer(r.content[n:], "<f4").tolist() == [1.0, 2.0, 3.0]


def _post(server: Server, head: Any, tail: bytes = b"", header: str | None = "auto") -> httpx.Response:
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    headers = {"content-type": "application/octet-stream"}
    if header is not None:
        headers["Inference-Header-Content-Length"] = str(len(raw)) if header == "auto" else header
    return httpx.post(server.url + "/v2/models/echo/infer", content=raw + tail, headers=headers, timeout=10)


def _fp32(size: Any, shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    entry = {"name": "input-0", "shape": shape or [1, 3], "datatype": "FP32", "parameters": {"binary_data_size": size}, **extra}
    return {"inputs": [entry]}


def _bytes_input(count: int, size: int) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [count], "datatype": "BYTES", "parameters": {"binary_data_size": size}}]}


TWELVE = bytes(12)


@pytest.mark.parametrize(
    ("head", "tail", "header", "words"),
    [
        (_fp32(12), TWELVE, "abc", "not a byte count"),
        (_fp32(12), TWELVE, "-5", "not a byte count"),
        (_fp32(12), TWELVE, "1" * 25, "not a byte count"),
        (_fp32(12), TWELVE, "99999999", "does not fit"),
        (_fp32(12), TWELVE, "0", "does not fit"),
        (_fp32(12), TWELVE, "10", "JSON"),  # the header cut mid-object
        (_fp32(-1), TWELVE, "auto", "non-negative"),
        (_fp32(True), TWELVE, "auto", "non-negative"),
        (_fp32("12"), TWELVE, "auto", "non-negative"),
        (_fp32(2**63), TWELVE, "auto", "runs past"),
        (_fp32(24), TWELVE, "auto", "runs past"),
        (_fp32(8), TWELVE[:8], "auto", "takes 12 bytes"),
        (_fp32(12), TWELVE + b"x", "auto", "1 bytes follow"),
        (_fp32(12, data=[1, 2, 3]), TWELVE, "auto", "both"),
        (_fp32(12, shape=[99999, 99999, 99999]), TWELVE, "auto", "too many"),
        (_fp32(12, shape=[-1, 3]), TWELVE, "auto", "not a tensor shape"),
        ({"inputs": [{"name": "input-0", "shape": [3], "datatype": "BOOL", "parameters": {"binary_data_size": 3}}]}, b"\x01\x02\x00", "auto", "BOOL"),
        (_bytes_input(1, 8), struct.pack("<I", 0xFFFFFFFF) + b"abcd", "auto", "runs past"),
        (_bytes_input(1_000_000, 8), bytes(8), "auto", "cannot hold"),
        (_bytes_input(1, 7), struct.pack("<I", 1) + b"abc", "auto", "take 5 bytes"),
        (_bytes_input(2, 9), struct.pack("<I", 1) + b"a" + struct.pack("<I", 2**31), "auto", "runs past"),
        ({"inputs": [{"name": "input-0", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "predict", "parameters": {"binary_data": "yes"}}]}, b"", None, "binary_data"),
        ({"inputs": [{"name": "input-0", "shape": [1], "datatype": "FP32", "data": [1]}], "parameters": {"binary_data_output": 1}}, b"", None, "binary_data_output"),
        ({"inputs": [{"name": "input-0", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "predict", "parameters": {"classification": 2}}]}, b"", None, "classification"),
        ({"inputs": [{"name": "input-0", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": "predict"}, b"", None, "outputs"),
    ],
)
def test_hostile_binary_bodies_get_400(servers: dict[str, Server], head: Any, tail: bytes, header: str | None, words: str) -> None:
    r = _post(servers["echo"], head, tail, header)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert words in r.json()["error"], r.json()
    ok = _post(servers["echo"], _fp32(12), np.array([1, 2, 3], "<f4").tobytes())
    assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [1.0, 2.0, 3.0]


def test_binary_bodies_share_the_body_cap(servers: dict[str, Server]) -> None:
    n = MAX_BODY // 4 + 16
    r = _post(servers["echo"], _fp32(n * 4, shape=[1, n]), bytes(n * 4))
    assert r.status_code == 413
    assert "limit" in r.json()["error"]
    assert httpx.get(servers["echo"].url + "/ping", timeout=5).status_code == 200


def test_big_binary_body_is_parsed_off_the_event_loop(servers: dict[str, Server]) -> None:
    client = _client(servers["echo"])
    data = np.random.default_rng(0).random((4, 8192), dtype=np.float32)  # 128 KiB: over the inline limit
    inp = httpclient.InferInput("input-0", list(data.shape), "FP32")
    inp.set_data_from_numpy(data, binary_data=True)
    result = client.infer("echo", [inp])
    np.testing.assert_array_equal(result.as_numpy("predict"), data)
