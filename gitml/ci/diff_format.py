"""A `RunDiff` rendered: aligned text tables for a terminal, markdown tables for a pull-request
comment (the shape of `dvc metrics diff --md`, with ▲/▼ better/worse). Keys, values and refs
come from whoever pushed the runs, so every cell is escaped for where it is shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml.escape import markdown_cell, terminal

if TYPE_CHECKING:
    from gitml.ci.diff import Change, DiffSide, RunDiff

__all__ = ["format_markdown", "format_table"]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _change_text(c: Change, marks: bool) -> str:
    if c.change is None:
        if c.old is None or c.new is None:
            return "added" if c.old is None else "removed"
        return "-" if c.old == c.new else "changed"
    text = f"{c.change:+.6g}"
    if c.relative is not None:
        text += f" ({c.relative:+.2%})"
    if marks and c.better is not None:
        text = f"{'▲' if c.change > 0 else '▼'} {text} {'better' if c.better else 'worse'}"
    return text


def _label(side: DiffSide) -> str:
    mark = ", dirty" if side.dirty else ""
    if side.commit and side.ref != side.commit:
        return f"{side.ref} ({side.commit[:7]}{mark})"
    return side.ref[:12] + (" (dirty)" if side.dirty else "")


def _grid(headers: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    # Keys, values and refs come from whoever pushed the run: inert in a PR comment or a terminal.
    escape = markdown_cell if markdown else terminal
    cells = [[escape(c) for c in row] for row in (headers, *rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if markdown:
        lines = [
            "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            for row in cells
        ]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return lines
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _render(d: RunDiff, markdown: bool) -> str:
    a, b = _label(d.a), _label(d.b)
    out: list[str] = []
    if markdown:
        out.append(
            f"Runs: `{d.a.run_id[:12]}` ({markdown_cell(a)}) → `{d.b.run_id[:12]}` ({markdown_cell(b)})"
        )
    else:
        out.append(f"A: run {d.a.run_id} ({terminal(a)})\nB: run {d.b.run_id} ({terminal(b)})")
    for kind, changes in (("metric", d.metrics), ("param", d.params)):
        out.append("")
        if not changes:
            out.append(f"No {kind} changed.")
            continue
        is_metric = kind == "metric"
        rows = [[f"{kind}s", c.key, _fmt(c.old), _fmt(c.new), _change_text(c, is_metric)] for c in changes]
        out += _grid(["Path", kind.capitalize(), a, b, "Change"], rows, markdown)
    return "\n".join(out) + "\n"


def format_table(d: RunDiff) -> str:
    """The diff as aligned text tables for a terminal."""
    return _render(d, markdown=False)


def format_markdown(d: RunDiff) -> str:
    """The diff as markdown tables in the shape of `dvc metrics diff --md`, with ▲/▼ better/worse."""
    return _render(d, markdown=True)
