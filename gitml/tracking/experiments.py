"""Experiments on the metadata branch: ids derived from names, so independent clones agree."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from gitml import constants as C
from gitml.entities import Experiment, LifecycleStage
from gitml.escape import terminal
from gitml.exceptions import (
    CorruptMetadata,
    InvalidState,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from gitml.store.repo import GitRepo
from gitml.tracking import layout
from gitml.tracking.validation import check_experiment_name, check_key, check_tag_value

__all__ = ["ExperimentStore", "experiment_id_for"]

log = logging.getLogger("gitml")
_EXPERIMENT_ID = re.compile(r"[0-9]{1,30}")


def now_ms() -> int:
    """Milliseconds since the epoch, as MLflow stores times."""
    return int(time.time() * 1000)


def experiment_id_for(name: str, attempt: int = 0) -> str:
    """A decimal id from the name: two clones creating "mnist" both get the same directory."""
    if name == C.DEFAULT_EXPERIMENT_NAME and attempt == 0:
        return C.DEFAULT_EXPERIMENT_ID
    seed = name if attempt == 0 else f"{name}\0{attempt}"
    return str(int(hashlib.sha256(seed.encode()).hexdigest()[:15], 16))


class ExperimentStore:
    """Reads and writes `experiments/<id>/` on the branch."""

    def __init__(self, repo: GitRepo, format_changes: Callable[[str], dict[str, bytes | None]]) -> None:
        self.repo = repo
        self._format_changes = format_changes  # adds gitml.yaml to the first commit
        self._cache: tuple[str, list[Experiment]] | None = None
        self.problems: dict[str, str] = {}  # experiments/<x> -> why it was skipped at the last listing

    # -- reading -------------------------------------------------------------------------
    def _load(self, tree: str, experiment_id: str) -> Experiment | None:
        base = C.experiment_dir(experiment_id)
        meta_path = f"{base}/{C.EXPERIMENT_META}"
        data = self.repo.read_file(tree, meta_path)
        if data is None:
            return None
        meta = layout.decode(meta_path, data)
        tags_data = self.repo.read_file(tree, f"{base}/{C.EXPERIMENT_TAGS}")
        tags = layout.decode(f"{base}/{C.EXPERIMENT_TAGS}", tags_data) if tags_data else {}
        return Experiment(
            experiment_id=meta["experiment_id"],
            name=meta["name"],
            artifact_location=meta.get("artifact_location") or f"runs:/experiments/{experiment_id}",
            lifecycle_stage=meta["lifecycle_stage"],
            tags=tags,
            creation_time=meta.get("creation_time"),
            last_update_time=meta.get("last_update_time"),
        )

    def all(self, tree: str | None = None) -> list[Experiment]:
        """Every experiment on the branch (deleted ones too); unreadable ones are skipped."""
        tree = tree or self.repo.tree_of(self.repo.tip())
        entry = self.repo.lookup(tree, C.EXPERIMENTS_DIR)
        key = entry.sha if entry else ""
        if self._cache and self._cache[0] == key:
            return self._cache[1]
        out = []
        problems: dict[str, str] = {}
        for exp_id in self.repo.list_dir(tree, C.EXPERIMENTS_DIR):
            where = f"{C.EXPERIMENTS_DIR}/{exp_id}"[:120]
            if not _EXPERIMENT_ID.fullmatch(exp_id):
                problems[where] = "not an experiment id"
                continue
            try:
                exp = self._load(tree, exp_id)
            except CorruptMetadata as e:
                problems[where] = e.message
                continue
            if exp is None:
                problems[where] = f"no {C.EXPERIMENT_META}"
            elif exp.experiment_id != exp_id:
                problems[where] = f"its {C.EXPERIMENT_META} names experiment {exp.experiment_id}"
            else:
                out.append(exp)
        if problems:  # once per branch state, not per listing
            shown = terminal("; ".join(f"{k}: {v}" for k, v in sorted(problems.items())[:5]))
            more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
            log.warning("gitml: %d experiment(s) skipped as unreadable: %s%s", len(problems), shown, more)
        self.problems = problems
        out.sort(key=lambda e: (e.creation_time or 0, e.experiment_id))
        self._cache = (key, out)
        return out

    def get(self, experiment_id: str, tree: str | None = None) -> Experiment:
        """One experiment by id."""
        exp = self._load(tree or self.repo.tree_of(self.repo.tip()), str(experiment_id))
        if exp is None:
            raise ResourceDoesNotExist(f"no experiment with id {experiment_id!r}")
        return exp

    def by_name(self, name: str, tree: str | None = None) -> Experiment | None:
        """The experiment with this name (active or deleted), or None."""
        tree = tree or self.repo.tree_of(self.repo.tip())
        guess = self._load(tree, experiment_id_for(name))
        if guess is not None and guess.name == name:
            return guess
        for exp in self.all(tree):
            if exp.name == name:
                return exp
        return None

    # -- writing -------------------------------------------------------------------------
    def _meta_bytes(self, exp_id: str, meta: dict[str, Any]) -> bytes:
        return layout.encode(f"{C.experiment_dir(exp_id)}/{C.EXPERIMENT_META}", meta)

    def create(self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None) -> str:
        """Create an experiment; its name must be free."""
        check_experiment_name(name)
        clean_tags = {check_key(k, "tag"): check_tag_value(k, v) for k, v in (tags or {}).items()}
        created: dict[str, str] = {}

        def build(tree: str) -> dict[str, bytes | None]:
            existing = self.by_name(name, tree)
            if existing is not None:
                state = "deleted" if existing.lifecycle_stage == LifecycleStage.DELETED else "active"
                hint = " (restore it, or delete it permanently to reuse the name)" if state == "deleted" else ""
                raise ResourceAlreadyExists(f"experiment '{name}' already exists ({state}, id {existing.experiment_id}){hint}")
            attempt = 0
            while True:
                exp_id = experiment_id_for(name, attempt)
                if self.repo.lookup(tree, C.experiment_dir(exp_id)) is None:
                    break
                attempt += 1
            t = now_ms()
            meta = {
                "experiment_id": exp_id,
                "name": name,
                "artifact_location": artifact_location or f"runs:/experiments/{exp_id}",
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "creation_time": t,
                "last_update_time": t,
            }
            created["id"] = exp_id
            changes: dict[str, bytes | None] = {f"{C.experiment_dir(exp_id)}/{C.EXPERIMENT_META}": self._meta_bytes(exp_id, meta)}
            if clean_tags:
                path = f"{C.experiment_dir(exp_id)}/{C.EXPERIMENT_TAGS}"
                changes[path] = layout.encode(path, clean_tags)
            changes.update(self._format_changes(tree))
            return changes

        self.repo.commit(build, lambda: f"experiment {created['id']} created: {name}")
        return created["id"]

    def _update(self, experiment_id: str, message: str, change: Any) -> None:
        exp_id = str(experiment_id)
        path = f"{C.experiment_dir(exp_id)}/{C.EXPERIMENT_META}"

        def build(tree: str) -> dict[str, bytes | None]:
            data = self.repo.read_file(tree, path)
            if data is None:
                raise ResourceDoesNotExist(f"no experiment with id {experiment_id!r}")
            meta = layout.decode(path, data)
            result = change(tree, meta)
            if result is not None:
                return result
            meta["last_update_time"] = now_ms()
            return {path: self._meta_bytes(exp_id, meta)}

        self.repo.commit(build, message)

    def rename(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new name (its id stays)."""
        check_experiment_name(new_name)

        def change(tree: str, meta: dict[str, Any]) -> None:
            other = self.by_name(new_name, tree)
            if other is not None and other.experiment_id != meta["experiment_id"]:
                raise ResourceAlreadyExists(f"experiment '{new_name}' already exists")
            if meta["lifecycle_stage"] != LifecycleStage.ACTIVE:
                raise InvalidState(f"experiment {experiment_id} is deleted: restore it before renaming")
            meta["name"] = new_name

        self._update(experiment_id, f"experiment {experiment_id} renamed: {new_name}", change)

    def set_lifecycle(self, experiment_id: str, stage: str) -> None:
        """Mark deleted (restorable) or active again."""
        if str(experiment_id) == C.DEFAULT_EXPERIMENT_ID and stage == LifecycleStage.DELETED:
            raise InvalidState("the Default experiment (id 0) cannot be deleted")

        def change(tree: str, meta: dict[str, Any]) -> None:
            meta["lifecycle_stage"] = stage
            meta["deleted_time"] = now_ms() if stage == LifecycleStage.DELETED else None

        verb = "deleted" if stage == LifecycleStage.DELETED else "restored"
        self._update(experiment_id, f"experiment {experiment_id} {verb}", change)

    def set_tag(self, experiment_id: str, key: str, value: Any, delete: bool = False) -> None:
        """Set (or delete) one experiment tag."""
        check_key(key, "tag")
        text = check_tag_value(key, value)
        exp_id = str(experiment_id)
        path = f"{C.experiment_dir(exp_id)}/{C.EXPERIMENT_TAGS}"

        def change(tree: str, meta: dict[str, Any]) -> dict[str, bytes | None]:
            data = self.repo.read_file(tree, path)
            tags = layout.decode(path, data) if data else {}
            if delete:
                if key not in tags:
                    raise ResourceDoesNotExist(f"no tag '{key}' on experiment {experiment_id}")
                tags.pop(key)
            else:
                tags[key] = text
            return {path: layout.encode(path, tags)}

        self._update(experiment_id, f"experiment {experiment_id} tag {key}", change)

    def ensure_default(self) -> None:
        """Create the Default experiment (id 0) if the branch has none."""
        tree = self.repo.tree_of(self.repo.tip())
        if self.repo.lookup(tree, C.experiment_dir(C.DEFAULT_EXPERIMENT_ID)) is None:
            try:
                self.create(C.DEFAULT_EXPERIMENT_NAME)
            except ResourceAlreadyExists:
                pass
