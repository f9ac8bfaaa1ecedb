"""The kubernetes backend: one `batch/v1` Job per step, written, validated, and applied when possible.

The manifest is always written to a file and validated with kubernetes-validate in strict
mode (no cluster needed). It is applied with `kubectl` only when kubectl has a current
context (a kubeconfig); `apply=True` makes that a requirement. Steps are applied in order,
each waited for, so `depends_on` holds on the cluster too.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.exceptions import (
    InvalidParameterValue,
    MissingDependency,
    RemoteError,
    ResourceDoesNotExist,
)
from gitml.projects.params import build_argv, resolve_params
from gitml.projects.spec import Project, load_project
from gitml.projects.steps import plan_steps

__all__ = [
    "KUBERNETES_VERSION",
    "KubeResult",
    "job_manifests",
    "k8s_name",
    "submit",
    "validate_manifests",
]

KUBERNETES_VERSION = "1.33.0"
_DEFAULTS: dict[str, Any] = {
    "namespace": "default",
    "image": None,
    "backoffLimit": 0,
    "ttlSecondsAfterFinished": 86400,
    "kube-context": None,
    "job-template-path": None,
    "timeout": 3600,
}


@dataclass
class KubeResult:
    """The manifest file written, the Jobs in it (in run order), and whether they were applied."""

    manifest: str
    jobs: list[str] = field(default_factory=list)
    applied: bool = False
    statuses: dict[str, str] = field(default_factory=dict)


def k8s_name(text: str, suffix: str = "") -> str:
    """A valid Kubernetes object name (DNS-1123 label, <= 63 chars) from free text."""
    base = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "gitml"
    tail = f"-{suffix}" if suffix else ""
    base = base[: 63 - len(tail)].rstrip("-") or "gitml"
    if not base[0].isalpha():
        base = ("j" + base)[: 63 - len(tail)].rstrip("-")
    return base + tail


def _backend_config(path: str | None) -> dict[str, Any]:
    import yaml

    cfg = dict(_DEFAULTS)
    if path is None:
        return cfg
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise InvalidParameterValue(f"backend config {path}: {e}") from e
    if not isinstance(data, dict):
        raise InvalidParameterValue(f"backend config {path}: must be a mapping")
    unknown = set(data) - set(_DEFAULTS)
    if unknown:
        from gitml.projects.spec import did_you_mean

        key = sorted(unknown)[0]
        raise InvalidParameterValue(
            f"backend config {path}: unknown key '{key}'{did_you_mean(key, _DEFAULTS)}"
        )
    cfg.update(data)
    return cfg


def _template(cfg: dict[str, Any]) -> dict[str, Any]:
    import yaml

    if cfg["job-template-path"]:
        try:
            tpl = yaml.safe_load(Path(cfg["job-template-path"]).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            raise InvalidParameterValue(f"job template: {e}") from e
        if not isinstance(tpl, dict) or tpl.get("kind") != "Job":
            raise InvalidParameterValue("job template: must be a batch/v1 Job")
        return tpl
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {},
        "spec": {"template": {"spec": {"containers": [{}]}}},
    }


def _resources(res: dict[str, Any]) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if res.get("gpu"):
        limits["nvidia.com/gpu"] = int(res["gpu"])
    for key in ("cpu", "memory"):
        if key in res:
            limits[key] = requests[key] = str(res[key])
    out: dict[str, Any] = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def job_manifests(
    project: Project, entry_point: str, parameters: dict[str, str], cfg: dict[str, Any]
) -> list[dict[str, Any]]:
    """One Job per step, in the order the steps run."""
    image = cfg["image"] or (
        project.env_value.get("image") if project.env_kind == "docker_env" else None
    )
    if not image:
        raise InvalidParameterValue(
            "the kubernetes backend needs an image: docker_env in the MLproject or 'image' in --backend-config"
        )
    order = plan_steps(project, entry_point)
    jobs = []
    for name in order:
        ep = project.entry_point(name)
        given = (
            parameters
            if name == order[-1]
            else {k: v for k, v in parameters.items() if k in ep.parameters}
        )
        final, extra = resolve_params(ep, given, project.root)
        argv = build_argv(ep, final, extra)
        digest = hashlib.sha256(json.dumps([name, argv]).encode()).hexdigest()[:8]
        job = json.loads(json.dumps(_template(cfg)))  # a deep copy
        job_name = k8s_name(f"{project.name or project.root.name}-{name}", digest)
        meta = job.setdefault("metadata", {})
        meta["name"] = job_name
        meta["namespace"] = str(cfg["namespace"] or "default")
        labels = meta.setdefault("labels", {})
        labels["app.kubernetes.io/managed-by"] = "gitml"
        labels["gitml.dev/entry-point"] = k8s_name(name)
        if ep.depends_on:
            meta.setdefault("annotations", {})["gitml.dev/depends-on"] = ",".join(ep.depends_on)
        spec = job.setdefault("spec", {})
        spec["backoffLimit"] = int(cfg["backoffLimit"])
        spec["ttlSecondsAfterFinished"] = int(cfg["ttlSecondsAfterFinished"])
        pod = spec.setdefault("template", {}).setdefault("spec", {})
        pod.setdefault("restartPolicy", "Never")
        containers = pod.setdefault("containers", [{}])
        c = containers[0]
        c["name"] = c.get("name") or "main"
        c["image"] = str(image)
        c["command"] = argv  # an argument list: no shell in the container either
        env = c.setdefault("env", [])
        env.append({"name": "MLFLOW_EXPERIMENT_NAME", "value": project.name or project.root.name})
        res = _resources(ep.resources)
        if res:
            c["resources"] = res
        jobs.append(job)
    return jobs


def validate_manifests(jobs: list[dict[str, Any]]) -> None:
    """kubernetes-validate --strict on each Job (schemas of KUBERNETES_VERSION; no cluster)."""
    try:
        import kubernetes_validate
    except ImportError as e:
        raise MissingDependency("kubernetes-validate", "kubernetes") from e
    for job in jobs:
        try:
            kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = "/".join(str(p) for p in e.path)
            raise InvalidParameterValue(
                f"Job {job['metadata'].get('name')}: invalid at {where or '/'}: {e.message}"
            ) from e


def _kubectl(cfg: dict[str, Any]) -> list[str] | None:
    exe = shutil.which("kubectl")
    if exe is None:
        return None
    base = [exe] + (["--context", str(cfg["kube-context"])] if cfg["kube-context"] else [])
    return base


def submit(
    uri: str,
    entry_point: str,
    parameters: dict[str, str],
    backend_config: str | None = None,
    manifest: str | None = None,
    lenient: bool = False,
    apply: bool | None = None,
    on_event: Callable[[str], None] | None = None,
) -> KubeResult:
    """Write (and validate) the Jobs of `entry_point`'s steps; apply them when kubectl can.

    `apply=None` applies only when kubectl has a current context; `True` requires it.
    """
    import yaml

    say = on_event or (lambda _m: None)
    project = load_project(Path(uri), lenient=lenient)
    cfg = _backend_config(backend_config)
    jobs = job_manifests(project, entry_point, parameters, cfg)
    validate_manifests(jobs)
    out = (
        Path(manifest)
        if manifest
        else project.root
        / f"{k8s_name(project.name or project.root.name)}-{k8s_name(entry_point)}.k8s.yaml"
    )
    out.write_text(yaml.safe_dump_all(jobs, sort_keys=False), encoding="utf-8")
    names = [j["metadata"]["name"] for j in jobs]
    result = KubeResult(str(out), names)
    say(
        f"wrote {len(jobs)} Job(s) to {out} (validated with kubernetes-validate --strict, Kubernetes {KUBERNETES_VERSION})"
    )
    kubectl = _kubectl(cfg)
    if kubectl is None:
        if apply:
            raise ResourceDoesNotExist(
                "kubectl is not installed: install it to apply the Jobs, or apply the manifest yourself"
            )
        say("kubectl not found: manifest written, not applied")
        return result
    ctx = subprocess.run([*kubectl, "config", "current-context"], capture_output=True, text=True)
    if ctx.returncode != 0:
        if apply:
            raise InvalidParameterValue(
                "kubectl has no current context: configure a kubeconfig to apply the Jobs"
            )
        say("no kubeconfig context: manifest written, not applied")
        return result
    for job in jobs:
        name, ns = job["metadata"]["name"], job["metadata"]["namespace"]
        proc = subprocess.run(
            [*kubectl, "apply", "-f", "-"], input=json.dumps(job), capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RemoteError(f"kubectl apply of Job {name} failed: {proc.stderr.strip()[-300:]}")
        say(f"applied Job {name}; waiting for it")
        wait = subprocess.run(
            [
                *kubectl,
                "wait",
                "-n",
                ns,
                f"job/{name}",
                "--for=condition=complete",
                f"--timeout={int(cfg['timeout'])}s",
            ],
            capture_output=True,
            text=True,
        )
        result.statuses[name] = "complete" if wait.returncode == 0 else "failed"
        if wait.returncode != 0:
            break
    result.applied = True
    return result
