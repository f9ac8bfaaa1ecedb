"""Input checking at predict time: data is cast to, or refused by, the model's signature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.models.signature import (
    COLUMN_TYPES,
    ColSpec,
    Schema,
    TensorSpec,
    _np,
    _pandas_if_loaded,
    _pd,
    _to_numpy_if_tensor,
)

__all__ = ["enforce_matrix", "enforce_schema"]



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
