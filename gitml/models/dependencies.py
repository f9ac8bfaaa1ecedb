"""`mlflow.pyfunc.get_model_dependencies`: the path of a model's requirements.txt or conda.yaml."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from gitml.exceptions import GitMLError, InvalidParameterValue, ResourceDoesNotExist
from gitml.models.environment import CONDA_FILE, read_conda_env
from gitml.models.folder import REQUIREMENTS_FILE
from gitml.models.uri import is_remote_uri, model_file

__all__ = ["get_model_dependencies"]

_FILES = {"pip": REQUIREMENTS_FILE, "conda": CONDA_FILE}


def _fetch(model_uri: str | Path, name: str) -> Path | None:
    """The model's file `name` at a path that outlives this call; None when the model has none."""
    remote = is_remote_uri(model_uri)
    try:
        with model_file(model_uri, name) as path:
            if not path.is_file():
                return None
            if not remote:
                return path
            # model_file removes its download on exit: the caller gets a copy of its own.
            keep = Path(tempfile.mkdtemp(prefix="gitml-deps-")) / name
            shutil.copyfile(path, keep)
            return keep
    except ResourceDoesNotExist:
        if not remote:
            raise  # no model at that path at all
        return None


def get_model_dependencies(model_uri: str | Path, format: str = "pip") -> str:
    """The local path of the model's `requirements.txt` (`format="pip"`) or `conda.yaml`
    (`format="conda"`); a `runs:/` or `models:/` model's file is downloaded alone, to a
    folder of its own that stays after the call. A model without a requirements.txt gets
    one written from the pip section of its conda.yaml, as MLflow does."""
    if format not in _FILES:
        raise InvalidParameterValue(f"Illegal format argument {format!r}: expected 'pip' or 'conda'")
    path = _fetch(model_uri, _FILES[format])
    if path is not None:
        return str(path)
    conda = _fetch(model_uri, CONDA_FILE) if format == "pip" else None
    if conda is None:
        raise ResourceDoesNotExist(f"the model at {str(model_uri)!r} has no {_FILES[format]}")
    try:
        pip = read_conda_env(conda)
    except GitMLError as e:
        raise InvalidParameterValue(f"the model's {CONDA_FILE} cannot be read: {e}") from e
    out = Path(tempfile.mkdtemp(prefix="gitml-deps-")) / REQUIREMENTS_FILE
    out.write_text("".join(f"{line}\n" for line in pip))
    return str(out)
