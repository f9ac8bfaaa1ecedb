"""Kubernetes manifests for a model version: Deployment, Service, HPA, PDB, or KServe.

Text generated from a resolved `DeployTarget`; no cluster is needed to produce it, and
`kubectl apply` runs only when asked and a kubeconfig context exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitml.deploy.target import DeployTarget
from gitml.exceptions import InvalidParameterValue, InvalidState, RemoteError
from gitml.projects.kubernetes import k8s_name

__all__ = [
    "MODEL_DIR",
    "SERVE_PORT",
    "K8sOptions",
    "apply_manifests",
    "kserve_manifests",
    "manifests",
    "render",
    "write_manifests",
]

SERVE_PORT = 8080
MODEL_DIR = "/opt/gitml/model"  # where a gitml image holds its model (dockerfile.py writes it)
RUN_AS = 10001  # the image's non-root user
LABEL_PREFIX = "gitml.dev/"
# KServe renamed its plain-Deployment mode from RawDeployment to Standard in 0.15.
_KSERVE_STANDARD_SINCE = (0, 15)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$", re.IGNORECASE)


@dataclass(frozen=True)
class K8sOptions:
    """What the user chooses; every value is checked before any text is made."""

    image: str | None = None
    namespace: str = "default"
    replicas: int = 2
    max_replicas: int | None = None
    gpu: int = 0
    cpu: str = "500m"
    memory: str = "1Gi"
    service_type: str = "ClusterIP"
    name: str | None = None
    kserve_version: str = "0.15"

    def check(self) -> None:
        """Refuse values Kubernetes would refuse, with the option named."""
        if not isinstance(self.replicas, int) or self.replicas < 1:
            raise InvalidParameterValue(f"--replicas must be an integer >= 1, got {self.replicas!r}")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise InvalidParameterValue("--max-replicas must be >= --replicas")
        if not isinstance(self.gpu, int) or isinstance(self.gpu, bool) or self.gpu < 0:
            raise InvalidParameterValue(f"--gpu must be a whole number of GPUs >= 0, got {self.gpu!r}")
        for flag, value in (("--cpu", self.cpu), ("--memory", self.memory)):
            if not _QUANTITY.match(value):
                raise InvalidParameterValue(f"{flag} {value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)")
        if k8s_name(self.namespace) != self.namespace:
            raise InvalidParameterValue(f"--namespace {self.namespace!r} is not a valid Kubernetes name")
        if self.image is not None and not _IMAGE.match(self.image):
            raise InvalidParameterValue(f"--image {self.image!r} is not an image reference")
        if self.service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
            raise InvalidParameterValue("--service-type must be ClusterIP, NodePort or LoadBalancer")
        _kserve_version(self.kserve_version)


def _kserve_version(text: str) -> tuple[int, int]:
    m = re.match(r"^v?(\d+)\.(\d+)", text)
    if not m:
        raise InvalidParameterValue(f"--kserve-version {text!r} is not a version like 0.15")
    return int(m.group(1)), int(m.group(2))


def default_image(target: DeployTarget) -> str:
    """The image `gitml models build-docker` names by default for this version."""
    return f"{k8s_name(target.name)}:{target.semver.lstrip('v')}"


def _labels(target: DeployTarget, app: str) -> dict[str, str]:
    out = {"app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "gitml"}
    for key, value in target.labels().items():
        # label values: <= 63 chars of [A-Za-z0-9._-]; a long or odd one goes to annotations
        if len(value) <= 63 and re.match(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$", value):
            out[LABEL_PREFIX + key] = value
    return out


def _annotations(target: DeployTarget) -> dict[str, str]:
    return {
        LABEL_PREFIX + "model-uri": target.model_uri,
        LABEL_PREFIX + "requested-uri": target.requested,
        LABEL_PREFIX + "model-source": target.source,
        LABEL_PREFIX + "registry-tag": target.git_tag,
    }


def _resources(opts: K8sOptions) -> dict[str, Any]:
    requests = {"cpu": opts.cpu, "memory": opts.memory}
    limits: dict[str, Any] = {"memory": opts.memory}
    if opts.gpu:
        limits["nvidia.com/gpu"] = opts.gpu
    return {"requests": requests, "limits": limits}


def _container(target: DeployTarget, opts: K8sOptions, name: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/ping", "port": SERVE_PORT}, "periodSeconds": 10, "timeoutSeconds": 3}
    return {
        "name": name,
        "image": opts.image or default_image(target),
        "imagePullPolicy": "IfNotPresent",
        "args": ["models", "serve", "-m", MODEL_DIR, "--host", "0.0.0.0", "--port", str(SERVE_PORT)],
        "ports": [{"name": "http", "containerPort": SERVE_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "GITML_MODEL_URI", "value": target.model_uri},
            {"name": "GITML_MODEL_VERSION", "value": str(target.version)},
        ],
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 3},
        "readinessProbe": {**probe, "httpGet": {"path": "/health", "port": SERVE_PORT}, "failureThreshold": 2},
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},
        "resources": _resources(opts),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _pod_spec(target: DeployTarget, opts: K8sOptions, container: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,
        "containers": [_container(target, opts, container)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if opts.gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return spec


def manifests(target: DeployTarget, opts: K8sOptions) -> list[dict[str, Any]]:
    """Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget for one version."""
    opts.check()
    app = opts.name or k8s_name(target.name)
    if k8s_name(app) != app:
        raise InvalidParameterValue(f"--name {app!r} is not a valid Kubernetes name")
    labels = _labels(target, app)
    selector = {"app.kubernetes.io/name": app}
    meta = {"name": app, "namespace": opts.namespace, "labels": labels, "annotations": _annotations(target)}
    pod_annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVE_PORT),
        "prometheus.io/path": "/metrics",
        **_annotations(target),
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": opts.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations},
                "spec": _pod_spec(target, opts, "model"),
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": opts.service_type,
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
            "minReplicas": opts.replicas,
            "maxReplicas": opts.max_replicas or max(opts.replicas * 3, opts.replicas + 1),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    # With one replica, minAvailable 1 would block every node drain: allow one down instead.
    budget = {"minAvailable": opts.replicas - 1} if opts.replicas > 1 else {"maxUnavailable": 1}
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta,
        "spec": {**budget, "selector": {"matchLabels": selector}},
    }
    return [deployment, service, hpa, pdb]


def kserve_manifests(target: DeployTarget, opts: K8sOptions) -> list[dict[str, Any]]:
    """A KServe ServingRuntime (gitml's image, Open Inference Protocol v2) and an
    InferenceService that uses it, in the deployment mode the KServe version names."""
    opts.check()
    app = opts.name or k8s_name(target.name)
    mode = "Standard" if _kserve_version(opts.kserve_version) >= _KSERVE_STANDARD_SINCE else "RawDeployment"
    labels = _labels(target, app)
    runtime_name = f"gitml-{app}"[:63].rstrip("-")
    pod = _pod_spec(target, opts, "kserve-container")
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": runtime_name, "namespace": opts.namespace, "labels": labels},
        "spec": {
            "supportedModelFormats": [{"name": "mlflow", "version": "2", "autoSelect": False}],
            "protocolVersions": ["v2"],
            "containers": pod["containers"],
            "volumes": pod["volumes"],
        },
    }
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": app,
            "namespace": opts.namespace,
            "labels": labels,
            "annotations": {
                "serving.kserve.io/deploymentMode": mode,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(SERVE_PORT),
                "prometheus.io/path": "/metrics",
                **_annotations(target),
            },
        },
        "spec": {
            "predictor": {
                "minReplicas": opts.replicas,
                "maxReplicas": opts.max_replicas or max(opts.replicas * 3, opts.replicas + 1),
                "securityContext": pod["securityContext"],
                "model": {
                    "modelFormat": {"name": "mlflow"},
                    "runtime": runtime_name,
                    "protocolVersion": "v2",
                    "resources": _resources(opts),
                },
            }
        },
    }
    return [runtime, isvc]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # quote what YAML 1.1 readers would turn into booleans or numbers ("true", "8080", "on")
    try:
        plain = yaml.safe_load(value) == value and value != ""
    except yaml.YAMLError:
        plain = False
    style = None if plain else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(docs: list[dict[str, Any]]) -> str:
    """Documents as one multi-document YAML stream."""
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_manifests(docs: list[dict[str, Any]], out_dir: Path | str) -> list[Path]:
    """One file per document, `<kind>.yaml` in `out_dir`; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs:
        path = out / f"{doc['kind'].lower()}.yaml"
        path.write_text(render([doc]))
        paths.append(path)
    return paths


def apply_manifests(paths: list[Path], kubectl: str = "kubectl") -> str:
    """`kubectl apply -f` each file, when kubectl and a current kubeconfig context exist."""
    exe = shutil.which(kubectl)
    if exe is None:
        raise InvalidState("kubectl is not installed: install it, or apply the written files yourself")
    ctx = subprocess.run([exe, "config", "current-context"], capture_output=True, text=True)
    if ctx.returncode != 0 or not ctx.stdout.strip():
        raise InvalidParameterValue("--apply needs a kubeconfig with a current context (kubectl config use-context)")
    args = [exe, "apply"]
    for p in paths:
        args += ["-f", str(p)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RemoteError(f"kubectl apply failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return proc.stdout
