"""`gitml deployments plan|record|list`: the deployment history on the metadata branch."""

from __future__ import annotations

import click

from gitml.cli._render import echo_json, fmt_time, table

__all__ = ["deployments"]


def _registry(ctx: click.Context):  # type: ignore[no-untyped-def]
    from gitml.registry.access import open_registry

    return open_registry(ctx.obj.get("repo") if ctx.obj else None)


@click.group()
def deployments() -> None:
    """Deployments recorded by CI: which model version went where, when, from which pipeline."""


@deployments.command()
@click.option(
    "--tag", default="", help="The registry tag that fired the pipeline (its model is planned)."
)
@click.option("--model", default="", help="The model to plan (instead of the tag's).")
@click.option(
    "--stage",
    default="production",
    show_default=True,
    help="The stage (or alias) whose current version is deployed.",
)
@click.option(
    "--environment", default="production", show_default=True, help="Where it is deployed."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of key=value lines.")
@click.pass_context
def plan(
    ctx: click.Context, tag: str, model: str, stage: str, environment: str, as_json: bool
) -> None:
    """Say whether to deploy, and what: the version *current* in the stage, unless already deployed.

    Prints key=value lines (deploy, model, version, model_uri, stage, environment, reason),
    ready for $GITHUB_OUTPUT; the exit status is 0 either way.
    """
    from gitml.ci.deployments import plan_deployment

    found = plan_deployment(
        _registry(ctx), tag=tag or None, model=model or None, stage=stage, environment=environment
    )
    if as_json:
        echo_json({**found.__dict__})
    else:
        click.echo("\n".join(found.lines()))


@deployments.command()
@click.option("--model", required=True, help="Registered model name.")
@click.option("--version", "version", required=True, type=int, help="The version deployed.")
@click.option("--stage", required=True, help="The stage it was current in.")
@click.option("--environment", required=True, help="Where it was deployed.")
@click.option(
    "--pipeline-url", default=None, help="The pipeline that deployed it (default: this CI job's)."
)
@click.pass_context
def record(
    ctx: click.Context,
    model: str,
    version: int,
    stage: str,
    environment: str,
    pipeline_url: str | None,
) -> None:
    """Record a deployment on the metadata branch (then `gitml push` shares it)."""
    from gitml.ci.deployments import new_deployment, record_deployment
    from gitml.config import resolve_ci_config, resolve_config

    registry = _registry(ctx)
    deployment = new_deployment(
        registry,
        model,
        version,
        stage,
        environment,
        pipeline_url=pipeline_url or resolve_ci_config().pipeline_url,
        user=resolve_config(registry.repo.root).user,
    )
    path = record_deployment(registry.repo, deployment)
    click.echo(f"Recorded {model} version {version} in {environment} ({stage}): {path}")


@deployments.command("list")
@click.option("--model", default=None, help="Only this model.")
@click.option("--environment", default=None, help="Only this environment.")
@click.option("--limit", type=int, default=None, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(
    ctx: click.Context, model: str | None, environment: str | None, limit: int | None, as_json: bool
) -> None:
    """The deployments recorded on the metadata branch, newest first."""
    from gitml.ci.deployments import list_deployments

    found = list_deployments(_registry(ctx).repo, model, environment, limit)
    if as_json:
        echo_json([d.to_dict() for d in found])
        return
    table(
        ["Time", "Model", "Version", "Stage", "Environment", "Pipeline"],
        [
            [fmt_time(d.time), d.model, d.version, d.stage, d.environment, d.pipeline_url or "-"]
            for d in found
        ],
    )
