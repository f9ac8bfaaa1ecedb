"""`models:/` URIs through the registry: `models:/name/3`, `/Production`, `/latest`, `@alias`."""

from __future__ import annotations

from typing import NamedTuple

from gitml import config
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.registry.access import Registry, open_registry
from gitml.registry.history import ModelState, VersionState
from gitml.registry.source_check import source_of
from gitml.registry.tags import stage_of_mlflow, validate_alias, validate_model_name
from gitml.tracking.tracker import get_tracker

__all__ = [
    "CurrentVersion",
    "ModelsUri",
    "current_version",
    "parse_models_uri",
    "resolve_models_uri",
    "resolve_version",
    "version_location",
]


class ModelsUri(NamedTuple):
    """A parsed `models:/` URI: exactly one of version, stage, alias, latest is set."""

    name: str
    version: int | None = None
    stage: str | None = None  # MLflow's name, e.g. "Production"
    alias: str | None = None
    latest: bool = False


def parse_models_uri(uri: str) -> ModelsUri:
    """Split a `models:/` URI; raise InvalidParameterValue when it is malformed."""
    if not isinstance(uri, str) or not uri.startswith("models:/"):
        raise InvalidParameterValue(f"not a models:/ URI: {uri!r}")
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        validate_model_name(name)
        return ModelsUri(name, alias=validate_alias(alias))
    name, _, last = rest.rpartition("/")
    if not name or not last:
        raise InvalidParameterValue(
            f"invalid model URI {uri!r}: use models:/<name>/<version|stage|latest> or models:/<name>@<alias>"
        )
    validate_model_name(name)
    if last.isdigit():
        return ModelsUri(name, version=int(last))
    if last.lower() == "latest":
        return ModelsUri(name, latest=True)
    gto = stage_of_mlflow(last)
    if gto is None:
        raise InvalidParameterValue(f"invalid model URI {uri!r}: stage None names no version")
    return ModelsUri(name, stage=last)


def resolve_version(registry: Registry, parsed: ModelsUri) -> tuple[ModelState, VersionState]:
    """The model and version a parsed URI names, as the registry is now."""
    state = registry.state()
    model = state.models.get(parsed.name)
    if model is None or not model.active:
        raise ResourceDoesNotExist(f"Registered Model with name={parsed.name} not found")
    found: VersionState | None = None
    if parsed.version is not None:
        found = model.version(parsed.version)
        if found is not None and not found.active:
            found = None
        what = f"version {parsed.version}"
    elif parsed.latest:
        found = model.latest_version()
        what = "versions"
    elif parsed.alias is not None:
        found = model.current.get(parsed.alias)
        what = f"alias {parsed.alias}"
    else:
        assert parsed.stage is not None
        found = model.current.get(stage_of_mlflow(parsed.stage) or "")
        what = f"version in stage {parsed.stage}"
    if found is None:
        raise ResourceDoesNotExist(f"model {parsed.name} has no {what}")
    return model, found


def resolve_models_uri(uri: str, registry: Registry | None = None) -> str:
    """The `runs:/<run_id>/<path>` URI (or the registered source) that a `models:/` URI names."""
    parsed = parse_models_uri(uri)
    if registry is None:
        # The repository runs go to (set_tracking_uri, GITML_TRACKING_URI), else the working dir's.
        registry = Registry(get_tracker(config.tracking_uri()).repo)
    _, version = resolve_version(registry, parsed)
    return version_location(uri, version)


def version_location(uri: str, version: VersionState) -> str:
    """Where a resolved version's model is: its `runs:/<run_id>/<path>` URI or registered source."""
    source = source_of(version.meta, f"{uri} ({version.registration.tag})")
    if source is not None:
        return source
    raise ResourceDoesNotExist(
        f"{uri} is version {version.number} ({version.semver}), which records no model source "
        "(a tag not made by gitml?)"
    )


class CurrentVersion(NamedTuple):
    """What a deploy script needs: the version in a stage or alias and where its model is."""

    name: str
    version: int
    semver: str
    stage: str | None
    alias: str | None
    model_uri: str  # models:/<name>/<version>
    source: str  # runs:/<run_id>/<path> (what to load)
    run_id: str | None
    git_tag: str
    git_commit: str

    def to_dictionary(self) -> dict[str, object]:
        """A plain dict (JSON-ready)."""
        return dict(self._asdict())


def current_version(
    name: str,
    stage: str | None = None,
    alias: str | None = None,
    registry: Registry | None = None,
    tracking_uri: str | None = None,
) -> CurrentVersion:
    """The version current in `stage` (MLflow or GTO spelling) or under `alias`, or the latest,
    in the registry given or that of the repository at `tracking_uri` (default: the working dir's)."""
    validate_model_name(name)
    if stage is not None and alias is not None:
        raise InvalidParameterValue("give a stage or an alias, not both")
    if registry is None:
        registry = open_registry(tracking_uri)
    if alias is not None:
        parsed = ModelsUri(name, alias=validate_alias(alias))
    elif stage is not None:
        try:
            gto_stage = stage_of_mlflow(stage)
        except InvalidParameterValue:
            # Any other GTO stage (`gto assign --stage dev`) reads as an alias here.
            alias, stage = validate_alias(stage), None
            parsed = ModelsUri(name, alias=alias)
        else:
            if gto_stage is None:
                raise InvalidParameterValue("stage None names no version")
            parsed = ModelsUri(name, stage=stage)
    else:
        parsed = ModelsUri(name, latest=True)
    _, version = resolve_version(registry, parsed)
    meta = version.meta
    run_id = meta.get("run_id") if isinstance(meta.get("run_id"), str) else None
    source = source_of(meta, f"{name} version {version.number} ({version.registration.tag})") or ""
    return CurrentVersion(
        name=name,
        version=version.number,
        semver=version.semver,
        stage=stage_of_mlflow(stage) if stage else None,
        alias=alias,
        model_uri=f"models:/{name}/{version.number}",
        source=source,
        run_id=run_id,
        git_tag=version.registration.tag,
        git_commit=version.commit,
    )
