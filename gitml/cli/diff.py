"""`gitml diff [A] [B]`: params and metrics of two revisions' latest finished runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gitml.cli._render import echo_json

if TYPE_CHECKING:
    from gitml.ci.report import DiffReport, GateResult

__all__ = ["GATE_CROSSED", "diff"]


def _short_run_ids(repo: str | None, a: str | None, b: str | None) -> tuple[str | None, str | None] | None:
    """A and B with the short run ids among them (as `gitml runs list` prints) made whole, or
    None when neither is one: Git's names are tried first, these only when Git has none."""
    from gitml.cli._ids import full_run_id
    from gitml.client import GitMLClient
    from gitml.exceptions import GitMLError

    client = GitMLClient(repo)
    try:
        whole = tuple(full_run_id(client, x) if x else x for x in (a, b))
    except GitMLError:
        return None
    return None if whole == (a, b) else (whole[0], whole[1])


@click.command()
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option(
    "--md",
    "markdown",
    is_flag=True,
    help="Markdown tables, as `dvc metrics diff --md` (for PR comments).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--all", "all_keys", is_flag=True, help="Show unchanged params and metrics too.")
@click.option(
    "--lower-is-better",
    "lower",
    multiple=True,
    metavar="METRIC",
    help="A metric where lower is better (repeatable); losses, errors and times are by default.",
)
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="EXPR",
    help="A metric gate (repeatable): accuracy<-0.01 (change), val_loss>+5% (relative change), "
    "accuracy<0.9 (value). Exit 3 when one is crossed.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write B's metrics as `name value` lines (GitLab's metrics report: metrics.txt).",
)
@click.option(
    "--summary/--no-summary",
    default=True,
    help="Append the markdown to $GITHUB_STEP_SUMMARY when it is set (default: on).",
)
@click.option(
    "--require-baseline",
    is_flag=True,
    help="With --fail-on or --metrics-file: fail (exit 1) when A has no finished run, instead "
    "of checking only the value gates on B (a first pull request has nothing to compare).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Print no diff (errors, warnings and the exit status stay)."
)
@click.pass_context
def diff(
    ctx: click.Context,
    a: str | None,
    b: str | None,
    markdown: bool,
    as_json: bool,
    all_keys: bool,
    lower: tuple[str, ...],
    fail_on: tuple[str, ...],
    metrics_file: str | None,
    summary: bool,
    require_baseline: bool,
    quiet: bool,
) -> None:
    """Compare the latest finished runs of A and B (run ids, commits, branches or tags).

    A defaults to the merge base of HEAD with the default branch, B to HEAD. Exit status:
    0 when no gate is crossed, 3 when a --fail-on gate is crossed, 1 on errors. With
    --fail-on or --metrics-file, an A without a finished run (a first pull request) is not
    an error: a warning says so, value gates are checked on B, gates on changes are not,
    unless --require-baseline. B without a finished run is always an error.
    """
    from gitml.ci.diff import format_table
    from gitml.ci.report import (
        diff_report,
        no_baseline_note,
        report_markdown,
        write_metrics_file,
        write_step_summary,
    )
    from gitml.config import resolve_ci_config
    from gitml.exceptions import InvalidParameterValue

    repo = ctx.obj.get("repo") if ctx.obj else None

    def report_of(a: str | None, b: str | None) -> DiffReport:
        return diff_report(
            a,
            b,
            tracking_uri=repo,
            all_keys=all_keys,
            lower_is_better=lower,
            fail_on=fail_on,
            base_branch=resolve_ci_config().base_branch,
            require_baseline=require_baseline or not (fail_on or metrics_file),
        )

    try:
        report = report_of(a, b)
    except InvalidParameterValue:  # not a commit, branch or tag: maybe a short run id
        short = _short_run_ids(repo, a, b)
        if short is None:
            raise
        report = report_of(*short)
    result = report.diff
    if result is None:
        click.echo(
            f"Warning: {no_baseline_note(report)} (--require-baseline fails instead)", err=True
        )
    if metrics_file:
        write_metrics_file(metrics_file, report.new_metrics)
    step_summary = resolve_ci_config().github_step_summary if summary else None
    if step_summary:
        write_step_summary(step_summary, report_markdown(report))
    if not quiet:
        if as_json:
            found = result.to_dict() if result is not None else _no_baseline_dict(report)
            echo_json({**found, "gates": [_gate_dict(g) for g in report.gates]})
        elif markdown:
            click.echo(report_markdown(report), nl=False)
        else:
            if result is not None:
                click.echo(format_table(result), nl=False)
            for g in report.gates:
                reason = f" ({g.reason})" if g.reason else ""
                click.echo(f"gate {g.gate.expr}: {g.status}{reason}")
    if report.crossed:
        names = ", ".join(g.gate.expr for g in report.crossed)
        click.echo(f"Error: metric gate crossed: {names}", err=True)
        raise SystemExit(GATE_CROSSED)


GATE_CROSSED = 3  # the exit status of a crossed --fail-on gate (1 is an error, 2 bad usage)


def _gate_dict(g: GateResult) -> dict[str, Any]:
    return {"gate": g.gate.expr, "status": g.status, "observed": g.observed, "reason": g.reason}


def _no_baseline_dict(report: DiffReport) -> dict[str, Any]:
    from dataclasses import asdict

    assert report.head is not None  # a report without a base run carries the new run's side
    return {"a": None, "b": asdict(report.head), "no_baseline": report.no_baseline}
