"""MLflow's search grammar (filters and order_by), compiled to SQL over the run index.

Accepted beyond MLflow (documented extensions): `OR` and parentheses, `IN`/`NOT IN` on params
and tags, `IS NULL`/`IS NOT NULL` on metrics and attributes, and `run_uuid` for `run_id`.
Everything else MLflow refuses is refused: unknown entity types and attributes (also
`experiment_id`, `lifecycle_stage`), unquoted values, an order_by clause that is more than an
identifier and ASC/DESC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gitml.exceptions import InvalidParameterValue

__all__ = ["Compiled", "compile_filter", "compile_order_by", "parse_identifier", "tokenize_filter"]

_ENTITY = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params", "parameter": "params", "parameters": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "attr": "attributes", "run": "attributes",
}  # fmt: skip
# Attribute names and MLflow's other spellings of them, matched in any case ("Run Name",
# "CREATED"). `run_uuid` (RunInfo's old name for run_id) is a documented gitml extension.
_ATTRIBUTES = {
    "run_id": "run_id", "run_uuid": "run_id",
    "run_name": "run_name", "run name": "run_name",
    "status": "status", "user_id": "user_id", "artifact_uri": "artifact_uri",
    "start_time": "start_time", "created": "start_time",
    "end_time": "end_time",
}  # fmt: skip
_PLAIN_KEY = re.compile(r"^[\w.\-:/]+$")  # what a key may hold without quotes or backticks
_NUMERIC_ATTRS = {"start_time", "end_time"}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<num>[-+]?(?>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))(?![\w.])
    | (?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,)
    | (?P<ident>(?:`[^`]*`|[\w.\-:/]|"[^"]*")+)
    )""",
    re.VERBOSE,
)
# The number is matched atomically: a 20,000-digit run followed by a letter fails once instead
# of backtracking through every split (quadratic: 12 s before).
_BLANK_TO_END = re.compile(r"\s*\Z")
MAX_FILTER_LENGTH = 1_000_000
MAX_FILTER_DEPTH = 100  # nested parentheses
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"}


@dataclass(frozen=True)
class Compiled:
    """A WHERE fragment and its parameters."""

    sql: str
    params: list[Any]


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos, n = 0, len(text)
    while pos < n:
        if _BLANK_TO_END.match(text, pos):
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidParameterValue(f"invalid filter {text[:200]!r}: cannot parse near {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")
            body = raw[1:-1]
            body = body.replace("''", "'") if raw[0] == "'" else body
            tokens.append(("str", re.sub(r"\\(.)", r"\1", body)))
        elif m.group("num") is not None:
            tokens.append(("num", float(m.group("num"))))
        elif m.group("op") is not None:
            tokens.append(("op", "!=" if m.group("op") == "<>" else m.group("op")))
        else:
            word = m.group("ident").strip()
            if word.upper() in _KEYWORDS:
                tokens.append(("kw", word.upper()))
            else:
                tokens.append(("ident", word))
    return tokens


def _short(value: Any) -> str:
    """repr() of a piece of a filter, cut short: errors never echo a huge filter back."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _quoted(text: str) -> tuple[str, str] | None:
    """(inside, rest) when `text` starts with a backticked or double-quoted name, else None."""
    if not text or text[0] not in "`\"":
        return None
    end = text.find(text[0], 1)
    if end < 0:
        raise InvalidParameterValue(f"invalid identifier {_short(text)}: a {text[0]} is not closed")
    return text[1:end], text[end + 1 :]


def parse_identifier(text: str) -> tuple[str, str]:
    """`metrics.acc`, `` `metric`.a ``, `params."lr"`, `` tags.`a b` ``, `` `Run name` ``,
    `run_name` -> (entity, key), as MLflow's grammar reads them.

    The entity (`metrics`, `metric`, `params`, `tags`, `attributes`, ...) may be backticked
    and is matched in any case, as are attribute names; a key holding anything but letters,
    digits and `_ . - : /` must be quoted or backticked.
    """
    text = text.strip()
    quoted = _quoted(text)
    if quoted is not None:
        head, rest = quoted
    else:
        head, dot, rest = text.partition(".")
        rest = dot + rest
    if not rest:  # one name: an attribute
        return "attributes", _attribute(head)
    if not rest.startswith("."):
        raise InvalidParameterValue(f"invalid identifier {_short(text)}")
    entity = _ENTITY.get(head.strip().lower())
    if entity is None:
        raise InvalidParameterValue(
            f"invalid entity type {_short(head)} in {_short(text)}: expected metrics, params, tags or attributes"
        )
    rest = rest[1:]
    quoted_key = _quoted(rest)
    if quoted_key is not None:
        key, after = quoted_key
        if after:
            raise InvalidParameterValue(f"invalid identifier {_short(text)}: text after the quoted key")
    elif _PLAIN_KEY.match(rest):
        key = rest
    else:
        raise InvalidParameterValue(
            f"invalid identifier {_short(text)}: quote a key holding other characters with backticks"
        )
    if not key:
        raise InvalidParameterValue(f"invalid identifier {_short(text)}: the key is empty")
    if entity == "attributes":
        return entity, _attribute(key)
    return entity, key


def _attribute(key: str) -> str:
    try:
        return _ATTRIBUTES[key.strip().lower()]
    except KeyError:
        raise InvalidParameterValue(
            f"invalid attribute key {_short(key)}: expected one of {', '.join(sorted(set(_ATTRIBUTES.values())))} "
            "(or metrics.<key>, params.<key>, tags.<key>)"
        ) from None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.shown = text if len(text) <= 200 else text[:200] + "..."
        self.tokens = _tokenize(text)
        self.i = 0
        self.params: list[Any] = []
        self.n = 0  # counter for unique aliases
        self.depth = 0  # parentheses open at this point

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None:
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: it ends too early")
        self.i += 1
        return tok

    def expect(self, kind: str, value: Any = None) -> Any:
        tok = self.take()
        if tok[0] != kind or (value is not None and tok[1] != value):
            want = value or kind
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: expected {_short(want)}, found {_short(tok[1])}")
        return tok[1]

    def parse(self) -> str:
        sql = self.expr()
        if self.peek() is not None:
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: unexpected {_short(self.peek()[1])}")  # type: ignore[index]
        return sql

    def expr(self) -> str:
        parts = [self.conj()]
        while self.peek() == ("kw", "OR"):
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conj(self) -> str:
        parts = [self.atom()]
        while self.peek() == ("kw", "AND"):
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def atom(self) -> str:
        if self.peek() == ("op", "("):
            self.take()
            self.depth += 1
            if self.depth > MAX_FILTER_DEPTH:
                raise InvalidParameterValue(
                    f"invalid filter: parentheses nest deeper than {MAX_FILTER_DEPTH} levels"
                )
            sql = self.expr()
            self.expect("op", ")")
            self.depth -= 1
            return "(" + sql + ")"
        tok = self.take()
        if tok[0] != "ident":
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: expected an identifier, found {_short(tok[1])}")
        entity, key = parse_identifier(tok[1])
        return self.comparison(entity, key)

    def _values(self) -> list[Any]:
        self.expect("op", "(")
        values = []
        while True:
            kind, value = self.take()
            if kind not in ("str", "num"):
                raise InvalidParameterValue(f"invalid filter {self.shown!r}: IN takes a list of values")
            values.append(value)
            kind, value = self.take()
            if (kind, value) == ("op", ")"):
                return values
            if (kind, value) != ("op", ","):
                raise InvalidParameterValue(f"invalid filter {self.shown!r}: expected ',' or ')' in the IN list")

    def comparison(self, entity: str, key: str) -> str:
        kind, op = self.take()
        negate = False
        if (kind, op) == ("kw", "IS"):
            if self.peek() == ("kw", "NOT"):
                self.take()
                negate = True
            self.expect("kw", "NULL")
            return self._null(entity, key, negate)
        if (kind, op) == ("kw", "NOT"):
            self.expect("kw", "IN")
            return self._in(entity, key, self._values(), negate=True)
        if (kind, op) == ("kw", "IN"):
            return self._in(entity, key, self._values(), negate=False)
        if kind not in ("op", "kw") or op not in ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE"):
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: {_short(op)} is not a comparison operator")
        vkind, value = self.take()
        if vkind not in ("str", "num"):
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: expected a value after {op}, found {_short(value)}")
        return self._compare(entity, key, op, vkind, value)

    def _compare(self, entity: str, key: str, op: str, vkind: str, value: Any) -> str:
        if entity == "metrics":
            if vkind != "num" or op in ("LIKE", "ILIKE"):
                raise InvalidParameterValue(
                    f"invalid filter {self.shown!r}: metric {_short(key)} is compared with numbers using = != < <= > >="
                )
            self.params += [key, value]
            return f"r.run_id IN (SELECT run_id FROM metrics WHERE key = ? AND value {op} ?)"
        if entity in ("params", "tags"):
            if op not in ("=", "!=", "LIKE", "ILIKE"):
                raise InvalidParameterValue(
                    f"invalid filter {self.shown!r}: {entity[:-1]} {_short(key)} supports = != LIKE ILIKE IN IS NULL, not {op}"
                )
            if vkind != "str":
                raise InvalidParameterValue(
                    f"invalid filter {self.shown!r}: {entity[:-1]} values are strings: quote {_short(value)}"
                )
            cond = {"=": "value = ?", "!=": "value != ?", "LIKE": "value LIKE ?", "ILIKE": "lower(value) LIKE lower(?)"}[op]
            self.params += [key, value]
            return f"r.run_id IN (SELECT run_id FROM {entity} WHERE key = ? AND {cond})"
        column = f"r.{key}"
        if key in _NUMERIC_ATTRS:
            if vkind != "num" or op in ("LIKE", "ILIKE"):
                raise InvalidParameterValue(f"invalid filter {self.shown!r}: attribute {_short(key)} is compared with numbers")
            self.params.append(value)
            return f"{column} {op} ?"
        if vkind != "str":
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: attribute {_short(key)} values are strings: quote {_short(value)}")
        if op in ("<", "<=", ">", ">="):
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: attribute {_short(key)} supports = != LIKE ILIKE IN")
        self.params.append(value)
        if op == "ILIKE":
            return f"lower({column}) LIKE lower(?)"
        return f"{column} {op} ?"

    def _in(self, entity: str, key: str, values: list[Any], negate: bool) -> str:
        marks = ", ".join("?" for _ in values)
        if entity == "attributes":
            self.params += values
            return f"r.{key} {'NOT ' if negate else ''}IN ({marks})"
        if entity == "metrics":
            if any(isinstance(v, str) for v in values):
                raise InvalidParameterValue(f"invalid filter {self.shown!r}: metric values are numbers")
        elif any(not isinstance(v, str) for v in values):
            raise InvalidParameterValue(f"invalid filter {self.shown!r}: {entity} values are strings: quote them")
        self.params += [key, *values]
        return f"r.run_id IN (SELECT run_id FROM {entity} WHERE key = ? AND value {'NOT ' if negate else ''}IN ({marks}))"

    def _null(self, entity: str, key: str, negate: bool) -> str:
        if entity == "attributes":
            return f"r.{key} IS {'NOT ' if negate else ''}NULL"
        self.params.append(key)
        return f"r.run_id {'' if negate else 'NOT '}IN (SELECT run_id FROM {entity} WHERE key = ?)"


def compile_filter(filter_string: str | None) -> Compiled:
    """Compile a filter into a WHERE fragment over `runs r` (empty filter: `1`)."""
    if not filter_string or not filter_string.strip():
        return Compiled("1", [])
    if not isinstance(filter_string, str) or len(filter_string) > MAX_FILTER_LENGTH:
        raise InvalidParameterValue(f"invalid filter: longer than {MAX_FILTER_LENGTH} characters")
    parser = _Parser(filter_string)
    return Compiled(parser.parse(), parser.params)


def tokenize_filter(filter_string: str) -> list[tuple[str, Any]]:
    """The tokens of a filter in MLflow's grammar (the registry's search parses them too):
    ("ident" | "str" | "num" | "op" | "kw", value); bounded like compile_filter."""
    if not isinstance(filter_string, str) or len(filter_string) > MAX_FILTER_LENGTH:
        raise InvalidParameterValue(f"invalid filter: longer than {MAX_FILTER_LENGTH} characters")
    return _tokenize(filter_string)


def _order_clause(clause: object) -> tuple[str, str, str]:
    """(entity, key, ASC|DESC) of one order_by clause: an identifier, then ASC or DESC."""
    if not isinstance(clause, str):
        raise InvalidParameterValue(f"invalid order_by clause {_short(clause)}: expected a string")
    tokens = tokenize_filter(clause)
    if not tokens or tokens[0][0] != "ident" or len(tokens) > 2:
        raise InvalidParameterValue(
            f"invalid order_by clause {_short(clause)}: expected <identifier> [ASC|DESC], e.g. 'metrics.acc DESC'"
        )
    direction = "ASC"
    if len(tokens) == 2:
        kind, word = tokens[1]
        if kind != "ident" or str(word).upper() not in ("ASC", "DESC"):
            raise InvalidParameterValue(
                f"invalid ordering key {_short(word)} in order_by clause {_short(clause)}: use ASC or DESC"
            )
        direction = str(word).upper()
    entity, key = parse_identifier(tokens[0][1])
    return entity, key, direction


def compile_order_by(order_by: list[str] | None) -> tuple[list[str], list[str], list[Any]]:
    """(JOIN clauses, ORDER BY terms, params) for MLflow's order_by list; missing values last."""
    joins: list[str] = []
    terms: list[str] = []
    params: list[Any] = []
    for n, clause in enumerate(order_by or []):
        entity, key, direction = _order_clause(clause)
        if entity == "attributes":
            col = f"r.{key}"
        else:
            alias = f"o{n}"
            joins.append(f"LEFT JOIN {entity} {alias} ON {alias}.run_id = r.run_id AND {alias}.key = ?")
            params.append(key)
            col = f"{alias}.value"
            if entity == "metrics":
                # NaN sorts after numbers, before missing, as MLflow orders it
                terms.append(f"({alias}.run_id IS NULL)")
                terms.append(f"({alias}.is_nan = 1)")
                terms.append(f"{col} {direction}")
                continue
        terms.append(f"({col} IS NULL)")
        terms.append(f"{col} {direction}")
    terms += ["r.start_time DESC", "r.run_id ASC"]
    return joins, terms, params
