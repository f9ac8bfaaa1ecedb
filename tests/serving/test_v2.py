"""The Open Inference Protocol (V2) on `gitml models serve`, called by Triton's own client and
checked against the protocol's REST description (shared specs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest
import yaml

from tests.serving.conftest import GITML, Server, build_registry, free_port

# The protocol's REST description lies in shared/specs beside the checkout (CI lays it there).
SPEC = next(
    (p / "shared" / "specs" / "open_inference_rest.yaml" for p in Path(__file__).resolve().parents
     if (p / "shared" / "specs" / "open_inference_rest.yaml").is_file()),
    Path("shared/specs/open_inference_rest.yaml"),
)
httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")

NUMERIC = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]
NP = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
      "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
      "FP32": np.float32, "FP64": np.float64}


def _schema(name: str) -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text())
    return {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}


def _conforms(body: Any, schema: str) -> None:
    # Where the protocol's description is not beside the project, each test still checks its
    # own assertions; test_protocol_description_is_present says the conformance part is off.
    if SPEC.is_file():
        jsonschema.validate(body, _schema(schema))


def test_protocol_description_is_present() -> None:
    if not SPEC.is_file():
        pytest.skip("the Open Inference Protocol description (shared/specs) is not beside the project: "
                    "V2 answers are checked by their own assertions only, not against the protocol's schemas")
    schemas = yaml.safe_load(SPEC.read_text())["components"]["schemas"]
    assert {"metadata_server_response", "metadata_model_response", "inference_response"} <= set(schemas)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    import pandas as pd

    import gitml.pyfunc
    from gitml.models import infer_signature
    from tests.serving.pymodels import Lengths, Scaled

    base = tmp_path_factory.mktemp("v2")
    any_tensor = base / "sums"
    gitml.pyfunc.save_model(str(any_tensor), python_model=Scaled(2.0))  # no signature: any numeric tensor
    typed = base / "typed"
    gitml.pyfunc.save_model(
        str(typed), python_model=Scaled(1.0),
        signature=infer_signature(np.zeros((2, 3), dtype=np.float32), np.zeros(2)),
    )
    words = base / "words"
    frame = pd.DataFrame({"text": ["a", "bb"]})
    gitml.pyfunc.save_model(str(words), python_model=Lengths(), signature=infer_signature(frame, np.zeros(2, dtype=np.int64)))
    servers = {}
    for key, path, extra in (("sums", any_tensor, ["--name", "sums"]), ("typed", typed, []), ("words", words, [])):
        port = free_port()
        servers[key] = Server([*GITML, "models", "serve", "-m", str(path), "--port", str(port), *extra], port)
    for s in servers.values():
        s.wait(deadline_s=90)
    yield servers
    for s in servers.values():
        s.stop()


def _client(server: Server) -> Any:
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")


@pytest.mark.parametrize("datatype", NUMERIC)
def test_every_numeric_datatype_through_tritonclient(models: dict[str, Server], datatype: str) -> None:
    client = _client(models["sums"])
    data = (np.arange(6).reshape(2, 3) % 2 == 0) if datatype == "BOOL" else np.arange(6).reshape(2, 3).astype(NP[datatype])
    inp = httpclient.InferInput("input-0", list(data.shape), datatype)
    inp.set_data_from_numpy(data, binary_data=False)
    # JSON both ways (test_v2_binary.py covers the binary extension)
    result = client.infer("sums", [inp], outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)])
    got = result.as_numpy("predict")
    np.testing.assert_allclose(got, data.astype(np.float64).sum(axis=1) * 2.0)
    response = result.get_response()
    assert response["model_name"] == "sums"
    _conforms(response, "inference_response")


def test_bytes_through_tritonclient(models: dict[str, Server]) -> None:
    client = _client(models["words"])
    data = np.array([b"one", b"three", b"sixteen"], dtype=object)
    inp = httpclient.InferInput("text", [3], "BYTES")
    inp.set_data_from_numpy(data, binary_data=False)
    result = client.infer("words", [inp])
    assert result.as_numpy("predict").tolist() == [3, 5, 7]


def test_health_and_metadata(models: dict[str, Server]) -> None:
    client = _client(models["typed"])
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("typed")
    meta = client.get_model_metadata("typed")
    _conforms(meta, "metadata_model_response")
    assert meta["name"] == "typed" and meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 3]}]
    # the signature's outputs, named and typed as an infer response answers them
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    server_meta = client.get_server_metadata()
    _conforms(server_meta, "metadata_server_response")
    assert server_meta["name"] == "gitml"


def test_metadata_outputs_match_the_infer_response(models: dict[str, Server]) -> None:
    client = _client(models["words"])
    meta = client.get_model_metadata("words")
    _conforms(meta, "metadata_model_response")
    assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
    inp = httpclient.InferInput("text", [2], "BYTES")
    inp.set_data_from_numpy(np.array([b"a", b"bb"], dtype=object), binary_data=False)
    out = client.infer("words", [inp]).get_response()["outputs"][0]
    assert {k: out[k] for k in ("name", "datatype")} == {k: meta["outputs"][0][k] for k in ("name", "datatype")}
    # a model without a signature declares no outputs
    assert _client(models["sums"]).get_model_metadata("sums")["outputs"] == []


def test_metadata_outputs_of_named_columns_and_tensors(tmp_path: Path) -> None:
    import gitml.pyfunc
    from gitml.models.signature import ColSpec, ModelSignature, Schema, TensorSpec
    from gitml.serving import v2
    from tests.serving.pymodels import Scaled

    cols = ModelSignature(
        Schema([TensorSpec("float32", (-1, 3))]),
        Schema([ColSpec("double", "score"), ColSpec("string", "label"), ColSpec("boolean", "flag"),
                ColSpec("integer", "n"), ColSpec("float", "p")]),
    )
    tensors = ModelSignature(
        Schema([TensorSpec("float32", (-1, 3))]),
        Schema([TensorSpec("float16", (-1, 2, 2), "probs"), TensorSpec("uint8", (-1,), "mask")]),
    )
    got = {}
    for key, sig in (("cols", cols), ("tensors", tensors)):
        gitml.pyfunc.save_model(str(tmp_path / key), python_model=Scaled(1.0), signature=sig)
        got[key] = v2.signature_outputs(gitml.pyfunc.load_model(str(tmp_path / key)))
    assert got["cols"] == [
        {"name": "score", "datatype": "FP64", "shape": [-1]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "flag", "datatype": "BOOL", "shape": [-1]},
        {"name": "n", "datatype": "INT32", "shape": [-1]},
        {"name": "p", "datatype": "FP32", "shape": [-1]},
    ]
    assert got["tensors"] == [
        {"name": "probs", "datatype": "FP16", "shape": [-1, 2, 2]},
        {"name": "mask", "datatype": "UINT8", "shape": [-1]},
    ]
    meta = v2.model_metadata("m", "1", None, "python_function", got["tensors"])
    _conforms(meta, "metadata_model_response")
    assert v2.signature_outputs(None) == []


def test_metadata_inputs_of_columns_carry_their_types(tmp_path: Path) -> None:
    import gitml.pyfunc
    from gitml.models.signature import ColSpec, ModelSignature, Schema
    from gitml.serving import v2
    from gitml.serving.formats import input_spec
    from tests.serving.pymodels import Lengths

    sig = ModelSignature(
        Schema([ColSpec("string", "text"), ColSpec("double", "weight"), ColSpec("long", "count", required=False)]),
        Schema([ColSpec("long")]),
    )
    gitml.pyfunc.save_model(str(tmp_path / "m"), python_model=Lengths(), signature=sig)
    model = gitml.pyfunc.load_model(str(tmp_path / "m"))
    meta = v2.model_metadata("m", "", input_spec(model), "python_function",
                             v2.signature_outputs(model), v2.signature_columns(model))
    _conforms(meta, "metadata_model_response")
    assert meta["inputs"] == [
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
        {"name": "weight", "datatype": "FP64", "shape": [-1]},
        {"name": "count", "datatype": "INT64", "shape": [-1]},
    ]
    assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]


def _infer(server: Server, path: str, body: Any) -> httpx.Response:
    return httpx.post(server.url + path, content=json.dumps(body), headers={"content-type": "application/json"}, timeout=10)


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v2/models/typed/infer", {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP99", "data": [1, 2, 3]}]}, 400, "datatype"),
        ("/v2/models/typed/infer", {"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, 400, "holds 6 elements"),
        ("/v2/models/typed/infer", {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, 400, "shape"),
        ("/v2/models/typed/infer", {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "INT32", "data": [1.5, 2, 3]}]}, 400, "integers"),
        ("/v2/models/typed/infer", {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "UINT8", "data": [1, 2, 300]}]}, 400, "fit"),
        ("/v2/models/typed/infer", {"inputs": []}, 400, "inputs"),
        ("/v2/models/typed/infer", {"inputs": [{"name": "input-0", "shape": [99999, 99999, 99999], "datatype": "FP32", "data": []}]}, 400, "too many"),
        ("/v2/models/other/infer", {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, 404, "not served"),
        ("/v2/models/typed/versions/7/infer", {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, 404, "version"),
        ("/v2/models/words/infer", {"inputs": [{"name": "nope", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}, 400, "unknown input"),
    ],
)
def test_bad_requests_get_the_protocols_errors(models: dict[str, Server], path: str, body: Any, status: int, words: str) -> None:
    server = models["words"] if "/words/" in path else models["typed"]
    r = _infer(server, path, body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    _conforms(r.json(), "inference_error_response")
    ok = _infer(models["typed"], "/v2/models/typed/infer", {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [[1, 2, 3]]}]})
    assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [6.0]


def test_nested_body_cannot_exhaust_the_stack(models: dict[str, Server]) -> None:
    deep = "[" * 100_000 + "1.0" + "]" * 100_000
    body = '{"inputs": [{"name": "input-0", "shape": [1], "datatype": "FP32", "data": ' + deep + "}]}"
    r = httpx.post(models["typed"].url + "/v2/models/typed/infer", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400
    assert httpx.get(models["typed"].url + "/ping", timeout=5).status_code == 200


def test_served_under_the_registered_name_and_version(repo: Path, tmp_path: Path) -> None:
    build_registry(repo, [(1.0, 0.5), (3.0, 0.9)], name="team/scaled")
    port = free_port()
    server = Server([*GITML, "-C", str(repo), "models", "serve", "-m", "models:/team/scaled/2", "--port", str(port)], port)
    try:
        server.wait(deadline_s=90)
        client = _client(server)
        assert client.is_model_ready("team/scaled", "2")
        inp = httpclient.InferInput("input-0", [1, 3], "FP64")
        inp.set_data_from_numpy(np.ones((1, 3)), binary_data=False)
        result = client.infer("team/scaled", [inp], model_version="2")
        assert result.as_numpy("predict").tolist() == [9.0]
        assert result.get_response()["model_version"] == "2"
        r = _infer(server, "/v2/models/team/scaled/versions/1/infer", {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [1, 1, 1]}]})
        assert r.status_code == 404
    finally:
        server.stop()


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_from_tritonclient(models: dict[str, Server], algorithm: str) -> None:
    client = _client(models["sums"])
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    for binary in (False, True):  # JSON, and the binary extension (its header counts uncompressed bytes)
        inp = httpclient.InferInput("input-0", [2, 3], "FP32")
        inp.set_data_from_numpy(data, binary_data=binary)
        result = client.infer("sums", [inp], request_compression_algorithm=algorithm)
        np.testing.assert_allclose(result.as_numpy("predict"), data.sum(axis=1) * 2.0)


def test_compressed_bodies_are_bounded_and_bad_ones_refused(models: dict[str, Server]) -> None:
    import gzip
    import zlib

    url = models["sums"].url
    body = json.dumps({"inputs": [[1.0, 2.0], [3.0, 4.0]]}).encode()
    ok = httpx.post(url + "/invocations", content=gzip.compress(body),
                    headers={"content-type": "application/json", "content-encoding": "gzip"}, timeout=30)  # fmt: skip
    assert ok.status_code == 200 and ok.json()["predictions"] == [6.0, 14.0]
    bomb = gzip.compress(b" " * (60 * 1024 * 1024))  # 60 MiB of spaces in 60 KB: over the 50 MiB limit
    cases = [
        ("/invocations", bomb, "gzip", 413),
        ("/v2/models/sums/infer", bomb, "gzip", 413),
        ("/invocations", body, "gzip", 400),  # not gzip at all
        ("/invocations", gzip.compress(body)[:-12], "gzip", 400),  # truncated
        ("/v2/models/sums/infer", zlib.compress(body), "br", 415),
    ]
    for path, content, encoding, status in cases:
        r = httpx.post(url + path, content=content, timeout=30,
                       headers={"content-type": "application/json", "content-encoding": encoding})  # fmt: skip
        assert r.status_code == status, (path, encoding, r.text)
        assert ("error" if path.startswith("/v2") else "message") in r.json()
    assert httpx.get(url + "/ping", timeout=5).status_code == 200
