"""Entities shaped like MLflow's (`gitml.entities` answers for `mlflow.entities`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Dataset",
    "DatasetInput",
    "Experiment",
    "ExperimentTag",
    "FileInfo",
    "InputTag",
    "LifecycleStage",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "SourceType",
    "ViewType",
]


class RunStatus:
    """Run states, as MLflow names them."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    _ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    _TERMINATED = (FINISHED, FAILED, KILLED)

    @staticmethod
    def all_status() -> list[str]:
        """Every status name."""
        return list(RunStatus._ALL)

    @staticmethod
    def is_terminated(status: str) -> bool:
        """True for FINISHED, FAILED and KILLED."""
        return status in RunStatus._TERMINATED

    @staticmethod
    def from_string(status: str) -> str:
        """Validate a status name (MLflow returns an enum int; the name serves here)."""
        if status not in RunStatus._ALL:
            from gitml.exceptions import InvalidParameterValue

            raise InvalidParameterValue(
                f"invalid run status {status!r}: expected one of {', '.join(RunStatus._ALL)}"
            )
        return status

    @staticmethod
    def to_string(status: str) -> str:
        """Identity: statuses are names already."""
        return status


class LifecycleStage:
    """Whether an experiment or run is active or deleted (restorable)."""

    ACTIVE = "active"
    DELETED = "deleted"


class ViewType:
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @staticmethod
    def from_string(name: str) -> int:
        """Parse MLflow's spelling (`ACTIVE_ONLY`, `active_only`, ...)."""
        try:
            return {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}[name.upper()]
        except KeyError:
            from gitml.exceptions import InvalidParameterValue

            raise InvalidParameterValue(f"invalid view type {name!r}")

    @staticmethod
    def stages(view_type: int) -> tuple[str, ...]:
        """Lifecycle stages included by a view type."""
        if view_type == ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if view_type == ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


class SourceType:
    """Where a run's code came from (MLflow's `mlflow.source.type` values)."""

    NOTEBOOK = "NOTEBOOK"
    JOB = "JOB"
    PROJECT = "PROJECT"
    LOCAL = "LOCAL"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric series."""

    key: str
    value: float
    timestamp: int
    step: int = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (math.isnan(self.value) and math.isnan(other.value))
        return (self.key, self.timestamp, self.step) == (other.key, other.timestamp, other.step) and same_value

    def __hash__(self) -> int:
        return hash((self.key, self.timestamp, self.step))


@dataclass(frozen=True, slots=True)
class Param:
    """A run parameter (immutable once logged)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunTag:
    """A run tag."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ExperimentTag:
    """An experiment tag."""

    key: str
    value: str


@dataclass(frozen=True)
class Experiment:
    """An experiment: a named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None

    def to_dictionary(self) -> dict[str, Any]:
        """A plain dict (as MLflow's `to_dictionary`)."""
        return asdict(self)


@dataclass(frozen=True)
class RunInfo:
    """A run's metadata: who, when, state."""

    run_id: str
    experiment_id: str
    user_id: str | None
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    run_name: str | None = None

    @property
    def run_uuid(self) -> str:
        """MLflow's old name for run_id."""
        return self.run_id


@dataclass(frozen=True)
class RunData:
    """A run's params, latest metric values and tags."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_objs: tuple[Metric, ...] = ()

    @property
    def _metric_objs(self) -> list[Metric]:
        return list(self.metric_objs)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset as a run records it (MLflow's `Dataset` entity): `source` and `schema` are
    JSON text, `profile` JSON text or None."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class InputTag:
    """A tag of a dataset input (`mlflow.data.context` names its context)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset used by a run, with the input's tags."""

    dataset: Dataset
    tags: tuple[InputTag, ...] = ()


@dataclass(frozen=True)
class RunInputs:
    """A run's inputs: the datasets it logged."""

    dataset_inputs: list[DatasetInput] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """A run: `info`, `data` and `inputs`, as MLflow shapes it."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)

    def to_dictionary(self) -> dict[str, Any]:
        """A plain dict with `info` and `data` (metrics, params, tags), and `inputs` if any."""
        data = {"metrics": dict(self.data.metrics), "params": dict(self.data.params), "tags": dict(self.data.tags)}
        out: dict[str, Any] = {"info": asdict(self.info), "data": data}
        if self.inputs.dataset_inputs:  # as MLflow: present only when the run has inputs
            out["inputs"] = {
                "dataset_inputs": [
                    {"dataset": asdict(i.dataset), "tags": [asdict(t) for t in i.tags]}
                    for i in self.inputs.dataset_inputs
                ]
            }
        return out


@dataclass(frozen=True)
class FileInfo:
    """One entry of an artifact listing, as MLflow's `FileInfo` entity has it."""

    path: str
    is_dir: bool
    file_size: int | None = None
