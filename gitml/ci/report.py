"""The diff report CI shows: the metric/param diff, the gates, and where each platform reads it.

`gitml diff --fail-on` and `gitml ci comment` build it; GitHub gets the markdown appended to
`$GITHUB_STEP_SUMMARY`, GitLab gets `metrics.txt` for its merge-request metrics widget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.ci.gates import (
    GateResult,
    check_gates,
    format_gate_results,
    format_metrics_txt,
    parse_gate,
)
from gitml.escape import markdown_cell
from gitml.exceptions import InvalidParameterValue

if TYPE_CHECKING:
    from gitml.ci.diff import DiffSide, RunDiff

__all__ = [
    "DiffReport",
    "comment_body",
    "diff_comment_body",
    "diff_report",
    "no_baseline_note",
    "report_markdown",
    "write_metrics_file",
    "write_step_summary",
]

_URL = re.compile(r"^https?://[^\s()<>\[\]\"'`]+$")


@dataclass(frozen=True)
class DiffReport:
    """A diff (`RunDiff`, filtered for display), the gates' outcomes and the new run's metrics.

    When the base has no finished run (and the caller allowed it), `diff` is None, `head` is
    the new run's side and `no_baseline` says which base had none: value gates are still
    checked on the new run, gates on changes are skipped.
    """

    diff: RunDiff | None
    gates: tuple[GateResult, ...]
    new_metrics: dict[str, Any]
    head: DiffSide | None = None
    no_baseline: str | None = None

    @property
    def crossed(self) -> list[GateResult]:
        """The gates that fail the check."""
        return [g for g in self.gates if g.status == "crossed"]


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return bool(old == new)


def diff_report(
    a: str | None = None,
    b: str | None = None,
    *,
    tracking_uri: str | None = None,
    all_keys: bool = False,
    lower_is_better: Iterable[str] = (),
    fail_on: Iterable[str] = (),
    base_branch: str | None = None,
    require_baseline: bool = True,
) -> DiffReport:
    """Diff the latest finished runs of `a` and `b` and check the gates in `fail_on`.

    `base_branch`: the pull request's target branch, whose merge base is the default `a`.
    `require_baseline=False`: when `a` has no finished run but `b` has one, return a report
    without a diff (`no_baseline` set) instead of raising `NoBaselineRun`.
    """
    from gitml.ci.diff import NoBaselineRun, diff_runs

    gates = [parse_gate(expr) for expr in fail_on]  # bad gates fail before any reading
    try:
        full = diff_runs(
            a,
            b,
            tracking_uri=tracking_uri,
            all_keys=True,
            lower_is_better=lower_is_better,
            base_branch=base_branch,
        )
    except NoBaselineRun as e:
        if require_baseline:
            raise
        metrics = dict(e.head_run.data.metrics)
        results = [
            replace(r, reason=f"no baseline run on {e.base}") if r.status == "skipped" else r
            for r in check_gates(gates, {}, metrics)
        ]
        return DiffReport(None, tuple(results), metrics, e.head, e.base)
    old = {c.key: c.old for c in full.metrics if c.old is not None}
    new = {c.key: c.new for c in full.metrics if c.new is not None}
    shown = full
    if not all_keys:
        shown = replace(
            full,
            params=tuple(c for c in full.params if not _same(c.old, c.new)),
            metrics=tuple(c for c in full.metrics if not _same(c.old, c.new)),
        )
    return DiffReport(shown, tuple(check_gates(gates, old, new)), new)


def _escape_cell(text: str) -> str:
    return markdown_cell(text)


def report_markdown(report: DiffReport) -> str:
    """The diff as `gitml diff --md` prints it, then the gates' table (when any)."""
    from gitml.ci.diff import format_markdown

    text = format_markdown(report.diff) if report.diff is not None else _no_baseline_md(report)
    if report.gates:
        verdict = (
            f"**{len(report.crossed)} of {len(report.gates)} metric gates crossed.**"
            if report.crossed
            else f"All {len(report.gates)} metric gates passed."
        )
        text += "\n" + verdict + "\n\n" + format_gate_results(list(report.gates), _escape_cell)
    return text


def no_baseline_note(report: DiffReport) -> str:
    """The one line that says a report has no base run to compare with (plain text)."""
    checked = [g for g in report.gates if g.gate.kind == "value"]
    what = (
        "the gates on changes were not checked" if checked else "the metric gates were not checked"
    )
    if not report.gates:
        what = "nothing was compared"
    return f"no baseline run was found on {report.no_baseline}: {what}"


def _no_baseline_md(report: DiffReport) -> str:
    head = report.head
    assert head is not None  # a report without a base run carries the new run's side
    lines = [
        f"No baseline run was found on {_code(str(report.no_baseline))}: "
        f"{no_baseline_note(report).split(': ', 1)[1]}.",
        "",
        f"This branch's run: `{head.run_id[:12]}` ({markdown_cell(head.ref, 200)}"
        f"{', dirty' if head.dirty else ''})",
        "",
    ]
    rows = [(k, v) for k, v in sorted(report.new_metrics.items())]
    if rows:
        lines += ["| Metric | Value |", "|---|---|"]
        lines += [f"| {markdown_cell(str(k))} | {_value(v)} |" for k, v in rows]
    else:
        lines.append("The run logged no metric.")
    return "\n".join(lines) + "\n"


def _code(ref: str) -> str:
    """A ref as inline code when it is plainly a ref name, else as escaped text (a code span
    cannot escape a backtick, and shows a backslash as one)."""
    return f"`{ref}`" if _PLAIN_REF.fullmatch(ref) else markdown_cell(ref, 200)


_PLAIN_REF = re.compile(r"[\w./@+^~-]{1,200}")


def _value(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else markdown_cell(str(v))


def comment_body(report: DiffReport | str, pipeline_url: str | None = None) -> str:
    """The sticky comment's body: a title, the report (or why there is none), and the pipeline."""
    text = report_markdown(report) if isinstance(report, DiffReport) else report
    parts = ["### gitml: this branch's runs against its base", "", text]
    if pipeline_url and _URL.fullmatch(pipeline_url):
        parts += ["", f"<sub>Made by [this pipeline]({pipeline_url}).</sub>"]
    return "\n".join(parts).rstrip() + "\n"


def diff_comment_body(
    base: str | None,
    *,
    tracking_uri: str | None = None,
    lower_is_better: Iterable[str] = (),
    pipeline_url: str | None = None,
    run_url: Callable[[str], str | None] | None = None,
    fail_on: Iterable[str] = (),
    base_branch: str | None = None,
) -> str:
    """The default comment: the diff against `base` (with links to both runs when `run_url`
    gives them), or, when a side has no finished run yet (a first pull request), a body that
    says so instead of failing the step."""
    from gitml.exceptions import ResourceDoesNotExist

    try:
        report = diff_report(
            base,
            None,
            tracking_uri=tracking_uri,
            lower_is_better=lower_is_better,
            fail_on=fail_on,
            base_branch=base_branch,
            require_baseline=False,
        )
    except ResourceDoesNotExist as e:  # this branch has no finished run
        return comment_body(
            f"Nothing to compare yet: {markdown_cell(e.message, 500)}\n", pipeline_url
        )
    text = report_markdown(report)
    if report.diff is None:
        return comment_body(text, pipeline_url)
    marks = _provenance(tracking_uri, [report.diff.a.run_id, report.diff.b.run_id])
    if marks:
        text += "\n" + marks
    links = [_run_link(side.run_id, run_url) for side in (report.diff.a, report.diff.b)]
    if run_url is not None and all(links):
        text = f"Runs compared: {links[0]} → {links[1]}\n\n" + text
    return comment_body(text, pipeline_url)


def _provenance(tracking_uri: str | None, run_ids: list[str]) -> str:
    """One line per run that provenance marks: run with uncommitted changes, or a reproduction."""
    from gitml.exceptions import GitMLError
    from gitml.tracking.client import MlflowClient

    client = MlflowClient(tracking_uri)
    lines = []
    for label, run_id in zip(("base", "this branch"), run_ids, strict=True):
        if not _RUN_ID.fullmatch(run_id):
            continue
        try:
            tags = client.get_run(run_id).data.tags
        except GitMLError:
            continue
        if str(tags.get(C.TAG_GIT_DIRTY, "")).lower() == "true":
            lines.append(
                f"- ⚠️ The {label}'s run `{run_id[:12]}` ran with uncommitted changes "
                "(its patch is an artifact of the run)."
            )
        original = tags.get(C.TAG_REPRODUCES)
        if isinstance(original, str) and _RUN_ID.fullmatch(original):
            lines.append(f"- 🔁 The {label}'s run `{run_id[:12]}` reproduces `{original[:12]}`.")
    return "\n".join(lines) + "\n" if lines else ""


_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _run_link(run_id: str, run_url: Callable[[str], str | None] | None) -> str | None:
    """A markdown link to a run's folder; None unless the id is a run id (it came from the branch)."""
    if run_url is None or not _RUN_ID.fullmatch(run_id):
        return None
    url = run_url(run_id)
    return f"[`{run_id[:12]}`]({url})" if url and _URL.fullmatch(url) else None


def write_step_summary(path: str | Path, markdown: str) -> None:
    """Append `markdown` to GitHub's job summary file (`$GITHUB_STEP_SUMMARY`)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as e:
        raise InvalidParameterValue(f"cannot append to the step summary {path}: {e}") from e


def write_metrics_file(path: str | Path, metrics: dict[str, Any]) -> None:
    """Write GitLab's metrics report (`name value` lines) of the new run's metrics."""
    try:
        Path(path).write_text(format_metrics_txt(metrics), encoding="utf-8")
    except OSError as e:
        raise InvalidParameterValue(f"cannot write the metrics file {path}: {e}") from e
