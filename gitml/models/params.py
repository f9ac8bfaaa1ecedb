"""Inference parameters of a signature (MLflow's ParamSchema and ParamSpec), their inference
from a dict of defaults, and their checking at predict time."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.store.bounded import check_tree, load_json

__all__ = ["PARAM_TYPES", "ParamSchema", "ParamSpec", "enforce_params", "infer_param_schema"]

_log = logging.getLogger(__name__)

# MLflow's data type names a parameter may declare.
PARAM_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
# A params section is a handful of knobs; these bound what a hostile MLmodel can make us build.
MAX_PARAMS = 1000
MAX_LIST_LEN = 10_000
MAX_NAME = 1000
_MAX_JSON_BYTES = 1 << 20


def _cast(value: Any, type_name: str) -> Any:
    """`value` as the declared type, or TypeError: widening only, never a lossy cast."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar, as a list parameter's array gives them
    if type_name == "boolean":
        if isinstance(value, bool):
            return value
    elif type_name in ("integer", "long"):
        # bool is an int in Python but never a number in a signature (MLflow refuses it too).
        if isinstance(value, int) and not isinstance(value, bool):
            if type_name == "integer" and not -(2**31) <= value < 2**31:
                raise TypeError(f"{value} does not fit in a 32-bit integer")
            return int(value)
    elif type_name in ("float", "double"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif type_name == "string":
        if isinstance(value, str):
            return value
    elif type_name == "binary":
        if isinstance(value, bytes):
            return value
    elif type_name == "datetime":
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day)
        if isinstance(value, str):  # the MLmodel file and JSON requests carry ISO strings
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError as e:
                raise TypeError(f"{value!r} is not an ISO 8601 date-time") from e
    else:
        raise TypeError(f"unknown parameter type {type_name!r}")
    raise TypeError(f"expected {type_name}, got {type(value).__name__} {str(value)[:100]!r}")


def _as_list(value: Any) -> list[Any] | None:
    """A 1-D list from a list, tuple or 1-D numpy array; None for anything else."""
    if isinstance(value, list | tuple):
        return list(value)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 1:
        return list(value.tolist())
    return None


def _latin1(text: Any) -> bytes:
    """A binary default as the MLmodel file carries it (one character a byte), back to bytes."""
    if isinstance(text, str):
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            pass  # a character past U+00FF was not written by to_dict
    raise InvalidParameterValue(f"a binary parameter's default is not a byte string: {str(text)[:100]!r}")


class ParamSpec:
    """One inference parameter: its name, MLflow data type, default and shape (None for a
    scalar, (-1,) for a list)."""

    def __init__(self, name: str, dtype: str, default: Any, shape: tuple[int, ...] | None = None) -> None:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise InvalidParameterValue(
                f"a parameter's name must be a string of 1 to {MAX_NAME} characters, got {str(name)[:100]!r}"
            )
        dtype = getattr(dtype, "name", dtype)  # a DataType member carries its name
        if dtype not in PARAM_TYPES:
            raise InvalidParameterValue(
                f"parameter {name!r}: unknown type {str(dtype)[:100]!r}; expected one of {list(PARAM_TYPES)}"
            )
        if shape is not None:
            shape = tuple(shape)
            if shape != (-1,):
                raise InvalidParameterValue(f"parameter {name!r}: shape must be None or (-1,), got {str(shape)[:100]}")
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.default = self.validate(default) if default is not None else None

    @property
    def type(self) -> str:
        """The data type's name (MLflow's JSON key)."""
        return self.dtype

    def validate(self, value: Any) -> Any:
        """`value` cast to this spec's type and shape; a wrong one raises InvalidParameterValue."""
        try:
            if self.shape is None:
                if _as_list(value) is not None:
                    raise TypeError("expected a scalar, got a list")
                return _cast(value, self.dtype)
            items = _as_list(value)
            if items is None:
                raise TypeError(f"expected a list (shape (-1,)), got {type(value).__name__}")
            if len(items) > MAX_LIST_LEN:
                raise TypeError(f"a list of {len(items)} values is longer than {MAX_LIST_LEN}")
            return [_cast(v, self.dtype) for v in items]
        except TypeError as e:
            raise InvalidParameterValue(f"parameter {self.name!r} does not match its signature: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON shape: name, type, default (datetimes as ISO strings), shape."""
        default = self.default
        if self.dtype == "datetime" and default is not None:
            default = [v.isoformat() for v in default] if self.shape else default.isoformat()
        elif self.dtype == "binary" and default is not None:
            # JSON has no bytes: a binary default is written one character a byte.
            default = [v.decode("latin-1") for v in default] if self.shape else default.decode("latin-1")
        return {"name": self.name, "type": self.dtype, "default": default, "shape": list(self.shape) if self.shape else None}

    @classmethod
    def from_json_dict(cls, item: Any) -> ParamSpec:
        """Parse one spec of MLflow's JSON form."""
        if not isinstance(item, dict) or not {"name", "type"} <= set(item):
            raise InvalidParameterValue(f"malformed parameter spec in signature: {str(item)[:200]}")
        default = item.get("default")
        if item.get("type") == "binary" and default is not None:
            default = [_latin1(v) for v in default] if isinstance(default, list) else _latin1(default)
        shape = item.get("shape")
        if shape is not None and not isinstance(shape, list):
            raise InvalidParameterValue(f"parameter spec's shape must be a list or null: {str(shape)[:100]}")
        return cls(item["name"], item["type"], default, tuple(shape) if shape is not None else None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSpec) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        shape = f", shape={self.shape}" if self.shape else ""
        return f"ParamSpec(name={self.name!r}, type={self.dtype!r}, default={self.default!r}{shape})"


class ParamSchema:
    """The ordered inference parameters of a model signature (MLflow's ParamSchema)."""

    def __init__(self, params: Iterable[ParamSpec]) -> None:
        self.params: list[ParamSpec] = list(params)
        if not all(isinstance(p, ParamSpec) for p in self.params):
            raise InvalidParameterValue("a ParamSchema holds ParamSpec objects only")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(f"duplicated parameters in the schema: {sorted({n for n in names if names.count(n) > 1})}")

    def to_dict(self) -> list[dict[str, Any]]:
        """The list of spec dicts."""
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        """The JSON string MLflow stores as `signature.params` in an MLmodel file."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | list[Any]) -> ParamSchema:
        """Parse MLflow's JSON form (a string or the decoded list), bounded in size and depth."""
        try:  # a spec nests three deep (list, spec, default list); more is hostile
            items = (
                load_json(text, "signature params", max_bytes=_MAX_JSON_BYTES, max_depth=4)
                if isinstance(text, str)
                else check_tree(text, "signature params", max_depth=4)
            )
        except CorruptMetadata as e:
            raise InvalidParameterValue(f"signature params are not valid JSON, or not bounded: {e.message}") from e
        if not isinstance(items, list):
            raise InvalidParameterValue("a params schema's JSON must be a list of specs")
        if len(items) > MAX_PARAMS:
            raise InvalidParameterValue(f"a params schema of {len(items)} specs is more than {MAX_PARAMS}")
        return cls(ParamSpec.from_json_dict(item) for item in items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSchema) and self.params == other.params

    def __repr__(self) -> str:
        return f"ParamSchema({self.params!r})"


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "binary"
    if isinstance(value, dt.date):
        return "datetime"
    kind = getattr(getattr(value, "dtype", None), "kind", None)  # a numpy scalar
    if kind is not None and getattr(value, "ndim", 1) == 0:
        return _infer_type(value.item())
    raise TypeError(f"cannot infer a parameter type from {type(value).__name__}")


def infer_param_schema(params: Mapping[str, Any]) -> ParamSchema:
    """The ParamSchema of a dict of defaults: scalars, or 1-D lists of one scalar type."""
    if not isinstance(params, Mapping):
        raise InvalidParameterValue(f"params must be a dict of name -> default value, got {type(params).__name__}")
    specs = []
    for name, value in params.items():
        try:
            items = _as_list(value)
            if items is None:
                specs.append(ParamSpec(name, _infer_type(value), value))
                continue
            types = {_infer_type(v) for v in items}
            if types == {"long", "double"}:
                types = {"double"}
            if len(types) != 1:
                raise TypeError("a list parameter needs values of one type" if items else "an empty list has no type")
            specs.append(ParamSpec(name, types.pop(), items, (-1,)))
        except TypeError as e:
            raise InvalidParameterValue(f"failed to infer the schema of parameter {name!r}: {e}") from e
    return ParamSchema(specs)


def enforce_params(params: Any, schema: ParamSchema | None) -> dict[str, Any] | None:
    """The params a model receives: cast to the schema, defaults filled in, unknown names
    dropped with a warning (as MLflow does). Without a schema, params are dropped too."""
    if schema is None:
        if params:
            _log.warning(
                "the model's signature declares no params: ignoring the params given (%s)",
                ", ".join(sorted(map(str, params)))[:500] if isinstance(params, Mapping) else type(params).__name__,
            )
        return None
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidParameterValue(f"params must be a dict, got {type(params).__name__}")
    known = {p.name: p for p in schema.params}
    unknown = [str(k) for k in params if k not in known]
    if unknown:
        _log.warning(
            "unrecognised params %s are ignored; the model's signature declares %s",
            sorted(unknown)[:50],
            sorted(known),
        )
    return {
        name: spec.validate(params[name]) if name in params else spec.default
        for name, spec in known.items()
    }
