"""Rendering for the CLI: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from typing import Any

import click

from gitml.escape import terminal

__all__ = ["echo_json", "fmt_time", "safe", "table"]


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as a local, readable time (the number when no calendar has it)."""
    if not ms:
        return "-"
    try:
        return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):
        return str(ms)


def safe(value: Any) -> str:
    """Text from a remote (names, params, tags, messages) made safe to print on a terminal."""
    return terminal(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print an aligned table (or a note when there is nothing to show)."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[terminal(c) for c in headers]] + [["-" if c is None else terminal(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def echo_json(obj: Any) -> None:
    """Print JSON for scripts (non-finite floats as strings)."""

    def clean(o: Any) -> Any:
        if isinstance(o, float) and (o != o or o in (float("inf"), float("-inf"))):
            return str(o)
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    click.echo(json.dumps(clean(obj), indent=2, sort_keys=True))
