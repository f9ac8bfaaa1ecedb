"""The fluent floor's active experiment (one per repository) and MLflow's experiment functions."""

from __future__ import annotations

from typing import Any

from gitml import constants as C
from gitml.entities import Experiment, ViewType
from gitml.exceptions import GitMLError, InvalidParameterValue, ResourceAlreadyExists
from gitml.fluent.repository import _client, _tracker

__all__ = [
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "get_experiment",
    "get_experiment_by_name",
    "restore_experiment",
    "search_experiments",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
]

_experiment_ids: dict[str, str] = {}  # repository root -> active experiment id


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment active, creating it by name if needed."""
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterValue("set_experiment takes exactly one of experiment_name or experiment_id")
    client = _client()
    if experiment_id is not None:
        exp = client.get_experiment(str(experiment_id))
    else:
        assert experiment_name is not None
        found = client.get_experiment_by_name(experiment_name)
        if found is None:
            try:
                client.create_experiment(experiment_name)
            except ResourceAlreadyExists:
                pass  # another process created it a moment ago
            found = client.get_experiment_by_name(experiment_name)
        assert found is not None
        exp = found
    if exp.lifecycle_stage != "active":
        raise GitMLError(
            f"cannot set a deleted experiment '{exp.name}' as the active experiment: "
            "restore it (gitml experiments restore) or delete it permanently",
            "INVALID_PARAMETER_VALUE",
        )
    _experiment_ids[str(client._tracker.root)] = exp.experiment_id
    return exp


def _active_experiment_id() -> str:
    tracker = _tracker()
    if str(tracker.root) in _experiment_ids:
        return _experiment_ids[str(tracker.root)]
    name, exp_id = tracker.config.experiment_name, tracker.config.experiment_id
    if name:
        # MLflow's rule: the name wins (created when missing); an id set beside it must agree
        exp = set_experiment(name)
        if exp_id and str(exp_id) != exp.experiment_id:
            raise InvalidParameterValue(
                f"the environment names experiment {name!r} (id {exp.experiment_id}) and experiment id "
                f"{exp_id}, which differ: set only one of MLFLOW_EXPERIMENT_NAME / MLFLOW_EXPERIMENT_ID "
                "(or GITML_EXPERIMENT_NAME / GITML_EXPERIMENT_ID)"
            )
        return exp.experiment_id
    if exp_id:
        return str(exp_id)
    tracker.experiments.ensure_default()
    return C.DEFAULT_EXPERIMENT_ID


def create_experiment(name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None) -> str:
    """Create an experiment and return its id."""
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """An experiment by id."""
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """An experiment by name, or None."""
    return _client().get_experiment_by_name(name)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """Experiments matching a filter."""
    return list(_client().search_experiments(view_type, max_results, filter_string, order_by))


def delete_experiment(experiment_id: str) -> None:
    """Delete an experiment (restorable)."""
    _client().delete_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    """Tag the active experiment."""
    _client().set_experiment_tag(_active_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Tag the active experiment with several tags."""
    for k, v in tags.items():
        set_experiment_tag(k, v)


def restore_experiment(experiment_id: str) -> None:
    """Bring back a deleted experiment."""
    _client().restore_experiment(experiment_id)


def delete_experiment_tag(key: str) -> None:
    """Delete a tag of the active experiment."""
    _client().delete_experiment_tag(_active_experiment_id(), key)
