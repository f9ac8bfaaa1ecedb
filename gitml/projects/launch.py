"""One planned step as one gitml run: create the run with its tags, params and provenance,
start the child with the run id in its environment, and record how it ended.

The child gets `MLFLOW_RUN_ID` and `GITML_RUN_ID` (and the tracking URI), so
`import gitml as mlflow` inside it logs into that run. Its exit status sets FINISHED /
FAILED; Ctrl-C or the timeout kills it and sets KILLED. With the cache on, a finished run
of the same step (same cache key) is reused instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.projects.child import supervise
from gitml.projects.docker import DockerEnv
from gitml.projects.docker import run_step as run_in_docker
from gitml.projects.docker_image import ProjectImage
from gitml.projects.plan import StepPlan, code_root, logged_params
from gitml.projects.spec import Project

if TYPE_CHECKING:
    from gitml.tracking.client import TrackingClient
    from gitml.tracking.tracker import Tracker

__all__ = [
    "PATCH_FILE",
    "PROVENANCE_FILE",
    "RECORD_TAG",
    "ProjectRun",
    "StepContext",
    "container_settings",
    "find_cached",
    "run_step",
]

PROVENANCE_FILE = "gitml/provenance.json"
PATCH_FILE = "gitml/diff.patch"
RECORD_TAG = C.TAG_PROJECT_RECORD
RECORD_TAG_MAX = 7000


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


@dataclass(frozen=True)
class StepContext:
    """What every step of one `gitml run` shares: where it logs and how its child runs."""

    client: TrackingClient
    project: Project
    experiment_id: str
    cache: bool
    timeout: float | None
    base_env: dict[str, str]
    say: Callable[[str], None]
    stdout: Any = None
    stderr: Any = None
    docker: DockerEnv | None = None
    image: ProjectImage | None = None  # the image the docker steps run in


def find_cached(client: TrackingClient, exp_id: str, key: str) -> str | None:
    """The newest FINISHED run of the experiment with this cache key, if any."""
    runs = client.search_runs(
        [exp_id],
        filter_string=(
            f"tags.`{C.TAG_PROJECT_CACHE_KEY}` = '{key}' and attributes.status = 'FINISHED'"
        ),
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def _record(ctx: StepContext, plan: StepPlan) -> dict[str, Any]:
    """How the step ran, as `gitml reproduce` reads it back (tag, and provenance.json)."""
    record: dict[str, Any] = {
        "entry_point": plan.entry.name,
        "given": plan.given,
        "env_manager": plan.env.manager,
        "project_dir": plan.provenance.code.get("project_dir", "."),
    }
    if ctx.image is not None:  # reproduce asks the engine for this id first
        record["docker"] = {"image_id": ctx.image.image_id, "build_image": ctx.image.built}
        if ctx.image.digest:
            record["docker"]["image_digest"] = ctx.image.digest
    return record


def _run_tags(ctx: StepContext, plan: StepPlan, tags: dict[str, str]) -> dict[str, str]:
    prov, denv, image = plan.provenance, ctx.docker, ctx.image
    run_tags = {
        C.TAG_SOURCE_NAME: ctx.project.root.as_uri(),
        C.TAG_SOURCE_TYPE: "PROJECT",
        C.TAG_PROJECT_ENTRY_POINT: plan.entry.name,
        C.TAG_PROJECT_BACKEND: "docker" if denv else "local",
        C.TAG_PROJECT_ENV: plan.env.manager,
        C.TAG_PROJECT_PATH: prov.code.get("project_dir", "."),
        C.TAG_PROJECT_COMMAND: json.dumps(plan.argv)[:4000],
        C.TAG_PROJECT_CACHE_KEY: plan.cache_key,
        **prov.tags(),
        **tags,
    }
    if image is not None:  # MLflow's tag names for the image
        run_tags[C.TAG_DOCKER_IMAGE_URI] = image.uri
        run_tags[C.TAG_DOCKER_IMAGE_ID] = image.image_id
        if image.content:  # a rebuilt image has a new id but the same content hash
            run_tags[C.TAG_DOCKER_BUILD] = image.content
    record_tag = json.dumps(_record(ctx, plan), sort_keys=True)
    if len(record_tag) <= RECORD_TAG_MAX:  # what reproduce needs, without fetching an artifact
        run_tags[RECORD_TAG] = record_tag
    return run_tags


def _log_inputs(ctx: StepContext, run_id: str, plan: StepPlan) -> None:
    """The params, the provenance record and the patch, committed before the child starts."""
    from gitml.entities import Param

    client, prov = ctx.client, plan.provenance
    params = [Param(k, v) for k, v in logged_params(plan).items()]
    if params:
        client.log_batch(run_id, params=params)
    record = prov.to_dict()
    record["run"] = {**_record(ctx, plan), "argv": plan.argv}
    client.log_text(run_id, json.dumps(record, indent=1, sort_keys=True), PROVENANCE_FILE)
    if prov.patch:
        client.log_text(run_id, prov.patch, PATCH_FILE)
    client.flush()


def container_settings(tracker: Tracker) -> dict[str, str]:
    """What a child in a container cannot read from the host but must share with it: the
    metadata branch and user (possibly from the user's global Git config, which is not in
    the container) and who commits, so its commits are the same as a local child's."""
    name, _, email = tracker.repo.identity().rpartition(" <")
    out = {"GITML_BRANCH": tracker.repo.branch}
    if tracker.config.user:
        out["GITML_USER"] = tracker.config.user
    for who in ("AUTHOR", "COMMITTER"):
        out[f"GIT_{who}_NAME"] = name
        out[f"GIT_{who}_EMAIL"] = email.rstrip(">")
    return out


def run_step(
    ctx: StepContext, plan: StepPlan, run_name: str | None, tags: dict[str, str]
) -> ProjectRun:
    """Run one planned step as a new run (or reuse a cached one); its ProjectRun."""
    client, say = ctx.client, ctx.say
    parent_id = tags.get(C.TAG_PARENT_RUN_ID)
    if ctx.cache:
        hit = find_cached(client, ctx.experiment_id, plan.cache_key)
        if hit:
            say(f"step '{plan.entry.name}' unchanged: reusing finished run {hit}")
            return ProjectRun(
                hit, "FINISHED", 0, cached=True, argv=plan.argv, parent_run_id=parent_id
            )
    run = client.create_run(ctx.experiment_id, tags=_run_tags(ctx, plan, tags), run_name=run_name)
    run_id = run.info.run_id
    try:
        _log_inputs(ctx, run_id, plan)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    say(f"=== Running command {json.dumps(plan.argv)} in run with ID '{run_id}' ===")
    repo_root = str(client._tracker.root)
    env = plan.env.child_env(ctx.base_env)
    for prefix in ("MLFLOW", "GITML"):
        env[f"{prefix}_RUN_ID"] = run_id
        env[f"{prefix}_TRACKING_URI"] = repo_root
        env[f"{prefix}_EXPERIMENT_ID"] = ctx.experiment_id
        env.pop(f"{prefix}_EXPERIMENT_NAME", None)
        env.pop(f"{prefix}_RUN_NAME", None)
    if ctx.docker is not None:
        env.update(container_settings(client._tracker))
    root = ctx.project.root
    try:
        if ctx.docker is None or ctx.image is None:
            status, code = supervise(plan.argv, root, env, ctx.timeout, ctx.stdout, ctx.stderr)
        else:
            # The repository at its own path: the tracking URI, `path` parameters and
            # volumes mean the same inside; a built image runs its own copy of the code.
            mounts = [code_root(root), Path(client._tracker.root)]
            status, code = run_in_docker(
                ctx.docker,
                plan.argv,
                ctx.image.workdir or root,
                mounts,
                env,
                run_id,
                plan.entry.resources,
                ctx.timeout,
                ctx.stdout,
                ctx.stderr,
                ctx.image.image_id,
            )
    except KeyboardInterrupt:
        client.set_tag(run_id, C.TAG_PROJECT_EXIT_CODE, "interrupted")
        client.set_terminated(run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_tag(run_id, C.TAG_PROJECT_EXIT_CODE, str(code))
    client.set_terminated(run_id, status)
    say(f"=== Run {run_id} {status} (exit status {code}) ===")
    return ProjectRun(run_id, status, code, argv=plan.argv, parent_run_id=parent_id)
