"""Which model a URI means (resolved through the registry) and loading it, timed."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gitml.exceptions import GitMLError, InvalidParameterValue, ResourceDoesNotExist

__all__ = ["LoadedModel", "ModelRef", "load_ref", "resolve_ref"]

_MODELS_URI = re.compile(r"^models:/(?P<name>[^@]+?)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))/?$")
_STAGES = {"none", "staging", "production", "archived"}


@dataclass(frozen=True)
class ModelRef:
    """A model URI and what it pointed at when resolved (registry fields empty for paths)."""

    uri: str
    source: str
    name: str = ""
    version: str = ""
    stage: str = ""
    run_id: str = ""

    def labels(self) -> dict[str, str]:
        """The labels of the `gitml_model_info` metric."""
        return {
            "uri": self.uri,
            "model": self.name or _short_name(self.source),
            "version": self.version,
            "stage": self.stage,
            "run_id": self.run_id,
        }


@dataclass
class LoadedModel:
    """A loaded pyfunc model, where it came from, and how long it took."""

    ref: ModelRef
    model: Any
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0

    @property
    def label(self) -> tuple[str, str]:
        """(model name, version) for per-model counters."""
        info = self.ref.labels()
        return info["model"], info["version"]

    def describe(self) -> dict[str, Any]:
        """JSON for `/health`."""
        meta = getattr(self.model, "metadata", None)
        return {
            **self.ref.labels(),
            "source": self.ref.source,
            "run_id": self.ref.run_id or str(getattr(meta, "run_id", "") or ""),
            "model_uuid": str(getattr(meta, "model_uuid", "") or ""),
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 3),
        }


def _short_name(source: str) -> str:
    return Path(source.rstrip("/")).name or source


def resolve_ref(uri: str) -> ModelRef:
    """Resolve `uri` now: a `models:/` URI becomes the exact version the registry names.

    Raises ResourceDoesNotExist when the model, version, stage or alias is not there, and
    InvalidParameterValue for a URI that cannot be read; local paths must exist.
    """
    m = _MODELS_URI.match(uri)
    if m is None:
        if uri.startswith("models:"):
            raise InvalidParameterValue(
                f"Cannot read model URI {uri!r}: use models:/NAME/VERSION, models:/NAME/STAGE "
                "or models:/NAME@ALIAS"
            )
        if "://" not in uri and not uri.startswith(("runs:", "file:")):
            if not Path(uri).exists():
                raise ResourceDoesNotExist(f"No model at {uri!r}: the path does not exist")
        if uri.startswith("runs:/"):
            parts = uri[len("runs:/") :].split("/", 1)
            return ModelRef(uri=uri, source=uri, run_id=parts[0])
        return ModelRef(uri=uri, source=uri)
    name, ref, alias = m.group("name"), m.group("ref"), m.group("alias")
    from gitml.tracking.client import MlflowClient

    client: Any = MlflowClient()
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
            what = alias
        elif ref is not None and ref.isdigit():
            mv = client.get_model_version(name, ref)
            what = ""
        elif ref is not None and ref.lower() == "latest":
            versions = client.get_latest_versions(name)
            if not versions:
                raise ResourceDoesNotExist(f"Registered model {name!r} has no versions")
            mv = max(versions, key=lambda v: int(v.version))
            what = "latest"
        else:
            assert ref is not None
            versions = client.get_latest_versions(name, stages=[ref])
            if not versions:
                raise ResourceDoesNotExist(
                    f"No version of model {name!r} is in stage {ref!r} (see `gitml models list`)"
                )
            mv = versions[0]
            what = ref.lower() if ref.lower() in _STAGES else ref
    except GitMLError:
        raise
    except Exception as e:  # the registry's own failures, in one line
        raise ResourceDoesNotExist(f"Cannot resolve {uri!r}: {e}")
    version = str(mv.version)
    return ModelRef(
        uri=uri,
        source=f"models:/{name}/{version}",
        name=name,
        version=version,
        stage=what,
        run_id=str(getattr(mv, "run_id", "") or ""),
    )


def load_ref(ref: ModelRef, loader: Any = None) -> LoadedModel:
    """Load the model `ref` names with the pyfunc loader (or `loader(source)`), timed."""
    started = time.perf_counter()
    if loader is None:
        from gitml.pyfunc import load_model

        loader = load_model
    model = loader(ref.source)
    loaded = LoadedModel(ref=ref, model=model, load_seconds=time.perf_counter() - started)
    if not ref.run_id:
        run_id = getattr(getattr(model, "metadata", None), "run_id", None)
        if run_id:
            loaded.ref = replace(ref, run_id=str(run_id))
    return loaded
