"""Which model a URI means (resolved through the registry) and loading it, timed."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gitml import config
from gitml.artifacts.uri import resolve_runs_uri
from gitml.exceptions import GitMLError, InvalidParameterValue, ResourceDoesNotExist

__all__ = ["LoadedModel", "ModelRef", "load_ref", "resolve_ref"]

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
    location: str = ""  # where the model is (a models:/ URI's runs:/ URI), resolved once

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

    @functools.cached_property
    def label(self) -> tuple[str, str]:
        """(model name, version) for per-model counters (read on every model call)."""
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


def resolve_ref(uri: str, tracking_uri: str | None = None) -> ModelRef:
    """Resolve `uri` now: a `models:/` URI becomes the exact version the registry names.

    The URI is parsed once (the registry's grammar) and the registry read once; the ref
    carries where that version's model is, so loading does not ask the registry again.
    `tracking_uri` names the repository (default: the configured one). Raises
    ResourceDoesNotExist when the model, version, stage or alias is not there, and
    InvalidParameterValue for a URI that cannot be read; local paths must exist.
    """
    if not uri.startswith("models:"):
        if "://" not in uri and not uri.startswith(("runs:", "file:")):
            if not Path(uri).exists():
                raise ResourceDoesNotExist(f"No model at {uri!r}: the path does not exist")
        if uri.startswith("runs:/"):
            run_id, _ = resolve_runs_uri(uri)
            return ModelRef(uri=uri, source=uri, run_id=run_id)
        return ModelRef(uri=uri, source=uri)
    # The registry loads only for models:/ URIs (a served path or runs:/ URI never reads tags).
    from gitml.registry.access import Registry
    from gitml.registry.resolve import parse_models_uri, resolve_version, version_location
    from gitml.tracking.tracker import get_tracker

    try:
        parsed = parse_models_uri(uri)
    except InvalidParameterValue as e:
        raise InvalidParameterValue(
            f"Cannot read model URI {uri!r}: use models:/NAME/VERSION, models:/NAME/STAGE "
            f"or models:/NAME@ALIAS ({e.message})"
        ) from e
    name = parsed.name
    try:
        tracker = get_tracker(tracking_uri if tracking_uri is not None else config.tracking_uri())
        registry = Registry(tracker.repo)
        _, found = resolve_version(registry, parsed)
        location = version_location(uri, found)
    except ResourceDoesNotExist as e:
        if parsed.latest:
            raise ResourceDoesNotExist(f"Registered model {name!r} has no versions") from e
        if parsed.stage is not None and "not found" not in e.message:
            raise ResourceDoesNotExist(
                f"No version of model {name!r} is in stage {parsed.stage!r} (see `gitml models list`)"
            ) from e
        raise
    except GitMLError:
        raise
    except Exception as e:  # the registry's own failures, in one line
        raise ResourceDoesNotExist(f"Cannot resolve {uri!r}: {e}") from e
    if parsed.alias is not None:
        what = parsed.alias
    elif parsed.latest:
        what = "latest"
    elif parsed.stage is not None:
        what = parsed.stage.lower() if parsed.stage.lower() in _STAGES else parsed.stage
    else:
        what = ""
    version = str(found.number)
    source_run = found.meta.get("run_id")
    return ModelRef(
        uri=uri,
        source=f"models:/{name}/{version}",
        name=name,
        version=version,
        stage=what,
        run_id=source_run if isinstance(source_run, str) else "",
        location=location,
    )


def load_ref(ref: ModelRef, loader: Any = None) -> LoadedModel:
    """Load the model `ref` names with the pyfunc loader (or `loader(source)`), timed."""
    started = time.perf_counter()
    if loader is None:
        from gitml.models.predictor import load_model

        loader = load_model
    model = loader(ref.location or ref.source)
    loaded = LoadedModel(ref=ref, model=model, load_seconds=time.perf_counter() - started)
    if not ref.run_id:
        run_id = getattr(getattr(model, "metadata", None), "run_id", None)
        if run_id:
            loaded.ref = replace(ref, run_id=str(run_id))
    return loaded
