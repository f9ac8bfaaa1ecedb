"""`gitml run`: validate everything, start the run(s), run the entry point, end the run(s).

The order is the contract: the project file, the parameters and the command are all
checked, and the environment is built, before anything reaches the metadata branch; so
bad input leaves nothing behind (`plan.py` checks one step). Then each step runs as one
run (`launch.py`); an entry point with `depends_on` runs its steps in order under a
parent run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.config import child_env
from gitml.exceptions import InvalidParameterValue
from gitml.projects.envs import Environment, prepare_env
from gitml.projects.launch import (
    PATCH_FILE,
    PROVENANCE_FILE,
    RECORD_TAG,
    ProjectRun,
    StepContext,
    run_step,
)
from gitml.projects.params import build_argv, resolve_params
from gitml.projects.plan import StepPlan, code_root, logged_params, prepare_step
from gitml.projects.spec import load_project
from gitml.projects.steps import plan_steps

if TYPE_CHECKING:
    from gitml.tracking.client import TrackingClient

# The step's pieces live in plan.py and launch.py; their names stay importable from here.
__all__ = [
    "PATCH_FILE",
    "PROVENANCE_FILE",
    "RECORD_TAG",
    "ProjectRun",
    "RunOptions",
    "StepPlan",
    "logged_params",
    "prepare_step",
    "run",
]


@dataclass(frozen=True)
class RunOptions:
    """Everything `run` was asked for, besides the project folder."""

    entry_point: str = "main"
    parameters: dict[str, Any] | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    run_name: str | None = None
    env_manager: str | None = None
    backend: str = "local"
    cache: bool = False
    lenient: bool = False
    timeout: float | None = None
    tracking_uri: str | os.PathLike[str] | None = None
    environ: dict[str, str] | None = None
    extra_tags: dict[str, str] | None = None
    on_event: Callable[[str], None] | None = None
    stdout: Any = None
    stderr: Any = None
    synchronous: bool = True
    build_image: bool = False  # docker: build a project image on the docker_env image
    docker_image: str | None = None  # docker: an image id to run when the engine has it
    docker_digest: str | None = None  # docker: where to pull that image when it is gone
    docker_args: dict[str, str | bool] | None = None  # docker: MLflow's `-A name[=value]`


def _client(tracking_uri: str | os.PathLike[str] | None) -> TrackingClient:
    from gitml.tracking.client import TrackingClient

    return TrackingClient(tracking_uri)


def _experiment_id(client: TrackingClient, name: str | None, experiment_id: str | None) -> str:
    if experiment_id is not None:
        client.get_experiment(str(experiment_id))  # raises when it does not exist
        return str(experiment_id)
    if name:
        exp = client.get_experiment_by_name(name)
        return exp.experiment_id if exp is not None else client.create_experiment(name)
    client._tracker.experiments.ensure_default()
    return "0"


def run(
    uri: str | os.PathLike[str] = ".",
    entry_point: str = "main",
    parameters: dict[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    backend: str = "local",
    cache: bool = False,
    lenient: bool = False,
    timeout: float | None = None,
    tracking_uri: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    extra_tags: dict[str, str] | None = None,
    on_event: Callable[[str], None] | None = None,
    stdout: Any = None,
    stderr: Any = None,
    synchronous: bool = True,
    version: str | None = None,
    build_image: bool = False,
    docker_image: str | None = None,
    docker_digest: str | None = None,
    docker_args: dict[str, str | bool] | None = None,
) -> ProjectRun:
    """Run an entry point of the project at `uri` as a gitml run; MLflow's `projects.run`.

    `uri` is a project folder, or a Git URL (`REPO#subdir` for a folder inside it); with
    `version`, the project is cloned at that revision. A clone is thrown away afterwards,
    and its runs go to `tracking_uri` (default: the working directory's repository).
    With the docker backend, `build_image` builds a project image on the docker_env image
    (MLflow's `--build-image`); `docker_image` is an image id to run when the engine has it
    (what `gitml reproduce` asks for), pulled by `docker_digest` (`name@sha256:...`) when gone;
    `docker_args` are MLflow's extra `docker run` options (`{"gpus": "all", "t": True}`).
    """
    from gitml.projects.fetch import fetch_project, is_git_uri

    opts = RunOptions(
        entry_point, parameters, experiment_name, experiment_id, run_name, env_manager,
        backend, cache, lenient, timeout, tracking_uri, environ, extra_tags, on_event,
        stdout, stderr, synchronous, build_image, docker_image, docker_digest, docker_args,
    )  # fmt: skip
    if version is None and not is_git_uri(str(uri)):
        return _run_folder(Path(uri), opts)
    holder, folder = fetch_project(str(uri), version)
    source = {C.TAG_SOURCE_NAME: str(uri), C.TAG_SOURCE_TYPE: "PROJECT"}
    try:
        return _run_folder(
            folder, replace(opts, extra_tags={**source, **(extra_tags or {})}), remote=True
        )
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _run_folder(folder: Path, o: RunOptions, remote: bool = False) -> ProjectRun:
    """Run the project in `folder`; a fetched clone (`remote`) logs to `o.tracking_uri` or
    the working directory's repository, never into the throw-away clone."""
    backend = "docker" if o.env_manager == "docker" else o.backend
    if backend not in ("local", "docker"):
        raise InvalidParameterValue(
            f"backend '{backend}' runs through 'gitml run --backend {backend}' manifests only"
        )
    if not o.synchronous:
        raise InvalidParameterValue(
            "synchronous=False is not supported: gitml run waits for the child"
        )
    say = o.on_event or (lambda _msg: None)
    project = load_project(folder, lenient=o.lenient)
    for w in project.warnings:
        say(f"warning: {w}")
    given = {
        str(k): str(v) if not isinstance(v, bool) else str(v).lower()
        for k, v in (o.parameters or {}).items()
    }
    client = _client(o.tracking_uri if o.tracking_uri is not None or remote else project.root)
    repo_root = code_root(project.root)
    state_dir: Path = client._tracker.repo.state_dir
    order = plan_steps(project, o.entry_point)
    for name in order:  # parameters and commands first: cheap, and before any env is built
        ep = project.entry_point(name)
        step_given = (
            given if name == order[-1] else {k: v for k, v in given.items() if k in ep.parameters}
        )
        build_argv(ep, *resolve_params(ep, step_given, project.root))
    base_env = child_env() if o.environ is None else dict(o.environ)
    denv = image = None
    if backend == "docker":
        from gitml.projects.docker import docker_env, docker_options
        from gitml.projects.docker_image import project_image

        if project.env_kind != "docker_env":
            raise InvalidParameterValue(
                "the docker backend needs docker_env (an image) in the MLproject file"
            )
        denv = replace(
            docker_env(project.env_value, project.root), options=docker_options(o.docker_args)
        )
        image = project_image(
            denv,
            project.root,
            base_env,
            o.build_image,
            project.name,
            o.docker_image,
            say,
            o.docker_digest,
        )
        env = Environment("docker", "python", env_hash=image.image_id)
    elif o.build_image or o.docker_args:
        option = "--build-image" if o.build_image else "--docker-args"
        raise InvalidParameterValue(f"{option} is for the docker backend (--backend docker)")
    else:
        env = prepare_env(project, o.env_manager or "local", state_dir)
    # Everything is checked before the first run is created: nothing half-done on the branch.
    plans = [
        prepare_step(
            project,
            project.entry_point(name),
            given,
            env,
            repo_root,
            state_dir,
            extras_allowed=(name == order[-1]),
        )
        for name in order
    ]
    if image is not None:
        for plan in plans:
            plan.provenance.env.update(image.provenance())
    exp_id = _experiment_id(client, o.experiment_name, o.experiment_id)
    ctx = StepContext(
        client,
        project,
        exp_id,
        o.cache,
        o.timeout,
        base_env,
        say,
        o.stdout,
        o.stderr,
        denv,
        image,
    )
    tags = dict(o.extra_tags or {})
    if len(plans) == 1:
        return run_step(ctx, plans[0], o.run_name, tags)
    return _run_pipeline(ctx, plans, order, o, tags)


def _run_pipeline(
    ctx: StepContext, plans: list[StepPlan], order: list[str], o: RunOptions, tags: dict[str, str]
) -> ProjectRun:
    """The steps in order under one parent run; the first step that does not finish stops it."""
    client = ctx.client
    parent = client.create_run(
        ctx.experiment_id,
        run_name=o.run_name or f"{o.entry_point} pipeline",
        tags={
            **tags,
            C.TAG_SOURCE_TYPE: "PROJECT",
            C.TAG_PROJECT_ENTRY_POINT: o.entry_point,
            C.TAG_PROJECT_STEPS: json.dumps(order),
        },
    )
    parent_id = parent.info.run_id
    client.flush()
    ctx.say(f"pipeline {' -> '.join(order)} in parent run {parent_id}")
    done: list[ProjectRun] = []
    status = "FINISHED"
    try:
        for plan in plans:
            result = run_step(ctx, plan, None, {**tags, C.TAG_PARENT_RUN_ID: parent_id})
            done.append(result)
            client.set_tag(parent_id, C.TAG_PROJECT_STEP_PREFIX + plan.entry.name, result.run_id)
            if result.status != "FINISHED":
                status = result.status
                break
    except BaseException:
        client.set_terminated(parent_id, "KILLED")
        raise
    client.set_terminated(parent_id, status)
    last = done[-1] if done else None
    return ProjectRun(
        parent_id,
        status,
        last.returncode if last else None,
        steps=done,
        argv=last.argv if last else [],
    )
