"""`gitml experiments ...`: list, create, rename, delete, restore."""

from __future__ import annotations

from dataclasses import asdict

import click

from gitml.cli._render import echo_json, fmt_time, table

__all__ = ["experiments"]


def _client(ctx: click.Context):  # type: ignore[no-untyped-def]
    from gitml.client import GitMLClient

    return GitMLClient(ctx.obj.get("repo") if ctx.obj else None)


@click.group()
def experiments() -> None:
    """Create, list, rename, delete and restore experiments."""


@experiments.command("list")
@click.option("--view", type=click.Choice(["active_only", "deleted_only", "all"]), default="active_only", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, view: str, as_json: bool) -> None:
    """List experiments."""
    from gitml.entities import ViewType

    exps = _client(ctx).search_experiments(view_type=ViewType.from_string(view))
    if as_json:
        echo_json([asdict(e) for e in exps])
        return
    table(
        ["ID", "Name", "Stage", "Created"],
        [[e.experiment_id, e.name, e.lifecycle_stage, fmt_time(e.creation_time)] for e in exps],
    )


@experiments.command()
@click.argument("name")
@click.option("--artifact-location", default=None, help="Where the experiment's artifacts go (informational).")
@click.pass_context
def create(ctx: click.Context, name: str, artifact_location: str | None) -> None:
    """Create an experiment called NAME."""
    exp_id = _client(ctx).create_experiment(name, artifact_location)
    click.echo(f"Created experiment '{name}' with id {exp_id}")


@experiments.command()
@click.argument("experiment_id")
@click.argument("new_name")
@click.pass_context
def rename(ctx: click.Context, experiment_id: str, new_name: str) -> None:
    """Rename experiment EXPERIMENT_ID to NEW_NAME."""
    _client(ctx).rename_experiment(experiment_id, new_name)
    click.echo(f"Renamed experiment {experiment_id} to '{new_name}'")


@experiments.command()
@click.argument("experiment_id")
@click.option("--permanent", is_flag=True, help="Remove it and its runs from the branch tip now (history keeps them).")
@click.pass_context
def delete(ctx: click.Context, experiment_id: str, permanent: bool) -> None:
    """Delete an experiment (restorable unless --permanent)."""
    _client(ctx).delete_experiment(experiment_id, permanent=permanent)
    click.echo(f"Deleted experiment {experiment_id}" + (" permanently" if permanent else " (restore with 'gitml experiments restore')"))


@experiments.command()
@click.argument("experiment_id")
@click.pass_context
def restore(ctx: click.Context, experiment_id: str) -> None:
    """Restore a deleted experiment."""
    _client(ctx).restore_experiment(experiment_id)
    click.echo(f"Restored experiment {experiment_id}")
