"""MLflow's fluent API (`gitml.start_run`, `gitml.log_metric`, ...): the active runs of this
thread over the client. The current repository is `repository.py`'s, the active experiment
`experiments.py`'s; their names are importable from here too, as `gitml` resolves them."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import Any

from gitml import config
from gitml import constants as C
from gitml.entities import Run, RunStatus, ViewType
from gitml.exceptions import (
    GitMLError,
    InvalidParameterValue,
)
from gitml.fluent.experiments import (
    _active_experiment_id,
    _experiment_ids,
    create_experiment,
    delete_experiment,
    delete_experiment_tag,
    get_experiment,
    get_experiment_by_name,
    restore_experiment,
    search_experiments,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
)
from gitml.fluent.repository import (
    _client,
    _tracker,
    autolog,
    disable_system_metrics_logging,
    enable_system_metrics_logging,
    get_registry_uri,
    get_tracking_uri,
    get_tracking_uri_or_none,
    is_tracking_uri_set,
    set_registry_uri,
    set_tracking_uri,
)
from gitml.tracking.operations import RunOperations, operations_for
from gitml.tracking.source import runs_to_frame, source_tags
from gitml.tracking.tracker import Tracker

__all__ = [
    "ActiveRun",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_run",
    "delete_tag",
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "end_run",
    "flush",
    "flush_artifact_async_logging",
    "flush_async_logging",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "get_tracking_uri_or_none",
    "is_tracking_uri_set",
    "last_active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "reset",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

log = logging.getLogger("gitml")

_state = threading.local()
_last_run_id: str | None = None
_env_run_taken = False  # the environment's run id was joined already
_atexit_registered = False


def _stack() -> list[ActiveRun]:
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


class ActiveRun:
    """The run `start_run` returns: a context manager that ends it (FAILED on an exception)."""

    def __init__(self, run: Run, tracker: Tracker) -> None:
        self._run = run
        self._tracker = tracker
        self.writer = tracker.writer(run.info.run_id)
        self._source_thread: threading.Thread | None = None

    def _record_dirty_flag_later(self) -> None:
        # `git status` is the slowest part of starting a run: ask it off the caller's
        # path; the flag reaches the branch with the next flush (end_run waits for it).
        def work() -> None:
            dirty = self._tracker.repo.is_dirty()
            if dirty is None:
                return
            _, source = source_tags(self._tracker, dirty)
            self.writer.set_tag(C.TAG_GIT_DIRTY, str(dirty).lower())
            self.writer.set_meta(source=source)

        self._source_thread = threading.Thread(target=work, name="gitml-source", daemon=True)
        self._source_thread.start()

    def _wait_for_source(self) -> None:
        if self._source_thread is not None:
            self._source_thread.join(timeout=60)
            self._source_thread = None

    @property
    def info(self) -> Any:
        return self._run.info

    @property
    def data(self) -> Any:
        return self._run.data

    def __repr__(self) -> str:
        return f"<ActiveRun: run_id={self._run.info.run_id}, name={self._run.info.run_name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        if any(r is self for r in _stack()):
            end_run(status)


# -- tracking URI and experiments ---------------------------------------------------------
# -- runs ----------------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run (or resume one by `run_id`) and make it active; use it as a context manager."""
    global _atexit_registered, _last_run_id
    stack = _stack()
    if stack and not nested:
        raise GitMLError(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a nested run, call "
            "start_run with nested=True",
            "INVALID_STATE",
        )
    tracker = _tracker()
    client = _client()
    global _env_run_taken
    if not run_id and not stack and tracker.config.run_id and not _env_run_taken:
        # MLFLOW_RUN_ID / GITML_RUN_ID: the first start_run of the process joins that run
        # (as MLflow does, which then forgets the variable); later ones start new runs.
        run_id = tracker.config.run_id
        _env_run_taken = True
    if run_id:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active":
            raise GitMLError(f"cannot start run {run_id}: it is deleted", "INVALID_PARAMETER_VALUE")
        if experiment_id is not None and str(experiment_id) != run.info.experiment_id:
            raise InvalidParameterValue(f"run {run_id} belongs to experiment {run.info.experiment_id}, not {experiment_id}")
        tracker.update_run(run_id, status=RunStatus.RUNNING, end_time=None)
        for k, v in (tags or {}).items():
            client.set_tag(run_id, k, v)
        run = client.get_run(run_id)
    else:
        exp_id = str(experiment_id) if experiment_id is not None else _active_experiment_id()
        all_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        found_tags, source = source_tags(tracker)
        for k, v in found_tags.items():
            all_tags.setdefault(k, v)
        if tracker.config.user:
            all_tags.setdefault(C.TAG_USER, tracker.config.user)
        parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
        if parent:
            all_tags[C.TAG_PARENT_RUN_ID] = parent
        if description:
            all_tags[C.TAG_NOTE] = description
        name = run_name or all_tags.get(C.TAG_RUN_NAME) or tracker.config.run_name
        from gitml.tracking.names import random_run_name

        name = name or random_run_name()
        all_tags[C.TAG_RUN_NAME] = name
        tracker.experiments.ensure_default()
        new_id = tracker.create_run(exp_id, name, None, all_tags, all_tags.get(C.TAG_USER), source)
        run = tracker.started_run(new_id)
    active = ActiveRun(run, tracker)
    if not run_id:
        active._record_dirty_flag_later()
    stack.append(active)
    _last_run_id = run.info.run_id
    if not _atexit_registered:
        atexit.register(_end_runs_at_exit)
        _atexit_registered = True
    return active


def reset() -> None:
    """Forget the active runs, experiments and tracking URI (tests; a fresh start)."""
    global _last_run_id, _env_run_taken
    _stack().clear()
    _experiment_ids.clear()
    config.set_tracking_uri(None)
    _last_run_id = None
    _env_run_taken = False


def _end_runs_at_exit() -> None:
    # MLflow ends the active runs as FINISHED when the interpreter exits normally.
    while _stack():
        try:
            end_run()
        except Exception:
            _stack().pop()


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, or else the run this process ended last (a parent after its children)."""
    active = active_run()
    if active is not None:
        return _client().get_run(active.info.run_id)
    return _client().get_run(_last_run_id) if _last_run_id else None


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run and commit everything it logged."""
    stack = _stack()
    if not stack:
        return
    global _last_run_id
    run = stack[-1]
    try:
        run._wait_for_source()
        run._tracker.end_run(run.info.run_id, status)
    finally:
        stack.pop()
        _last_run_id = run.info.run_id  # MLflow: the run ended last is the last active one


def _get_or_start_run() -> ActiveRun:
    stack = _stack()
    return stack[-1] if stack else start_run()


def _writer_for(run_id: str | None) -> Any:
    if run_id is None:
        return _get_or_start_run().writer
    return _tracker().writer(run_id)


def _ops(synchronous: bool | None, tracker: Tracker | None = None) -> RunOperations | None:
    """None for a synchronous call; else what `.wait()` commits (the run's repository)."""
    if synchronous:
        return None
    if tracker is None:
        stack = _stack()
        tracker = stack[-1]._tracker if stack else _tracker()
    return operations_for(tracker, synchronous, tracker.config.async_logging)


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param of the active run (starting one if none); returns the value, or with
    `synchronous=False` a RunOperations to `.wait()` on (MLflow's shape)."""
    _get_or_start_run().writer.log_param(key, value)
    ops = _ops(synchronous)
    return value if ops is None else ops


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    """Log several params."""
    writer = _writer_for(run_id)
    for k, v in params.items():
        writer.log_param(k, v)
    return _ops(synchronous)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    **_: Any,
) -> RunOperations | None:
    """Log one metric point (microseconds: buffered and journaled, committed at the next flush).

    With `synchronous=False` (or MLFLOW_ENABLE_ASYNC_LOGGING) it returns a RunOperations
    whose `wait()` commits what is pending."""
    stack = _stack()
    if stack and run_id is None:
        active = stack[-1]
        active.writer.log_metric(key, value, timestamp if timestamp is not None else int(time.time() * 1000), step)
        tracker = active._tracker
    else:
        _writer_for(run_id).log_metric(key, value, timestamp if timestamp is not None else int(time.time() * 1000), step)
        tracker = _tracker()
    if synchronous or (synchronous is None and not tracker.config.async_logging):
        return None  # the hot path: a training loop's call costs no more than before
    return RunOperations([tracker.flush])


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    **_: Any,
) -> RunOperations | None:
    """Log several metrics at one step."""
    writer = _writer_for(run_id)
    ts = timestamp if timestamp is not None else int(time.time() * 1000)
    for k, v in metrics.items():
        writer.log_metric(k, v, ts, step)
    return _ops(synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    """Tag the active run."""
    run = _get_or_start_run()
    _client().set_tag(run.info.run_id, key, value)
    return _ops(synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    """Set several tags on the active run."""
    run = _get_or_start_run()
    client = _client()
    for k, v in tags.items():
        client.set_tag(run.info.run_id, k, v)
    return _ops(synchronous)


def delete_tag(key: str) -> None:
    """Delete a tag of the active run."""
    run = _get_or_start_run()
    _client().delete_tag(run.info.run_id, key)


def get_run(run_id: str) -> Run:
    """A run by id."""
    return _client().get_run(run_id)


def delete_run(run_id: str) -> None:
    """Delete a run (restorable)."""
    _client().delete_run(run_id)


def flush() -> None:
    """Commit everything logged so far in this process."""
    _tracker().flush()


def flush_async_logging() -> None:
    """MLflow's name for waiting on logged data: here, commit what is pending now."""
    flush()


def flush_artifact_async_logging() -> None:
    """MLflow's name for waiting on artifact uploads: artifacts are stored when logged."""
    flush()


def get_parent_run(run_id: str) -> Run | None:
    """The parent of a nested run, or None."""
    return _client().get_parent_run(run_id)


def restore_run(run_id: str) -> None:
    """Bring back a deleted run."""
    _client().restore_run(run_id)


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs matching a filter: a pandas DataFrame (when pandas is installed) or a list of Runs."""
    client = _client()
    ids: list[str] | None
    if experiment_names:
        ids = []
        for name in experiment_names:
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                ids.append(exp.experiment_id)
    elif experiment_ids:
        ids = [str(e) for e in ([experiment_ids] if isinstance(experiment_ids, (str, int)) else experiment_ids)]
    elif search_all_experiments:
        ids = None
    else:
        ids = [_active_experiment_id()]
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(ids, filter_string, run_view_type, min(max_results - len(runs), 50_000), order_by, token)
        runs.extend(page)
        token = page.token
        if not token or len(runs) >= max_results:
            break
    if output_format == "list":
        return runs
    if output_format != "pandas":
        raise InvalidParameterValue(f"unsupported output_format {output_format!r}: use 'pandas' or 'list'")
    try:
        import pandas as pd
    except ImportError:
        return runs
    return runs_to_frame(pd, runs)

