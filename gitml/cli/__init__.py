"""The `gitml` command: a thin layer that parses, calls the library, and renders.

Errors are translated here, once: a GitMLError prints `Error: <message>` and exits 1
(2 for usage errors, as click does); anything else prints one line and suggests --traceback.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from gitml.cli._lazy import LazyGroup

__all__ = ["cli", "main"]

# Each command lives in its own module, imported only when it runs.
COMMANDS = {
    "experiments": "gitml.cli.experiments:experiments",
    "runs": "gitml.cli.runs:runs",
    "models": "gitml.cli.models:models",
    "monitor": "gitml.cli.monitor:monitor",
    "pull": "gitml.cli.sharing:pull",
    "push": "gitml.cli.sharing:push",
    "sync": "gitml.cli.sharing:sync",
    "diff": "gitml.cli.diff:diff",
    "artifacts": "gitml.cli.artifacts:artifacts",
    "run": "gitml.cli.projects:run",
    "reproduce": "gitml.cli.projects:reproduce",
    "ci": "gitml.cli.ci:ci",
    "deployments": "gitml.cli.deployments:deployments",
    "deploy": "gitml.cli.deploy:deploy",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gitml", prog_name="gitml")
@click.option(
    "-C",
    "--repo",
    "repo",
    type=click.Path(file_okay=False),
    default=None,
    envvar="GITML_TRACKING_URI",
    help="Repository to work in (default: the one containing the current directory).",
)
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, repo: str | None, show_traceback: bool) -> None:
    """gitml: experiment tracking, artifacts, models and a registry, inside your Git repository."""
    ctx.ensure_object(dict)
    ctx.obj["repo"] = repo
    ctx.obj["traceback"] = show_traceback


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script."""
    from gitml.exceptions import GitMLError

    args = sys.argv[1:] if argv is None else argv
    show = "--traceback" in args
    try:
        return cli.main(args=args, prog_name="gitml", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except GitMLError as e:
        if show:
            traceback.print_exc()
        click.echo(f"Error: {e.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug of ours: one line, and a way to see more
        if show:
            traceback.print_exc()
        else:
            click.echo(f"Error: {type(e).__name__}: {e} (run with --traceback for details)", err=True)
        sys.exit(1)
