"""`log_input`: record a dataset as an input of the active run (MLflow's `mlflow.log_input`)."""

from __future__ import annotations

from typing import Any

from gitml import constants as C
from gitml.entities import DatasetInput, InputTag
from gitml.fluent.repository import _client
from gitml.fluent.tracking import _get_or_start_run

__all__ = ["log_input", "log_inputs"]


def log_input(
    dataset: Any, context: str | None = None, tags: dict[str, Any] | None = None, model: Any = None
) -> None:
    """Log a dataset (from `gitml.data`) as an input of the active run; `context` (training,
    eval ...) becomes the input's `mlflow.data.context` tag. `model` is accepted and ignored."""
    log_inputs([dataset], [context], [tags])


def log_inputs(
    datasets: list[Any] | None = None,
    contexts: list[str | None] | None = None,
    tags_list: list[dict[str, Any] | None] | None = None,
    models: Any = None,
) -> None:
    """Log several datasets as inputs of the active run, each with its context and tags."""
    datasets = list(datasets or [])
    contexts = list(contexts or [None] * len(datasets))
    tags_list = list(tags_list or [None] * len(datasets))
    run = _get_or_start_run()
    inputs = []
    for dataset, context, tags in zip(datasets, contexts, tags_list, strict=False):
        input_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if context:
            input_tags[C.TAG_DATASET_CONTEXT] = str(context)
        inputs.append(
            DatasetInput(_entity(dataset), tuple(InputTag(k, v) for k, v in input_tags.items()))
        )
    _client().log_inputs(run.info.run_id, datasets=inputs)


def _entity(dataset: Any) -> Any:
    to_entity = getattr(dataset, "to_entity", None) or getattr(dataset, "_to_mlflow_entity", None)
    return to_entity() if to_entity is not None else dataset
