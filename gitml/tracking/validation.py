"""MLflow's rules for names and values, enforced before anything is journaled."""

from __future__ import annotations

import math
import posixpath
import re
from numbers import Number
from typing import Any

from gitml.exceptions import InvalidParameterValue

__all__ = [
    "MAX_BATCH_METRICS",
    "MAX_BATCH_PARAMS",
    "MAX_BATCH_TAGS",
    "MAX_ENTITY_KEY_LENGTH",
    "MAX_PARAM_VAL_LENGTH",
    "MAX_TAG_VAL_LENGTH",
    "check_experiment_name",
    "check_key",
    "check_metric",
    "check_param_value",
    "check_run_id",
    "check_tag_value",
    "check_timestamp",
    "is_run_id",
]

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_KEY = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
# Keys already checked: a training loop logs the same few keys millions of times.
_GOOD_KEYS: set[str] = set()


def check_key(key: Any, kind: str = "metric") -> str:
    """A key of letters, digits, `_ - . space / :`, at most 250 chars, unchanged by normalisation."""
    if key in _GOOD_KEYS:
        return key  # type: ignore[no-any-return]
    if not isinstance(key, str) or not key:
        raise InvalidParameterValue(f"invalid {kind} name {key!r}: must be a non-empty string")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterValue(
            f"{kind} name '{key[:40]}...' is {len(key)} characters long; the limit is {MAX_ENTITY_KEY_LENGTH}"
        )
    if not _KEY.match(key):
        raise InvalidParameterValue(
            f"invalid {kind} name {key!r}: names may only contain letters, digits, "
            "underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)"
        )
    if posixpath.normpath(key) != key or key.startswith("/") or key.split("/")[0] in ("..", "."):
        raise InvalidParameterValue(
            f"invalid {kind} name {key!r}: names may not be relative paths or change under "
            "path normalisation (no '..', '//', leading or trailing '/')"
        )
    if len(_GOOD_KEYS) < 100_000:
        _GOOD_KEYS.add(key)
    return key


def check_param_value(key: str, value: Any) -> str:
    """Params are stored as strings of at most 6,000 characters."""
    text = str(value)
    if len(text) > MAX_PARAM_VAL_LENGTH:
        raise InvalidParameterValue(
            f"param '{key}' value is {len(text)} characters long; the limit is {MAX_PARAM_VAL_LENGTH}"
        )
    return text


def check_tag_value(key: str, value: Any) -> str:
    """Tags are stored as strings of at most 8,000 characters."""
    text = str(value)
    if len(text) > MAX_TAG_VAL_LENGTH:
        raise InvalidParameterValue(
            f"tag '{key}' value is {len(text)} characters long; the limit is {MAX_TAG_VAL_LENGTH}"
        )
    return text


def check_metric(key: str, value: Any, step: Any) -> tuple[float, int]:
    """A numeric value (NaN and infinities allowed) and an integer step."""
    if isinstance(value, float):
        number = value
    elif isinstance(value, (Number, bool)) or hasattr(value, "__float__"):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as e:
            raise InvalidParameterValue(f"metric '{key}' value {value!r} is not a number") from e
    else:
        raise InvalidParameterValue(f"metric '{key}' value {value!r} is not a number")
    if step is None:
        return number, 0
    try:
        step_int = int(step)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidParameterValue(f"metric '{key}' step {step!r} is not an integer") from e
    if not _INT64_MIN <= step_int <= _INT64_MAX:
        raise InvalidParameterValue(f"metric '{key}' step {step_int} is out of the 64-bit range")
    return number, step_int


def check_timestamp(value: Any, what: str = "timestamp") -> int:
    """A time in milliseconds that fits 64 bits (what every reader and SQLite can hold)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidParameterValue(f"{what} {value!r} is not an integer") from e
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise InvalidParameterValue(f"{what} {number} is out of the 64-bit range")
    return number


def is_run_id(name: Any) -> bool:
    """True for 32 lower-case hex digits (a run folder name read from the branch, too)."""
    return isinstance(name, str) and _RUN_ID.fullmatch(name) is not None


def check_run_id(run_id: Any) -> str:
    """Run ids are 32 lower-case hex digits."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidParameterValue(f"invalid run id {run_id!r}: expected 32 hexadecimal characters")
    return run_id


def check_experiment_name(name: Any) -> str:
    """A non-empty string of reasonable length."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterValue(f"invalid experiment name {name!r}: must be a non-empty string")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterValue(f"experiment name is longer than {MAX_EXPERIMENT_NAME_LENGTH} characters")
    bad = next((c for c in name if _is_control(c)), None)
    if bad is not None:
        raise InvalidParameterValue(
            f"experiment names may not contain control characters (found U+{ord(bad):04X} in {name[:60]!r})"
        )
    return name


# Line/paragraph separators and bidirectional overrides: they rewrite what a terminal or a
# review page shows without being visible themselves.
_INVISIBLE = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def _is_control(c: str) -> bool:
    return c < " " or "\x7f" <= c <= "\x9f" or c in _INVISIBLE


def is_finite(value: float) -> bool:
    """Not NaN and not infinite."""
    return not (math.isnan(value) or math.isinf(value))
