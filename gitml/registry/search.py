"""MLflow's registry search: filter strings (`name LIKE 'x%'`, `run_id IN (...)`), order_by, pages."""

from __future__ import annotations

import re
from typing import Any

from gitml.exceptions import InvalidParameterValue

__all__ = [
    "RegistryPagedList",
    "filter_names",
    "match",
    "order",
    "page",
    "parse_version_filter",
]


class RegistryPagedList(list):  # type: ignore[type-arg]
    """A list with the token of the next page, as MLflow's search methods return."""

    def __init__(self, items: list[Any], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


_COND = re.compile(
    r"^\s*(?P<field>[a-zA-Z_.]+)\s*(?P<op>=|!=|LIKE|ILIKE|IN)\s*(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\([^)]*\))\s*$",
    re.IGNORECASE,
)


def _unquote(text: str) -> str:
    return text[1:-1]


def _parse_conditions(filter_string: str | None, allowed: set[str]) -> list[tuple[str, str, Any]]:
    if not filter_string or not filter_string.strip():
        return []
    out = []
    for part in re.split(r"\s+AND\s+", filter_string.strip(), flags=re.IGNORECASE):
        m = _COND.match(part)
        if m is None:
            raise InvalidParameterValue(
                f"invalid filter {filter_string!r}: expected e.g. name = 'my-model'"
            )
        field_name = m["field"].lower()
        if field_name not in allowed:
            raise InvalidParameterValue(
                f"invalid filter field {m['field']!r}: use one of {', '.join(sorted(allowed))}"
            )
        op, raw = m["op"].upper(), m["value"]
        if op == "IN":
            value: Any = [_unquote(x.strip()) for x in raw[1:-1].split(",") if x.strip()]
        elif raw.startswith("("):
            raise InvalidParameterValue(f"invalid filter {part!r}")
        else:
            value = _unquote(raw)
        out.append((field_name, op, value))
    return out


def parse_version_filter(filter_string: str | None) -> list[tuple[str, str, Any]]:
    return _parse_conditions(filter_string, {"name", "run_id", "source", "current_stage"})


def _like(pattern: str, flags: int) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("^" + "".join(parts) + "$", flags | re.DOTALL)


def match(value: str, op: str, expected: Any) -> bool:
    if op == "=":
        return value == expected
    if op == "!=":
        return value != expected
    if op == "IN":
        return value in expected
    return _like(expected, re.IGNORECASE if op == "ILIKE" else 0).match(value) is not None


def filter_names(names: list[str], filter_string: str | None) -> list[str]:
    for _, op, value in _parse_conditions(filter_string, {"name"}):
        names = [n for n in names if match(n, op, value)]
    return names


_ORDER_FIELDS = {
    "name": "name",
    "version": "version",
    "version_number": "version",
    "timestamp": "creation_timestamp",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
}


def order(
    items: list[Any], order_by: list[str] | None, default: str, tiebreak: Any = None
) -> list[Any]:
    keys = order_by or [default]
    out = list(items)
    if tiebreak is not None:
        out.sort(key=tiebreak)
    for spec in reversed(keys):
        field_name, _, direction = spec.strip().partition(" ")
        attr = _ORDER_FIELDS.get(field_name.lower())
        if attr is None or direction.strip().upper() not in ("", "ASC", "DESC"):
            raise InvalidParameterValue(
                f"invalid order_by {spec!r}: use name, version or a timestamp, ASC or DESC"
            )
        if out and not hasattr(out[0], attr):
            raise InvalidParameterValue(f"invalid order_by {spec!r} here")
        out.sort(
            key=lambda x: getattr(x, attr) or 0 if attr != "name" else x.name,
            reverse=direction.strip().upper() == "DESC",
        )
    return out


def page(items: list[Any], max_results: int, page_token: str | None) -> RegistryPagedList:
    if not isinstance(max_results, int) or max_results < 1:
        raise InvalidParameterValue(f"max_results must be a positive integer, got {max_results!r}")
    start = int(page_token) if page_token and page_token.isdigit() else 0
    end = start + max_results
    return RegistryPagedList(items[start:end], str(end) if end < len(items) else None)
