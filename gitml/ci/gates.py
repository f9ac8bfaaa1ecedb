"""Metric gates for `gitml diff --fail-on EXPR`, and the files CI platforms read metrics from.

A gate is `METRIC OP THRESHOLD`, OP one of `<`, `<=`, `>`, `>=`:
- a signed threshold (`accuracy<-0.01`) is a gate on the change (new - old): the gate is
  crossed when `change OP threshold` holds ("accuracy fell by more than 0.01");
- a signed threshold with `%` (`val_loss>+5%`) is a gate on the relative change
  ((new - old) / |old|): "val_loss rose by more than 5%";
- an unsigned threshold (`accuracy<0.9`) is a gate on the new value itself.
A gate on a metric the new run does not have is crossed (the metric went missing); a change
gate on a metric the old run does not have is skipped (nothing to compare against).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gitml.exceptions import InvalidParameterValue

__all__ = [
    "Gate",
    "GateResult",
    "check_gates",
    "format_gate_results",
    "format_metrics_txt",
    "parse_gate",
]

_GATE = re.compile(
    r"^(?P<key>.+?)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<pct>%?)$"
)
_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_:]")


@dataclass(frozen=True)
class Gate:
    """One parsed gate: metric, operator, threshold and what it compares (value/change/relative)."""

    expr: str
    key: str
    op: str
    threshold: float
    kind: str  # "value", "change" or "relative"


@dataclass(frozen=True)
class GateResult:
    """A gate and its outcome: crossed (fails the check), passed, or skipped with a reason."""

    gate: Gate
    status: str  # "crossed", "passed" or "skipped"
    observed: float | None
    reason: str


def parse_gate(expr: str) -> Gate:
    """Parse `accuracy<-0.01`, `val_loss>+5%` or `accuracy<0.9` (see the module docstring)."""
    m = _GATE.fullmatch(expr.strip()) if isinstance(expr, str) and len(expr) <= 500 else None
    if m is None:
        raise InvalidParameterValue(
            f"bad gate {expr!r}: write METRIC<THRESHOLD, e.g. accuracy<-0.01 (change), "
            "val_loss>+5% (relative change) or accuracy<0.9 (value)"
        )
    num, pct = m.group("num"), m.group("pct")
    signed = num[0] in "+-"
    if pct and not signed:
        raise InvalidParameterValue(
            f"bad gate {expr!r}: a percentage is a change: sign it (+5% or -5%)"
        )
    threshold = float(num) / (100.0 if pct else 1.0)
    kind = "relative" if pct else ("change" if signed else "value")
    return Gate(expr.strip(), m.group("key"), m.group("op"), threshold, kind)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _check(gate: Gate, old: Any, new: Any) -> GateResult:
    b = _number(new)
    if b is None:
        return GateResult(gate, "crossed", None, "missing or not a finite number in the new run")
    if gate.kind == "value":
        observed = b
    else:
        a = _number(old)
        if a is None:
            return GateResult(gate, "skipped", None, "no value in the base run to compare with")
        if gate.kind == "change":
            observed = b - a
        elif a == 0:
            return GateResult(gate, "skipped", None, "the base value is 0: no relative change")
        else:
            observed = (b - a) / abs(a)
    crossed = _OPS[gate.op](observed, gate.threshold)
    return GateResult(gate, "crossed" if crossed else "passed", observed, "")


def check_gates(
    gates: Iterable[Gate], old: dict[str, Any], new: dict[str, Any]
) -> list[GateResult]:
    """Evaluate every gate on the base run's metrics (`old`) and the new run's (`new`)."""
    return [_check(g, old.get(g.key), new.get(g.key)) for g in gates]


def _observed(r: GateResult) -> str:
    if r.observed is None:
        return "-"
    if r.gate.kind == "relative":
        return f"{r.observed:+.2%}"
    return f"{r.observed:+.6g}" if r.gate.kind == "change" else f"{r.observed:.6g}"


def format_gate_results(results: list[GateResult], escape: Any = str) -> str:
    """A markdown table of the gates (`escape` makes metric names safe for markdown)."""
    if not results:
        return ""
    icon = {"crossed": "❌ crossed", "passed": "✅ passed", "skipped": "➖ skipped"}
    lines = ["| Gate | Observed | Result |", "|---|---|---|"]
    for r in results:
        result = icon[r.status] + (f" ({escape(r.reason)})" if r.reason else "")
        lines.append(f"| {escape(r.gate.expr)} | {_observed(r)} | {result} |")
    return "\n".join(lines) + "\n"


def format_metrics_txt(metrics: dict[str, Any]) -> str:
    """`name value` lines (OpenMetrics text) of the new run's metrics, for GitLab's MR widget."""
    lines = []
    for key in sorted(metrics):
        value = _number(metrics[key])
        if value is None:
            continue
        name = _METRIC_NAME.sub("_", key)
        if not name or name[0].isdigit():
            name = "_" + name
        lines.append(f"{name} {value!r}")
    return "\n".join(lines) + ("\n" if lines else "")
