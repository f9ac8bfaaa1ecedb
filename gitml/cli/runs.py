"""`gitml runs ...`: list, show, search, delete, restore, recover."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gitml import constants as C
from gitml.cli._ids import full_run_id
from gitml.cli._render import echo_json, fmt_time, safe, table

if TYPE_CHECKING:
    from gitml.client import MlflowClient
    from gitml.entities import Run

__all__ = ["runs"]


def _client(ctx: click.Context) -> MlflowClient:
    from gitml.client import GitMLClient

    return GitMLClient(ctx.obj.get("repo") if ctx.obj else None)


def _experiment_ids(client: MlflowClient, experiment: tuple[str, ...]) -> list[str] | None:
    if not experiment:
        return None
    ids = []
    for e in experiment:
        exp = client.get_experiment_by_name(e)
        ids.append(exp.experiment_id if exp is not None else e)
    return ids


def _run_dict(run: Run) -> dict[str, Any]:
    return run.to_dictionary()


def _print_runs(runs: list[Any], as_json: bool, metric_cols: int = 3) -> None:
    if as_json:
        echo_json([_run_dict(r) for r in runs])
        return
    keys: list[str] = []
    for r in runs:
        for k in r.data.metrics:
            if k not in keys:
                keys.append(k)
    keys = keys[:metric_cols]
    rows = []
    for r in runs:
        i = r.info
        rows.append(
            [i.run_id[:12], i.run_name, i.status, i.experiment_id, fmt_time(i.start_time),
             (r.data.tags.get(C.TAG_GIT_COMMIT) or "-")[:8]]
            + [_fmt(r.data.metrics.get(k)) for k in keys]
        )  # fmt: skip
    table(["Run", "Name", "Status", "Experiment", "Started", "Commit", *keys], rows)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


@click.group()
def runs() -> None:
    """List, inspect, search, delete, restore and recover runs."""


@runs.command("list")
@click.option("-e", "--experiment", multiple=True, help="Experiment name or id (repeatable; default: all).")
@click.option("--view", type=click.Choice(["active_only", "deleted_only", "all"]), default="active_only", show_default=True)
@click.option("-n", "--max-results", default=50, show_default=True, help="How many runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, experiment: tuple[str, ...], view: str, max_results: int, as_json: bool) -> None:
    """List runs, newest first."""
    from gitml.entities import ViewType

    client = _client(ctx)
    found = client.search_runs(_experiment_ids(client, experiment), "", ViewType.from_string(view), max_results)
    _print_runs(list(found), as_json)


@runs.command()
@click.argument("filter_string", required=False, default="")
@click.option("-e", "--experiment", multiple=True, help="Experiment name or id (repeatable; default: all).")
@click.option("-o", "--order-by", multiple=True, help="e.g. 'metrics.accuracy DESC' (repeatable).")
@click.option("--view", type=click.Choice(["active_only", "deleted_only", "all"]), default="active_only", show_default=True)
@click.option("-n", "--max-results", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search(
    ctx: click.Context, filter_string: str, experiment: tuple[str, ...], order_by: tuple[str, ...],
    view: str, max_results: int, as_json: bool,
) -> None:  # fmt: skip
    """Search runs with MLflow's filter grammar, e.g. "metrics.acc > 0.9 AND params.lr = '0.01'"."""
    from gitml.entities import ViewType

    client = _client(ctx)
    found = client.search_runs(
        _experiment_ids(client, experiment), filter_string, ViewType.from_string(view), max_results, list(order_by)
    )
    _print_runs(list(found), as_json)


@runs.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show a run: status, source commit, params, latest metrics, tags, dataset inputs."""
    client = _client(ctx)
    run = client.get_run(full_run_id(client, run_id))
    if as_json:
        echo_json(_run_dict(run))
        return
    i, d = run.info, run.data
    lines = [
        ("Run", i.run_id), ("Name", i.run_name), ("Experiment", i.experiment_id), ("Status", i.status),
        ("Lifecycle", i.lifecycle_stage), ("User", i.user_id), ("Started", fmt_time(i.start_time)),
        ("Ended", fmt_time(i.end_time)), ("Commit", d.tags.get(C.TAG_GIT_COMMIT)),
        ("Branch", d.tags.get(C.TAG_GIT_BRANCH)), ("Dirty", d.tags.get(C.TAG_GIT_DIRTY)),
        ("Entry point", d.tags.get(C.TAG_SOURCE_NAME)), ("Artifacts", i.artifact_uri),
    ]  # fmt: skip
    t = d.tags
    if C.TAG_PROV_PYTHON in t:  # a `gitml run` run: its provenance in short
        diff, data, pkgs = (t.get(k, "")[:12] for k in (C.TAG_PROV_DIFF_SHA256, C.TAG_PROV_DATA_SHA256, C.TAG_PROV_PACKAGES_SHA256))  # fmt: skip
        lines += [
            ("Project", f"{t.get(C.TAG_PROJECT_ENTRY_POINT, '-')} in {t.get(C.TAG_PROJECT_PATH, '.')}"),
            ("Diff", f"sha256 {diff}" if C.TAG_PROV_DIFF_SHA256 in t else "none"),
            ("Untracked", t.get(C.TAG_PROV_UNTRACKED)),
            ("Data", f"{t.get(C.TAG_PROV_DATA_FILES, '0')} file(s), sha256 {data}"),
            *([] if C.TAG_DOCKER_IMAGE_ID in t else [("Python", f"{t[C.TAG_PROV_PYTHON]}, packages sha256 {pkgs}")]),
            *([("Image", f"{t.get(C.TAG_DOCKER_IMAGE_URI, '-')} ({t[C.TAG_DOCKER_IMAGE_ID][:19]})")] if C.TAG_DOCKER_IMAGE_ID in t else []),
            ("GPU", " / ".join(t[k] for k in (C.TAG_PROV_GPU, C.TAG_PROV_GPU_DRIVER, C.TAG_PROV_CUDA) if k in t) or None),
        ]  # fmt: skip
    for k, v in lines:
        click.echo(f"{k + ':':<13}{safe(v) if v is not None else '-'}")
    for title, items in (("Params", d.params), ("Metrics", {k: _fmt(v) for k, v in d.metrics.items()}), ("Tags", d.tags)):
        click.echo(f"\n{title}:")
        if not items:
            click.echo("  (none)")
        width = max((len(k) for k in items), default=0)
        for k in sorted(items):
            click.echo(f"  {safe(k):<{width}}  {safe(items[k])}")
    _print_inputs(run)


def _print_inputs(run: Run) -> None:
    inputs = run.inputs.dataset_inputs
    if not inputs:
        return
    click.echo("\nInputs:")
    for item in inputs:
        ds = item.dataset
        tags = {t.key: t.value for t in item.tags}
        context = tags.pop(C.TAG_DATASET_CONTEXT, "-")
        extra = ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
        line = f"  {ds.name} ({ds.digest})  context={context}  {ds.source_type} {ds.source}"
        click.echo(safe(line[:300] + (f"  tags: {extra}"[:200] if extra else "")))


@runs.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--permanent", is_flag=True, help="Remove from the branch tip now (history keeps them).")
@click.pass_context
def delete(ctx: click.Context, run_ids: tuple[str, ...], permanent: bool) -> None:
    """Delete runs (restorable unless --permanent)."""
    client = _client(ctx)
    for run_id in (full_run_id(client, r) for r in run_ids):
        client.delete_run(run_id, permanent=permanent)
        click.echo(f"Deleted run {run_id}" + (" permanently" if permanent else ""))


@runs.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
def restore(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Restore deleted runs."""
    client = _client(ctx)
    for run_id in (full_run_id(client, r) for r in run_ids):
        client.restore_run(run_id)
        click.echo(f"Restored run {run_id}")


@runs.command()
@click.pass_context
def recover(ctx: click.Context) -> None:
    """Commit what crashed processes left in their journals; their runs end KILLED."""
    recovered = _client(ctx).recover_runs()
    if not recovered:
        click.echo("Nothing to recover")
    for run_id in recovered:
        click.echo(f"Recovered run {run_id}")
