"""Model signatures (MLflow's JSON format), their inference, and input checking at predict time."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue, MissingDependency
from gitml.store.bounded import check_tree, load_json

__all__ = [
    "COLUMN_TYPES",
    "ColSpec",
    "ModelSignature",
    "Schema",
    "TensorSpec",
    "enforce_matrix",
    "enforce_schema",
    "infer_signature",
    "infer_schema",
]

# MLflow's column type names and the numpy dtype each one holds.
COLUMN_TYPES: dict[str, str] = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}


def _np() -> Any:
    try:
        import numpy
    except ImportError as e:
        raise MissingDependency("numpy", "torch") from e
    return numpy


def _pd() -> Any:
    try:
        import pandas
    except ImportError as e:
        raise MissingDependency("pandas", "pandas") from e
    return pandas


def _pandas_if_loaded() -> Any:
    # Only an imported pandas can have made a DataFrame: asking must not import it (~45 MiB,
    # which a scoring server of a tensor model never needs otherwise).
    return sys.modules.get("pandas")


@dataclass(frozen=True)
class ColSpec:
    """One named (or positional) column of a tabular input: MLflow's `ColSpec`."""

    type: str
    name: str | None = None
    required: bool = True

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise InvalidParameterValue(
                f"unknown column type {self.type!r}; expected one of {sorted(COLUMN_TYPES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON shape of a column spec."""
        out: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out


@dataclass(frozen=True)
class TensorSpec:
    """A tensor input or output: numpy dtype name and shape (-1 for a free dimension)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        try:
            _np().dtype(self.dtype)
        except TypeError as e:
            raise InvalidParameterValue(f"unknown tensor dtype {self.dtype!r}") from e

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON shape of a tensor spec."""
        out: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)},
        }
        if self.name is not None:
            out["name"] = self.name
        return out


Spec = ColSpec | TensorSpec


class Schema:
    """An ordered list of column specs or of tensor specs (never both), as MLflow defines it."""

    def __init__(self, inputs: Iterable[Spec]) -> None:
        self.inputs: list[Spec] = list(inputs)
        kinds = {type(s) for s in self.inputs}
        if len(kinds) > 1:
            raise InvalidParameterValue("a schema holds either column specs or tensor specs, not both")
        names = [s.name for s in self.inputs]
        if any(n is not None for n in names) and any(n is None for n in names):
            raise InvalidParameterValue("either every spec of a schema has a name or none has")
        if len({n for n in names if n is not None}) != len([n for n in names if n is not None]):
            raise InvalidParameterValue("spec names in a schema must be unique")

    def is_tensor_spec(self) -> bool:
        """True when the schema describes tensors rather than columns."""
        return bool(self.inputs) and isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        """True when the specs are named."""
        return bool(self.inputs) and self.inputs[0].name is not None

    def input_names(self) -> list[str | int]:
        """Names of the specs, or their positions when unnamed."""
        return [s.name if s.name is not None else i for i, s in enumerate(self.inputs)]

    def to_dict(self) -> list[dict[str, Any]]:
        """The list of spec dicts."""
        return [s.to_dict() for s in self.inputs]

    def to_json(self) -> str:
        """The JSON string MLflow stores in an MLmodel file."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | list[dict[str, Any]]) -> Schema:
        """Parse MLflow's JSON form (a string or the decoded list)."""
        try:  # bounded: a signature string nested 100,000 deep is an error, not a RecursionError
            items = load_json(text, "signature") if isinstance(text, str) else check_tree(text, "signature")
        except CorruptMetadata as e:
            raise InvalidParameterValue(f"signature is not valid JSON, or not bounded: {e.message}") from e
        if not isinstance(items, list):
            raise InvalidParameterValue("a schema's JSON must be a list of specs")
        specs: list[Spec] = []
        for item in items:
            if not isinstance(item, dict) or "type" not in item:
                raise InvalidParameterValue(f"malformed spec in signature: {str(item)[:200]}")
            if item["type"] == "tensor":
                ts = item.get("tensor-spec") or {}
                specs.append(TensorSpec(ts.get("dtype", ""), tuple(ts.get("shape", ())), item.get("name")))
            else:
                specs.append(ColSpec(item["type"], item.get("name"), bool(item.get("required", True))))
        return cls(specs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.inputs == other.inputs

    def __repr__(self) -> str:
        return f"Schema({self.inputs!r})"


class ModelSignature:
    """What a model takes and gives: an input schema and an optional output schema."""

    def __init__(self, inputs: Schema | None = None, outputs: Schema | None = None) -> None:
        self.inputs = inputs
        self.outputs = outputs

    def to_dict(self) -> dict[str, Any]:
        """The `signature` section of an MLmodel file: JSON strings, as MLflow writes them."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        """Parse the `signature` section of an MLmodel file."""
        inputs = data.get("inputs")
        outputs = data.get("outputs")
        return cls(
            Schema.from_json(inputs) if inputs else None,
            Schema.from_json(outputs) if outputs else None,
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModelSignature)
            and self.inputs == other.inputs
            and self.outputs == other.outputs
        )

    def __repr__(self) -> str:
        return f"ModelSignature(inputs={self.inputs!r}, outputs={self.outputs!r})"


# ---------------------------------------------------------------- inference


def _col_type(dtype: Any) -> str:
    np = _np()
    dt = np.dtype(dtype) if not hasattr(dtype, "kind") else dtype
    kind = getattr(dt, "kind", "O")
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer" if dt.itemsize <= 4 and kind == "i" else "long"
    if kind == "f":
        return "float" if dt.itemsize <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "binary"
    return "string"


def _tensor_spec(array: Any, name: str | None = None) -> TensorSpec:
    np = _np()
    arr = np.asarray(array)
    if arr.dtype == object:
        raise InvalidParameterValue("cannot infer a tensor spec from an object array")
    # The first dimension is the batch: free, as MLflow infers it.
    shape = (-1, *arr.shape[1:]) if arr.ndim else ()
    return TensorSpec(arr.dtype.name if arr.dtype.kind != "U" else "str", shape, name)


def _to_numpy_if_tensor(data: Any) -> Any:
    # torch tensors are recognised by duck typing so torch need not be imported here.
    if type(data).__module__.startswith("torch") and hasattr(data, "detach"):
        return data.detach().cpu().numpy()
    return data


def infer_schema(data: Any) -> Schema:
    """The schema of an example: arrays and tensors give tensor specs, tables give columns."""
    np = _np()
    data = _to_numpy_if_tensor(data)
    pd = _pandas_if_loaded()
    if pd is not None:
        if isinstance(data, pd.DataFrame):
            return Schema(ColSpec(_col_type(data[c].dtype), str(c)) for c in data.columns)
        if isinstance(data, pd.Series):
            return Schema([ColSpec(_col_type(data.dtype), str(data.name) if data.name is not None else None)])
    if isinstance(data, np.ndarray):
        return Schema([_tensor_spec(data)])
    if isinstance(data, Mapping):
        values = {k: _to_numpy_if_tensor(v) for k, v in data.items()}
        if all(isinstance(v, np.ndarray) for v in values.values()):
            return Schema(_tensor_spec(v, str(k)) for k, v in values.items())
        # A dict of scalars or lists is one record or a column table.
        return Schema(ColSpec(_col_type(np.asarray(v).dtype), str(k)) for k, v in values.items())
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and all(isinstance(r, Mapping) for r in data):
            keys: dict[str, None] = {}
            for r in data:
                keys.update(dict.fromkeys(r))
            return Schema(
                ColSpec(_col_type(np.asarray([r.get(k) for r in data]).dtype), str(k)) for k in keys
            )
        return Schema([_tensor_spec(np.asarray(data))])
    if isinstance(data, str | bytes | int | float | bool):
        return Schema([ColSpec(_col_type(np.asarray(data).dtype))])
    raise InvalidParameterValue(f"cannot infer a schema from {type(data).__name__}")


def infer_signature(model_input: Any = None, model_output: Any = None, params: Any = None) -> ModelSignature:
    """Infer a signature from example inputs and outputs (numpy, pandas, torch, lists, dicts)."""
    if params is not None:
        raise InvalidParameterValue("inference params are not supported in signatures yet")
    return ModelSignature(
        infer_schema(model_input) if model_input is not None else None,
        infer_schema(model_output) if model_output is not None else None,
    )


# ---------------------------------------------------------------- enforcement


def _fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _enforce_tensor(value: Any, spec: TensorSpec, label: str) -> Any:
    np = _np()
    expected = np.dtype(spec.dtype)
    value = _to_numpy_if_tensor(value)
    pd = _pandas_if_loaded()
    if pd is not None:
        if isinstance(value, pd.DataFrame | pd.Series):
            value = value.to_numpy()
    if isinstance(value, np.ndarray):
        arr = value
        if arr.dtype != expected:
            if not np.can_cast(arr.dtype, expected, casting="safe"):
                raise InvalidParameterValue(
                    f"{label}: dtype {arr.dtype} cannot be safely cast to the expected {expected} "
                    f"(convert it yourself, e.g. .astype('{expected}'))"
                )
            arr = arr.astype(expected)
    else:
        # JSON and Python lists carry no dtype: parse them as the signature says, refusing loss.
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise InvalidParameterValue(f"{label}: not a rectangular array: {e}") from e
        if raw.dtype == object or raw.dtype.kind in "US" and expected.kind not in "USO":
            raise InvalidParameterValue(f"{label}: expected {expected} values, got {raw.dtype} data")
        if expected.kind in "iu" and raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
            raise InvalidParameterValue(f"{label}: expected integers ({expected}), got fractional values")
        if expected.kind == "b" and raw.dtype.kind != "b":
            raise InvalidParameterValue(f"{label}: expected booleans, got {raw.dtype} data")
        arr = raw.astype(expected)
    shape = spec.shape
    if len(shape) != arr.ndim or any(d != -1 and d != a for d, a in zip(shape, arr.shape, strict=False)):
        raise InvalidParameterValue(
            f"{label}: shape {_fmt_shape(arr.shape)} does not match the expected {_fmt_shape(shape)} "
            "(-1 is any size)"
        )
    return arr


def _enforce_column(series: Any, spec: ColSpec) -> Any:
    np = _np()
    pd = _pd()
    label = f"column {spec.name!r}" if spec.name is not None else "column"
    want = spec.type
    dt = series.dtype
    if want in ("string", "binary"):
        if dt.kind not in "OUS" and not isinstance(dt, pd.StringDtype):
            raise InvalidParameterValue(f"{label}: expected {want}, got {dt}")
        return series
    if want == "datetime":
        if dt.kind != "M":
            try:
                return pd.to_datetime(series)
            except (ValueError, TypeError) as e:
                raise InvalidParameterValue(f"{label}: expected datetime values: {e}") from e
        return series
    expected = np.dtype(COLUMN_TYPES[want])
    if dt == expected:
        return series
    if dt.kind == "O":
        # Mixed Python objects (JSON records): accept only if they parse without loss.
        try:
            arr = np.asarray(series.tolist())
        except (ValueError, TypeError) as e:
            raise InvalidParameterValue(f"{label}: expected {want}: {e}") from e
        if arr.dtype.kind in "OUS":
            raise InvalidParameterValue(f"{label}: expected {want}, got strings, nulls or other non-numbers")
        dt = arr.dtype
        series = pd.Series(arr, index=series.index, name=series.name)
        if dt == expected:
            return series
    return series.astype(_column_cast(dt, expected, want, label))


def _column_cast(dt: Any, expected: Any, want: str, label: str) -> Any:
    """`expected` if values of dtype `dt` convert to it without loss, else a clear error."""
    np = _np()
    # An integer column given where floats are expected is exact for realistic values (MLflow allows it).
    if np.can_cast(dt, expected, casting="safe") or (dt.kind in "iu" and expected.kind == "f"):
        return expected
    raise InvalidParameterValue(
        f"{label}: {dt} cannot be safely converted to {want} ({expected}); convert it yourself"
    )


def _to_frame(data: Any, schema: Schema) -> Any:
    np = _np()
    pd = _pd()
    data = _to_numpy_if_tensor(data)
    names = [s.name for s in schema.inputs]
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        try:
            return pd.DataFrame({k: np.atleast_1d(np.asarray(v)) if not isinstance(v, list) else v
                                 for k, v in data.items()})
        except ValueError as e:
            raise InvalidParameterValue(f"input columns have different lengths: {e}") from e
    if isinstance(data, Sequence) and not isinstance(data, str | bytes) and data and all(
        isinstance(r, Mapping) for r in data
    ):
        return pd.DataFrame.from_records(list(data))
    arr = np.asarray(data) if not isinstance(data, np.ndarray) else data
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if len(names) > 1 else arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise InvalidParameterValue(f"expected a table of {len(names)} columns, got a {arr.ndim}-d array")
    if arr.shape[1] != len(names):
        raise InvalidParameterValue(
            f"expected {len(names)} columns, got {arr.shape[1]}"
        )
    cols = [n if n is not None else i for i, n in enumerate(names)]
    return pd.DataFrame(arr, columns=cols)


def _enforce_columns(data: Any, schema: Schema) -> Any:
    pd = _pd()
    frame = _to_frame(data, schema)
    specs = [s for s in schema.inputs if isinstance(s, ColSpec)]
    if schema.has_input_names():
        present = {str(c): c for c in frame.columns}
        missing = [s.name for s in specs if s.required and s.name not in present]
        if missing:
            raise InvalidParameterValue(
                f"input is missing required column(s) {missing}; it has {list(present)}"
            )
        out = {}
        for s in specs:
            assert s.name is not None
            if s.name in present:
                out[s.name] = _enforce_column(frame[present[s.name]], s)
        # Extra columns are dropped, as MLflow does, so the model sees only what it was trained on.
        return pd.DataFrame(out, index=frame.index)
    if frame.shape[1] != len(specs):
        raise InvalidParameterValue(f"expected {len(specs)} columns, got {frame.shape[1]}")
    cols = {i: _enforce_column(frame.iloc[:, i], s) for i, s in enumerate(specs)}
    return pd.DataFrame({frame.columns[i]: c for i, c in cols.items()}, index=frame.index)


def enforce_matrix(values: Any, columns: Sequence[str], schema: Schema) -> Any:
    """`enforce_schema` for a numeric 2-D array whose columns are exactly the schema's named
    columns, in order, all of one numeric type: the checked array, without building a
    DataFrame (which costs more than scoring a small model). None when that does not hold;
    the caller then goes the DataFrame way, which gives the same answer or the same error."""
    np = _np()
    specs = schema.inputs
    if (
        not specs
        or not isinstance(values, np.ndarray)
        or values.ndim != 2
        or values.dtype.kind not in "biuf"
        or len(columns) != len(specs)
        or not schema.has_input_names()
    ):
        return None
    want = specs[0].type if isinstance(specs[0], ColSpec) else None
    if want not in _NUMERIC_COLUMNS:
        return None
    for spec, column in zip(specs, columns, strict=True):
        if not isinstance(spec, ColSpec) or spec.type != want or spec.name != column:
            return None
    expected = np.dtype(COLUMN_TYPES[want])
    dt = values.dtype
    if dt == expected:
        return values
    # the rules of `_enforce_column`, for every column at once
    return values.astype(_column_cast(dt, expected, want, f"column {specs[0].name!r}"))


_NUMERIC_COLUMNS = frozenset({"boolean", "integer", "long", "float", "double"})


def enforce_schema(data: Any, schema: Schema) -> Any:
    """Check `data` against `schema` and return it converted (numpy for tensors, a DataFrame for
    columns); raise InvalidParameterValue naming the first problem found."""
    if not schema.inputs:
        return data
    if schema.is_tensor_spec():
        specs = [s for s in schema.inputs if isinstance(s, TensorSpec)]
        if not schema.has_input_names():
            if isinstance(data, Mapping):
                if len(data) != 1:
                    raise InvalidParameterValue(
                        f"the model takes one unnamed tensor, got a dict of {len(data)} entries"
                    )
                data = next(iter(data.values()))
            return _enforce_tensor(data, specs[0], "input")
        if not isinstance(data, Mapping):
            if len(specs) == 1:
                return {specs[0].name: _enforce_tensor(data, specs[0], f"input {specs[0].name!r}")}
            raise InvalidParameterValue(
                f"the model takes named tensors {[s.name for s in specs]}: pass a dict"
            )
        missing = [s.name for s in specs if s.name not in data]
        if missing:
            raise InvalidParameterValue(f"input is missing tensor(s) {missing}; it has {list(data)}")
        return {s.name: _enforce_tensor(data[s.name], s, f"input {s.name!r}") for s in specs}
    return _enforce_columns(data, schema)
