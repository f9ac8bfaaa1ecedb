"""A project's step graph as an Argo `Workflow` and as a Kubeflow Pipelines v2 pipeline.

Each step runs `gitml run -e STEP --cache` in the project image, after the steps it
`depends_on`; `resources` become requests and GPU limits. Argo memoizes a step on a key
made of the code tree, the step and its parameters, so an unchanged step is skipped
across workflows; inside the step, `--cache` also skips it when only data or the
environment would make it differ from a finished run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.projects.kubernetes import k8s_name
from gitml.projects.params import coerce
from gitml.projects.spec import EntryPoint, Project
from gitml.projects.steps import plan_steps

__all__ = [
    "PIPELINE_SCHEMA_VERSION",
    "argo_workflow",
    "check_workflow",
    "code_version",
    "kubeflow_pipeline",
    "step_args",
]

PIPELINE_SCHEMA_VERSION = "2.1.0"


def code_version(root: Path) -> str:
    """The tree hash of the commit checked out at `root` (what memoization keys on)."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD^{tree}"], cwd=root, capture_output=True, text=True
    )
    return proc.stdout.strip() if proc.returncode == 0 else "uncommitted"


def step_args(entry: EntryPoint, params: dict[str, str]) -> list[str]:
    """`gitml run` arguments for one step (each parameter one `-P k=v` argument)."""
    args = ["run", ".", "-e", entry.name, "--cache"]
    for key, value in sorted(params.items()):
        args += ["-P", f"{key}={value}"]
    return args


def _step_params(project: Project, name: str, given: dict[str, str]) -> dict[str, str]:
    """The step's declared parameters, checked and coerced; paths stay as written (relative
    to the project in the image), since the step runs in a container, not here."""
    entry = project.entry_point(name)
    final: dict[str, str] = {}
    for p in entry.parameters.values():
        if p.name in given:
            final[p.name] = coerce(p, given[p.name])
        elif p.has_default:
            final[p.name] = coerce(p, p.default)
        else:
            raise InvalidParameterValue(
                f"entry point '{name}' needs parameter {p.name}: give it with -P {p.name}=VALUE"
            )
    return final


def _steps(project: Project, target: str, given: dict[str, str]) -> list[tuple[EntryPoint, dict[str, str]]]:
    names = plan_steps(project, target)
    return [(project.entry_point(n), _step_params(project, n, given)) for n in names]


def _memo_key(code: str, entry: EntryPoint, params: dict[str, str]) -> str:
    src = json.dumps({"code": code, "step": entry.name, "params": params}, sort_keys=True)
    return "gitml-" + hashlib.sha256(src.encode()).hexdigest()[:40]


def _k8s_resources(res: dict[str, Any]) -> dict[str, Any]:
    requests = {k: str(res[k]) for k in ("cpu", "memory") if k in res}
    limits: dict[str, Any] = {}
    if res.get("gpu"):
        limits["nvidia.com/gpu"] = str(int(res["gpu"]))
    if "memory" in res:
        limits["memory"] = str(res["memory"])
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def argo_workflow(
    project: Project,
    target: str,
    image: str,
    params: dict[str, str] | None = None,
    namespace: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An Argo `Workflow` running `target` and the steps it depends on, as a DAG."""
    steps = _steps(project, target, params or {})
    code = code_version(project.root)
    base = k8s_name(project.name or project.root.name)
    tasks: list[dict[str, Any]] = []
    templates: list[dict[str, Any]] = [{"name": "main", "dag": {"tasks": tasks}}]
    env_list = [{"name": k, "value": v} for k, v in sorted((env or {}).items())]
    for entry, step_params in steps:
        task = k8s_name(entry.name)
        task_def: dict[str, Any] = {"name": task, "template": f"step-{task}"}
        deps = [k8s_name(d) for d in entry.depends_on]
        if deps:
            task_def["dependencies"] = deps
        tasks.append(task_def)
        container: dict[str, Any] = {
            "image": image,
            "command": ["gitml"],
            "args": step_args(entry, step_params),
            "workingDir": "/workspace",
        }
        if env_list:
            container["env"] = env_list
        resources = _k8s_resources(entry.resources)
        if resources:
            container["resources"] = resources
        templates.append(
            {
                "name": f"step-{task}",
                "memoize": {
                    "key": _memo_key(code, entry, step_params),
                    "maxAge": "720h",
                    "cache": {"configMap": {"name": f"{base}-gitml-steps"[:63].rstrip("-")}},
                },
                "container": container,
            }
        )
    metadata: dict[str, Any] = {
        "generateName": f"{base}-{k8s_name(target)}-"[:58],
        "labels": {"app.kubernetes.io/managed-by": "gitml"},
        "annotations": {"gitml.dev/code-tree": code, "gitml.dev/entry-point": target},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": metadata,
        "spec": {"entrypoint": "main", "templates": templates},
    }


def check_workflow(workflow: dict[str, Any]) -> None:
    """gitml's own check: every DAG task names a template that exists, and every dependency a task."""
    names = {t["name"] for t in workflow["spec"]["templates"]}
    for template in workflow["spec"]["templates"]:
        dag = template.get("dag")
        if not dag:
            continue
        tasks = {t["name"] for t in dag["tasks"]}
        for t in dag["tasks"]:
            if t["template"] not in names:
                raise InvalidParameterValue(f"task {t['name']} names no template {t['template']}")
            for dep in t.get("dependencies", []):
                if dep not in tasks:
                    raise InvalidParameterValue(f"task {t['name']} depends on unknown task {dep}")


def kubeflow_pipeline(
    project: Project, target: str, image: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    """A Kubeflow Pipelines v2 pipeline (IR: the PipelineSpec as JSON-ready data)."""
    steps = _steps(project, target, params or {})
    tasks: dict[str, Any] = {}
    components: dict[str, Any] = {}
    executors: dict[str, Any] = {}
    for entry, step_params in steps:
        task = k8s_name(entry.name)
        tasks[task] = {
            "taskInfo": {"name": task},
            "componentRef": {"name": f"comp-{task}"},
            "cachingOptions": {"enableCache": True},
        }
        deps = [k8s_name(d) for d in entry.depends_on]
        if deps:
            tasks[task]["dependentTasks"] = deps
        components[f"comp-{task}"] = {"executorLabel": f"exec-{task}"}
        container: dict[str, Any] = {"image": image, "command": ["gitml"], "args": step_args(entry, step_params)}
        res = entry.resources
        resources: dict[str, Any] = {}
        if "cpu" in res:
            resources["resourceCpuLimit"] = str(res["cpu"])
        if "memory" in res:
            resources["resourceMemoryLimit"] = str(res["memory"])
        if res.get("gpu"):
            resources["accelerator"] = {"resourceType": "nvidia.com/gpu", "resourceCount": str(int(res["gpu"]))}
        if resources:
            container["resources"] = resources
        executors[f"exec-{task}"] = {"container": container}
    name = k8s_name(f"{project.name or project.root.name}-{target}")
    return {
        "pipelineInfo": {"name": name, "description": f"gitml project {project.name or ''} entry point {target}".strip()},
        "root": {"dag": {"tasks": tasks}},
        "components": components,
        "deploymentSpec": {"executors": executors},
        "schemaVersion": PIPELINE_SCHEMA_VERSION,
        "sdkVersion": "gitml",
    }
