"""`TrackingClient`: the tracking half of MLflow's client (experiments, runs, artifacts) over a Git repository.

`gitml.client.MlflowClient` composes it with the registry's `RegistryClient`; MLflow's path
`gitml.tracking.client.MlflowClient` (and `GitMLClient`) resolves to it lazily: a face name,
the one kind of upward reference the import table allows.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from gitml import config
from gitml import constants as C
from gitml.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.tracking import names
from gitml.tracking.operations import RunOperations, operations_for
from gitml.tracking.tracker import Tracker, get_tracker
from gitml.tracking.validation import (
    check_key,
    check_metric,
    check_param_value,
    check_run_id,
    check_tag_value,
)

__all__ = ["PagedList", "TrackingClient"]


class PagedList(list):  # type: ignore[type-arg]
    """A list with the token of the next page, as MLflow's search methods return."""

    def __init__(self, items: list[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token


def _ms() -> int:
    return int(time.time() * 1000)


class TrackingClient:
    """MLflow's tracking methods; `tracking_uri` is a path inside a Git repository.

    Default: the configured tracking URI (`gitml.set_tracking_uri`, GITML_TRACKING_URI), else
    the working directory's repository. `tracker` shares an open Tracker instead.
    """

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str] | None = None,
        registry_uri: str | None = None,
        *,
        tracker: Tracker | None = None,
    ) -> None:
        if tracker is None:
            tracker = get_tracker(tracking_uri if tracking_uri is not None else config.tracking_uri())
        self._tracking_uri = tracking_uri
        self._tracker: Tracker = tracker

    @property
    def tracking_uri(self) -> str:
        """The repository this client writes to."""
        return str(self._tracker.root)

    # -- experiments ---------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        self._tracker.experiments.ensure_default()
        return self._tracker.experiments.create(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """An experiment by id."""
        return self._tracker.experiments.get(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """An experiment by name, or None."""
        return self._tracker.experiments.by_name(name)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Experiments matching MLflow's experiment filter (name, tags, times)."""
        from gitml.tracking.experiment_search import search_experiments

        items, token = search_experiments(
            self._tracker.experiments.all(), view_type, max_results, filter_string, order_by, page_token
        )
        return PagedList(items, token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self._tracker.experiments.rename(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str, permanent: bool = False) -> None:
        """Delete an experiment: restorable, or with `permanent=True` gone from the tip at once."""
        if permanent:
            self._tracker.purge_experiment(str(experiment_id))
        else:
            self._tracker.experiments.set_lifecycle(str(experiment_id), LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo a (non-permanent) deletion."""
        self._tracker.experiments.set_lifecycle(str(experiment_id), LifecycleStage.ACTIVE)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        self._tracker.experiments.set_tag(str(experiment_id), key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Delete a tag from an experiment."""
        self._tracker.experiments.set_tag(str(experiment_id), key, "", delete=True)

    # -- runs ----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Create a RUNNING run (no source tags: the fluent start_run adds those)."""
        self._tracker.experiments.ensure_default()
        tags = {k: str(v) for k, v in (tags or {}).items()}
        run_name = run_name or tags.get(C.TAG_RUN_NAME) or names.random_run_name()
        tags[C.TAG_RUN_NAME] = run_name
        user = tags.get(C.TAG_USER) or self._tracker.config.user
        run_id = self._tracker.create_run(str(experiment_id), run_name, start_time, tags, user, {})
        return self._tracker.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics and tags."""
        return self._tracker.get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        """The parent of a nested run, or None."""
        parent = self.get_run(run_id).data.tags.get(C.TAG_PARENT_RUN_ID)
        return self.get_run(parent) if parent else None

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Change a run's status or name."""
        fields: dict[str, Any] = {}
        if status is not None:
            fields["status"] = RunStatus.from_string(status)
        if name is not None:
            fields["run_name"] = name
            self._tracker.writer(run_id).set_tag(C.TAG_RUN_NAME, name)
        if fields:
            self._tracker.update_run(run_id, **fields)

    def _ops(self, synchronous: bool | None) -> RunOperations | None:
        return operations_for(self._tracker, synchronous, self._tracker.config.async_logging)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        """Log a param (immutable: the same value again is fine, another is refused).

        Returns the value, or with `synchronous=False` a RunOperations, as MLflow does."""
        self._tracker.writer(run_id).log_param(key, value)
        ops = self._ops(synchronous)
        return value if ops is None else ops

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        **_: Any,
    ) -> RunOperations | None:
        """Log one metric point (buffered; visible to reads in this process at once)."""
        self._tracker.writer(run_id).log_metric(key, value, timestamp if timestamp is not None else _ms(), step)
        return self._ops(synchronous)

    def log_batch(
        self,
        run_id: str,
        metrics: list[Metric] = (),  # type: ignore[assignment]
        params: list[Param] = (),  # type: ignore[assignment]
        tags: list[RunTag] = (),  # type: ignore[assignment]
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """Log many metrics, params and tags at once; any number of each.

        MLflow's client splits a batch past its server's limits (1000 metrics, 100 params,
        100 tags per request) into several requests; gitml has no request to split, so the
        whole batch is checked first (nothing is written when one item is bad) and buffered.
        """
        metrics, params, tags = list(metrics or []), list(params or []), list(tags or [])
        writer = self._tracker.writer(run_id)
        seen: dict[str, str] = {}
        for p in params:
            text = check_param_value(check_key(p.key, "param"), p.value)
            if seen.get(p.key, text) != text:
                raise InvalidParameterValue(f"duplicate param '{p.key}' with different values in one batch")
            seen[p.key] = text
        writer.check_params(seen)
        for t in tags:
            check_tag_value(check_key(t.key, "tag"), t.value)
        for m in metrics:
            check_key(m.key)
            check_metric(m.key, m.value, m.step)
        for k, v in seen.items():
            writer.log_param(k, v)
        for t in tags:
            self.set_tag(run_id, t.key, t.value)
        now = _ms()
        for m in metrics:
            writer.log_metric(m.key, m.value, m.timestamp if m.timestamp is not None else now, m.step)
        return self._ops(synchronous)

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
        """Set a run tag."""
        self._tracker.writer(run_id).set_tag(key, value)
        if key == C.TAG_RUN_NAME:
            self._tracker.writer(run_id).set_meta(run_name=str(value))
        return self._ops(synchronous)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a run tag; unknown keys are an error, as in MLflow."""
        run = self._tracker.get_run(run_id)
        if key not in run.data.tags:
            raise ResourceDoesNotExist(f"no tag with name '{key}' in run {run_id}")
        self._tracker.writer(run_id).delete_tag(key)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """End a run (FINISHED unless told otherwise) and commit everything it logged."""
        self._tracker.end_run(run_id, status or RunStatus.FINISHED, end_time)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged point of a metric."""
        return self._tracker.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: list[str] | str | None = None,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Runs matching MLflow's filter grammar, ordered, one page at a time."""
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [str(experiment_ids)]
        runs, token = self._tracker.index().search(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )
        return PagedList(runs, token)

    def delete_run(self, run_id: str, permanent: bool = False) -> None:
        """Delete a run: restorable, or with `permanent=True` gone from the tip at once."""
        if permanent:
            self._tracker.purge_run(run_id)
        else:
            self._tracker.set_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        """Undo a (non-permanent) deletion."""
        self._tracker.set_lifecycle(run_id, LifecycleStage.ACTIVE)

    def recover_runs(self) -> list[str]:
        """Commit the journals of crashed processes; returns the runs recovered."""
        return self._tracker.recover(force=True)

    def flush(self) -> None:
        """Commit everything logged so far."""
        self._tracker.flush()

    def log_inputs(self, run_id: str, datasets: Any = None, models: Any = None) -> None:
        """Record dataset inputs of a run (`DatasetInput` entities, or datasets from
        `gitml.data`); the same dataset in the same context is recorded once. `models` is
        accepted for compatibility and not recorded."""
        from gitml.tracking.inputs import record_inputs, to_pairs

        check_run_id(run_id)
        record_inputs(self._tracker, run_id, to_pairs(datasets or []))

    # -- artifacts (gitml.artifacts.api; DVC is imported only when one is logged or read) --
    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Log a local file as an artifact of the run, under `artifact_path`."""
        from gitml.artifacts import api

        check_run_id(run_id)
        api.log_run_artifact(self._tracker, run_id, local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Log the contents of a local folder as artifacts of the run."""
        from gitml.artifacts import api

        check_run_id(run_id)
        api.log_run_artifacts(self._tracker, run_id, local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log a string as a text file artifact of the run."""
        from gitml.artifacts import api

        check_run_id(run_id)
        api.log_run_bytes(self._tracker, run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Log a dict as a JSON (or, for `.yaml`/`.yml`, YAML) artifact of the run."""
        from gitml.artifacts import api

        check_run_id(run_id)
        api.log_run_bytes(self._tracker, run_id, api.dict_bytes(dictionary, artifact_file), artifact_file)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Log a matplotlib (or plotly) figure as an artifact of the run."""
        from gitml.artifacts import api

        check_run_id(run_id)
        api.log_run_figure(self._tracker, run_id, figure, artifact_file, save_kwargs)

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """Log a numpy array or PIL image: at `artifact_file`, or per step under `key` (MLflow's
        `images/` layout with a preview; see gitml.tracking.images). Always synchronous."""
        from gitml.tracking.images import log_image

        log_image(self._tracker, run_id, image, artifact_file, key, step, timestamp)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Any]:
        """The FileInfo entries directly under artifact folder `path` of the run."""
        from gitml.artifacts import api

        check_run_id(run_id)
        return api.list_artifacts(self._tracker, run_id, path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Copy an artifact file or folder of the run to a local path (fetched from the remote if needed)."""
        from gitml.artifacts import api

        check_run_id(run_id)
        return api.download_artifacts(self._tracker, run_id, path, dst_path)


_ = (C, re)


def __getattr__(name: str) -> Any:
    if name in ("MlflowClient", "GitMLClient"):
        from gitml import client

        return getattr(client, name)
    raise AttributeError(f"module 'gitml.tracking.client' has no attribute {name!r}")
