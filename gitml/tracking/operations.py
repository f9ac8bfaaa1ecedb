"""What MLflow's `synchronous=False` logging calls return: an operation to `.wait()` on.

gitml's logging is already asynchronous where MLflow's is not: a call buffers the value and
journals it (crash-safe at once), and a background flush commits it to the metadata branch.
So `synchronous=False` does the same work as `synchronous=True` and returns a
`RunOperations` whose `wait()` commits what is pending now, the point at which MLflow's
asynchronous queue would have reached its server (other processes and clones can read it).
Bad values are refused at the call, not at `wait()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gitml.tracking.tracker import Tracker

__all__ = ["RunOperations", "get_combined_run_operations", "operations_for"]


class RunOperations:
    """Pending logging operations of one or more runs (MLflow's shape: `wait()`)."""

    def __init__(self, flushes: Iterable[Callable[[], None]] = ()) -> None:
        self._flushes = list(flushes)

    def wait(self) -> None:
        """Block until the logged data is committed to the metadata branch."""
        for flush in self._flushes:
            flush()

    def __repr__(self) -> str:
        return f"<RunOperations: {len(self._flushes)} pending>"


def get_combined_run_operations(run_operations_list: Iterable[RunOperations | None]) -> RunOperations:
    """One operation whose `wait()` waits for all of `run_operations_list` (None entries skipped)."""
    flushes: list[Callable[[], None]] = []
    for ops in run_operations_list:
        if ops is not None:
            flushes.extend(f for f in ops._flushes if f not in flushes)
    return RunOperations(flushes)


def operations_for(tracker: Tracker, synchronous: bool | None, default_async: bool = False) -> RunOperations | None:
    """None for a synchronous call (MLflow returns nothing then), else an operation that
    commits `tracker`'s pending writes on `wait()`. `synchronous=None` follows `default_async`
    (MLFLOW_ENABLE_ASYNC_LOGGING, read in gitml.config)."""
    if synchronous is None:
        synchronous = not default_async
    if synchronous:
        return None
    return RunOperations([tracker.flush])
