"""The files of experiments and runs on the metadata branch: encoding, decoding, schemas.

Every file is checked against its JSON Schema in `schemas/` when written and when read;
a file that fails names itself in the error, and nothing else becomes unreadable.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gitml import constants as C
from gitml.exceptions import CorruptMetadata
from gitml.store.bounded import INT64_MAX, INT64_MIN, NoAliasDumper, load_json, load_yaml
from gitml.store.fanout import FanOut
from gitml.tracking.validation import is_run_id

__all__ = [
    "RUN_DIRS",
    "SCHEMA_DIR",
    "decode",
    "decode_history",
    "decode_value",
    "encode",
    "encode_history",
    "encode_value",
    "schema_for",
    "validate",
]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

_Dumper: Any = NoAliasDumper

# The run folders: runs/<id[:2]>/<id> (`C.run_dir`). The one walker of them, for every reader
# (the query index, sync, artifacts through the tracker); a folder whose name is not a run id,
# or that is filed under another prefix, is never a run and never a path.
RUN_DIRS = FanOut(C.RUNS_DIR, C.RUN_PREFIX_LEN, is_run_id)

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_value(value: float) -> float | str:
    """JSON has no NaN or infinity: write them as strings."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_value(value: float | int | str) -> float:
    """Inverse of encode_value (an integer too large for a float reads as +-infinity)."""
    if isinstance(value, str):
        return _NONFINITE[value]
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def schema_for(path: str) -> str | None:
    """The schema file that governs a path on the branch, by its name."""
    name = path.rsplit("/", 1)[-1]
    if path == C.FORMAT_FILE:
        return "format.schema.json"
    if path == C.PURGED_FILE:
        return "purged.schema.json"
    if path.startswith(C.COMMITS_DIR + "/"):
        return "commit-runs.schema.json"
    if path.startswith(C.EXPERIMENTS_DIR + "/"):
        return {C.EXPERIMENT_META: "experiment.schema.json", C.EXPERIMENT_TAGS: "string-map.schema.json"}.get(name)
    if path.startswith(C.RUNS_DIR + "/"):
        return {
            C.RUN_META: "run.schema.json",
            C.RUN_PARAMS: "string-map.schema.json",
            C.RUN_TAGS: "string-map.schema.json",
            C.RUN_METRICS: "metrics.schema.json",
            C.RUN_ARTIFACTS: "artifacts.schema.json",
        }.get(name)
    return None


@cache
def _schema(schema_name: str) -> Any:
    with open(SCHEMA_DIR / schema_name) as f:
        return json.load(f)


@cache
def _validator(schema_name: str) -> Any:
    import jsonschema  # imported on first use: it is not cheap

    schema = _schema(schema_name)
    return jsonschema.validators.validator_for(schema)(schema)


@cache
def _fast_check(schema_name: str) -> Any:
    # fastjsonschema compiles a schema into plain Python: ~100x faster than interpreting it,
    # which matters on every flush. jsonschema still words the error when a check fails.
    try:
        import fastjsonschema
    except ImportError:  # pragma: no cover
        return None
    schema = {k: v for k, v in _schema(schema_name).items() if k != "$id"}
    if "draft-07" not in schema.get("$schema", ""):
        return None  # fastjsonschema knows drafts 4 to 7
    return fastjsonschema.compile(schema)


# Blobs already validated, by schema and content hash: reads repeat, Git content never changes.
_VALID: set[tuple[str, int]] = set()


def validate(path: str, obj: Any, schema_name: str | None = None) -> None:
    """Raise CorruptMetadata if `obj` does not match the schema for `path`."""
    name = schema_name or schema_for(path)
    if name is None:
        return
    fast = _fast_check(name)
    if fast is not None:
        try:
            fast(obj)
            return
        except Exception:
            pass  # fall through for jsonschema's precise message
    error = next(iter(_validator(name).iter_errors(obj)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise CorruptMetadata(f"{path} does not match {name}{' at ' + where if where else ''}: {error.message}")


_compact = json.JSONEncoder(sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _json_lines(obj: Any) -> str:
    """JSON with one top-level key per line: readable in a diff, and encoded by the C encoder
    (`indent=` would switch json to its pure-Python encoder, ten times slower)."""
    if not isinstance(obj, dict) or not obj:
        return _compact(obj)
    items = [f" {_compact(k)}: {_compact(obj[k])}" for k in sorted(obj)]
    return "{\n" + ",\n".join(items) + "\n}"


def encode(path: str, obj: Any) -> bytes:
    """Serialise (YAML for *.yaml, JSON otherwise) after validating against the schema."""
    validate(path, obj)
    if path.endswith(".yaml"):
        text = yaml.dump(obj, Dumper=_Dumper, sort_keys=True, allow_unicode=True, default_flow_style=False)
        return text.encode()
    return (_json_lines(obj) + "\n").encode()


def decode(path: str, data: bytes) -> Any:
    """Parse (bounded: size, depth, 64-bit integers, no YAML aliases) and validate a file read
    from the branch; errors name the file."""
    what = f"{path} on the metadata branch"
    # Size, parser recursion and YAML aliases here; integer ranges by the schema (cached below).
    obj = load_yaml(data, what, walk=False) if path.endswith(".yaml") else load_json(data, what, walk=False)
    key = (schema_for(path) or "", hash(data))
    if key not in _VALID:
        validate(path, obj)
        if len(_VALID) > 200_000:
            _VALID.clear()
        _VALID.add(key)
    return obj


def encode_history(points: list[tuple[str, float, int, int]]) -> bytes:
    """A history chunk: one JSON array per line."""
    lines = [_compact([k, encode_value(v), t, s]) for k, v, t, s in points]
    return ("\n".join(lines) + "\n").encode()


def decode_history(path: str, data: bytes) -> list[tuple[str, float, int, int]]:
    """Parse a history chunk, checking each line's shape (the history schema, inlined for speed)."""
    out = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            k, v, t, s = json.loads(line)
            if not isinstance(k, str) or not isinstance(t, int) or not isinstance(s, int):
                raise ValueError("expected [key, value, timestamp, step]")
            if not (INT64_MIN <= t <= INT64_MAX and INT64_MIN <= s <= INT64_MAX):
                raise ValueError("timestamp or step out of the 64-bit range")
            out.append((k, decode_value(v), t, s))
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as e:
            raise CorruptMetadata(f"{path} line {n} on the metadata branch is not a metric point: {e}") from e
    return out
