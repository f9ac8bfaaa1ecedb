"""MLflow's registry search: filter strings (`name LIKE 'x%'`, `run_id IN (...)`), order_by, pages."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from gitml.exceptions import InvalidParameterValue

__all__ = [
    "Condition",
    "RegistryPagedList",
    "filter_names",
    "match",
    "matches",
    "order",
    "page",
    "parse_conditions",
    "parse_version_filter",
]


class RegistryPagedList(list):  # type: ignore[type-arg]
    """A list with the token of the next page, as MLflow's search methods return."""

    def __init__(self, items: list[Any], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


class Condition(NamedTuple):
    """One `field op value` clause: `field` is an attribute name or "tags" (then `key` is the tag)."""

    field: str
    key: str | None
    op: str
    value: Any


_OPS = {"=", "!=", "LIKE", "ILIKE"}


def _field(ident: str, allowed: set[str], text: str) -> tuple[str, str | None]:
    """`name`, `` `name` ``, `tags.k`, `` tags.`my key` ``, `tag."k"` -> (field, tag key)."""
    head, dot, rest = ident.partition(".")
    if head.startswith("`") and "`" in head[1:]:
        head = head.strip("`")
    if dot and head.lower() in ("tag", "tags"):
        key = rest
        if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"":
            key = key[1:-1]
        elif not re.fullmatch(r"[\w.\-:/]+", key):
            raise InvalidParameterValue(f"invalid filter {text[:200]!r}: quote the tag key {key[:60]!r} with backticks")
        if not key:
            raise InvalidParameterValue(f"invalid filter {text[:200]!r}: the tag key is empty")
        return "tags", key
    name = ident.strip("`").lower()
    if dot or name not in allowed:
        raise InvalidParameterValue(
            f"invalid filter field {ident[:60]!r}: use one of {', '.join(sorted(allowed))} or tags.<key>"
        )
    return name, None


def parse_conditions(filter_string: str | None, allowed: set[str]) -> list[Condition]:
    """MLflow's registry filter: clauses `field op 'value'` joined by AND, where field is one of
    `allowed` or `tags.<key>` and op is = != LIKE ILIKE (IN (...) for attributes)."""
    if not filter_string or not filter_string.strip():
        return []
    from gitml.tracking.search import tokenize_filter

    tokens = tokenize_filter(filter_string)
    out: list[Condition] = []
    i = 0

    def take() -> tuple[str, Any]:
        nonlocal i
        if i >= len(tokens):
            raise InvalidParameterValue(f"invalid filter {filter_string[:200]!r}: it ends too early")
        i += 1
        return tokens[i - 1]

    while True:
        kind, ident = take()
        if kind != "ident":
            raise InvalidParameterValue(f"invalid filter {filter_string[:200]!r}: expected e.g. name = 'my-model'")
        field_name, key = _field(str(ident), allowed, filter_string)
        kind, op = take()
        op = str(op).upper() if kind == "kw" else op
        if op == "IN" and key is None:
            if take() != ("op", "("):
                raise InvalidParameterValue(f"invalid filter {filter_string[:200]!r}: IN takes ('a', 'b', ...)")
            values = []
            while True:
                vkind, value = take()
                if vkind != "str":
                    raise InvalidParameterValue(f"invalid filter {filter_string[:200]!r}: IN takes quoted strings")
                values.append(value)
                sep = take()
                if sep == ("op", ")"):
                    break
                if sep != ("op", ","):
                    raise InvalidParameterValue(f"invalid filter {filter_string[:200]!r}: expected ',' or ')'")
            out.append(Condition(field_name, None, "IN", values))
        else:
            if op not in _OPS:
                raise InvalidParameterValue(
                    f"invalid filter {filter_string[:200]!r}: {str(op)[:20]!r} is not one of = != LIKE ILIKE"
                    + (" IN" if key is None else "")
                )
            vkind, value = take()
            if vkind != "str":
                raise InvalidParameterValue(
                    f"invalid filter {filter_string[:200]!r}: values are quoted strings, e.g. name = 'my-model'"
                )
            out.append(Condition(field_name, key, op, value))
        if i == len(tokens):
            return out
        if take() != ("kw", "AND"):
            raise InvalidParameterValue(f"invalid filter {filter_string[:200]!r}: clauses are joined by AND")


def parse_version_filter(filter_string: str | None) -> list[Condition]:
    """The filter of search_model_versions: name, run_id, source, current_stage, tags.<key>."""
    return parse_conditions(filter_string, {"name", "run_id", "source", "current_stage"})


def matches(entity: Any, conditions: list[Condition]) -> bool:
    """Whether a RegisteredModel or ModelVersion meets every condition (a missing tag meets none)."""
    for cond in conditions:
        if cond.field == "tags":
            left = (getattr(entity, "tags", None) or {}).get(cond.key)
            if left is None:
                return False
        else:
            left = getattr(entity, cond.field, None) or ""
        if not match(str(left), cond.op, cond.value):
            return False
    return True


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
    """The model names meeting the `name` clauses of a registered-model filter."""
    for cond in parse_conditions(filter_string, {"name"}):
        if cond.field == "name":
            names = [n for n in names if match(n, cond.op, cond.value)]
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
