"""The `gitml` command: a thin layer that parses, calls the library, and renders.

Errors are translated here, once: a GitMLError prints `Error: <message>` and exits 1
(2 for usage errors, as click does); anything else prints one line and suggests --traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from gitml.cli._lazy import LazyCommand, LazyGroup

__all__ = ["cli", "main"]

# Each command lives in its own module, imported only when it runs (or shows its own help);
# `gitml --help` lists them from this table (a test keeps each help equal to the command's).
COMMANDS: dict[str, LazyCommand] = {
    "experiments": LazyCommand(
        "gitml.cli.experiments:experiments",
        "Create, list, rename, delete and restore experiments.",
    ),
    "runs": LazyCommand(
        "gitml.cli.runs:runs",
        "List, inspect, search, delete, restore and recover runs.",
    ),
    "models": LazyCommand(
        "gitml.cli.models:models",
        "Register, promote, predict with, serve and package models.",
    ),
    "monitor": LazyCommand(
        "gitml.cli.monitor:monitor",
        "Export, for every registered model, the metrics of the run behind each version in each stage or alias.",
    ),
    "pull": LazyCommand(
        "gitml.cli.sharing:pull",
        "Fetch runs and registry tags from REMOTE and merge them in (default: gitml.remote, then origin).",
    ),
    "push": LazyCommand(
        "gitml.cli.sharing:push",
        "Merge REMOTE's runs in, then push runs and registry tags there, retrying until it lands.",
    ),
    "sync": LazyCommand(
        "gitml.cli.sharing:sync",
        "Pull then push: afterwards this clone and REMOTE hold the same runs and registry tags.",
    ),
    "diff": LazyCommand(
        "gitml.cli.diff:diff",
        "Compare the latest finished runs of A and B (run ids, commits, branches or tags).",
    ),
    "artifacts": LazyCommand(
        "gitml.cli.artifacts:artifacts",
        "Move, inspect and clean run artifacts (DVC cache and remotes).",
    ),
    "run": LazyCommand(
        "gitml.cli.projects:run",
        "Run an entry point of the MLproject at URI (a folder or GIT-URL[#subdir]; default .) as a gitml run.",
    ),
    "reproduce": LazyCommand(
        "gitml.cli.projects:reproduce",
        "Re-run RUN-ID, NAME@vX.Y.Z or models:/NAME/STAGE at its recorded commit and compare metrics.",
    ),
    "ci": LazyCommand(
        "gitml.cli.ci:ci",
        "Continuous integration: pipeline files, the pull-request comment, consistency checks.",
    ),
    "deployments": LazyCommand(
        "gitml.cli.deployments:deployments",
        "Deployments recorded by CI: which model version went where, when, from which pipeline.",
    ),
    "deploy": LazyCommand(
        "gitml.cli.deploy:deploy",
        "Generate deployments: Kubernetes/KServe manifests, Argo and Kubeflow pipelines.",
    ),
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
            import traceback

            traceback.print_exc()
        click.echo(f"Error: {e.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug of ours: one line, and a way to see more
        if show:
            import traceback

            traceback.print_exc()
        else:
            click.echo(f"Error: {type(e).__name__}: {e} (run with --traceback for details)", err=True)
        sys.exit(1)
