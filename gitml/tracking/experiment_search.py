"""search_experiments: MLflow's experiment filter (name, tags, times) over the experiment list."""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from typing import Any

from gitml.entities import Experiment, ViewType
from gitml.exceptions import InvalidParameterValue
from gitml.tracking.index import decode_page_token

__all__ = ["search_experiments"]

# Words of an identifier are atomic and whitespace-separated: "a"*24 followed by junk took 13 s
# when a word could be split anywhere (exponential backtracking).
_CLAUSE = re.compile(
    r"""^\s*(?P<ident>(?>[\w.`"]+)(?:\s+(?>[\w`"]+))*?)\s*(?P<op>!=|<=|>=|=|<|>|\bI?LIKE\b)\s*(?P<value>'[^']*'|"[^"]*"|[-+\d.eE]+)\s*$""",
    re.IGNORECASE,
)


def _like(value: str, pattern: str, case: bool) -> bool:
    glob = pattern.replace("*", "[*]").replace("?", "[?]").replace("%", "*").replace("_", "?")
    if not case:
        return fnmatch.fnmatch(value.lower(), glob.lower())
    return fnmatch.fnmatchcase(value, glob)


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is None:
        return False
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "LIKE":
        return _like(str(left), str(right), True)
    if op == "ILIKE":
        return _like(str(left), str(right), False)
    try:
        return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op])
    except TypeError:
        return False


def _clauses(filter_string: str | None) -> list[tuple[str, str, str, Any]]:
    out: list[tuple[str, str, str, Any]] = []
    if not filter_string or not filter_string.strip():
        return out
    for part in re.split(r"\s+AND\s+", filter_string.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if not m:
            raise InvalidParameterValue(f"invalid experiment filter clause {part[:200]!r}")
        ident = m.group("ident").replace("`", "").replace('"', "")
        raw = m.group("value")
        try:
            value: Any = raw[1:-1] if raw[0] in "'\"" else float(raw)
        except ValueError:
            raise InvalidParameterValue(f"invalid number {raw[:40]!r} in experiment filter") from None
        if "." in ident and ident.split(".", 1)[0].lower() in ("tag", "tags"):
            kind, key = "tag", ident.split(".", 1)[1]
        else:
            key = ident.split(".", 1)[1] if ident.lower().startswith(("attribute.", "attributes.")) else ident
            if key not in ("name", "creation_time", "last_update_time", "experiment_id"):
                raise InvalidParameterValue(f"invalid experiment filter attribute {key!r}")
            kind = "attr"
        out.append((kind, key, m.group("op").upper(), value))
    return out


def _sort_key(attr: str) -> Any:
    def key(exp: Experiment) -> tuple[bool, Any]:
        value = getattr(exp, attr)
        return (value is None, value if value is not None else 0)

    return key


def search_experiments(
    experiments: list[Experiment],
    view_type: int,
    max_results: int | None,
    filter_string: str | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[Experiment], str | None]:
    """Filter, order and page experiments; returns (page, next token)."""
    stages = ViewType.stages(view_type)
    clauses = _clauses(filter_string)
    found = []
    for exp in experiments:
        if exp.lifecycle_stage not in stages:
            continue
        ok = True
        for kind, key, op, value in clauses:
            left = exp.tags.get(key) if kind == "tag" else getattr(exp, key)
            if not _compare(left, op, value):
                ok = False
                break
        if ok:
            found.append(exp)
    keys = list(order_by or ["creation_time DESC", "experiment_id ASC"])
    for clause in reversed(keys):
        parts = clause.split()
        attr = parts[0].split(".", 1)[-1]
        if attr not in ("name", "creation_time", "last_update_time", "experiment_id"):
            raise InvalidParameterValue(f"invalid experiment order_by {clause!r}")
        desc = len(parts) > 1 and parts[1].upper() == "DESC"
        found.sort(key=_sort_key(attr), reverse=desc)
    offset = decode_page_token(page_token) if page_token else 0
    if max_results == 0:
        return [], None  # as MLflow answers: no experiments (the filter still checked)
    limit = max_results or len(found) or 1
    page = found[offset : offset + limit]
    more = offset + limit < len(found)
    token = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode() if more else None
    return page, token
