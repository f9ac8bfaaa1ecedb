"""The model registry of one repository: reads its tags, writes new ones, answers MLflow's questions.

Every change is a set of new annotated tags created in one ref transaction (see refs.py);
a lost race re-reads the tags and plans again, so two writers never overwrite each other.
Tags gitml writes get a tagger time one second after the model's newest event (and after
each other), so ordering by tagger time, as GTO does, is never ambiguous for them.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gitml.exceptions import (
    ConcurrencyError,
    CorruptMetadata,
    InvalidParameterValue,
    RepositoryError,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from gitml.registry.entities import ModelVersion, RegisteredModel, RegistryEvent
from gitml.registry.history import ModelState, RegistryState, VersionState, build_state
from gitml.registry.metadata import MetadataView, read_metadata, validate_obj
from gitml.registry.refs import NewTag, create_tags, refs_stamp
from gitml.registry.tagindex import load_tags
from gitml.registry.tags import (
    MLFLOW_STAGES,
    Action,
    format_tag,
    mlflow_stage_of,
    semver_key,
    semver_of_major,
)
from gitml.store.repo import GitRepo

__all__ = ["Op", "Registry", "dump_message", "open_registry", "parse_version_number"]

_STATE_LOCK = threading.Lock()
# common dir -> (refs stamp, state): a warm read costs a few stat calls.
_STATES: dict[str, tuple[tuple[object, ...], RegistryState]] = {}
_EVENT_NAMES = {
    Action.REGISTER: "registration",
    Action.DEREGISTER: "deregistration",
    Action.ASSIGN: "assignment",
    Action.UNASSIGN: "unassignment",
    Action.DEPRECATE: "deprecation",
}


@dataclass(frozen=True)
class Op:
    """One tag to write: what it does, to which model, at which commit, with what message."""

    model: str
    action: Action
    commit: str
    info: dict[str, Any]
    semver: str | None = None
    stage: str | None = None


def dump_message(info: dict[str, Any], summary: str) -> str:
    """A tag message: a `#` summary line (what `git tag -n` shows), then YAML."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump({"gitml": 1, **info}, Dumper=dumper, sort_keys=False, allow_unicode=True)
    return f"# {summary}\n{body}"


def parse_version_number(version: object) -> int:
    """MLflow versions are integers; accept 3, "3" (and refuse anything else)."""
    if isinstance(version, bool):
        raise InvalidParameterValue(f"invalid version {version!r}: expected a positive integer")
    if isinstance(version, int):
        number = version
    elif isinstance(version, str) and version.strip().isdigit():
        number = int(version.strip())
    else:
        raise InvalidParameterValue(f"invalid version {version!r}: expected a positive integer")
    if number < 1:
        raise InvalidParameterValue(f"invalid version {version!r}: versions start at 1")
    return number


class Registry:
    """One repository's registry. Cheap to create; state is cached per repository."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo

    # -- reading -------------------------------------------------------------------------
    def state(self) -> RegistryState:
        """The registry as the tags say now (cached until a tag changes)."""
        key = str(self.repo.common_dir)
        stamp = refs_stamp(self.repo)
        if stamp is not None:
            with _STATE_LOCK:
                hit = _STATES.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        state = build_state(load_tags(self.repo, stamp))
        if stamp is not None:
            with _STATE_LOCK:
                _STATES[key] = (stamp, state)
        return state

    def metadata(self) -> MetadataView:
        """Descriptions and tags from the metadata branch."""
        return read_metadata(self.repo)

    def model_exists(
        self, name: str, state: RegistryState | None = None, meta: MetadataView | None = None
    ) -> bool:
        """Whether `name` is a registered model (active tags, or created on the branch since)."""
        state = state or self.state()
        model = state.models.get(name)
        if model is not None and model.active:
            return True
        record = (meta or self.metadata()).model(name)
        if record is None:
            return False
        if model is None:
            return True
        # A deprecation newer than the tags the record was created after deletes the model
        # (e.g. `gto deprecate`); tag times, not clocks, since gitml's may run a little ahead.
        deprecated = [e.time for e in model.events if e.action is Action.DEPRECATE]
        return not deprecated or max(deprecated) <= int(record.get("since", 0))

    def require_model(self, name: str) -> tuple[RegistryState, MetadataView, ModelState | None]:
        """State, metadata and the model's tag state; raise if the model does not exist."""
        state, meta = self.state(), self.metadata()
        if not self.model_exists(name, state, meta):
            raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
        model = state.models.get(name)
        return state, meta, model if model is not None and model.active else model

    def require_version(
        self, name: str, version: object
    ) -> tuple[ModelState, VersionState, MetadataView]:
        """The model and its active version `version`; raise if either does not exist."""
        number = parse_version_number(version)
        _, meta, model = self.require_model(name)
        found = model.version(number) if model is not None else None
        if model is None or found is None or not found.active:
            raise ResourceDoesNotExist(f"Model Version (name={name}, version={number}) not found")
        return model, found, meta

    # -- entities ------------------------------------------------------------------------
    def version_entity(
        self, model: ModelState, v: VersionState, meta: MetadataView
    ) -> ModelVersion:
        """The MLflow-shaped ModelVersion of a version (memoised with the state it comes from)."""
        hit = model.memo.get(v.semver)
        if hit is not None and hit[0] is meta:
            return hit[1]  # type: ignore[no-any-return]
        entity = self._version_entity(model, v, meta)
        model.memo[v.semver] = (meta, entity)
        return entity

    def _version_entity(
        self, model: ModelState, v: VersionState, meta: MetadataView
    ) -> ModelVersion:
        info = v.meta
        extra = meta.version(model.name, v.commit)
        stages = [(s, e) for s, e in v.active_stages() if mlflow_stage_of(s) is not None]
        current_stage = mlflow_stage_of(stages[-1][0]) if stages else None
        aliases = sorted(
            s for s, cv in model.current.items() if cv is v and mlflow_stage_of(s) is None
        )
        reg = v.registration
        description = extra.get("description", info.get("description"))
        updated = max(v.last_event_time * 1000, int(extra.get("updated_at", 0)))
        return ModelVersion(
            name=model.name,
            version=v.number,
            creation_timestamp=reg.time * 1000,
            last_updated_timestamp=updated,
            current_stage=current_stage or "None",
            description=description if isinstance(description, str) else None,
            user_id=reg.raw.tagger_name or None,
            source=_checked_or_none(info.get("source")),
            run_id=info.get("run_id") if isinstance(info.get("run_id"), str) else None,
            run_link=info.get("run_link") if isinstance(info.get("run_link"), str) else None,
            tags=dict(extra.get("tags", {})),
            aliases=aliases,
            semver=v.semver,
            git_tag=reg.tag,
            git_commit=v.commit,
            source_commit=info.get("source_commit")
            if isinstance(info.get("source_commit"), str)
            else None,
            metrics=dict(info.get("metrics") or {})
            if isinstance(info.get("metrics"), dict)
            else {},
            signature=info.get("signature") if isinstance(info.get("signature"), dict) else None,
        )

    def latest_versions(
        self, model: ModelState | None, meta: MetadataView, stages: list[str] | None = None
    ) -> list[ModelVersion]:
        """MLflow's latest version per stage: the current one for a stage, the newest for 'None'."""
        from gitml.registry.tags import stage_of_mlflow

        if model is None or not model.active:
            return []
        wanted = ["None", *MLFLOW_STAGES] if not stages else stages
        out: dict[int, ModelVersion] = {}
        for stage in wanted:
            gto = stage_of_mlflow(stage)
            if gto is None:
                for v in reversed(model.active_versions()):
                    entity = self.version_entity(model, v, meta)
                    if entity.current_stage == "None":
                        out[v.number] = entity
                        break
            elif gto in model.current:
                v = model.current[gto]
                out[v.number] = self.version_entity(model, v, meta)
        return [out[n] for n in sorted(out)]

    def model_entity(self, name: str, state: RegistryState, meta: MetadataView) -> RegisteredModel:
        """The MLflow-shaped RegisteredModel (call only for an existing model); memoised."""
        key = ("model", name)
        hit = state.memo.get(key)
        if hit is not None and hit[0] is meta:
            return hit[1]  # type: ignore[no-any-return]
        entity = self._model_entity(name, state, meta)
        state.memo[key] = (meta, entity)
        return entity

    def _model_entity(self, name: str, state: RegistryState, meta: MetadataView) -> RegisteredModel:
        model = state.models.get(name)
        active = model if model is not None and model.active else None
        record = meta.model(name) or {}
        created = [int(record["created_at"])] if "created_at" in record else []
        updated = [int(record["updated_at"])] if "updated_at" in record else []
        if active is not None:
            created.append(active.created_at * 1000)
            updated.append(active.updated_at * 1000)
        aliases = (
            {s: v.number for s, v in active.current.items() if mlflow_stage_of(s) is None}
            if active
            else {}
        )
        description = record.get("description")
        return RegisteredModel(
            name=name,
            creation_timestamp=min(created) if created else 0,
            last_updated_timestamp=max(updated) if updated else 0,
            description=description if isinstance(description, str) else None,
            latest_versions=self.latest_versions(active, meta),
            tags=dict(record.get("tags", {})),
            aliases=aliases,
        )

    def model_names(
        self, state: RegistryState | None = None, meta: MetadataView | None = None
    ) -> list[str]:
        """Names of every registered model, sorted."""
        state = state or self.state()
        meta = meta or self.metadata()
        hit = state.memo.get("names")
        if hit is not None and hit[0] is meta:
            return list(hit[1])
        names = {m.name for m in state.active_models()} | set(meta.models)
        out = sorted(n for n in names if self.model_exists(n, state, meta))
        state.memo["names"] = (meta, out)
        return list(out)

    def history(self, name: str) -> list[RegistryEvent]:
        """Every registry event of the model, oldest first, from the tags alone."""
        state = self.state()
        model = state.models.get(name)
        if model is None:
            raise ResourceDoesNotExist(f"no registry tags for model {name!r}")
        by_commit: dict[str, list[VersionState]] = {}
        for v in model.by_number:
            by_commit.setdefault(v.commit, []).append(v)
        out = []
        for e in model.events:
            version: VersionState | None = None
            if e.parsed.version is not None:
                version = model.versions.get(e.parsed.version)
            elif e.parsed.stage is not None and len(by_commit.get(e.commit, [])) == 1:
                version = by_commit[e.commit][0]
            out.append(
                RegistryEvent(
                    timestamp=e.time,
                    model=name,
                    event=_EVENT_NAMES[e.action],
                    tag=e.tag,
                    author=e.raw.tagger_name,
                    author_email=e.raw.tagger_email,
                    commit=e.commit,
                    version=version.number if version else None,
                    semver=version.semver if version else None,
                    stage=e.parsed.stage,
                    message=e.raw.message.strip(),
                )
            )
        return out

    # -- writing -------------------------------------------------------------------------
    def emit(self, plan: Callable[[RegistryState], list[Op]], attempts: int = 100) -> list[str]:
        """Create the tags `plan(state)` asks for, atomically; re-plan on a lost race."""
        delay = 0.002
        for _ in range(attempts):
            state = self.state()
            ops = plan(state)
            if not ops:
                return []
            tags = self._tags_for(state, ops)
            if create_tags(self.repo, tags):
                return [t.name for t in tags]
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.2)
        raise ConcurrencyError("gave up creating registry tags after losing the race repeatedly")

    def _tags_for(self, state: RegistryState, ops: list[Op]) -> list[NewTag]:
        counters: dict[str, int] = {}
        clock: dict[str, int] = {}
        now = int(time.time())
        out = []
        taken = state_names(state)
        for op in ops:
            model = state.models.get(op.model)
            if op.model not in clock:
                # After the model's newest event, so ours orders last, unless that event is
                # dated beyond any clock skew (a hostile or broken tag): then the clock rules,
                # and gitml never writes a time derived from junk.
                last = model.last_time + 1 if model else 0
                clock[op.model] = max(now, last) if last <= now + _MAX_SKEW_S else now
                counters[op.model] = max(
                    model.max_counter if model else 0, state_counter(state, op.model)
                )
            stamp = clock[op.model]
            clock[op.model] += 1
            if op.action is Action.REGISTER:
                name = format_tag(op.model, op.action, version=op.semver)
            else:
                name = ""
                while not name or name in taken:  # a lightweight or hand-made tag holds the number
                    counters[op.model] += 1
                    name = format_tag(
                        op.model,
                        op.action,
                        version=op.semver,
                        stage=op.stage,
                        counter=counters[op.model],
                    )
            taken.add(name)
            # Checked against schemas/registry-tag.schema.json: a bad message never becomes a tag.
            info = {"action": op.action.value, "model": op.model, **op.info}
            validate_obj(
                {"gitml": 1, **info}, "registry-tag.schema.json", f"the message of tag {name}"
            )
            out.append(NewTag(name, op.commit, dump_message(info, _summary(op)), stamp))
        return out

    def anchor_commit(self, source_commit: str, note: str) -> str:
        """A commit of its own for a new version: the source commit's tree, that commit as parent.

        GTO tells versions apart by the commit their tags point at, and MLflow allows many
        versions from one code commit; a child commit with the same tree keeps the code
        exactly as it was (`git diff <source> <tag>` is empty) and gives each version its own.
        """
        tree = self.repo.tree_of(source_commit)
        return self.repo.write_commit(
            tree, [source_commit], f"{note}\n\ngitml-version-id: {uuid.uuid4().hex}"
        )

    def head_commit(self) -> str:
        """The commit HEAD points at (what a version without a run commit is tagged at)."""
        import subprocess

        proc = subprocess.run(
            ["git", "rev-parse", "-q", "--verify", "HEAD^{commit}"],
            cwd=self.repo.root,
            capture_output=True,
            text=True,
            check=False,
        )
        sha = proc.stdout.strip()
        if proc.returncode != 0 or not sha:
            raise RepositoryError(
                f"{self.repo.root} has no commits: commit your code before registering a model"
            )
        return sha

    def commit_exists(self, sha: str) -> bool:
        """Whether `sha` is a commit in the object database."""
        try:
            kind, _ = self.repo.objects.read(sha)
        except Exception:  # a missing object reads as an error: it is simply not there
            return False
        return kind == "commit"


def open_registry(tracking_uri: str | None = None) -> Registry:
    """The registry of the repository at `tracking_uri` (default: the working directory's),
    without starting a tracker: what read-only callers such as deploy scripts need."""
    from pathlib import Path

    from gitml.config import resolve_config
    from gitml.store.repo import find_repo_root

    text = (
        tracking_uri[len("file://") :]
        if tracking_uri and tracking_uri.startswith("file://")
        else tracking_uri
    )
    root = find_repo_root(Path(text).expanduser() if text else None)
    return Registry(GitRepo(root, resolve_config(root).branch))


def _checked_or_none(source: object) -> str | None:
    # A version's source is shown and handed to loaders: one naming a local path is dropped.
    from gitml.registry.source_check import checked_source

    try:
        return checked_source(source) if isinstance(source, str) and source else None
    except CorruptMetadata:
        return None


_MAX_SKEW_S = 86_400  # a tag dated more than a day ahead of this clock is not followed


def state_names(state: RegistryState) -> set[str]:
    """Every tag name the registry state knows (for picking names that are free)."""
    names: set[str] = set()
    for model in state.models.values():
        names.update(e.tag for e in model.events)
    names.update(p.tag for p in state.problems)
    return names


def state_counter(state: RegistryState, model: str) -> int:
    """The highest `#N` among the model's tags, including ones GTO cannot use."""
    from gitml.registry.tags import parse_tag

    best = 0
    for problem in state.problems:
        parsed = parse_tag(problem.tag)
        if parsed is not None and parsed.model == model and parsed.counter is not None:
            best = max(best, parsed.counter)
    return best


def next_semver(model: ModelState | None, taken: set[str]) -> str:
    """The semver of the next version: `vN.0.0` above every existing one, N its MLflow number."""
    if model is None:
        major = 1
    else:
        greatest = max((semver_key(s)[0] for s in model.versions), default=0)
        major = max(len(model.versions) + 1, greatest + 1)
        name = model.name
        while format_tag(name, Action.REGISTER, version=semver_of_major(major)) in taken:
            major += 1
    return semver_of_major(major)


def _summary(op: Op) -> str:
    version = op.info.get("version")
    what = f"version {version} ({op.semver or op.info.get('semver')})" if version else ""
    if op.action is Action.REGISTER:
        run = op.info.get("run_id")
        return f"register {op.model} {what}" + (f" from run {run}" if run else "")
    if op.action is Action.DEREGISTER:
        return f"deregister {op.model} {what}"
    if op.action is Action.ASSIGN:
        return f"assign {op.stage} to {op.model} {what}".rstrip()
    if op.action is Action.UNASSIGN:
        return f"unassign {op.stage} from {op.model} {what}".rstrip()
    return f"deprecate {op.model}"


def already_exists(name: str) -> ResourceAlreadyExists:
    """The error for a model name that is taken."""
    return ResourceAlreadyExists(f"Registered Model (name={name}) already exists")
