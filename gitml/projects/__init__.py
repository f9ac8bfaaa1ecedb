"""MLprojects: `MLproject` files, `gitml run`, provenance and `gitml reproduce`.

`gitml.projects.run(uri, entry_point, parameters)` is MLflow's `mlflow.projects.run`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def run(*args: Any, **kwargs: Any) -> Any:
    """Run an entry point of a project as a gitml run (MLflow's `mlflow.projects.run`)."""
    from gitml.projects.runner import run as _run

    return _run(*args, **kwargs)
