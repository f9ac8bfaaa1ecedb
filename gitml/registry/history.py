"""The registry's state computed from its tags, by the rules `gto show` applies.

Rules (one place, tested against GTO itself):
- Events are ordered by tagger time; ties (same second) by the `#N` counter, then by name.
- A version is active when its newest register/deregister event is a registration.
- A (version, stage) assignment is active when its newest assign/unassign event is an assignment.
- The version *current* in a stage is the active version whose active assignment to that
  stage is the newest; unassigning it makes the previous active one current again.
- A model is active when its newest event is not a deprecation.
- MLflow's integer version of a semver is its rank (from 1) in semver order among all versions
  ever registered for the model; gitml registers `vN.0.0` above every other, so for a model
  registered through gitml alone, version N is `vN.0.0`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gitml.registry.refs import RawTag
from gitml.registry.tags import Action, TagName, parse_tag, semver_key

__all__ = [
    "Event",
    "ModelState",
    "Problem",
    "RegistryState",
    "VersionState",
    "build_state",
    "load_message",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """A tag that looks like a registry tag but cannot be used; reported, then skipped."""

    tag: str
    reason: str


@dataclass(frozen=True, slots=True)
class Event:
    """One registry tag, parsed."""

    tag: str
    parsed: TagName
    raw: RawTag

    @property
    def action(self) -> Action:
        return self.parsed.action

    @property
    def time(self) -> int:
        return self.raw.time

    @property
    def commit(self) -> str:
        return self.raw.target

    @property
    def key(self) -> tuple[int, int, str]:
        """The order of events: tagger time, then GTO's counter, then the name."""
        counter = self.parsed.counter
        return (self.raw.time, -1 if counter is None else counter, self.tag)


def load_message(message: str) -> dict[str, Any]:
    """The YAML mapping a gitml tag message holds ({} for free text written by others)."""
    if not message.strip():
        return {}
    import yaml  # parsed only for the few versions a caller looks at

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(message, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(slots=True)
class VersionState:
    """One version of a model: its registration, its stage assignments, its number."""

    model: str
    semver: str
    commit: str
    number: int = 0
    direct: list[Event] = field(default_factory=list)  # register / deregister
    stages: dict[str, list[Event]] = field(default_factory=dict)  # stage -> assign / unassign
    _meta: dict[str, Any] | None = None

    @property
    def registration(self) -> Event:
        """The first registration event (who registered it, when, with what message)."""
        regs = [e for e in self.direct if e.action is Action.REGISTER]
        return regs[0] if regs else self.direct[0]

    @property
    def active(self) -> bool:
        """Registered and not deregistered since."""
        return bool(self.direct) and self.direct[-1].action is Action.REGISTER

    @property
    def meta(self) -> dict[str, Any]:
        """The YAML of the registration tag's message (run id, source, metrics...)."""
        if self._meta is None:
            self._meta = load_message(self.registration.raw.message)
        return self._meta

    def active_assignment(self, stage: str) -> Event | None:
        """The newest assignment to `stage` if it has not been unassigned since."""
        events = self.stages.get(stage)
        if events and events[-1].action is Action.ASSIGN:
            return events[-1]
        return None

    def active_stages(self) -> list[tuple[str, Event]]:
        """(stage, assignment) for each stage this version holds, oldest first."""
        out = [(s, e) for s in self.stages if (e := self.active_assignment(s)) is not None]
        return sorted(out, key=lambda item: item[1].key)

    @property
    def last_event_time(self) -> int:
        times = [e.time for e in self.direct] + [e.time for es in self.stages.values() for e in es]
        return max(times) if times else 0


@dataclass(slots=True)
class ModelState:
    """Everything the tags say about one model."""

    name: str
    events: list[Event] = field(default_factory=list)  # all, in order
    versions: dict[str, VersionState] = field(default_factory=dict)  # semver -> version
    by_number: list[VersionState] = field(default_factory=list)  # index = number - 1
    current: dict[str, VersionState] = field(default_factory=dict)  # stage -> current version
    max_counter: int = 0
    memo: dict[Any, Any] = field(default_factory=dict)  # entities derived from this state

    @property
    def active(self) -> bool:
        """Not deprecated (a newer event revives a deprecated model, as in GTO)."""
        return bool(self.events) and self.events[-1].action is not Action.DEPRECATE

    @property
    def created_at(self) -> int:
        return self.events[0].time if self.events else 0

    @property
    def updated_at(self) -> int:
        return self.events[-1].time if self.events else 0

    @property
    def last_time(self) -> int:
        """The newest tagger time of the model's events (new tags are written after it)."""
        return max((e.time for e in self.events), default=0)

    def version(self, number: int) -> VersionState | None:
        """The version with MLflow number `number`, or None."""
        if 1 <= number <= len(self.by_number):
            return self.by_number[number - 1]
        return None

    def active_versions(self) -> list[VersionState]:
        """Active versions by number."""
        return [v for v in self.by_number if v.active]

    def latest_version(self) -> VersionState | None:
        """The active version with the highest number."""
        active = self.active_versions()
        return active[-1] if active else None

    def versions_at(self, commit: str) -> list[VersionState]:
        """The versions registered at a commit."""
        return [v for v in self.by_number if v.commit == commit]


@dataclass(slots=True)
class RegistryState:
    """All models, plus the tags that could not be used."""

    models: dict[str, ModelState] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Values derived from this state (entities...): they live exactly as long as it does.
    memo: dict[Any, Any] = field(default_factory=dict)

    def active_models(self) -> list[ModelState]:
        """Models that are not deprecated, by name."""
        return [m for name, m in sorted(self.models.items()) if m.active]


def _version_of(model: ModelState, event: Event, problems: list[Problem]) -> VersionState | None:
    # GTO finds the version an assignment is about by the commit the tag points at.
    candidates = model.versions_at(event.commit)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        problems.append(
            Problem(event.tag, f"no registered version of {model.name} at {event.commit[:12]}")
        )
        return None
    # Several versions share the commit (GTO refuses this); gitml's messages name the version.
    named = load_message(event.raw.message).get("semver")
    for v in candidates:
        if v.semver == named:
            return v
    problems.append(
        Problem(
            event.tag,
            f"{len(candidates)} versions of {model.name} share commit {event.commit[:12]}",
        )
    )
    return None


def build_state(tags: Iterable[RawTag]) -> RegistryState:
    """Compute the registry state from a repository's tags (any order)."""
    state = RegistryState()
    events: list[Event] = []
    for raw in tags:
        parsed = parse_tag(raw.name)
        if parsed is None:
            if "@" in raw.name or "#" in raw.name:
                state.problems.append(Problem(raw.name, "not in GTO's tag grammar"))
            continue
        if not raw.annotated:
            state.problems.append(
                Problem(raw.name, "a lightweight tag (GTO reads annotated tags only)")
            )
            continue
        if raw.target_type != "commit":
            state.problems.append(Problem(raw.name, f"points at a {raw.target_type}, not a commit"))
            continue
        if raw.time < 0:
            state.problems.append(Problem(raw.name, "its tagger time is out of range"))
            continue
        events.append(Event(raw.name, parsed, raw))
    events.sort(key=lambda e: e.key)

    assigns: list[tuple[ModelState, Event]] = []
    for event in events:
        model = state.models.get(event.parsed.model)
        if model is None:
            model = state.models[event.parsed.model] = ModelState(event.parsed.model)
        model.events.append(event)
        if event.parsed.counter is not None and event.parsed.counter > model.max_counter:
            model.max_counter = event.parsed.counter
        action = event.action
        if action in (Action.REGISTER, Action.DEREGISTER):
            semver = event.parsed.version
            assert semver is not None
            version = model.versions.get(semver)
            if version is None:
                if action is Action.DEREGISTER:
                    state.problems.append(
                        Problem(event.tag, f"deregisters {semver}, never registered")
                    )
                    continue
                version = model.versions[semver] = VersionState(model.name, semver, event.commit)
            version.direct.append(event)
        elif action in (Action.ASSIGN, Action.UNASSIGN):
            assigns.append((model, event))

    for model in state.models.values():
        model.by_number = sorted(model.versions.values(), key=lambda v: semver_key(v.semver))
        for i, version in enumerate(model.by_number):
            version.number = i + 1

    for model, event in assigns:
        version = _version_of(model, event, state.problems)
        if version is not None:
            stage = event.parsed.stage
            assert stage is not None
            version.stages.setdefault(stage, []).append(event)

    for model in state.models.values():
        best: dict[str, tuple[tuple[int, int, str], VersionState]] = {}
        for version in model.by_number:
            if not version.active:
                continue
            for stage, assignment in version.active_stages():
                if stage not in best or assignment.key > best[stage][0]:
                    best[stage] = (assignment.key, version)
        model.current = {stage: v for stage, (_, v) in sorted(best.items())}
    return state
