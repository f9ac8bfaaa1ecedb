"""Model signatures (MLflow's JSON format) and their inference from example data.

Checking inputs against a signature at predict time is gitml/models/enforcement.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue, MissingDependency
from gitml.models.params import ParamSchema, ParamSpec, infer_param_schema
from gitml.store.bounded import check_tree, load_json

__all__ = [
    "COLUMN_TYPES",
    "ColSpec",
    "DataType",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
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


class DataType(str, Enum):
    """MLflow's column types as an enum, for `ColSpec(DataType.double, "x")`; a spec stores
    the name (COLUMN_TYPES' keys)."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"


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
        if isinstance(self.type, DataType):
            object.__setattr__(self, "type", self.type.name)
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
    """What a model takes and gives: an input schema, an optional output schema and the
    optional inference parameters `predict(..., params=)` accepts."""

    def __init__(
        self, inputs: Schema | None = None, outputs: Schema | None = None, params: ParamSchema | None = None
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self) -> dict[str, Any]:
        """The `signature` section of an MLmodel file: JSON strings, as MLflow writes them."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        """Parse the `signature` section of an MLmodel file."""
        inputs = data.get("inputs")
        outputs = data.get("outputs")
        params = data.get("params")
        return cls(
            Schema.from_json(inputs) if inputs else None,
            Schema.from_json(outputs) if outputs else None,
            ParamSchema.from_json(params) if params else None,
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModelSignature)
            and self.inputs == other.inputs
            and self.outputs == other.outputs
            and self.params == other.params
        )

    def __repr__(self) -> str:
        return f"ModelSignature(inputs={self.inputs!r}, outputs={self.outputs!r}, params={self.params!r})"


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
    """Infer a signature from example inputs and outputs (numpy, pandas, torch, lists, dicts);
    `params`, a dict of name -> default value, gives the signature's ParamSchema."""
    return ModelSignature(
        infer_schema(model_input) if model_input is not None else None,
        infer_schema(model_output) if model_output is not None else None,
        infer_param_schema(params) if params else None,  # no params ({}) is no params schema, as in MLflow
    )
