"""Request bodies of `/invocations` (MLflow's JSON and CSV formats) to model inputs, and back.

A parsed request is a `ModelInput`: its rows, its data in a form that merges cheaply with
other requests of the same `key` (so the batcher can make one model call of many requests),
and the MLflow `params` it carried. Every malformed body raises `InvalidParameterValue`
with a message naming the problem; nothing here touches the model.
"""

from __future__ import annotations

import io
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gitml.exceptions import GitMLError, InvalidParameterValue

__all__ = [
    "FORMATS",
    "MAX_COLUMNS",
    "InputSpec",
    "ModelInput",
    "Table",
    "UnsupportedContentType",
    "dump_predictions",
    "input_spec",
    "merge_inputs",
    "merge_table",
    "parse_request",
    "parse_v2_body",
    "split_predictions",
]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
# Columns one request may name (a CSV header of a million columns took 18 s and 1.1 GB to parse).
MAX_COLUMNS = 10_000


def _check_width(n: int) -> None:
    if n > MAX_COLUMNS:
        raise InvalidParameterValue(f"Too many columns: {n} (the limit is {MAX_COLUMNS})")

try:  # orjson parses and writes numpy arrays several times faster than json; optional
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]


class UnsupportedContentType(GitMLError):
    """A request body in a content type the server does not read (HTTP 415)."""

    error_code = "BAD_REQUEST"
    status = 415


@dataclass(frozen=True)
class InputSpec:
    """What the model's signature says about its inputs, reduced to what parsing needs."""

    tensor: bool
    names: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    # tensor specs: name ("" for an unnamed single tensor) -> (numpy dtype, shape with -1 for any)
    tensors: dict[str, tuple[Any, tuple[int, ...]]] = field(default_factory=dict)


@dataclass
class ModelInput:
    """One request's input: `kind` is "frame", "tensor" or "named"; `key` None never merges."""

    kind: str
    data: Any
    rows: int
    key: Hashable | None
    params: dict[str, Any] | None = None
    columns: tuple[str, ...] = ()


class Table(NamedTuple):
    """Numeric rows and their column names: a DataFrame not built (yet)."""

    values: Any
    columns: tuple[str, ...]


def input_spec(model: Any) -> InputSpec | None:
    """Read the signature of a pyfunc model (MLflow's Schema API); None when it has none."""
    schema = getattr(getattr(getattr(model, "metadata", None), "signature", None), "inputs", None)
    if schema is None:
        return None
    try:
        is_tensor = bool(schema.is_tensor_spec())
        specs = list(getattr(schema, "inputs", []))
        names = tuple(schema.input_names()) if schema.has_input_names() else ()
    except Exception:  # a signature of an unknown shape: serve without checks rather than fail
        return None
    if not is_tensor:
        required = tuple(
            str(s.name) for s in specs if getattr(s, "name", None) and getattr(s, "required", True)
        )
        return InputSpec(tensor=False, names=tuple(str(n) for n in names), required=required)
    tensors: dict[str, tuple[Any, tuple[int, ...]]] = {}
    for s in specs:
        dtype = getattr(s, "dtype", None) or getattr(s, "type", None)
        shape = tuple(int(d) for d in (getattr(s, "shape", None) or ()))
        tensors[str(getattr(s, "name", None) or "")] = (dtype, shape)
    return InputSpec(tensor=True, names=tuple(str(n) for n in names), tensors=tensors)


def _loads(body: bytes) -> Any:
    try:
        return _orjson.loads(body) if _orjson is not None else json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # orjson: nesting over 1024
        raise InvalidParameterValue(f"Malformed JSON body: {str(e)[:200]}")


def parse_v2_body(body: bytes) -> Any:
    """A V2 request body: a JSON object."""
    payload = _loads(body)
    if not isinstance(payload, dict):
        raise InvalidParameterValue("an inference request must be a JSON object")
    return payload


def parse_request(body: bytes, content_type: str | None, spec: InputSpec | None) -> ModelInput:
    """Parse one `/invocations` body; raises InvalidParameterValue or UnsupportedContentType."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime == "application/json":
        return parse_json(_loads(body), spec)
    if mime == "text/csv":
        return parse_csv(body, spec)
    shown = content_type or "none"
    raise UnsupportedContentType(
        f"Content type {shown!r} is not supported; use 'application/json' or 'text/csv'"
    )


def parse_json(payload: Any, spec: InputSpec | None) -> ModelInput:
    """A decoded JSON body in one of MLflow's four formats, plus optional `params`."""
    if not isinstance(payload, dict):
        raise InvalidParameterValue(
            f"The JSON body must be an object with one of the fields {', '.join(FORMATS)}"
        )
    present = [k for k in FORMATS if k in payload]
    extra = sorted(set(payload) - set(FORMATS) - {"params"})
    if len(present) != 1 or extra:
        why = f"unknown field(s) {extra}" if extra else f"found {present or 'none'}"
        raise InvalidParameterValue(
            f"The JSON body must have exactly one of the fields {', '.join(FORMATS)} ({why})"
        )
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidParameterValue("'params' must be a JSON object")
    fmt = present[0]
    value = payload[fmt]
    if fmt == "dataframe_split":
        result = _parse_split(value, spec)
    elif fmt == "dataframe_records":
        result = _parse_records(value, spec)
    elif fmt == "instances":
        result = _parse_instances(value, spec)
    else:
        result = _parse_inputs(value, spec)
    if result.rows == 0:
        raise InvalidParameterValue(f"Empty batch: '{fmt}' holds no rows")
    if params:
        result.params = params
        result.key = None  # params change the call; such a request runs alone
    return result


def _frame(columns: Sequence[Any], rows: list[Any], spec: InputSpec | None) -> ModelInput:
    _check_width(len(columns))
    np = _numpy()
    cols = tuple(str(c) for c in columns)
    if len(set(cols)) != len(cols):
        raise InvalidParameterValue(f"Duplicate column names: {list(cols)}")
    _check_columns(cols, spec)
    if not rows:
        return ModelInput("frame", None, 0, None, columns=cols)
    try:
        values = np.asarray(rows)
    except ValueError as e:
        raise InvalidParameterValue(f"Rows of different lengths or shapes: {e}")
    if values.ndim != 2 or values.shape[1] != len(cols):
        raise InvalidParameterValue(
            f"Each row must have {len(cols)} values (one per column); got shape {list(values.shape)}"
        )
    if values.dtype.kind in "biuf":
        # numbers only: one array, merged by concatenation, one DataFrame per model call
        return ModelInput(
            "frame", values, len(values), ("frame", cols, values.dtype.str), columns=cols
        )
    pd = _pandas()
    if pd is None:
        raise InvalidParameterValue("Non-numeric columns need pandas on the server")
    frame = pd.DataFrame(rows, columns=list(cols))
    return ModelInput("frame", frame, len(frame), ("frame-obj", cols), columns=cols)


def _check_columns(cols: tuple[str, ...], spec: InputSpec | None) -> None:
    if spec is None or spec.tensor or not spec.required:
        return
    missing = [c for c in spec.required if c not in cols]
    if missing:
        raise InvalidParameterValue(
            f"Missing required column(s) {missing}; the model expects {list(spec.names)}"
        )


def _parse_split(value: Any, spec: InputSpec | None) -> ModelInput:
    if not isinstance(value, dict):
        raise InvalidParameterValue("'dataframe_split' must be an object with 'columns' and 'data'")
    data = value.get("data")
    if not isinstance(data, list):
        raise InvalidParameterValue("'dataframe_split' needs a 'data' list of rows")
    columns = value.get("columns")
    if columns is None:
        if spec is not None and spec.names and not spec.tensor:
            columns = list(spec.names)
        else:
            width = len(data[0]) if data and isinstance(data[0], list) else 0
            columns = [str(i) for i in range(width)]
    if not isinstance(columns, list):
        raise InvalidParameterValue("'dataframe_split.columns' must be a list of names")
    return _frame(columns, data, spec)


def _parse_records(value: Any, spec: InputSpec | None) -> ModelInput:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise InvalidParameterValue("'dataframe_records' must be a list of objects")
    if not value:
        return ModelInput("frame", None, 0, None)
    _check_width(len(value[0]))
    columns = list(value[0])
    # records may name their fields in any order and omit optional ones: union, first-seen order
    seen = set(columns)
    for r in value:
        for k in r:
            if k not in seen:
                seen.add(k)
                columns.append(k)
        _check_width(len(columns))
    rows = [[r.get(c) for c in columns] for r in value]
    return _frame(columns, rows, spec)


def _array(value: Any, name: str, spec: InputSpec | None) -> Any:
    np = _numpy()
    dtype: Any = None
    shape: tuple[int, ...] = ()
    if spec is not None and spec.tensor:
        dtype, shape = spec.tensors.get(name, spec.tensors.get("", (None, ())))
    label = f"input {name!r}" if name else "the input"
    try:
        arr = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
    except (ValueError, TypeError) as e:
        if dtype is not None and "inhomogeneous" not in str(e):
            raise InvalidParameterValue(f"Cannot convert {label} to {np.dtype(dtype).name}: {e}")
        raise InvalidParameterValue(f"Ragged or malformed tensor for {label}: {e}")
    if arr.dtype.kind == "O":
        raise InvalidParameterValue(f"Ragged or malformed tensor for {label}")
    if arr.ndim == 0:
        raise InvalidParameterValue(
            f"{label[0].upper()}{label[1:]} must be a list of rows, not a scalar"
        )
    if shape:
        want = list(shape)
        if arr.ndim != len(want) or any(
            w not in (-1, g) for w, g in zip(want, arr.shape, strict=False)
        ):
            raise InvalidParameterValue(
                f"Wrong shape for {label}: got {list(arr.shape)}, the model expects {want} (-1: any)"
            )
    return arr


def _tensor(value: Any, spec: InputSpec | None) -> ModelInput:
    arr = _array(value, "", spec)
    return ModelInput("tensor", arr, int(arr.shape[0]), ("tensor", arr.shape[1:], arr.dtype.str))


def _named(value: dict[str, Any], spec: InputSpec | None) -> ModelInput:
    if not value:
        return ModelInput("named", {}, 0, None)
    _check_width(len(value))
    if spec is not None and spec.tensor and spec.names:
        missing = [n for n in spec.names if n not in value]
        if missing:
            raise InvalidParameterValue(
                f"Missing input(s) {missing}; the model expects {list(spec.names)}"
            )
    arrays = {str(k): _array(v, str(k), spec) for k, v in value.items()}
    lengths = {a.shape[0] for a in arrays.values()}
    rows = max(lengths)
    key: Hashable | None = None
    if len(lengths) == 1:
        key = ("named",) + tuple((k, a.shape[1:], a.dtype.str) for k, a in arrays.items())
    return ModelInput("named", arrays, int(rows), key)


def _parse_instances(value: Any, spec: InputSpec | None) -> ModelInput:
    if not isinstance(value, list):
        raise InvalidParameterValue("'instances' must be a list")
    if value and all(isinstance(v, dict) for v in value):
        names = list(value[0])
        if any(list(v) != names and set(v) != set(names) for v in value):
            raise InvalidParameterValue("Every instance must have the same named inputs")
        return _named({n: [v[n] for v in value] for n in names}, spec)
    if not value:
        return ModelInput("tensor", None, 0, None)
    return _tensor(value, spec)


def _parse_inputs(value: Any, spec: InputSpec | None) -> ModelInput:
    if isinstance(value, dict):
        if spec is not None and not spec.tensor:
            # a column-based model reads named inputs as columns, as MLflow does
            cols = list(value)
            try:
                np = _numpy()
                rows = np.asarray([value[c] for c in cols], dtype=object).T.tolist()
            except ValueError as e:
                raise InvalidParameterValue(f"Columns of different lengths: {e}")
            return _frame(cols, rows, spec)
        return _named(value, spec)
    if not isinstance(value, list):
        raise InvalidParameterValue(
            "'inputs' must be a list (a tensor) or an object (named inputs)"
        )
    if not value:
        return ModelInput("tensor", None, 0, None)
    return _tensor(value, spec)


def parse_csv(body: bytes, spec: InputSpec | None) -> ModelInput:
    """A CSV body with a header row, read as a DataFrame (MLflow's `text/csv`)."""
    pd = _pandas()
    if pd is None:
        raise InvalidParameterValue("CSV input needs pandas on the server")
    if not body.strip():
        raise InvalidParameterValue("Empty batch: the CSV body is empty")
    end = body.find(b"\n")
    _check_width(body.count(b",", 0, end if end >= 0 else len(body)) + 1)  # the header, before pandas
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as e:  # pandas raises several parser error types
        raise InvalidParameterValue(f"Malformed CSV: {e}")
    cols = tuple(str(c) for c in frame.columns)
    bad = [c for c in cols if c.startswith("Unnamed:") or not c.strip()]
    if bad:
        raise InvalidParameterValue(f"Bad CSV header: empty or unnamed column(s) {bad}")
    if spec is not None and spec.tensor:
        raise InvalidParameterValue("CSV input is for column-based models; send a JSON tensor")
    _check_columns(cols, spec)
    if len(frame) == 0:
        raise InvalidParameterValue("Empty batch: the CSV body has a header but no rows")
    return ModelInput("frame", frame, len(frame), ("frame-obj", cols), columns=cols)


def merge_inputs(inputs: Sequence[ModelInput]) -> Any:
    """The model-ready data of one or more inputs of the same key, concatenated by rows."""
    first = inputs[0]
    np = _numpy()
    if first.kind == "tensor":
        return first.data if len(inputs) == 1 else np.concatenate([i.data for i in inputs])
    if first.kind == "named":
        if len(inputs) == 1:
            return first.data
        return {k: np.concatenate([i.data[k] for i in inputs]) for k in first.data}
    pd = _pandas()
    table = merge_table(inputs)
    if table is not None:
        if pd is None:
            return table.values  # without pandas, a numeric frame goes to the model as a 2-D array
        return pd.DataFrame(table.values, columns=list(table.columns))
    if len(inputs) == 1:
        return first.data
    return pd.concat([i.data for i in inputs], ignore_index=True)


def merge_table(inputs: Sequence[ModelInput]) -> Table | None:
    """The rows of numeric frames of the same key as one `Table`; None for other inputs."""
    first = inputs[0]
    np = _numpy()
    if first.kind != "frame" or not isinstance(first.data, np.ndarray):
        return None
    values = first.data if len(inputs) == 1 else np.concatenate([i.data for i in inputs])
    return Table(values, first.columns)


def split_predictions(predictions: Any, sizes: Sequence[int]) -> list[Any] | None:
    """Cut the predictions of a merged call back into one part per request; None if impossible."""
    total = sum(sizes)
    if isinstance(predictions, dict):
        parts = {k: split_predictions(v, sizes) for k, v in predictions.items()}
        if any(p is None for p in parts.values()):
            return None
        return [{k: p[i] for k, p in parts.items()} for i in range(len(sizes))]  # type: ignore[index]
    try:
        n = len(predictions)
    except TypeError:
        return None
    if n != total:
        return None
    iloc = getattr(predictions, "iloc", None)
    out = []
    start = 0
    for size in sizes:
        part = iloc[start : start + size] if iloc is not None else predictions[start : start + size]
        out.append(part)
        start += size
    return out


def _jsonable(value: Any) -> Any:
    # pandas objects to MLflow's JSON shapes; numpy arrays stay for orjson to write natively
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict(orient="records")
    if hasattr(value, "to_numpy") and hasattr(value, "iloc"):  # a Series
        return value.to_numpy()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _default(value: Any) -> Any:
    # numpy scalars and arrays orjson/json cannot write as they are
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Cannot serialise {type(value).__name__} predictions as JSON")


def dump_predictions(predictions: Any) -> bytes:
    """MLflow's answer body: `{"predictions": ...}` as JSON bytes."""
    body = {"predictions": _jsonable(predictions)}
    if _orjson is not None:
        opts = _orjson.OPT_SERIALIZE_NUMPY
        try:
            return _orjson.dumps(body, default=_default, option=opts)
        except TypeError:  # non-contiguous arrays or exotic dtypes: go through lists
            pass
    return json.dumps(body, default=_default).encode()


def _numpy() -> Any:
    import numpy

    return numpy


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        return None
    return pandas
