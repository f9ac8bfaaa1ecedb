"""The Open Inference Protocol's binary tensor data extension (Triton's and KServe's).

A request may carry an `Inference-Header-Content-Length: N` header: its body is then N bytes
of the usual JSON object followed by raw tensor bytes. An input whose `parameters` hold
`binary_data_size` takes that many bytes, in the order of the inputs, instead of `data`:
little-endian, row-major, one byte per BOOL, and each BYTES element a 4-byte little-endian
length followed by its bytes. Outputs come back the same way when the request asks, per
output (`outputs: [{"name": ..., "parameters": {"binary_data": true}}]`) or for all of them
(`parameters: {"binary_data_output": true}`); the response then names its JSON length in
the same header.

Everything here reads a client's bytes: every length is checked against the body before it
is used, and sizes must equal what the shape and datatype hold, so nothing is allocated
beyond the body the server already capped.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.serving import v2

__all__ = [
    "EXTENSION",
    "HEADER",
    "Outputs",
    "decode_inputs",
    "dump_response",
    "requested_outputs",
    "split_body",
]

EXTENSION = "binary_tensor_data"  # the name server metadata lists in `extensions`
HEADER = b"inference-header-content-length"
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_LENGTH = struct.Struct("<I")
# What the request-level parameter belongs to: the extension, not the model's params.
_RESERVED = ("binary_data_output",)


def _numpy() -> Any:
    import numpy

    return numpy


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """(JSON header, binary tail) of a body; without the header the whole body is JSON."""
    if header_length is None:
        return body, memoryview(b"")
    text = header_length.strip()
    if not _DIGITS.match(text):
        raise InvalidParameterValue(
            f"Inference-Header-Content-Length {header_length[:40]!r} is not a byte count"
        )
    n = int(text)
    if n == 0 or n > len(body):
        raise InvalidParameterValue(
            f"Inference-Header-Content-Length {n} does not fit a body of {len(body)} bytes"
        )
    view = memoryview(body)
    return bytes(view[:n]), view[n:]


def _size(entry: dict[str, Any], name: str) -> int | None:
    params = entry.get("parameters")
    if params is None:
        return None
    if not isinstance(params, dict):
        raise InvalidParameterValue(f"input '{name}': 'parameters' must be an object")
    size = params.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidParameterValue(f"input '{name}': binary_data_size must be a non-negative integer")
    return size


def _bytes_elements(blob: memoryview, count: int, name: str) -> list[Any]:
    """`count` length-prefixed elements filling `blob` exactly."""
    if count * _LENGTH.size > len(blob):
        raise InvalidParameterValue(
            f"input '{name}': {len(blob)} bytes cannot hold {count} BYTES elements (4 bytes of length each)"
        )
    out: list[bytes] = []
    pos, end = 0, len(blob)
    for _ in range(count):
        if pos + _LENGTH.size > end:
            raise InvalidParameterValue(f"input '{name}': BYTES element {len(out)} runs past binary_data_size")
        (length,) = _LENGTH.unpack_from(blob, pos)
        pos += _LENGTH.size
        if length > end - pos:
            raise InvalidParameterValue(f"input '{name}': BYTES element {len(out)} runs past binary_data_size")
        out.append(bytes(blob[pos : pos + length]))
        pos += length
    if pos != end:
        raise InvalidParameterValue(f"input '{name}': binary_data_size is {end} but its elements take {pos} bytes")
    try:  # text, as the JSON form gives; a tensor that is not all UTF-8 stays bytes
        return [b.decode("utf-8") for b in out]
    except UnicodeDecodeError:
        return list(out)


def _decode(entry: dict[str, Any], name: str, blob: memoryview) -> Any:
    np = _numpy()
    datatype = entry.get("datatype")
    if datatype not in v2.V2_DATATYPES:
        raise InvalidParameterValue(
            f"input '{name}': datatype {datatype!r} is not one of {', '.join(v2.V2_DATATYPES)}"
        )
    shape = v2.check_shape(entry.get("shape"), name)
    count = math.prod(shape)
    if datatype == "BYTES":
        arr = np.empty(count, dtype=object)
        arr[:] = _bytes_elements(blob, count, name)
        return arr.reshape(shape)
    dtype = np.dtype(v2.V2_DATATYPES[datatype]).newbyteorder("<")
    if count * dtype.itemsize != len(blob):
        raise InvalidParameterValue(
            f"input '{name}': shape {list(shape)} of {datatype} takes {count * dtype.itemsize} bytes "
            f"but binary_data_size is {len(blob)}"
        )
    arr = np.frombuffer(blob, dtype=np.uint8 if datatype == "BOOL" else dtype, count=count)
    if datatype == "BOOL":
        if arr.size and int(arr.max()) > 1:
            raise InvalidParameterValue(f"input '{name}': a BOOL byte is neither 0 nor 1")
        arr = arr.view(np.bool_)
    # a copy: the model gets a writable array in the machine's byte order
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def decode_inputs(payload: dict[str, Any], binary: memoryview) -> None:
    """Replace each binary input's data by its decoded array, taking `binary` in input order.

    The bytes must be used up exactly: a size past the end or bytes left over are errors.
    """
    inputs = payload.get("inputs")
    if not isinstance(inputs, list):
        if len(binary):
            raise InvalidParameterValue("binary tensor data follows a header without 'inputs'")
        return
    pos = 0
    for entry in inputs:
        if not isinstance(entry, dict):
            continue  # v2.parse_infer names this error
        raw_name = entry.get("name")
        name = raw_name if isinstance(raw_name, str) else "?"
        size = _size(entry, name)
        if size is None:
            continue
        if "data" in entry:
            raise InvalidParameterValue(f"input '{name}' has both 'data' and binary_data_size")
        if size > len(binary) - pos:
            raise InvalidParameterValue(
                f"input '{name}': binary_data_size {size} runs past the {len(binary)} bytes after the JSON header"
            )
        entry["data"] = _decode(entry, name, binary[pos : pos + size])
        pos += size
    if pos != len(binary):
        raise InvalidParameterValue(
            f"{len(binary) - pos} bytes follow the tensors the JSON header names (binary_data_size)"
        )


@dataclass(frozen=True)
class Outputs:
    """The outputs a request asks for (None: all) and which of them come back binary."""

    names: tuple[str, ...] | None
    binary: frozenset[str]
    all_binary: bool


def requested_outputs(payload: dict[str, Any]) -> Outputs | None:
    """What the request's `outputs` and `binary_data_output` ask; None: all outputs as JSON.

    Takes the extension's own request parameter out of what the model is passed.
    """
    params = payload.get("parameters")
    all_binary = False
    if isinstance(params, dict) and "binary_data_output" in params:
        flag = params.pop("binary_data_output")
        if not isinstance(flag, bool):
            raise InvalidParameterValue("parameter binary_data_output must be true or false")
        all_binary = flag
    wanted = payload.get("outputs")
    if wanted is None:
        return Outputs(None, frozenset(), True) if all_binary else None
    if not isinstance(wanted, list) or len(wanted) > 1024:
        raise InvalidParameterValue("'outputs' must be a list of requested outputs")
    names: list[str] = []
    binary: set[str] = set()
    for item in wanted:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidParameterValue("each of 'outputs' must be an object with a 'name'")
        out_params = item.get("parameters") or {}
        if not isinstance(out_params, dict):
            raise InvalidParameterValue(f"output '{name}': 'parameters' must be an object")
        if out_params.get("classification"):
            raise InvalidParameterValue(f"output '{name}': the classification extension is not supported")
        flag = out_params.get("binary_data", all_binary)
        if not isinstance(flag, bool):
            raise InvalidParameterValue(f"output '{name}': binary_data must be true or false")
        if name in names:
            raise InvalidParameterValue(f"output '{name}' is requested twice")
        names.append(name)
        if flag:
            binary.add(name)
    return Outputs(tuple(names), frozenset(binary), all_binary)


def _raw(datatype: str, arr: Any) -> bytes:
    np = _numpy()
    if datatype == "BYTES":
        parts = []
        for v in arr.ravel().tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts += [_LENGTH.pack(len(b)), b]
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def dump_response(
    predictions: Any, model_name: str, model_version: str, request_id: Any, want: Outputs
) -> tuple[bytes, int | None]:
    """(body, JSON header length or None when nothing is binary) for the asked outputs."""
    tensors = v2.output_tensors(predictions)
    if want.names is not None:
        have = {t[0] for t in tensors}
        unknown = [n for n in want.names if n not in have]
        if unknown:
            raise InvalidParameterValue(f"unknown output(s) {unknown}; the model's outputs are {sorted(have)}")
        by_name = {t[0]: t for t in tensors}
        tensors = [by_name[n] for n in want.names]
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, datatype, arr in tensors:
        out: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        binary = name in want.binary if want.names is not None else want.all_binary
        if binary:
            blob = _raw(datatype, arr)
            out["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            out["data"] = v2.tensor_data(datatype, arr)
        outputs.append(out)
    body: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": outputs}
    if isinstance(request_id, str):
        body["id"] = request_id
    header = json.dumps(body, allow_nan=False, default=str).encode()
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)
