"""`MlflowClient` (also `GitMLClient`): MLflow's client, composed of the tracking and registry clients.

A face, like `gitml.pytorch`: it sits on the fluent floor of the import table. Each method is
the tracking client's or the registry client's own (same signature and docstring); both
share one Tracker, so a client opens the repository once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gitml import config
from gitml.fluent.sharing import install_autopush
from gitml.registry.client import RegistryClient
from gitml.tracking.client import PagedList, TrackingClient
from gitml.tracking.tracker import Tracker, get_tracker

__all__ = ["GitMLClient", "MlflowClient", "PagedList"]


class MlflowClient:
    """MLflow's client API; `tracking_uri` is a path inside a Git repository.

    Default: the configured tracking URI (`gitml.set_tracking_uri`, GITML_TRACKING_URI), else
    the working directory's repository. The registry is that repository's Git tags.
    """

    def __init__(self, tracking_uri: str | os.PathLike[str] | None = None, registry_uri: str | None = None) -> None:
        tracker = get_tracker(tracking_uri if tracking_uri is not None else config.tracking_uri())
        install_autopush(tracker)
        self._tracker: Tracker = tracker
        self._tracking_client = TrackingClient(tracking_uri, registry_uri, tracker=tracker)
        self._registry_client = RegistryClient(tracker=tracker)

    @property
    def tracking_uri(self) -> str:
        """The repository this client writes to."""
        return self._tracking_client.tracking_uri

    def __repr__(self) -> str:
        return f"<MlflowClient: {self.tracking_uri}>"

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Log a DataFrame or dict of columns as a table artifact of the run (JSON, or Parquet
        for `.parquet`); rows are appended when the run already has that table."""
        from gitml.fluent.tables import log_table_to

        log_table_to(self._tracker, run_id, data, artifact_file)

    def load_table(
        self,
        experiment_id: str,
        artifact_file: str,
        run_ids: list[str] | None = None,
        extra_columns: list[str] | None = None,
    ) -> Any:
        """One DataFrame of the table `artifact_file` from `run_ids` (default: every run of the
        experiment that logged it); `extra_columns=["run_id"]` adds each row's run id."""
        from gitml.fluent.tables import load_table_from

        return load_table_from(self._tracker, [str(experiment_id)], artifact_file, run_ids, extra_columns)

    if TYPE_CHECKING:  # the methods are attached below, from the two clients

        def __getattr__(self, name: str) -> Any: ...


def _delegate(part: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: MlflowClient, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, part), method.__name__)(*args, **kwargs)

    return call


def _compose() -> None:
    # Registry first, so a name both define (none today) is the tracking client's.
    for part, cls in (("_registry_client", RegistryClient), ("_tracking_client", TrackingClient)):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                setattr(MlflowClient, name, _delegate(part, member))
        for base in cls.__mro__[1:-1]:  # the registry's stage/alias methods live in a base class
            for name, member in vars(base).items():
                if not name.startswith("_") and callable(member) and name not in vars(cls):
                    setattr(MlflowClient, name, _delegate(part, member))


_compose()

GitMLClient = MlflowClient
