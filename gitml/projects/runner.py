"""`gitml run`: validate everything, start the run, run the entry point, end the run.

The order is the contract: the project file, the parameters and the command are all
checked, and the environment is built, before anything reaches the metadata branch; so
bad input leaves nothing behind. Then the run is created with its params and provenance,
committed, and the child starts with the run id in its environment (`MLFLOW_RUN_ID` and
`GITML_RUN_ID`), so `import gitml as mlflow` inside it logs into that run. The child's
exit status sets FINISHED / FAILED; Ctrl-C or the timeout kills it and sets KILLED.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.config import child_env
from gitml.exceptions import InvalidParameterValue
from gitml.projects.child import supervise
from gitml.projects.docker import DockerEnv, run_step
from gitml.projects.docker_image import ProjectImage
from gitml.projects.envs import Environment, prepare_env
from gitml.projects.params import build_argv, resolve_params
from gitml.projects.provenance import (
    Provenance,
    code_provenance,
    data_provenance,
    env_provenance,
    hash_path,
)
from gitml.projects.spec import EntryPoint, Project, load_project
from gitml.projects.steps import plan_steps

__all__ = [
    "logged_params",
    "PATCH_FILE",
    "PROVENANCE_FILE",
    "RECORD_TAG",
    "ProjectRun",
    "StepPlan",
    "prepare_step",
    "run",
]

PROVENANCE_FILE = "gitml/provenance.json"
PATCH_FILE = "gitml/diff.patch"
RECORD_TAG = "gitml.project.run"
RECORD_TAG_MAX = 7000


@dataclass
class StepPlan:
    """One step, fully checked: its command, params, environment and provenance."""

    entry: EntryPoint
    argv: list[str]
    final: dict[str, str]
    extra: dict[str, str]
    given: dict[str, str]
    env: Environment
    provenance: Provenance
    cache_key: str


@dataclass
class ProjectRun:
    """What `run` did: the run id, its status, and the runs of the steps before it."""

    run_id: str
    status: str
    returncode: int | None = None
    cached: bool = False
    argv: list[str] = field(default_factory=list)
    steps: list[ProjectRun] = field(default_factory=list)
    parent_run_id: str | None = None

    def get_status(self) -> str:
        """MLflow's SubmittedRun.get_status()."""
        return self.status

    def wait(self) -> bool:
        """MLflow's SubmittedRun.wait(): True when the run finished."""
        return self.status == "FINISHED"


def _client(tracking_uri: str | os.PathLike[str] | None) -> Any:
    from gitml.tracking.client import TrackingClient

    return TrackingClient(tracking_uri)


def _experiment_id(client: Any, name: str | None, experiment_id: str | None) -> str:
    if experiment_id is not None:
        client.get_experiment(str(experiment_id))  # raises when it does not exist
        return str(experiment_id)
    if name:
        exp = client.get_experiment_by_name(name)
        return exp.experiment_id if exp is not None else client.create_experiment(name)
    client._tracker.experiments.ensure_default()
    return "0"


def prepare_step(
    project: Project,
    entry: EntryPoint,
    given: dict[str, str],
    env: Environment,
    repo_root: Path,
    state_dir: Path,
    extras_allowed: bool = True,
) -> StepPlan:
    """Check the parameters, build the command, and take the provenance of one step."""
    if not extras_allowed:
        given = {k: v for k, v in given.items() if k in entry.parameters}
    final, extra = resolve_params(entry, given, project.root)
    argv = env.argv(build_argv(entry, final, extra))
    code, patch, untracked = code_provenance(repo_root)
    data = data_provenance(repo_root, project.root, untracked)
    for p in entry.parameters.values():
        if p.type == "path" and p.name in final and os.path.exists(final[p.name]):
            path = Path(final[p.name])
            rel = _repo_relative(path, repo_root)
            if rel is not None and any(rel == k or rel.startswith(k + "/") for k in data):
                continue  # DVC already hashed it
            data[rel or str(path)] = hash_path(path, state_dir / "hashcache.json")
    prov = Provenance(code=code, data=data, patch=patch)
    if env.manager == "docker":  # the image's id stands for the whole environment
        prov.env = {"env_manager": "docker", "env_hash": env.env_hash, "image_id": env.env_hash}
    else:
        prov.env = env_provenance(env.python, env.manager, env.env_hash)
    prov.code["project_dir"] = _repo_relative(project.root, repo_root) or "."
    key_src = {
        "tree": code.get("tree"),
        "project": prov.code["project_dir"],
        "entry": entry.name,
        "params": {**final, **extra},
        "data": prov.data_hash(),
        "env": [prov.env.get("python"), prov.env.get("packages_sha256"), env.env_hash],
    }
    cache_key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()
    return StepPlan(entry, argv, final, extra, dict(given), env, prov, cache_key)


def logged_params(plan: StepPlan) -> dict[str, str]:
    """The params as `mlflow run` logs them: shell-quoted values, `path` values as given."""
    out: dict[str, str] = {}
    for name, value in plan.final.items():
        p = plan.entry.parameters.get(name)
        if p is not None and p.type == "path":
            value = plan.given.get(name, str(p.default) if p.has_default else value)
        out[name] = shlex.quote(value)
    out.update({k: shlex.quote(v) for k, v in plan.extra.items()})
    return out


def _code_root(folder: Path) -> Path:
    """The top of the Git working tree holding the project (a worktree when reproducing)."""
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True
    )
    if proc.returncode != 0:
        from gitml.exceptions import RepositoryError

        raise RepositoryError(f"project folder {folder} is not inside a Git repository")
    return Path(proc.stdout.strip())


def _repo_relative(path: Path, root: Path) -> str | None:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


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
) -> ProjectRun:
    """Run an entry point of the project at `uri` as a gitml run; MLflow's `projects.run`.

    `uri` is a project folder, or a Git URL (`REPO#subdir` for a folder inside it); with
    `version`, the project is cloned at that revision. A clone is thrown away afterwards,
    and its runs go to `tracking_uri` (default: the working directory's repository).
    With the docker backend, `build_image` builds a project image on the docker_env image
    (MLflow's `--build-image`); `docker_image` is an image id to run when the engine has it
    (what `gitml reproduce` asks for).
    """
    from gitml.projects.fetch import fetch_project, is_git_uri

    if version is not None or is_git_uri(str(uri)):
        holder, folder = fetch_project(str(uri), version)
        try:
            return _run_folder(
                folder,
                entry_point,
                parameters,
                experiment_name,
                experiment_id,
                run_name,
                env_manager,
                backend,
                cache,
                lenient,
                timeout,
                tracking_uri,
                environ,
                {
                    "mlflow.source.name": str(uri),
                    "mlflow.source.type": "PROJECT",
                    **(extra_tags or {}),
                },
                on_event,
                stdout,
                stderr,
                synchronous,
                remote=True,
                build_image=build_image,
                docker_image=docker_image,
            )
        finally:
            import shutil

            shutil.rmtree(holder, ignore_errors=True)
    return _run_folder(
        Path(uri),
        entry_point,
        parameters,
        experiment_name,
        experiment_id,
        run_name,
        env_manager,
        backend,
        cache,
        lenient,
        timeout,
        tracking_uri,
        environ,
        extra_tags,
        on_event,
        stdout,
        stderr,
        synchronous,
        build_image=build_image,
        docker_image=docker_image,
    )


def _run_folder(
    uri: Path,
    entry_point: str,
    parameters: dict[str, Any] | None,
    experiment_name: str | None,
    experiment_id: str | None,
    run_name: str | None,
    env_manager: str | None,
    backend: str,
    cache: bool,
    lenient: bool,
    timeout: float | None,
    tracking_uri: str | os.PathLike[str] | None,
    environ: dict[str, str] | None,
    extra_tags: dict[str, str] | None,
    on_event: Callable[[str], None] | None,
    stdout: Any,
    stderr: Any,
    synchronous: bool,
    remote: bool = False,
    build_image: bool = False,
    docker_image: str | None = None,
) -> ProjectRun:
    if env_manager == "docker":
        backend = "docker"
    if backend not in ("local", "docker"):
        raise InvalidParameterValue(
            f"backend '{backend}' runs through 'gitml run --backend {backend}' manifests only"
        )
    if not synchronous:
        raise InvalidParameterValue(
            "synchronous=False is not supported: gitml run waits for the child"
        )
    say = on_event or (lambda _msg: None)
    project = load_project(Path(uri), lenient=lenient)
    for w in project.warnings:
        say(f"warning: {w}")
    given = {
        str(k): str(v) if not isinstance(v, bool) else str(v).lower()
        for k, v in (parameters or {}).items()
    }
    client = _client(tracking_uri if tracking_uri is not None or remote else project.root)
    tracker = client._tracker
    repo_root = _code_root(project.root)
    state_dir: Path = tracker.repo.state_dir
    order = plan_steps(project, entry_point)
    for name in order:  # parameters and commands first: cheap, and before any env is built
        ep = project.entry_point(name)
        step_given = (
            given if name == order[-1] else {k: v for k, v in given.items() if k in ep.parameters}
        )
        build_argv(ep, *resolve_params(ep, step_given, project.root))
    base_env = child_env() if environ is None else dict(environ)
    denv = image = None
    if backend == "docker":
        from gitml.projects.docker import docker_env
        from gitml.projects.docker_image import project_image

        if project.env_kind != "docker_env":
            raise InvalidParameterValue(
                "the docker backend needs docker_env (an image) in the MLproject file"
            )
        denv = docker_env(project.env_value, project.root)
        image = project_image(
            denv, project.root, base_env, build_image, project.name, docker_image, say
        )
        env = Environment("docker", "python", env_hash=image.image_id)
    elif build_image:
        raise InvalidParameterValue("--build-image is for the docker backend (--backend docker)")
    else:
        env = prepare_env(project, env_manager or "local", state_dir)
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
    exp_id = _experiment_id(client, experiment_name, experiment_id)
    tags = dict(extra_tags or {})
    if len(plans) == 1:
        return _run_step(
            client,
            project,
            plans[0],
            exp_id,
            run_name,
            tags,
            cache,
            timeout,
            base_env,
            say,
            stdout,
            stderr,
            denv,
            image,
        )
    parent = client.create_run(
        exp_id,
        run_name=run_name or f"{entry_point} pipeline",
        tags={
            **tags,
            "mlflow.source.type": "PROJECT",
            "mlflow.project.entryPoint": entry_point,
            "gitml.project.steps": json.dumps(order),
        },
    )
    parent_id = parent.info.run_id
    client.flush()
    say(f"pipeline {' -> '.join(order)} in parent run {parent_id}")
    done: list[ProjectRun] = []
    status = "FINISHED"
    try:
        for plan in plans:
            step_tags = {**tags, "mlflow.parentRunId": parent_id}
            result = _run_step(
                client,
                project,
                plan,
                exp_id,
                None,
                step_tags,
                cache,
                timeout,
                base_env,
                say,
                stdout,
                stderr,
                denv,
                image,
            )
            done.append(result)
            client.set_tag(parent_id, f"gitml.step.{plan.entry.name}", result.run_id)
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


def _find_cached(client: Any, exp_id: str, key: str) -> str | None:
    runs = client.search_runs(
        [exp_id],
        filter_string=f"tags.`gitml.project.cache_key` = '{key}' and attributes.status = 'FINISHED'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def _run_step(
    client: Any,
    project: Project,
    plan: StepPlan,
    exp_id: str,
    run_name: str | None,
    tags: dict[str, str],
    cache: bool,
    timeout: float | None,
    base_env: dict[str, str],
    say: Callable[[str], None],
    stdout: Any,
    stderr: Any,
    denv: DockerEnv | None = None,
    image: ProjectImage | None = None,
) -> ProjectRun:
    if cache:
        hit = _find_cached(client, exp_id, plan.cache_key)
        if hit:
            say(f"step '{plan.entry.name}' unchanged: reusing finished run {hit}")
            return ProjectRun(
                hit,
                "FINISHED",
                0,
                cached=True,
                argv=plan.argv,
                parent_run_id=tags.get("mlflow.parentRunId"),
            )
    prov = plan.provenance
    run_tags = {
        "mlflow.source.name": project.root.as_uri(),
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": plan.entry.name,
        "mlflow.project.backend": "docker" if denv else "local",
        "mlflow.project.env": plan.env.manager,
        "gitml.project.path": prov.code.get("project_dir", "."),
        "gitml.project.command": json.dumps(plan.argv)[:4000],
        "gitml.project.cache_key": plan.cache_key,
        **prov.tags(),
        **tags,
    }
    record: dict[str, Any] = {
        "entry_point": plan.entry.name,
        "given": plan.given,
        "env_manager": plan.env.manager,
        "project_dir": prov.code.get("project_dir", "."),
    }
    if image is not None:  # MLflow's tag names for the image; reproduce asks for this id
        run_tags["mlflow.docker.image.uri"] = image.uri
        run_tags["mlflow.docker.image.id"] = image.image_id
        record["docker"] = {"image_id": image.image_id, "build_image": image.built}
        if image.content:  # a rebuilt image has a new id but the same content hash
            run_tags["gitml.docker.build_sha256"] = image.content
    record_tag = json.dumps(record, sort_keys=True)
    if len(record_tag) <= RECORD_TAG_MAX:  # what reproduce needs, without fetching an artifact
        run_tags[RECORD_TAG] = record_tag
    run = client.create_run(exp_id, tags=run_tags, run_name=run_name)
    run_id = run.info.run_id
    try:
        from gitml.entities import Param

        params = [Param(k, v) for k, v in logged_params(plan).items()]
        if params:
            client.log_batch(run_id, params=params)
        full = prov.to_dict()
        full["run"] = {**record, "argv": plan.argv}
        client.log_text(run_id, json.dumps(full, indent=1, sort_keys=True), PROVENANCE_FILE)
        if prov.patch:
            client.log_text(run_id, prov.patch, PATCH_FILE)
        client.flush()
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    say(f"=== Running command {json.dumps(plan.argv)} in run with ID '{run_id}' ===")
    repo_root = str(client._tracker.root)
    env = plan.env.child_env(base_env)
    for prefix in ("MLFLOW", "GITML"):
        env[f"{prefix}_RUN_ID"] = run_id
        env[f"{prefix}_TRACKING_URI"] = repo_root
        env[f"{prefix}_EXPERIMENT_ID"] = exp_id
        env.pop(f"{prefix}_EXPERIMENT_NAME", None)
        env.pop(f"{prefix}_RUN_NAME", None)
    try:
        if denv is None or image is None:
            status, code = supervise(plan.argv, project.root, env, timeout, stdout, stderr)
        else:
            # The repository at its own path: the tracking URI, `path` parameters and
            # volumes mean the same inside; a built image runs its own copy of the code.
            mounts = [_code_root(project.root), Path(client._tracker.root)]
            status, code = run_step(
                denv,
                plan.argv,
                image.workdir or project.root,
                mounts,
                env,
                run_id,
                plan.entry.resources,
                timeout,
                stdout,
                stderr,
                image.image_id,
            )
    except KeyboardInterrupt:
        client.set_tag(run_id, "gitml.project.exit_code", "interrupted")
        client.set_terminated(run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_tag(run_id, "gitml.project.exit_code", str(code))
    client.set_terminated(run_id, status)
    say(f"=== Run {run_id} {status} (exit status {code}) ===")
    return ProjectRun(
        run_id, status, code, argv=plan.argv, parent_run_id=tags.get("mlflow.parentRunId")
    )
