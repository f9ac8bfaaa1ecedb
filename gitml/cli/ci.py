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
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="EXPR",
    help="Show these metric gates in the comment (as `gitml diff --fail-on`); the comment never fails on them.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the body to this file and post nothing (for a fork's pull request, another workflow posts it).",
)
@click.pass_context
def comment(
    ctx: click.Context,
    number: int | None,
    body_file: str | None,
    base: str | None,
    lower: tuple[str, ...],
    fail_on: tuple[str, ...],
    output: str | None,
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
    # No PR, no token: fail before reading any run.
    thread = open_thread(cfg, number) if output is None else None
    if body_file is not None:
        with click.open_file(body_file, encoding="utf-8", errors="replace") as f:
            body = f.read()
    else:
        from gitml.ci.report import diff_comment_body
        from gitml.config import resolve_config
        from gitml.constants import run_dir
        from gitml.store.repo import find_repo_root

        uri = ctx.obj.get("repo") if ctx.obj else None
        branch = resolve_config(find_repo_root(uri)).branch
        body = diff_comment_body(
            base,
            tracking_uri=uri,
            lower_is_better=lower,
            pipeline_url=cfg.pipeline_url,
            run_url=lambda run_id: cfg.tree_url(branch, run_dir(run_id)),
            fail_on=fail_on,
            base_branch=cfg.base_branch,
        )
    if thread is None:
        from pathlib import Path

        Path(output or "").write_text(body, encoding="utf-8")
        click.echo(f"Wrote the comment's body to {output}")
        return
    result = upsert_comment(thread, body)
    note = " (cut to the platform's limit)" if result.truncated else ""
    click.echo(f"{thread.name} comment {result.comment_id} {result.action}{note}")


@ci.command()
@click.argument("platform", type=click.Choice(["github", "gitlab"]))
@click.option(
    "--gpu-runner",
    default="self-hosted,gpu",
    show_default=True,
    metavar="LABELS",
    help="Runner labels (GitHub) or tags (GitLab) of the GPU runner, comma-separated; passed through as given.",
)
@click.option(
    "-e",
    "--entry-point",
    default="main",
    show_default=True,
    help="MLproject entry point the pipelines run.",
)
@click.option(
    "--deploy-command",
    default='gitml deploy k8s -m "$GITML_MODEL_URI" -o k8s --apply',
    show_default=True,
    help="Shell command of the deploy job; GITML_MODEL, GITML_VERSION, GITML_MODEL_URI, GITML_STAGE and GITML_ENVIRONMENT are set.",
)
@click.option(
    "--stage",
    default="production",
    show_default=True,
    help="The registry stage (or alias) that is deployed.",
)
@click.option(
    "--environment",
    default="production",
    show_default=True,
    help="The deployment environment's name.",
)
@click.option("--branch", default="main", show_default=True, help="The default branch.")
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="EXPR",
    help="A metric gate for pull requests (repeatable), as `gitml diff --fail-on`.",
)
@click.option(
    "--register",
    "register",
    default=None,
    metavar="MODEL",
    help="On the default branch, register the run's model as MODEL when the gates pass.",
)
@click.option(
    "--gitml-spec",
    default="gitml",
    show_default=True,
    help="The pip requirement that installs gitml in CI.",
)
@click.option("--force", is_flag=True, help="Overwrite pipeline files gitml did not write.")
@click.pass_context
def init(
    ctx: click.Context,
    platform: str,
    gpu_runner: str,
    entry_point: str,
    deploy_command: str,
    stage: str,
    environment: str,
    branch: str,
    fail_on: tuple[str, ...],
    register: str | None,
    gitml_spec: str,
    force: bool,
) -> None:
    """Write the CI pipeline files for GITHUB or GITLAB into the repository.

    Pull/merge requests: run the project on the GPU runner, push the runs, comment the metric
    diff, check the gates. Default branch: the same run (and --register). Registry tags:
    deploy what is current in --stage, once, one deployment at a time, and record it.
    """
    from gitml.ci.init import init_pipelines
    from gitml.ci.options import InitOptions
    from gitml.store.repo import find_repo_root

    options = InitOptions(
        gpu_runner=tuple(label.strip() for label in gpu_runner.split(",") if label.strip()),
        entry_point=entry_point,
        deploy_command=deploy_command,
        stage=stage,
        environment=environment,
        branch=branch,
        fail_on=fail_on,
        register=register,
        gitml_spec=gitml_spec,
    )
    root = find_repo_root(ctx.obj.get("repo") if ctx.obj else None)
    result = init_pipelines(root, platform, options, force=force)
    for path, action in result.files:
        click.echo(f"{action:>12}  {path}")
    click.echo("\nTo do before the first pipeline runs:")
    for note in result.notes:
        click.echo(f"  - {note}")


@ci.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check that the pipeline files gitml wrote still fit the repository.

    Every entry point they run must exist in the MLproject, every stage they deploy must be
    in the registry's vocabulary. Exit status 1 when something does not fit.
    """
    from gitml.ci.check import check_pipelines
    from gitml.exceptions import InvalidState
    from gitml.store.repo import find_repo_root

    result = check_pipelines(find_repo_root(ctx.obj.get("repo") if ctx.obj else None))
    for problem in result.problems:
        click.echo(problem)
    if not result.files:
        click.echo("No pipeline file written by gitml here (gitml ci init writes them).")
    if result.problems:
        raise InvalidState(f"{len(result.problems)} problem(s) in the pipeline files")
    if result.files:
        click.echo(f"OK: {', '.join(result.files)}")
