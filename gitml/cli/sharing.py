"""`gitml push`, `gitml pull`, `gitml sync`: share runs and registry tags through a Git remote."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from gitml.cli._render import echo_json, safe

__all__ = ["pull", "push", "sync"]


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _moved(m: Any, why_removed: str = "") -> str:
    removed = getattr(m, "runs_removed", ())
    return (
        f"{_count(len(m.runs_added), 'run')} added, {len(m.runs_updated)} updated, "
        + (f"{len(removed)} removed{why_removed}, " if removed else "")
        + f"{_count(len(m.tags_added), 'registry tag')} added"
    )


def _render(shared: Any, direction: str, as_json: bool, quiet: bool) -> None:
    result = shared.result
    for warning in result.warnings:
        click.echo(f"warning: {safe(warning)}", err=True)
    transfers = [(w, t) for w, t in (("pulled", shared.artifacts_pulled), ("pushed", shared.artifacts_pushed)) if t]
    for word, t in transfers:
        if t.failed:
            click.echo(f"warning: {len(t.failed)} artifact object(s) not {word} ({t.remote}): "
                       "'gitml artifacts status' says which", err=True)  # fmt: skip
        if t.corrupt:
            shown = ", ".join(sorted(t.corrupt)[:3]) + (" ..." if len(t.corrupt) > 3 else "")
            click.echo(f"warning: {len(t.corrupt)} artifact object(s) corrupt on {t.remote} "
                       f"(bad manifest or bytes not matching their md5): {safe(shown)}", err=True)  # fmt: skip
        if t.skipped_runs:
            shown = ", ".join(sorted(t.skipped_runs)[:3]) + (" ..." if len(t.skipped_runs) > 3 else "")
            click.echo(f"warning: {len(t.skipped_runs)} run(s) with malformed artifact pointers skipped: {safe(shown)}",
                       err=True)  # fmt: skip
    if as_json:
        out = dataclasses.asdict(result)
        for word, t in transfers:
            out[f"artifacts_{word}"] = {
                "remote": t.remote, "transferred": sorted(t.transferred), "failed": sorted(t.failed),
                "corrupt": sorted(t.corrupt), "skipped_runs": sorted(t.skipped_runs),
            }  # fmt: skip
        echo_json(out)
        return
    if quiet:
        return
    for old, new in result.renamed_tags:
        click.echo(safe(f"Renumbered local tag {old} as {new}: the remote already has another {old}"))
    where = f"{result.remote}/{result.branch}"
    if direction in ("pull", "sync") or not result.pulled.empty:
        if result.pulled.empty:
            click.echo(f"Pulled from {where}: already up to date")
        else:
            click.echo(
                f"Pulled from {where}: {_moved(result.pulled, ' (purged upstream)')}"
                + (" (merged)" if result.merged else "")
            )
    if direction in ("push", "sync"):
        if result.pushed.empty and result.tip == result.remote_tip:
            click.echo(f"Pushed to {where}: already up to date")
        else:
            extra = f" after {result.attempts} attempts" if result.attempts > 1 else ""
            click.echo(f"Pushed to {where}: {_moved(result.pushed)}{extra}")
    for word, t in transfers:
        click.echo(f"Artifacts {word} ({t.remote}): {_count(len(t.transferred), 'object')}")


def _options(f: Any) -> Any:
    f = click.option("-q", "--quiet", is_flag=True, help="Print nothing but warnings and errors.")(
        f
    )
    f = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)
    f = click.argument("remote", required=False)(f)
    return f


def _path(ctx: click.Context) -> Any:
    return ctx.obj.get("repo") if ctx.obj else None


_ALLOW_PURGE = click.option(
    "--allow-purge",
    is_flag=True,
    help="Remove local runs deleted permanently on REMOTE even when they are many (over 10, or 10%).",
)


@click.command()
@_options
@_ALLOW_PURGE
@click.pass_context
def pull(ctx: click.Context, remote: str | None, as_json: bool, quiet: bool, allow_purge: bool) -> None:
    """Fetch runs and registry tags from REMOTE and merge them in (default: gitml.remote, then origin)."""
    from gitml.fluent import sharing

    _render(sharing.pull(_path(ctx), remote, allow_purge=allow_purge), "pull", as_json, quiet)


@click.command()
@_options
@click.option(
    "--allow-drop", is_flag=True, help="Push even if runs the remote has would be removed."
)
@click.pass_context
def push(
    ctx: click.Context, remote: str | None, as_json: bool, quiet: bool, allow_drop: bool
) -> None:
    """Merge REMOTE's runs in, then push runs and registry tags there, retrying until it lands."""
    from gitml.fluent import sharing

    _render(sharing.push(_path(ctx), remote, allow_drop=allow_drop), "push", as_json, quiet)


@click.command()
@_options
@_ALLOW_PURGE
@click.pass_context
def sync(ctx: click.Context, remote: str | None, as_json: bool, quiet: bool, allow_purge: bool) -> None:
    """Pull then push: afterwards this clone and REMOTE hold the same runs and registry tags."""
    from gitml.fluent import sharing

    _render(sharing.sync(_path(ctx), remote, allow_purge=allow_purge), "sync", as_json, quiet)
