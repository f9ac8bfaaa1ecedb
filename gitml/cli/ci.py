"""`gitml ci comment|init|check`: pipelines for GitHub and GitLab, and the PR/MR comment."""

from __future__ import annotations

import click

__all__ = ["ci"]


@click.group()
def ci() -> None:
    """Continuous integration: pipeline files, the pull-request comment, consistency checks."""


@ci.command()
@click.option(
    "--pr",
    "number",
    type=int,
    default=None,
    help="Pull/merge request number (default: from the CI's environment).",
)
@click.option(
    "--body-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Post this file's text (- for stdin) instead of the metric diff.",
)
@click.option(
    "--base",
    default=None,
    metavar="REV",
    help="Compare against this revision (default: the merge base with main).",
)
@click.option(
    "--lower-is-better",
    "lower",
    multiple=True,
    metavar="METRIC",
    help="A metric where lower is better (repeatable).",
)
@click.pass_context
def comment(
    ctx: click.Context,
    number: int | None,
    body_file: str | None,
    base: str | None,
    lower: tuple[str, ...],
) -> None:
    """Create or update gitml's one comment on the current pull request (GitHub) or merge request (GitLab).

    The default body is the metric and param diff of this branch's runs against its base
    (`gitml diff --md`). Reads GITHUB_REPOSITORY, GITHUB_TOKEN and GITHUB_EVENT_PATH on
    GitHub; CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID and GITLAB_TOKEN on GitLab.
    """
    from gitml.ci.comment import upsert_comment
    from gitml.ci.platforms import open_thread
    from gitml.config import resolve_ci_config

    cfg = resolve_ci_config()
    thread = open_thread(cfg, number)  # no PR, no token: fail before reading any run
    if body_file is not None:
        with click.open_file(body_file, encoding="utf-8", errors="replace") as f:
            body = f.read()
    else:
        from gitml.ci.report import comment_body, diff_report

        report = diff_report(
            base, None, tracking_uri=ctx.obj.get("repo") if ctx.obj else None, lower_is_better=lower
        )
        body = comment_body(report, cfg.pipeline_url)
    result = upsert_comment(thread, body)
    note = " (cut to the platform's limit)" if result.truncated else ""
    click.echo(f"{thread.name} comment {result.comment_id} {result.action}{note}")
