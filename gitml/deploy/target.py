"""What a deployment serves: a model URI resolved once, at generation time, to one version.

Generated images and manifests pin the version a stage or alias named when they were
made, never the moving stage name, so what runs is what was reviewed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from gitml.exceptions import InvalidParameterValue
from gitml.registry.access import Registry
from gitml.registry.resolve import parse_models_uri, resolve_version
from gitml.registry.source_check import source_of

__all__ = ["DeployTarget", "model_folder", "resolve_target"]

_HEX = re.compile(r"^[0-9a-f]{32}$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class DeployTarget(NamedTuple):
    """One registered model version, as images and manifests record it."""

    name: str
    version: int
    semver: str
    model_uri: str  # models:/NAME/N: pinned, whatever stage or alias was asked for
    source: str  # runs:/<run_id>/<path>: where the model folder is
    run_id: str | None
    git_commit: str
    git_tag: str
    requested: str  # the URI the user gave (models:/NAME/Production)

    def labels(self) -> dict[str, str]:
        """OCI/Kubernetes-safe provenance labels (values validated, never free text)."""
        out = {
            "model-name": self.name,
            "model-version": str(self.version),
            "model-semver": self.semver,
            "registry-tag": self.git_tag,
            "source-commit": self.git_commit,
        }
        if self.run_id:
            out["run-id"] = self.run_id
        return out


def resolve_target(uri: str, registry: Registry) -> DeployTarget:
    """Resolve a `models:/` URI (version, stage, alias or latest) to the version it names now."""
    parsed = parse_models_uri(uri)
    _, version = resolve_version(registry, parsed)
    meta = version.meta
    run_id = meta.get("run_id") if isinstance(meta.get("run_id"), str) else None
    if run_id is not None and not _HEX.match(run_id):
        run_id = None  # a hand-made tag's message: do not carry it into labels
    source = source_of(meta, f"{uri} ({version.registration.tag})")
    if not source:
        raise InvalidParameterValue(
            f"{uri} is version {version.number}, which records no model source to deploy"
        )
    commit = version.commit if _SHA.match(version.commit or "") else ""
    return DeployTarget(
        name=parsed.name,
        version=version.number,
        semver=version.semver,
        model_uri=f"models:/{parsed.name}/{version.number}",
        source=source,
        run_id=run_id,
        git_commit=commit,
        git_tag=version.registration.tag,
        requested=uri,
    )


def model_folder(root: Path, target: DeployTarget, dst: Path) -> Path:
    """Download the version's model folder (from the run's artifacts) into `dst`."""
    from gitml.artifacts.api import download_artifacts
    from gitml.models.uri import parse_runs_uri
    from gitml.tracking.tracker import get_tracker

    if not target.source.startswith("runs:/"):
        local = Path(target.source)
        if not (local / "MLmodel").is_file():
            raise InvalidParameterValue(f"{target.model_uri}: source {target.source} is no model folder here")
        return local
    parsed = parse_runs_uri(target.source)
    dst.mkdir(parents=True, exist_ok=True)
    out = Path(download_artifacts(get_tracker(str(root)), parsed.run_id, parsed.path, dst_path=str(dst)))
    if not (out / "MLmodel").is_file():
        raise InvalidParameterValue(f"{target.model_uri}: {target.source} holds no MLmodel file")
    return out
