"""`RegistryClient`: MLflow's model-registry client methods over a repository's Git tags.

It reads runs (for a version's source) through the tracking package's Tracker; the public
`gitml.client.MlflowClient` composes it with the tracking client over one Tracker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from gitml import config
from gitml.registry.access import (
    Op,
    Registry,
    already_exists,
)
from gitml.registry.entities import RegisteredModel, RegistryEvent
from gitml.registry.history import ModelState, Problem, RegistryState
from gitml.registry.metadata import update_model_meta, update_versions_meta
from gitml.registry.search import (
    RegistryPagedList,
    filter_names,
    matches,
    order,
    page,
    parse_conditions,
)
from gitml.registry.stage_methods import StagesMixin, brief, stage_op
from gitml.registry.tags import (
    MLFLOW_STAGES,
    Action,
    parse_tag,
    validate_model_name,
)
from gitml.registry.version_methods import VersionsMixin, _ms, _str_map
from gitml.tracking.tracker import Tracker, get_tracker

__all__ = ["RegistryClient", "RegistryPagedList"]


class RegistryClient(VersionsMixin, StagesMixin):
    """Every MLflow registry method; versions are integers, stages MLflow's four names.

    The registry is the Git tags of the repository at `tracking_uri` (default: the configured
    tracking URI, else the working directory's); `tracker` shares an open Tracker instead.
    """

    def __init__(self, tracking_uri: str | os.PathLike[str] | None = None, *, tracker: Tracker | None = None) -> None:
        if tracker is None:
            tracker = get_tracker(tracking_uri if tracking_uri is not None else config.tracking_uri())
        self._tracker: Tracker = tracker

    def _registry(self) -> Registry:
        return Registry(self._tracker.repo)

    # -- registered models ---------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create an empty registered model (kept on the metadata branch until it has versions)."""
        validate_model_name(name)
        reg = self._registry()
        if reg.model_exists(name):
            raise already_exists(name)
        now = _ms()
        record: dict[str, Any] = {
            "name": name,
            "created_at": now,
            "updated_at": now,
            "since": _since(reg, name),
            "tags": _str_map(tags, "tags"),
        }
        if description is not None:
            record["description"] = str(description)

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            return record

        update_model_meta(reg.repo, name, change, f"registry: create model {name}")
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its latest versions, tags and aliases."""
        validate_model_name(name)
        reg = self._registry()
        state, meta, _ = reg.require_model(name)
        return reg.model_entity(name, state, meta)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> RegistryPagedList:
        """Registered models matching `name` and `tags.<key>` clauses (= != LIKE ILIKE) joined by AND."""
        reg = self._registry()
        state, meta = reg.state(), reg.metadata()
        conditions = parse_conditions(filter_string, {"name"})
        names = filter_names(reg.model_names(state, meta), filter_string)
        models = [reg.model_entity(n, state, meta) for n in names]
        models = [m for m in models if matches(m, conditions)]
        models = order(models, order_by, default="name")
        return page(models, max_results, page_token)

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        """Set the model's description."""
        validate_model_name(name)
        reg = self._registry()
        reg.require_model(name)
        self._change_model_record(
            reg, name, lambda r: r.__setitem__("description", str(description or "")), "describe"
        )
        return self.get_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on the registered model."""
        validate_model_name(name)
        reg = self._registry()
        reg.require_model(name)
        self._change_model_record(
            reg,
            name,
            lambda r: r.setdefault("tags", {}).__setitem__(str(key), str(value)),
            f"tag {key}",
        )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from the registered model."""
        validate_model_name(name)
        reg = self._registry()
        reg.require_model(name)
        self._change_model_record(
            reg, name, lambda r: r.setdefault("tags", {}).pop(str(key), None), f"untag {key}"
        )

    def _change_model_record(
        self, reg: Registry, name: str, edit: Callable[[dict[str, Any]], object], what: str
    ) -> None:
        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            record = current or {
                "name": name,
                "created_at": _ms(),
                "since": _since(reg, name),
                "tags": {},
            }
            edit(record)
            record["updated_at"] = _ms()
            return record

        update_model_meta(reg.repo, name, change, f"registry: {what} model {name}")

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Re-register every version, stage and alias under `new_name`; deprecate `name`.

        GTO has no rename: the new name gets new tags at the same commits (same semvers,
        so the same version numbers) and the old name is deregistered and deprecated, its
        history left as it was.
        """
        validate_model_name(name)
        validate_model_name(new_name)
        reg = self._registry()
        reg.require_model(name)
        if reg.model_exists(new_name):
            raise already_exists(new_name)

        def plan(state: RegistryState) -> list[Op]:
            old = state.models.get(name)
            if old is None or not old.active:
                return []
            ops: list[Op] = []
            for v in old.by_number:
                info = {
                    **v.meta,
                    "model": new_name,
                    "version": v.number,
                    "semver": v.semver,
                    "renamed_from": name,
                }
                info.pop("gitml", None)
                ops.append(Op(new_name, Action.REGISTER, v.commit, info, semver=v.semver))
                if not v.active:
                    ops.append(
                        Op(
                            new_name,
                            Action.DEREGISTER,
                            v.commit,
                            brief(new_name, v),
                            semver=v.semver,
                        )
                    )
            assignments = sorted(
                ((e.key, s, v) for v in old.active_versions() for s, e in v.active_stages()),
                key=lambda t: t[0],
            )
            ops += [stage_op(Action.ASSIGN, new_name, v, stage) for _, stage, v in assignments]
            ops += _retire(old, f"renamed to {new_name}")
            return ops

        reg.emit(plan)
        meta = reg.metadata()
        record, versions = meta.model(name), meta.versions.get(name)
        if record is not None:
            update_model_meta(
                reg.repo,
                new_name,
                lambda _: {
                    **record,
                    "name": new_name,
                    "updated_at": _ms(),
                    "since": _since(reg, new_name),
                },
                f"registry: rename {name} to {new_name}",
            )
            update_model_meta(
                reg.repo, name, lambda _: None, f"registry: rename {name} to {new_name}"
            )
        if versions:
            update_versions_meta(
                reg.repo,
                new_name,
                lambda _: dict(versions),
                f"registry: rename {name} to {new_name}",
            )
            update_versions_meta(
                reg.repo, name, lambda _: None, f"registry: rename {name} to {new_name}"
            )
        return self.get_registered_model(new_name)

    def delete_registered_model(self, name: str) -> None:
        """Deregister every version and deprecate the model (its tags stay, as history)."""
        validate_model_name(name)
        reg = self._registry()
        reg.require_model(name)

        def plan(state: RegistryState) -> list[Op]:
            model = state.models.get(name)
            return _retire(model, "deleted") if model is not None and model.active else []

        reg.emit(plan)
        update_model_meta(reg.repo, name, lambda _: None, f"registry: delete model {name}")
        update_versions_meta(reg.repo, name, lambda _: None, f"registry: delete model {name}")

    # -- versions ------------------------------------------------------------------------
    # -- gitml's own ---------------------------------------------------------------------
    def get_registry_history(self, name: str) -> list[RegistryEvent]:
        """Who registered, promoted, demoted and deleted what, when: the model's tags in order."""
        validate_model_name(name)
        return self._registry().history(name)

    def get_registry_problems(self, name: str | None = None) -> list[Problem]:
        """Tags that look like registry tags but were skipped, and why (of one model, or all)."""
        problems = self._registry().state().problems
        if name is None:
            return list(problems)
        return [p for p in problems if _problem_model(p.tag) == name]


def _problem_model(tag: str) -> str:
    # The model a skipped tag is about: parsed when it can be, else the name before @ or #.
    parsed = parse_tag(tag)
    return parsed.model if parsed is not None else re.split(r"[@#]", tag, maxsplit=1)[0]


# -- helpers -----------------------------------------------------------------------------
def _since(reg: Registry, name: str) -> int:
    # The newest tag time of the model: a deprecation after it deletes the branch record.
    model = reg.state().models.get(name)
    return model.last_time if model is not None else 0


def _retire(model: ModelState, reason: str) -> list[Op]:
    ops = [
        Op(
            model.name,
            Action.DEREGISTER,
            v.commit,
            {**brief(model.name, v), "reason": reason},
            semver=v.semver,
        )
        for v in model.active_versions()
    ]
    commit = model.events[0].commit
    ops.append(Op(model.name, Action.DEPRECATE, commit, {"model": model.name, "reason": reason}))
    return ops


# MLflow's stage names, for callers that validate input before calling.
STAGES = ["None", *MLFLOW_STAGES]
