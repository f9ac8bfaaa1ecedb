"""MLflow's stages and aliases as GTO stage tags: transitions, latest versions, aliases."""

from __future__ import annotations

from typing import Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.registry.access import Op, Registry
from gitml.registry.entities import ModelVersion
from gitml.registry.history import RegistryState, VersionState
from gitml.registry.tags import (
    Action,
    mlflow_stage_of,
    stage_of_mlflow,
    validate_alias,
    validate_model_name,
)

__all__ = ["StagesMixin", "brief", "stage_op"]


def brief(name: str, v: VersionState) -> dict[str, Any]:
    """The fields every tag message about a version names."""
    return {"model": name, "version": v.number, "semver": v.semver}


def stage_op(
    action: Action, name: str, v: VersionState, stage: str, *, key: str = "stage", **extra: Any
) -> Op:
    """Assign or unassign `stage` (an alias with key="alias") on version `v` of `name`."""
    return Op(name, action, v.commit, {**brief(name, v), key: stage, **extra}, stage=stage)


class StagesMixin:
    """Stage and alias methods; the host provides `_registry()` and `get_model_version()`."""

    def _registry(self) -> Registry:
        raise NotImplementedError

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        raise NotImplementedError

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The current version of each stage (newest active assignment), the newest for 'None'."""
        validate_model_name(name)
        for stage in stages or []:
            stage_of_mlflow(stage)
        reg = self._registry()
        _, meta, model = reg.require_model(name)
        return reg.latest_versions(model, meta, list(stages) if stages else None)

    def transition_model_version_stage(
        self, name: str, version: Any, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Move a version to an MLflow stage with new tags (unassign the old stage, assign the new)."""
        validate_model_name(name)
        target = stage_of_mlflow(stage)
        if archive_existing_versions and target not in ("staging", "production"):
            raise InvalidParameterValue(
                "archive_existing_versions applies to Staging and Production only"
            )
        reg = self._registry()
        _, found, _ = reg.require_version(name, version)
        semver = found.semver

        def plan(state: RegistryState) -> list[Op]:
            model = state.models[name]
            v = model.versions[semver]
            if not v.active:
                raise ResourceDoesNotExist(
                    f"Model Version (name={name}, version={v.number}) not found"
                )
            ops: list[Op] = []
            for s, _ in v.active_stages():
                if mlflow_stage_of(s) is not None and s != target:
                    ops.append(stage_op(Action.UNASSIGN, name, v, s))
            if archive_existing_versions and target is not None:
                for other in model.active_versions():
                    if other is v or other.active_assignment(target) is None:
                        continue
                    reason = f"archived: version {v.number} moved to {stage}"
                    ops.append(stage_op(Action.UNASSIGN, name, other, target, reason=reason))
                    if other.active_assignment("archived") is None:
                        ops.append(
                            stage_op(
                                Action.ASSIGN, name, other, "archived", mlflow_stage="Archived"
                            )
                        )
            if target is not None and model.current.get(target) is not v:
                mlflow_stage = mlflow_stage_of(target)
                ops.append(stage_op(Action.ASSIGN, name, v, target, mlflow_stage=mlflow_stage))
            return ops

        reg.emit(plan)
        return self.get_model_version(name, found.number)

    # -- aliases -------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None:
        """Point `alias` at `version`: a `name#alias#N` tag (and unassign it from the previous one)."""
        validate_model_name(name)
        validate_alias(alias)
        reg = self._registry()
        _, found, _ = reg.require_version(name, version)
        semver = found.semver

        def plan(state: RegistryState) -> list[Op]:
            model = state.models[name]
            v = model.versions[semver]
            if (
                model.current.get(alias) is v
                and sum(1 for o in model.active_versions() if o.active_assignment(alias)) == 1
            ):
                return []
            ops = [
                stage_op(Action.UNASSIGN, name, o, alias, key="alias")
                for o in model.active_versions()
                if o is not v and o.active_assignment(alias) is not None
            ]
            if model.current.get(alias) is not v:
                ops.append(stage_op(Action.ASSIGN, name, v, alias, key="alias"))
            return ops

        reg.emit(plan)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove the alias (unassign it from every version that holds it)."""
        reg, _, _ = self._aliased_model(name, alias)

        def plan(state: RegistryState) -> list[Op]:
            m = state.models[name]
            return [
                stage_op(Action.UNASSIGN, name, o, alias, key="alias")
                for o in m.active_versions()
                if o.active_assignment(alias) is not None
            ]

        reg.emit(plan)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version the alias points at."""
        reg, meta, model = self._aliased_model(name, alias)
        return reg.version_entity(model, model.current[alias], meta)

    def _aliased_model(self, name: str, alias: str) -> tuple[Any, Any, Any]:
        """(registry, metadata, model) of a model that has the alias; a clear error if not."""
        validate_model_name(name)
        validate_alias(alias)
        reg = self._registry()
        _, meta, model = reg.require_model(name)
        if model is None or alias not in model.current:
            raise ResourceDoesNotExist(f"Registered model alias {alias} not found for model {name}")
        return reg, meta, model
