"""MLflow's model-registry client methods, as a mixin the tracking client inherits.

The mixin needs one attribute from its host: `_tracker` (gitml.tracking.tracker.Tracker),
for the repository and for reading runs. `RegistryClient` is the mixin on its own.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.registry.entities import ModelVersion, RegisteredModel, RegistryEvent
from gitml.registry.metadata import update_model_meta, update_versions_meta
from gitml.registry.registry import (
    Op,
    Registry,
    already_exists,
    next_semver,
    state_names,
)
from gitml.registry.state import ModelState, RegistryState, VersionState
from gitml.registry.tags import (
    MLFLOW_STAGES,
    Action,
    mlflow_stage_of,
    stage_of_mlflow,
    validate_alias,
    validate_model_name,
)

__all__ = ["RegistryClient", "RegistryClientMixin", "RegistryPagedList"]

_GIT_COMMIT_TAG = "mlflow.source.git.commit"


class RegistryPagedList(list):  # type: ignore[type-arg]
    """A list with the token of the next page, as MLflow's search methods return."""

    def __init__(self, items: list[Any], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


def _ms() -> int:
    return int(time.time() * 1000)


def _str_map(tags: dict[str, Any] | None, what: str) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidParameterValue(f"{what} must be a dict of strings")
    return {str(k): str(v) for k, v in tags.items()}


class RegistryClientMixin:
    """Every MLflow registry method; versions are integers, stages MLflow's four names."""

    _tracker: Any  # gitml.tracking.tracker.Tracker, set by the host client

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
        """Registered models matching `name = '...'`, `name LIKE '...'` or `name ILIKE '...'`."""
        reg = self._registry()
        state, meta = reg.state(), reg.metadata()
        names = _filter_names(reg.model_names(state, meta), filter_string)
        models = [reg.model_entity(n, state, meta) for n in names]
        models = _order(models, order_by, default="name")
        return _page(models, max_results, page_token)

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

    def _change_model_record(self, reg: Registry, name: str, edit: Any, what: str) -> None:
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
                            _brief(new_name, v),
                            semver=v.semver,
                        )
                    )
            assignments = sorted(
                ((e.key, s, v) for v in old.active_versions() for s, e in v.active_stages()),
                key=lambda t: t[0],
            )
            for _, stage, v in assignments:
                ops.append(
                    Op(
                        new_name,
                        Action.ASSIGN,
                        v.commit,
                        {**_brief(new_name, v), "stage": stage},
                        stage=stage,
                    )
                )
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
        info = self._version_info(reg, name, source, run_id)
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

    def _version_info(
        self, reg: Registry, name: str, source: str, run_id: str | None
    ) -> dict[str, Any]:
        """What the version tag's message records: run, source, artifact pointer, signature, metrics."""
        if not isinstance(source, str) or not source:
            raise InvalidParameterValue(f"invalid model source {source!r}")
        if source.startswith("models:/"):
            from gitml.registry.resolve import resolve_models_uri

            source = resolve_models_uri(source, registry=reg)
        info: dict[str, Any] = {"model": name, "source": source}
        path: str | None = None
        if source.startswith("runs:/"):
            from gitml.models.uri import parse_runs_uri

            parsed = parse_runs_uri(source)
            if run_id is not None and run_id != parsed.run_id:
                raise InvalidParameterValue(f"run_id {run_id} does not match the source {source}")
            run_id, path = parsed.run_id, parsed.path
        info["run_id"] = run_id
        info["artifact_path"] = path
        if run_id is None:
            info["source_commit"] = None
            return info
        run = self._tracker.get_run(run_id)
        commit = run.data.tags.get(_GIT_COMMIT_TAG)
        info["source_commit"] = (
            commit if isinstance(commit, str) and reg.commit_exists(commit) else None
        )
        if path is not None:
            info["artifact"], info["signature"] = self._model_pointer(run, path)
        info["metrics"] = {k: float(v) for k, v in sorted(run.data.metrics.items())}
        return info

    def _model_pointer(self, run: Any, path: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The artifact pointer of the model folder at `path` and the signature its MLmodel
        holds; raise when no model is there."""
        run_id = run.info.run_id
        pointers = self._tracker.read_artifacts(run_id)
        key = path.strip("/")
        if key in pointers and str(pointers[key].get("md5", "")).endswith(".dir"):
            found, mlmodel = self._folder_mlmodel(pointers[key])
            if not found:
                raise InvalidParameterValue(
                    f"runs:/{run_id}/{key} is not a model folder (no MLmodel file in it)"
                )
            return dict(pointers[key]), _signature(mlmodel)
        if f"{key}/MLmodel" in pointers:  # a folder logged file by file
            pointer = pointers[f"{key}/MLmodel"]
            folder = {
                "path": key,
                "md5": None,
                "files": {k: v for k, v in pointers.items() if k.startswith(key + "/")},
            }
            return folder, _signature(self._read_object(str(pointer.get("md5", ""))))
        if key in pointers:
            raise InvalidParameterValue(f"runs:/{run_id}/{key} is a file, not a model folder")
        raise InvalidParameterValue(
            f"run {run_id} has no model at {key!r}: log one there with log_model() first"
        )

    def _folder_mlmodel(self, pointer: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
        """Whether the folder's manifest lists an MLmodel, and its content when it is local."""
        from gitml.exceptions import GitMLError

        try:
            from gitml.artifacts.runs import manifest_loader, store_for
        except ImportError:  # no artifact store in this install: trust the pointer
            return True, None
        try:
            entries = manifest_loader(store_for(self._tracker))(str(pointer["md5"]))
        except GitMLError:  # a manifest out of reach (remote down) must not block registration
            return True, None
        md5 = next((e.md5 for e in entries if e.relpath == "MLmodel"), None)
        if md5 is None:
            return False, None
        return True, self._read_object(md5)

    def _read_object(self, md5: str) -> dict[str, Any] | None:
        """An MLmodel file from the local artifact cache, parsed (None if not here or not YAML)."""
        try:
            from gitml.artifacts.runs import store_for

            store = store_for(self._tracker)
            if not md5 or not store.exists(md5):
                return None
            with open(store.object_path(md5), "rb") as f:
                data = f.read(1_000_000)
        except (ImportError, OSError):
            return None
        from gitml.registry.state import load_message

        return load_message(data.decode("utf-8", "replace")) or None

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
        """Versions matching `name = '...'`, `name LIKE`, `run_id = '...'`, `run_id IN (...)`, joined by AND."""
        reg = self._registry()
        state, meta = reg.state(), reg.metadata()
        conditions = _parse_version_filter(filter_string)
        names = reg.model_names(state, meta)
        for field_name, op, value in conditions:
            if field_name == "name":
                names = [n for n in names if _match(n, op, value)]
        out: list[ModelVersion] = []
        for n in names:
            model = state.models.get(n)
            if model is None or not model.active:
                continue
            for v in model.active_versions():
                mv = reg.version_entity(model, v, meta)
                if all(
                    _match(getattr(mv, f) or "", op, value)
                    for f, op, value in conditions
                    if f != "name"
                ):
                    out.append(mv)
        out = _order(out, order_by, default="name", tiebreak=lambda m: -m.version)
        return _page(out, max_results, page_token)

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
            return [Op(name, Action.DEREGISTER, cur.commit, _brief(name, cur), semver=semver)]

        reg.emit(plan)

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
                    ops.append(
                        Op(
                            name,
                            Action.UNASSIGN,
                            v.commit,
                            {**_brief(name, v), "stage": s},
                            stage=s,
                        )
                    )
            if archive_existing_versions and target is not None:
                for other in model.active_versions():
                    if other is v or other.active_assignment(target) is None:
                        continue
                    ops.append(
                        Op(
                            name,
                            Action.UNASSIGN,
                            other.commit,
                            {
                                **_brief(name, other),
                                "stage": target,
                                "reason": f"archived: version {v.number} moved to {stage}",
                            },
                            stage=target,
                        )
                    )
                    if other.active_assignment("archived") is None:
                        ops.append(
                            Op(
                                name,
                                Action.ASSIGN,
                                other.commit,
                                {
                                    **_brief(name, other),
                                    "stage": "archived",
                                    "mlflow_stage": "Archived",
                                },
                                stage="archived",
                            )
                        )
            if target is not None and model.current.get(target) is not v:
                ops.append(
                    Op(
                        name,
                        Action.ASSIGN,
                        v.commit,
                        {
                            **_brief(name, v),
                            "stage": target,
                            "mlflow_stage": mlflow_stage_of(target),
                        },
                        stage=target,
                    )
                )
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
                Op(
                    name,
                    Action.UNASSIGN,
                    o.commit,
                    {**_brief(name, o), "alias": alias},
                    stage=alias,
                )
                for o in model.active_versions()
                if o is not v and o.active_assignment(alias) is not None
            ]
            if model.current.get(alias) is not v:
                ops.append(
                    Op(
                        name,
                        Action.ASSIGN,
                        v.commit,
                        {**_brief(name, v), "alias": alias},
                        stage=alias,
                    )
                )
            return ops

        reg.emit(plan)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove the alias (unassign it from every version that holds it)."""
        validate_model_name(name)
        validate_alias(alias)
        reg = self._registry()
        _, _, model = reg.require_model(name)
        if model is None or alias not in model.current:
            raise ResourceDoesNotExist(f"Registered model alias {alias} not found for model {name}")

        def plan(state: RegistryState) -> list[Op]:
            m = state.models[name]
            return [
                Op(
                    name,
                    Action.UNASSIGN,
                    o.commit,
                    {**_brief(name, o), "alias": alias},
                    stage=alias,
                )
                for o in m.active_versions()
                if o.active_assignment(alias) is not None
            ]

        reg.emit(plan)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version the alias points at."""
        validate_model_name(name)
        validate_alias(alias)
        reg = self._registry()
        _, meta, model = reg.require_model(name)
        if model is None or alias not in model.current:
            raise ResourceDoesNotExist(f"Registered model alias {alias} not found for model {name}")
        return reg.version_entity(model, model.current[alias], meta)

    # -- gitml's own ---------------------------------------------------------------------
    def get_registry_history(self, name: str) -> list[RegistryEvent]:
        """Who registered, promoted, demoted and deleted what, when: the model's tags in order."""
        validate_model_name(name)
        return self._registry().history(name)


class RegistryClient(RegistryClientMixin):
    """The registry methods alone, for a repository (default: the working directory's)."""

    def __init__(self, tracking_uri: str | os.PathLike[str] | None = None) -> None:
        from gitml.tracking.tracker import get_tracker

        self._tracker = get_tracker(tracking_uri)


# -- helpers -----------------------------------------------------------------------------
def _since(reg: Registry, name: str) -> int:
    # The newest tag time of the model: a deprecation after it deletes the branch record.
    model = reg.state().models.get(name)
    return model.last_time if model is not None else 0


def _brief(name: str, v: VersionState) -> dict[str, Any]:
    return {"model": name, "version": v.number, "semver": v.semver}


def _retire(model: ModelState, reason: str) -> list[Op]:
    ops = [
        Op(
            model.name,
            Action.DEREGISTER,
            v.commit,
            {**_brief(model.name, v), "reason": reason},
            semver=v.semver,
        )
        for v in model.active_versions()
    ]
    commit = model.events[0].commit
    ops.append(Op(model.name, Action.DEPRECATE, commit, {"model": model.name, "reason": reason}))
    return ops


def _set_version(commit: str, edit: Any) -> Any:
    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(current or {})
        record = dict(data.get(commit, {}))
        edit(record)
        record["updated_at"] = _ms()
        data[commit] = record
        return data

    return change


def _signature(mlmodel: dict[str, Any] | None) -> dict[str, Any] | None:
    # MLflow's MLmodel keeps the signature as {"inputs": "<json>", "outputs": "<json>"}.
    sig = (mlmodel or {}).get("signature")
    return sig if isinstance(sig, dict) else None


_COND = re.compile(
    r"^\s*(?P<field>[a-zA-Z_.]+)\s*(?P<op>=|!=|LIKE|ILIKE|IN)\s*(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\([^)]*\))\s*$",
    re.IGNORECASE,
)


def _unquote(text: str) -> str:
    return text[1:-1]


def _parse_conditions(filter_string: str | None, allowed: set[str]) -> list[tuple[str, str, Any]]:
    if not filter_string or not filter_string.strip():
        return []
    out = []
    for part in re.split(r"\s+AND\s+", filter_string.strip(), flags=re.IGNORECASE):
        m = _COND.match(part)
        if m is None:
            raise InvalidParameterValue(
                f"invalid filter {filter_string!r}: expected e.g. name = 'my-model'"
            )
        field_name = m["field"].lower()
        if field_name not in allowed:
            raise InvalidParameterValue(
                f"invalid filter field {m['field']!r}: use one of {', '.join(sorted(allowed))}"
            )
        op, raw = m["op"].upper(), m["value"]
        if op == "IN":
            value: Any = [_unquote(x.strip()) for x in raw[1:-1].split(",") if x.strip()]
        elif raw.startswith("("):
            raise InvalidParameterValue(f"invalid filter {part!r}")
        else:
            value = _unquote(raw)
        out.append((field_name, op, value))
    return out


def _parse_version_filter(filter_string: str | None) -> list[tuple[str, str, Any]]:
    return _parse_conditions(filter_string, {"name", "run_id", "source", "current_stage"})


def _like(pattern: str, flags: int) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("^" + "".join(parts) + "$", flags | re.DOTALL)


def _match(value: str, op: str, expected: Any) -> bool:
    if op == "=":
        return value == expected
    if op == "!=":
        return value != expected
    if op == "IN":
        return value in expected
    return _like(expected, re.IGNORECASE if op == "ILIKE" else 0).match(value) is not None


def _filter_names(names: list[str], filter_string: str | None) -> list[str]:
    for _, op, value in _parse_conditions(filter_string, {"name"}):
        names = [n for n in names if _match(n, op, value)]
    return names


_ORDER_FIELDS = {
    "name": "name",
    "version": "version",
    "version_number": "version",
    "timestamp": "creation_timestamp",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
}


def _order(
    items: list[Any], order_by: list[str] | None, default: str, tiebreak: Any = None
) -> list[Any]:
    keys = order_by or [default]
    out = list(items)
    if tiebreak is not None:
        out.sort(key=tiebreak)
    for spec in reversed(keys):
        field_name, _, direction = spec.strip().partition(" ")
        attr = _ORDER_FIELDS.get(field_name.lower())
        if attr is None or direction.strip().upper() not in ("", "ASC", "DESC"):
            raise InvalidParameterValue(
                f"invalid order_by {spec!r}: use name, version or a timestamp, ASC or DESC"
            )
        if out and not hasattr(out[0], attr):
            raise InvalidParameterValue(f"invalid order_by {spec!r} here")
        out.sort(
            key=lambda x: getattr(x, attr) or 0 if attr != "name" else x.name,
            reverse=direction.strip().upper() == "DESC",
        )
    return out


def _page(items: list[Any], max_results: int, page_token: str | None) -> RegistryPagedList:
    if not isinstance(max_results, int) or max_results < 1:
        raise InvalidParameterValue(f"max_results must be a positive integer, got {max_results!r}")
    start = int(page_token) if page_token and page_token.isdigit() else 0
    end = start + max_results
    return RegistryPagedList(items[start:end], str(end) if end < len(items) else None)


# MLflow's stage names, for callers that validate input before calling.
STAGES = ["None", *MLFLOW_STAGES]
