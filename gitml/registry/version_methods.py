"""MLflow's model-version methods of the registry client: register, read, search, describe, tag
and deregister versions (a version is a `name@vX.Y.Z` Git tag; its mutable metadata lives on
the metadata branch)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.registry.access import Op, Registry, next_semver, state_names
from gitml.registry.entities import ModelVersion, RegisteredModel
from gitml.registry.history import RegistryState, VersionState
from gitml.registry.metadata import update_versions_meta
from gitml.registry.search import (
    RegistryPagedList,
    match,
    matches,
    order,
    page,
    parse_version_filter,
)
from gitml.registry.sources import version_info
from gitml.registry.stage_methods import brief
from gitml.registry.tags import Action, validate_model_name
from gitml.tracking.tracker import Tracker

__all__ = ["VersionsMixin"]


def _ms() -> int:
    return int(time.time() * 1000)


def _str_map(tags: dict[str, Any] | None, what: str) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidParameterValue(f"{what} must be a dict of strings")
    return {str(k): str(v) for k, v in tags.items()}


class VersionsMixin:
    """Model-version methods; the host provides `_tracker`, `_registry()`,
    `create_registered_model()` and `get_latest_versions()`."""

    _tracker: Tracker

    if TYPE_CHECKING:  # the host's; a stub here would shadow StagesMixin's in the MRO

        def _registry(self) -> Registry: ...

        def create_registered_model(
            self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
        ) -> RegisteredModel: ...

        def get_latest_versions(
            self, name: str, stages: list[str] | None = None
        ) -> list[ModelVersion]: ...

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int | None = None,
    ) -> ModelVersion:
        """Register a new version: a tag `name@vN.0.0` at (a child of) the run's code commit."""
        validate_model_name(name)
        reg = self._registry()
        reg.require_model(name)
        info = version_info(self._tracker, reg, name, source, run_id)
        if run_link:
            info["run_link"] = str(run_link)
        if description:
            info["description"] = str(description)
        source_commit = info.get("source_commit")
        base = source_commit if isinstance(source_commit, str) else reg.head_commit()
        anchor = reg.anchor_commit(
            base,
            f"gitml: a version of model {name}"
            + (f" from run {run_id or info.get('run_id')}" if info.get("run_id") else ""),
        )

        def plan(state: RegistryState) -> list[Op]:
            model = state.models.get(name)
            semver = next_semver(model if model is not None else None, state_names(state))
            number = (len(model.versions) if model is not None else 0) + 1
            return [
                Op(
                    name,
                    Action.REGISTER,
                    anchor,
                    {"model": name, "version": number, "semver": semver, **info},
                    semver=semver,
                )
            ]

        created = reg.emit(plan)
        semver = created[0].split("@", 1)[1]
        version = reg.state().models[name].versions[semver]
        version_tags = _str_map(tags, "tags")
        if version_tags:
            update_versions_meta(
                reg.repo,
                name,
                _set_version(anchor, lambda r: r.setdefault("tags", {}).update(version_tags)),
                f"registry: tag {name} version {version.number}",
            )
        return self.get_model_version(name, version.number)

    def copy_model_version(self, src_model_uri: str, dst_name: str) -> ModelVersion:
        """Register the model a `models:/` URI names as a new version of `dst_name` (created if needed)."""
        from gitml.exceptions import ResourceAlreadyExists

        validate_model_name(dst_name)
        try:
            self.create_registered_model(dst_name)
        except ResourceAlreadyExists:
            pass
        return self.create_model_version(dst_name, src_model_uri)

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        """One version by number."""
        validate_model_name(name)
        reg = self._registry()
        model, v, meta = reg.require_version(name, version)
        return reg.version_entity(model, v, meta)

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        """The `runs:/` URI (or source) the version's model is read from."""
        mv = self.get_model_version(name, version)
        return mv.source or ""

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> RegistryPagedList:
        """Versions matching `name`, `run_id`, `source`, `current_stage` (= != LIKE ILIKE IN) and
        `tags.<key>` (= != LIKE ILIKE) clauses joined by AND."""
        reg = self._registry()
        state, meta = reg.state(), reg.metadata()
        conditions = parse_version_filter(filter_string)
        names = reg.model_names(state, meta)
        for cond in conditions:
            if cond.field == "name":
                names = [n for n in names if match(n, cond.op, cond.value)]
        out: list[ModelVersion] = []
        for n in names:
            model = state.models.get(n)
            if model is None or not model.active:
                continue
            for v in model.active_versions():
                mv = reg.version_entity(model, v, meta)
                if matches(mv, [c for c in conditions if c.field != "name"]):
                    out.append(mv)
        out = order(out, order_by, default="name", tiebreak=lambda m: -m.version)
        return page(out, max_results, page_token)

    def update_model_version(
        self, name: str, version: Any, description: str | None = None
    ) -> ModelVersion:
        """Set the version's description."""
        validate_model_name(name)
        reg = self._registry()
        model, v, _ = reg.require_version(name, version)
        update_versions_meta(
            reg.repo,
            name,
            _set_version(v.commit, lambda r: r.__setitem__("description", str(description or ""))),
            f"registry: describe {name} version {v.number}",
        )
        return self.get_model_version(name, v.number)

    def set_model_version_tag(
        self,
        name: str,
        version: Any = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Set a tag on a version (by number, or the latest in `stage`)."""
        validate_model_name(name)
        if key is None:
            raise InvalidParameterValue("set_model_version_tag needs a key")
        v = self._version_or_stage(name, version, stage)
        update_versions_meta(
            self._registry().repo,
            name,
            _set_version(
                v.commit, lambda r: r.setdefault("tags", {}).__setitem__(str(key), str(value))
            ),
            f"registry: tag {name} version {v.number} {key}",
        )

    def delete_model_version_tag(
        self, name: str, version: Any = None, key: str | None = None, stage: str | None = None
    ) -> None:
        """Remove a tag from a version."""
        validate_model_name(name)
        v = self._version_or_stage(name, version, stage)
        update_versions_meta(
            self._registry().repo,
            name,
            _set_version(v.commit, lambda r: r.setdefault("tags", {}).pop(str(key), None)),
            f"registry: untag {name} version {v.number} {key}",
        )

    def _version_or_stage(self, name: str, version: Any, stage: str | None) -> VersionState:
        reg = self._registry()
        if version is not None:
            return reg.require_version(name, version)[1]
        if stage is None:
            raise InvalidParameterValue("give a version or a stage")
        latest = self.get_latest_versions(name, [stage])
        if not latest:
            raise ResourceDoesNotExist(f"model {name} has no version in stage {stage}")
        return reg.require_version(name, latest[0].version)[1]

    def delete_model_version(self, name: str, version: Any) -> None:
        """Deregister the version (a `name@vX.Y.Z!` tag); its number is never reused."""
        validate_model_name(name)
        reg = self._registry()
        model, v, _ = reg.require_version(name, version)
        semver = v.semver

        def plan(state: RegistryState) -> list[Op]:
            m = state.models.get(name)
            cur = m.versions.get(semver) if m is not None else None
            if cur is None or not cur.active:
                return []
            return [Op(name, Action.DEREGISTER, cur.commit, brief(name, cur), semver=semver)]

        reg.emit(plan)


def _set_version(commit: str, edit: Any) -> Any:
    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(current or {})
        record = dict(data.get(commit, {}))
        edit(record)
        record["updated_at"] = _ms()
        data[commit] = record
        return data

    return change
