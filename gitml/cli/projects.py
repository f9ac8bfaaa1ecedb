"""`gitml run` (an MLproject entry point as a run) and `gitml reproduce` (re-run a past run)."""

from __future__ import annotations

import sys

import click

__all__ = ["reproduce", "run"]

# The exit status of `gitml reproduce` when metrics drift beyond the tolerances.
DRIFT_EXIT = 3
# ... and when the reproduction's own run did not finish (the child failed or was killed).
FAILED_EXIT = 4


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            from gitml.exceptions import InvalidParameterValue

            raise InvalidParameterValue(f"-P {pair!r} is not NAME=VALUE")
        out[key] = value
    return out


def _say(msg: str) -> None:
    click.echo(msg, err=True)


@click.command()
@click.argument("uri", default=".", required=False)
@click.option(
    "-e",
    "--entry-point",
    default="main",
    show_default=True,
    help="Entry point, or a .py/.sh script of the project.",
)
@click.option(
    "-P",
    "--param-list",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter (repeatable).",
)
@click.option(
    "-v",
    "--version",
    "version",
    default=None,
    help="Git revision to run (the project is cloned at it).",
)
@click.option("--experiment-name", default=None, help="Experiment to run in (created if missing).")
@click.option("--experiment-id", default=None, help="Experiment id to run in.")
@click.option("--run-name", default=None, help="Name of the run.")
@click.option(
    "--env-manager",
    type=click.Choice(["local", "virtualenv", "uv", "conda", "docker"]),
    default="local",
    show_default=True,
    help="local: this interpreter; virtualenv/uv/conda: an environment built from the project's files, cached.",
)
@click.option(
    "-b",
    "--backend",
    type=click.Choice(["local", "docker", "kubernetes"]),
    default="local",
    show_default=True,
    help="local: run here; docker: run in the docker_env image; kubernetes: write (and with a kubeconfig, apply) one Job per step.",
)
@click.option(
    "--build-image",
    is_flag=True,
    help="docker: build a project image on the docker_env image with the project's files in it (reused while they are unchanged).",
)
@click.option(
    "-A",
    "--docker-args",
    "docker_args",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="docker: a `docker run` option, as MLflow's -A: gpus=all is --gpus all, t is -t (repeatable).",
)
@click.option(
    "--backend-config",
    "backend_config",
    default=None,
    help="kubernetes: a YAML/JSON file (namespace, image, ...).",
)
@click.option(
    "--manifest",
    "manifest",
    default=None,
    type=click.Path(dir_okay=False),
    help="kubernetes: where to write the Jobs.",
)
@click.option(
    "--apply",
    "apply",
    is_flag=True,
    default=None,
    help="kubernetes: apply the Jobs (an error when kubectl or a kubeconfig is missing).",
)
@click.option(
    "--cache",
    is_flag=True,
    help="Skip a step whose code, params, data and environment match a finished run.",
)
@click.option(
    "--lenient", is_flag=True, help="Unknown keys in the MLproject file are warnings, not errors."
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds before the child is killed (run marked KILLED).",
)
@click.pass_context
def run(
    ctx: click.Context,
    uri: str,
    entry_point: str,
    params: tuple[str, ...],
    version: str | None,
    experiment_name: str | None,
    experiment_id: str | None,
    run_name: str | None,
    env_manager: str,
    backend: str,
    build_image: bool,
    docker_args: tuple[str, ...],
    backend_config: str | None,
    manifest: str | None,
    apply: bool | None,
    cache: bool,
    lenient: bool,
    timeout: float | None,
) -> None:
    """Run an entry point of the MLproject at URI (a folder or GIT-URL[#subdir]; default .) as a gitml run.

    The command runs without a shell; the child logs into the run through MLFLOW_RUN_ID.
    Exit status: the child's (0 when the run FINISHED), 130 when interrupted.
    """
    parameters = _params(params)
    repo = ctx.obj.get("repo") if ctx.obj else None
    if backend == "kubernetes":
        from gitml.projects.kubernetes import submit

        kube = submit(
            uri,
            entry_point,
            parameters,
            backend_config=backend_config,
            manifest=manifest,
            apply=apply or None,
            lenient=lenient,
            on_event=_say,
        )
        click.echo(kube.manifest)
        if kube.applied and any(v != "complete" for v in kube.statuses.values()):
            sys.exit(1)
        return
    from gitml.projects.runner import run as run_project

    try:
        result = run_project(
            uri,
            entry_point=entry_point,
            parameters=parameters,
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            run_name=run_name,
            env_manager=env_manager,
            backend=backend,
            cache=cache,
            lenient=lenient,
            timeout=timeout,
            tracking_uri=repo,
            on_event=_say,
            version=version,
            build_image=build_image,
            docker_args={
                k: (v if sep else True) for k, sep, v in (a.partition("=") for a in docker_args)
            },
        )
    except KeyboardInterrupt:
        click.echo("Interrupted: the child was stopped and its run marked KILLED", err=True)
        sys.exit(130)
    for step in result.steps:
        mark = " (cached)" if step.cached else ""
        click.echo(f"{step.run_id} {step.status}{mark}")
    click.echo(f"{result.run_id} {result.status}" + (" (cached)" if result.cached else ""))
    if result.status != "FINISHED":
        code = result.returncode if result.returncode not in (None, 0) else 1
        if result.status == "KILLED":
            code = 124
        sys.exit(code)


@click.command()
@click.argument("target")
@click.option(
    "--rtol",
    "rtols",
    multiple=True,
    metavar="[METRIC=]X",
    help="Relative tolerance (default 0; repeatable per metric).",
)
@click.option(
    "--atol",
    "atols",
    multiple=True,
    metavar="[METRIC=]X",
    help="Absolute tolerance (default 0; repeatable per metric).",
)
@click.option(
    "--env-manager",
    type=click.Choice(["local", "virtualenv", "uv", "conda"]),
    default=None,
    help="Override the recorded environment manager.",
)
@click.option("--keep", is_flag=True, help="Keep the throw-away worktree (its path is printed).")
@click.option("--timeout", type=float, default=None, help="Seconds before the child is killed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def reproduce(
    ctx: click.Context,
    target: str,
    rtols: tuple[str, ...],
    atols: tuple[str, ...],
    env_manager: str | None,
    keep: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Re-run RUN-ID, NAME@vX.Y.Z or models:/NAME/STAGE at its recorded commit and compare metrics.

    Exit status: 0 within tolerance, 3 when a metric drifted (or is missing), 4 when the
    reproduction's run failed or was killed, 1 on errors.
    """
    from gitml.projects.reproduce import parse_tolerances
    from gitml.projects.reproduce import reproduce as do_reproduce

    rtol = parse_tolerances(rtols, "--rtol")
    atol = parse_tolerances(atols, "--atol")
    repo = ctx.obj.get("repo") if ctx.obj else None
    from gitml.cli._ids import full_run_id
    from gitml.client import GitMLClient

    result = do_reproduce(
        full_run_id(GitMLClient(repo), target),
        rtol=rtol,
        atol=atol,
        env_manager=env_manager,
        keep=keep,
        timeout=timeout,
        tracking_uri=repo,
        on_event=_say,
    )
    if as_json:
        from gitml.cli._render import echo_json

        echo_json(result.to_dict())
    else:
        click.echo(result.table())
    if result.status != "FINISHED":
        sys.exit(FAILED_EXIT)
    if not result.within:
        sys.exit(DRIFT_EXIT)
