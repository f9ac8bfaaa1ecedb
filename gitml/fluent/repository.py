"""The fluent floor's "current repository": the tracking URI (kept in gitml/config.py), the
Tracker and client it names, and MLflow's names that gitml accepts and ignores."""

from __future__ import annotations

import logging
import os
from typing import Any

from gitml import config
from gitml.fluent.sharing import install_autopush
from gitml.tracking.client import TrackingClient
from gitml.tracking.tracker import Tracker, get_tracker, local_tracking_uri

__all__ = [
    "autolog",
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "get_registry_uri",
    "get_tracking_uri",
    "get_tracking_uri_or_none",
    "is_tracking_uri_set",
    "set_registry_uri",
    "set_tracking_uri",
]

log = logging.getLogger("gitml")


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Track into the Git repository at `uri` (a path or file:// URI; None: the working dir's)."""
    local = local_tracking_uri(uri)
    if local is not None:
        get_tracker(local)  # fail now, with a clear message, if it is no repository
    config.set_tracking_uri(local)


def get_tracking_uri_or_none() -> str | None:
    """The tracking URI set by set_tracking_uri, GITML_TRACKING_URI or MLFLOW_TRACKING_URI, or None."""
    return local_tracking_uri(config.tracking_uri())


def autolog(*args: Any, **kwargs: Any) -> None:
    """Accepted so MLflow scripts run; gitml logs what the script logs, nothing automatically."""
    log.warning("gitml: autolog() is not supported; log params, metrics and models explicitly")


def get_tracking_uri() -> str:
    """The repository runs go to, as a path."""
    return str(_tracker().root)


def _tracker() -> Tracker:
    return install_autopush(get_tracker(get_tracking_uri_or_none()))


def _client() -> TrackingClient:
    return TrackingClient(tracker=_tracker())


def is_tracking_uri_set() -> bool:
    """Whether set_tracking_uri (or GITML_TRACKING_URI / MLFLOW_TRACKING_URI) chose the repository."""
    return get_tracking_uri_or_none() is not None


_registry_uri: str | None = None


def set_registry_uri(uri: str) -> None:
    """Accepted for MLflow scripts: the registry is the Git tags of the tracking repository."""
    global _registry_uri
    _registry_uri = uri


def get_registry_uri() -> str:
    """The registry's location: the tracking repository (its Git tags)."""
    return get_tracking_uri()


def enable_system_metrics_logging() -> None:
    """Accepted for MLflow scripts; gitml logs no system metrics."""
    log.warning("gitml: system metrics are not logged")


def disable_system_metrics_logging() -> None:
    """Accepted for MLflow scripts; gitml logs no system metrics."""
