"""`gitml artifacts ...`: push, pull, status, gc, list, download."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gitml.cli._render import echo_json, table

if TYPE_CHECKING:
    from gitml.artifacts.odb import TransferSummary
    from gitml.tracking.tracker import Tracker

__all__ = ["artifacts"]

_RUN = click.option("--run", "run_ids", multiple=True, metavar="RUN_ID", help="Only this run's artifacts (repeatable).")
_REMOTE = click.option(
    "-r", "--remote", default=None, help="A DVC remote name, URL or folder (default: the configured one)."
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
_JOBS = click.option("-j", "--jobs", type=int, default=None, help="Parallel transfers.")


def _tracker(ctx: click.Context) -> Tracker:
    from gitml.tracking.tracker import get_tracker

    return get_tracker(ctx.obj.get("repo") if ctx.obj else None)


def _transfer_report(verb: str, summary: TransferSummary, as_json: bool) -> None:
    if as_json:
        echo_json(
            {"remote": summary.remote, "transferred": sorted(summary.transferred), "failed": sorted(summary.failed)}
        )
    else:
        click.echo(f"{verb} {len(summary.transferred)} object(s) ({summary.remote})")
    if summary.corrupt:
        from gitml.exceptions import CorruptMetadata

        shown = ", ".join(sorted(summary.corrupt)[:5]) + (" ..." if len(summary.corrupt) > 5 else "")
        raise CorruptMetadata(f"{len(summary.corrupt)} artifact object(s) corrupt (bad manifest or md5 mismatch): {shown}")
    if summary.failed:
        from gitml.exceptions import RemoteError

        shown = ", ".join(sorted(summary.failed)[:5]) + (" ..." if len(summary.failed) > 5 else "")
        # The root command prints it as one `Error:` line and exits 1.
        raise RemoteError(f"{len(summary.failed)} object(s) could not be moved: {shown}")


@click.group()
def artifacts() -> None:
    """Move, inspect and clean run artifacts (DVC cache and remotes)."""


@artifacts.command()
@_RUN
@_REMOTE
@_JOBS
@_JSON
@click.pass_context
def push(ctx: click.Context, run_ids: tuple[str, ...], remote: str | None, jobs: int | None, as_json: bool) -> None:
    """Upload the artifacts of all runs (or --run ones) to the remote."""
    from gitml.artifacts.runs import push_artifacts

    summary = push_artifacts(_tracker(ctx), run_ids or None, remote=remote, jobs=jobs)
    _transfer_report("Pushed", summary, as_json)


@artifacts.command()
@_RUN
@_REMOTE
@_JOBS
@_JSON
@click.pass_context
def pull(ctx: click.Context, run_ids: tuple[str, ...], remote: str | None, jobs: int | None, as_json: bool) -> None:
    """Download the artifacts of all runs (or --run ones) into the local cache."""
    from gitml.artifacts.runs import pull_artifacts

    summary = pull_artifacts(_tracker(ctx), run_ids or None, remote=remote, jobs=jobs)
    _transfer_report("Pulled", summary, as_json)


@artifacts.command()
@_RUN
@_REMOTE
@_JSON
@click.pass_context
def status(ctx: click.Context, run_ids: tuple[str, ...], remote: str | None, as_json: bool) -> None:
    """Count objects that are in sync, only local (to push), only remote (to pull), or lost."""
    from gitml.artifacts.runs import artifact_status

    result = artifact_status(_tracker(ctx), run_ids or None, remote=remote)
    groups = {
        "synced": result.synced,
        "local_only": result.local_only,
        "remote_only": result.remote_only,
        "missing": result.missing,
    }
    if as_json:
        echo_json({"remote": result.remote, **{k: sorted(v) for k, v in groups.items()}})
        return
    click.echo(f"Remote: {result.remote}")
    table(["State", "Objects"], [[k.replace("_", " "), len(v)] for k, v in groups.items()])


@artifacts.command()
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option(
    "--min-age",
    type=float,
    default=600.0,
    show_default=True,
    help="Keep objects used in the last SECONDS (runs logging now have not committed their pointers yet).",
)
@_JSON
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, min_age: float, as_json: bool) -> None:
    """Remove from the local cache objects that no live run names (remotes are untouched)."""
    from gitml.artifacts.runs import gc_artifacts

    removed = gc_artifacts(_tracker(ctx), dry_run=dry_run, min_age_s=min_age)
    if as_json:
        echo_json({"dry_run": dry_run, "removed": removed})
    else:
        click.echo(f"{'Would remove' if dry_run else 'Removed'} {len(removed)} object(s)")


def _locate(ctx: click.Context, target: str, path: str | None) -> dict[str, Any]:
    from gitml.cli._ids import full_run_id
    from gitml.client import GitMLClient

    if target.startswith("runs:/"):
        if path:
            raise click.UsageError("give either a runs:/ URI or a RUN_ID and a PATH")
        return {"artifact_uri": target}
    client = GitMLClient(ctx.obj.get("repo") if ctx.obj else None)
    return {"run_id": full_run_id(client, target), "artifact_path": path}


@artifacts.command("list")
@click.argument("target", metavar="RUN_ID|URI")
@click.argument("path", required=False)
@_JSON
@click.pass_context
def list_(ctx: click.Context, target: str, path: str | None, as_json: bool) -> None:
    """List the artifacts directly under PATH of a run (or a runs:/ URI)."""
    from gitml.fluent.artifacts import list_artifacts

    repo = ctx.obj.get("repo") if ctx.obj else None
    infos = list_artifacts(**_locate(ctx, target, path), tracking_uri=repo)
    if as_json:
        echo_json([{"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size} for f in infos])
        return
    table(["Path", "Size"], [[f.path + ("/" if f.is_dir else ""), "" if f.is_dir else f.file_size] for f in infos])


@artifacts.command()
@click.argument("target", metavar="RUN_ID|URI")
@click.argument("path", required=False)
@click.option("-d", "--dst", "dst_path", type=click.Path(file_okay=False), default=None, help="Folder to download into (default: a new temporary one).")
@click.pass_context
def download(ctx: click.Context, target: str, path: str | None, dst_path: str | None) -> None:
    """Download an artifact file or folder of a run; prints the local path."""
    from gitml.fluent.artifacts import download_artifacts

    repo = ctx.obj.get("repo") if ctx.obj else None
    click.echo(download_artifacts(**_locate(ctx, target, path), dst_path=dst_path, tracking_uri=repo))
