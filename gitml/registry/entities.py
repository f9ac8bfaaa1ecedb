"""Registry entities shaped like MLflow's: RegisteredModel, ModelVersion, and their tags and aliases."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ModelVersion",
    "ModelVersionStatus",
    "ModelVersionTag",
    "RegisteredModel",
    "RegisteredModelAlias",
    "RegisteredModelTag",
    "RegistryEvent",
]


class ModelVersionStatus:
    """MLflow's version statuses; a version is READY as soon as its tag exists."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


@dataclass(frozen=True)
class ModelVersionTag:
    """A key/value tag of a model version."""

    key: str
    value: str


@dataclass(frozen=True)
class RegisteredModelTag:
    """A key/value tag of a registered model."""

    key: str
    value: str


@dataclass(frozen=True)
class RegisteredModelAlias:
    """An alias and the version it points at."""

    alias: str
    version: int


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model (MLflow's fields, plus where it lives in Git)."""

    name: str
    version: int
    creation_timestamp: int  # milliseconds, the registration tag's tagger time
    last_updated_timestamp: int
    current_stage: str = "None"
    description: str | None = None
    user_id: str | None = None
    source: str | None = None
    run_id: str | None = None
    run_link: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    # gitml's own: the GTO version, its tag, the commit it points at, the run's code commit.
    semver: str | None = None
    git_tag: str | None = None
    git_commit: str | None = None
    source_commit: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    signature: dict[str, Any] | None = None

    def to_dictionary(self) -> dict[str, Any]:
        """A plain dict (JSON-ready)."""
        return asdict(self)

    def __iter__(self) -> Any:
        # MLflow entities iterate as (key, value) pairs; dict(mv) works as it does there.
        return iter(self.to_dictionary().items())


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model with its latest version per stage and its aliases."""

    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dictionary(self) -> dict[str, Any]:
        """A plain dict (JSON-ready)."""
        return asdict(self)

    def __iter__(self) -> Any:
        return iter(self.to_dictionary().items())


@dataclass(frozen=True)
class RegistryEvent:
    """One line of a model's history: a registry tag, who made it and when."""

    timestamp: int  # seconds since the epoch (tagger time)
    model: str
    event: str  # registration, deregistration, assignment, unassignment, deprecation
    tag: str
    author: str
    author_email: str
    commit: str
    version: int | None = None
    semver: str | None = None
    stage: str | None = None
    message: str = ""

    def to_dictionary(self) -> dict[str, Any]:
        """A plain dict (JSON-ready)."""
        return asdict(self)
