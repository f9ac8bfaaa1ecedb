"""`gitml models register|list|show|history|transition-stage|alias|current`: the Git-tag registry."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

import click

from gitml.cli._render import echo_json, fmt_time, safe, table

if TYPE_CHECKING:
    from gitml.registry.client import RegistryClient

__all__ = ["alias", "current", "history", "list_models", "register", "show", "transition_stage"]


def _client(ctx: click.Context) -> RegistryClient:
    from gitml.registry.client import RegistryClient

    return RegistryClient(ctx.obj.get("repo") if ctx.obj else None)


def _tags(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        out[key] = value
    return out


_SHOWN_PROBLEMS = 5  # past this, one aggregated line: 3,000 junk tags are one warning, not 3,000


def _warn_skipped(client: RegistryClient, name: str | None = None) -> None:
    # Hand-made tags that cannot be read are skipped, not fatal: say so on stderr.
    problems = client.get_registry_problems(name)
    if len(problems) <= _SHOWN_PROBLEMS:
        for problem in problems:
            click.echo(f"warning: skipped tag {safe(problem.tag)}: {safe(problem.reason)}", err=True)
        return
    reasons: dict[str, int] = {}
    for problem in problems:
        reasons[problem.reason] = reasons.get(problem.reason, 0) + 1
    common = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    click.echo(
        safe(
            f"warning: skipped {len(problems)} unusable registry tags, e.g. {problems[0].tag} "
            f"({problems[0].reason}); most common: {'; '.join(f'{r} ({n})' for r, n in common)}"
        ),
        err=True,
    )


def _version_row(v: Any) -> list[Any]:
    return [
        v.version,
        v.semver,
        v.current_stage,
        ", ".join(v.aliases) or "-",
        (v.run_id or "-")[:12],
        fmt_time(v.creation_timestamp),
        v.user_id,
    ]


_VERSION_HEADERS = ["Version", "Semver", "Stage", "Aliases", "Run", "Registered", "By"]


@click.command()
@click.argument("model_uri")
@click.argument("name")
@click.option("--description", default=None, help="Description of the new version.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="A tag on the new version (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new version as JSON.")
@click.pass_context
def register(
    ctx: click.Context,
    model_uri: str,
    name: str,
    description: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register the model at MODEL_URI (runs:/<run_id>/<path>) as a new version of NAME."""
    from gitml.fluent.registry import register_model_with

    mv = register_model_with(
        _client(ctx), model_uri, name, tags=_tags(tags), description=description
    )
    if as_json:
        echo_json(mv.to_dictionary())
    else:
        click.echo(f"Registered {name} version {mv.version} (tag {mv.git_tag})")


@click.command("list")
@click.option("--filter", "filter_string", default=None, help="e.g. \"name LIKE 'fraud%'\".")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_models(ctx: click.Context, filter_string: str | None, as_json: bool) -> None:
    """List registered models with their latest version and the version in each stage."""
    client = _client(ctx)
    models = client.search_registered_models(filter_string, max_results=1_000_000)
    _warn_skipped(client)
    if as_json:
        echo_json([m.to_dictionary() for m in models])
        return
    rows = []
    for m in models:
        latest = max((v.version for v in m.latest_versions), default=None)
        stages = {
            v.current_stage: v.version for v in m.latest_versions if v.current_stage != "None"
        }
        rows.append(
            [m.name, latest or "-", stages.get("Staging", "-"), stages.get("Production", "-"),
             ", ".join(f"{a}={v}" for a, v in sorted(m.aliases.items())) or "-"]
        )  # fmt: skip
    table(["Name", "Latest", "Staging", "Production", "Aliases"], rows)


@click.command()
@click.argument("name")
@click.option("--version", "version", default=None, help="Show one version in full.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, name: str, version: str | None, as_json: bool) -> None:
    """Show a registered model and its versions (or one version with --version)."""
    client = _client(ctx)
    if version is not None:
        mv = client.get_model_version(name, version)
        if as_json:
            echo_json(mv.to_dictionary())
            return
        for key, value in mv.to_dictionary().items():
            click.echo(f"{key}: {safe(value)}")
        return
    model = client.get_registered_model(name)
    _warn_skipped(client, name)
    versions = client.search_model_versions(f"name = '{name}'", order_by=["version DESC"])
    if as_json:
        echo_json({**model.to_dictionary(), "versions": [v.to_dictionary() for v in versions]})
        return
    click.echo(safe(model.name) + (f": {safe(model.description)}" if model.description else ""))
    for key, value in sorted(model.tags.items()):
        click.echo(f"  {safe(key)} = {safe(value)}")
    table(_VERSION_HEADERS, [_version_row(v) for v in versions])


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def history(ctx: click.Context, name: str, as_json: bool) -> None:
    """Who registered, promoted, demoted and deleted what, and when: NAME's tags, oldest first."""
    client = _client(ctx)
    events = client.get_registry_history(name)
    _warn_skipped(client, name)
    if as_json:
        echo_json([e.to_dictionary() for e in events])
        return
    rows = [
        [_dt.datetime.fromtimestamp(e.timestamp).strftime("%Y-%m-%d %H:%M:%S"), e.event,
         e.version if e.version is not None else "-", e.stage or "-", f"{e.author} <{e.author_email}>", e.tag]
        for e in events
    ]  # fmt: skip
    table(["When", "Event", "Version", "Stage", "Who", "Tag"], rows)


@click.command("transition-stage")
@click.option("--model-name", "name", required=True, help="Registered model name.")
@click.option("--version", "version", required=True, help="Version number.")
@click.option("--stage", required=True, help="None, Staging, Production or Archived.")
@click.option(
    "--archive-existing-versions", is_flag=True, help="Archive the versions now in that stage."
)
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
@click.pass_context
def transition_stage(
    ctx: click.Context,
    name: str,
    version: str,
    stage: str,
    archive_existing_versions: bool,
    as_json: bool,
) -> None:
    """Move a version to a stage, with new Git tags (MLflow's transition-stage)."""
    mv = _client(ctx).transition_model_version_stage(
        name, version, stage, archive_existing_versions
    )
    if as_json:
        echo_json(mv.to_dictionary())
    else:
        click.echo(f"{name} version {mv.version} is now in stage {mv.current_stage}")


@click.command()
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead of setting it.")
@click.pass_context
def alias(
    ctx: click.Context, name: str, alias_name: str, version: str | None, delete: bool
) -> None:
    """Point ALIAS of model NAME at VERSION (or remove it with --delete)."""
    client = _client(ctx)
    if delete:
        if version is not None:
            raise click.UsageError("--delete takes no VERSION")
        client.delete_registered_model_alias(name, alias_name)
        click.echo(f"Removed alias {alias_name} of {name}")
        return
    if version is None:
        raise click.UsageError("give the VERSION the alias points at (or --delete)")
    client.set_registered_model_alias(name, alias_name, version)
    click.echo(f"{name}@{alias_name} -> version {version}")


@click.command()
@click.argument("name")
@click.option("--stage", default=None, help="Staging, Production... (or any GTO stage).")
@click.option("--alias", "alias_name", default=None, help="An alias instead of a stage.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for deploy scripts.")
@click.pass_context
def current(
    ctx: click.Context, name: str, stage: str | None, alias_name: str | None, as_json: bool
) -> None:
    """Print the version current in a stage (or alias, or the latest) and the URI to deploy."""
    from gitml.registry.resolve import current_version

    found = current_version(
        name, stage=stage, alias=alias_name, tracking_uri=ctx.obj.get("repo") if ctx.obj else None
    )
    if as_json:
        echo_json(found.to_dictionary())
    else:
        click.echo(f"{found.version} {safe(found.source)}")
