"""gitml: MLflow's fluent API, with a Git repository as the tracking store.

`import gitml as mlflow` runs MLflow tracking scripts. Names resolve lazily so that
importing gitml stays cheap; each resolves once, then is an ordinary module attribute.
"""

from __future__ import annotations

import importlib
from typing import Any

from gitml import faces as _faces
from gitml.constants import VERSION as __version__

VERSION = __version__  # MLflow's name

# The flavors' faces (gitml.pytorch, gitml.sklearn, gitml.pyfunc ...) have no file: they are
# built from the flavor registry (gitml/models/flavors/) when first imported.
_faces.install()

_FLUENT = "gitml.fluent.tracking"
_LAZY: dict[str, str] = {
    # tracking (fluent)
    "set_tracking_uri": _FLUENT,
    "get_tracking_uri": _FLUENT,
    "set_experiment": _FLUENT,
    "create_experiment": _FLUENT,
    "get_experiment": _FLUENT,
    "get_experiment_by_name": _FLUENT,
    "search_experiments": _FLUENT,
    "delete_experiment": _FLUENT,
    "start_run": _FLUENT,
    "active_run": _FLUENT,
    "last_active_run": _FLUENT,
    "end_run": _FLUENT,
    "log_param": _FLUENT,
    "log_params": _FLUENT,
    "log_metric": _FLUENT,
    "log_metrics": _FLUENT,
    "set_tag": _FLUENT,
    "set_tags": _FLUENT,
    "delete_tag": _FLUENT,
    "get_run": _FLUENT,
    "search_runs": _FLUENT,
    "delete_run": _FLUENT,
    "set_experiment_tag": _FLUENT,
    "set_experiment_tags": _FLUENT,
    "flush": _FLUENT,
    "flush_async_logging": _FLUENT,
    "flush_artifact_async_logging": _FLUENT,
    "get_parent_run": _FLUENT,
    "restore_run": _FLUENT,
    "restore_experiment": _FLUENT,
    "delete_experiment_tag": _FLUENT,
    "is_tracking_uri_set": _FLUENT,
    "set_registry_uri": _FLUENT,
    "get_registry_uri": _FLUENT,
    "enable_system_metrics_logging": _FLUENT,
    "disable_system_metrics_logging": _FLUENT,
    "autolog": _FLUENT,
    "ActiveRun": _FLUENT,
    "MlflowClient": "gitml.client",
    "GitMLClient": "gitml.client",
    "MlflowException": "gitml.exceptions",
    "GitMLError": "gitml.exceptions",
    # projects (MLflow's mlflow.run is mlflow.projects.run)
    "run": "gitml.projects",
    "register_model": "gitml.fluent.registry",
    "search_registered_models": "gitml.fluent.registry",
    "search_model_versions": "gitml.fluent.registry",
    "set_model_version_tag": "gitml.fluent.registry",
    # artifacts (fluent)
    "log_artifact": "gitml.fluent.artifacts",
    "log_artifacts": "gitml.fluent.artifacts",
    "log_text": "gitml.fluent.artifacts",
    "log_dict": "gitml.fluent.artifacts",
    "log_figure": "gitml.fluent.artifacts",
    "log_image": "gitml.fluent.artifacts",
    "get_artifact_uri": "gitml.fluent.artifacts",
    "log_table": "gitml.fluent.tables",
    "log_input": "gitml.fluent.inputs",
    "log_inputs": "gitml.fluent.inputs",
    "load_table": "gitml.fluent.tables",
}

_SUBMODULES = {
    "artifacts",
    "ci",
    "cli",
    "client",
    "config",
    "constants",
    "data",
    "deploy",
    "entities",
    "exceptions",
    "faces",
    "fluent",
    "models",
    "projects",
    "registry",
    "serving",
    "store",
    "tracking",
    "types",
}

__all__ = sorted(_LAZY) + ["VERSION", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"gitml.{name}")
    if not name.startswith("_") and name in _faces.face_names():  # gitml.pytorch, gitml.pyfunc ...
        return importlib.import_module(f"gitml.{name}")
    raise AttributeError(f"module 'gitml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES | set(_faces.face_names()))
