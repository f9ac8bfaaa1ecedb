"""`gitml diff [A] [B]`: params and metrics of two revisions' latest finished runs."""

from __future__ import annotations

import click

from gitml.cli._render import echo_json

__all__ = ["diff"]


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
    "-q", "--quiet", is_flag=True, help="Print nothing; exit 0 (errors still exit non-zero)."
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
    quiet: bool,
) -> None:
    """Compare the latest finished runs of A and B (run ids, commits, branches or tags).

    A defaults to the merge base of HEAD with the default branch, B to HEAD.
    """
    from gitml.tracking.diff import diff_runs, format_markdown, format_table

    result = diff_runs(
        a,
        b,
        tracking_uri=ctx.obj.get("repo") if ctx.obj else None,
        all_keys=all_keys,
        lower_is_better=lower,
    )
    if quiet:
        return
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(format_markdown(result) if markdown else format_table(result), nl=False)
