"""Helpers every flavor shares: model folders, input examples, requirements, code by import path."""

from __future__ import annotations

import contextlib
import importlib
import json
import platform
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.exceptions import (
    CorruptMetadata,
    InvalidParameterValue,
    MissingDependency,
    ResourceAlreadyExists,
)
from gitml.models.environment import env_entry, installed_version, read_conda_env, write_environment
from gitml.models.model import PYFUNC_FLAVOR

if TYPE_CHECKING:
    from gitml.models.model import Model
    from gitml.models.signature import ModelSignature

__all__ = [
    "finish_model",
    "CODE_DIR",
    "INPUT_EXAMPLE_FILE",
    "REQUIREMENTS_FILE",
    "convert_input_example_to_serving_input",
    "copy_code_paths",
    "dir_size",
    "load_input_example",
    "mlflow_keywords",
    "new_model_dir",
    "object_path",
    "prepare_model_dir",
    "require",
    "save_input_example",
    "write_requirements",
]

CODE_DIR = "code"
INPUT_EXAMPLE_FILE = "input_example.json"
REQUIREMENTS_FILE = "requirements.txt"


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or raise MissingDependency naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(module, extra) from e


def prepare_model_dir(path: Path | str) -> Path:
    """Create the model folder; refuse one that exists and is not empty (never overwrite a model)."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ResourceAlreadyExists(f"{target} already exists and is not empty")
    target.mkdir(parents=True, exist_ok=True)
    return target


@contextlib.contextmanager
def new_model_dir(path: Path | str) -> Iterator[Path]:
    """The model folder to fill; if saving fails, it is removed again (no half-written model)."""
    existed = Path(path).is_dir()
    target = prepare_model_dir(path)
    try:
        yield target
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        if existed:
            target.mkdir()
        raise


def dir_size(path: Path) -> int:
    """Total bytes of the files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _pin(requirement: str) -> str:
    name = requirement.strip()
    if any(c in name for c in "=<>~!@ ;[") or not name:
        return name  # already a specifier: the user's word stands
    version = installed_version(name)
    return f"{name}=={version}" if version else name


def write_requirements(
    path: Path,
    defaults: Iterable[str],
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
) -> list[str]:
    """requirements.txt, as MLflow's flavors write it: `pip_requirements` replaces the flavor's
    defaults, `extra_pip_requirements` adds to them; bare names are pinned to what is installed.
    Returns the lines written."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidParameterValue("give pip_requirements or extra_pip_requirements, not both")
    if pip_requirements is not None:
        names = list(pip_requirements)
    else:
        names = ["gitml", *defaults, *(extra_pip_requirements or [])]
    lines = [line for line in (_pin(n) for n in dict.fromkeys(names)) if line]
    (path / REQUIREMENTS_FILE).write_text("\n".join(lines) + "\n")
    return lines


def mlflow_keywords(
    code_paths: Sequence[str | Path] | None,
    code_path: Sequence[str | Path] | None,
    conda_env: Any,
    pip_requirements: Iterable[str] | None,
    extra_pip_requirements: Iterable[str] | None,
) -> tuple[list[str | Path] | None, list[str] | None]:
    """MLflow's older spellings folded in: `code_path` (for `code_paths`) and `conda_env`
    (its pip dependencies become `pip_requirements`). Returns (code_paths, pip_requirements)."""
    if code_path is not None and code_paths is not None:
        raise InvalidParameterValue("give code_paths or code_path (its older spelling), not both")
    paths = code_paths if code_paths is not None else code_path
    if isinstance(paths, str | Path):
        paths = [paths]
    pip = list(pip_requirements) if pip_requirements is not None else None
    if conda_env is not None:
        if pip is not None or extra_pip_requirements is not None:
            raise InvalidParameterValue(
                "give conda_env or pip_requirements/extra_pip_requirements, not both (as MLflow)"
            )
        pip = read_conda_env(conda_env)
    return (list(paths) if paths is not None else None), pip


# ---------------------------------------------------------------- code by import path


def object_path(obj: Any, code_paths: Sequence[str | Path] | None = None) -> str:
    """`module:qualname` of a class (or function), importable at load time.

    A class defined in the running script (`__main__`) is named by the script's module name
    when the script is shipped in `code_paths`; otherwise it cannot be found again.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname:
        raise InvalidParameterValue(
            f"{obj!r} is not importable by name (a local or dynamic class): define it at the top "
            "level of a module"
        )
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        shipped = {Path(p).resolve() for p in code_paths or []}
        if main_file and Path(main_file).resolve() in shipped:
            module = Path(main_file).stem
        else:
            raise InvalidParameterValue(
                f"{qualname} is defined in the running script (__main__), which a loader cannot "
                "import: move it to a module, or pass the script in code_paths=[...]"
            )
    return f"{module}:{qualname}"


def copy_code_paths(code_paths: Sequence[str | Path] | None, model_dir: Path) -> str | None:
    """Copy files and folders into `code/` of the model; returns the folder name, or None."""
    if not code_paths:
        return None
    dest = model_dir / CODE_DIR
    dest.mkdir()
    for p in code_paths:
        src = Path(p)
        if not src.exists():
            raise InvalidParameterValue(f"code path {src} does not exist")
        if src.is_dir():
            shutil.copytree(src, dest / src.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / src.name)
    return CODE_DIR


# ---------------------------------------------------------------- input examples


def _jsonable(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def save_input_example(model_dir: Path, example: Any) -> dict[str, Any] | None:
    """Write `input_example.json` (MLflow's formats) and return its `saved_input_example_info`."""
    if example is None:
        return None
    if type(example).__module__.startswith("torch") and hasattr(example, "detach"):
        example = example.detach().cpu().numpy()
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    info: dict[str, Any] = {"artifact_path": INPUT_EXAMPLE_FILE}
    if pd is not None and isinstance(example, pd.DataFrame):
        payload: Any = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
        payload.pop("index", None)
        info.update(type="dataframe", pandas_orient="split")
    elif np is not None and isinstance(example, np.ndarray):
        payload = {"inputs": example.tolist()}
        info.update(type="ndarray", format="tf-serving")
    elif np is not None and isinstance(example, Mapping) and example and all(
        isinstance(v, np.ndarray) for v in example.values()
    ):
        payload = {"inputs": _jsonable(example)}
        info.update(type="tensor_dict", format="tf-serving")
    else:
        payload = _jsonable(example)
        info.update(type="json_object")
    try:
        text = json.dumps(payload)
    except (TypeError, ValueError) as e:
        raise InvalidParameterValue(f"input_example is not JSON-serialisable: {e}") from e
    (model_dir / INPUT_EXAMPLE_FILE).write_text(text)
    return info


def _is_scalar(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return isinstance(value, str | int | float | bool) or (np is not None and isinstance(value, np.generic))


def _is_records(example: Any) -> bool:
    if isinstance(example, Mapping):
        return bool(example) and all(_is_scalar(v) for v in example.values())
    return isinstance(example, list) and bool(example) and all(
        isinstance(r, Mapping) and all(_is_scalar(v) for v in r.values()) for r in example
    )


def convert_input_example_to_serving_input(input_example: Any) -> str | None:
    """The `/invocations` JSON body (MLflow's formats) that scores `input_example`; None for
    None. A `(data, params)` tuple adds the body's `params`."""
    if input_example is None:
        return None
    params = None
    if isinstance(input_example, tuple) and len(input_example) == 2 and isinstance(input_example[1], Mapping):
        input_example, params = input_example
    if type(input_example).__module__.startswith("torch") and hasattr(input_example, "detach"):
        input_example = input_example.detach().cpu().numpy()
    pd = sys.modules.get("pandas")
    payload: dict[str, Any]
    if pd is not None and isinstance(input_example, pd.DataFrame):
        split = json.loads(input_example.to_json(orient="split", index=False, date_format="iso"))
        payload = {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
    elif _is_records(input_example):  # one row (a dict of scalars) or a list of rows: a table
        rows = [input_example] if isinstance(input_example, Mapping) else input_example
        payload = {"dataframe_records": _jsonable(rows)}
    else:  # arrays, named tensors, lists and dicts of columns are all MLflow's `inputs`
        payload = {"inputs": _jsonable(input_example)}
    if params:
        payload["params"] = _jsonable(params)
    try:
        return json.dumps(payload)
    except (TypeError, ValueError) as e:
        raise InvalidParameterValue(f"input_example is not JSON-serialisable: {e}") from e


def load_input_example(model_dir: Path, info: Mapping[str, Any] | None) -> Any:
    """Read back the input example as the type it was saved from (None when there is none)."""
    if not info:
        return None
    path = model_dir / str(info["artifact_path"])
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CorruptMetadata(f"input example {path} is missing or not JSON: {e}") from e
    kind = info.get("type")
    if kind == "dataframe":
        pd = require("pandas", "pandas")
        return pd.DataFrame(payload["data"], columns=payload["columns"])
    if kind == "ndarray":
        np = require("numpy", "torch")
        return np.asarray(payload["inputs"])
    if kind == "tensor_dict":
        np = require("numpy", "torch")
        return {k: np.asarray(v) for k, v in payload["inputs"].items()}
    return payload


def finish_model(
    meta: Model,
    model_dir: Path,
    *,
    signature: ModelSignature | None,
    input_example: Any,
    metadata: dict[str, Any] | None,
    requirements: Iterable[str],
    pip_requirements: Iterable[str] | None,
    extra_pip_requirements: Iterable[str] | None,
) -> None:
    """The last steps every flavor's save_model shares: signature, input example,
    metadata, requirements.txt with python_env.yaml and conda.yaml, size, and the MLmodel file
    itself; the pyfunc section gets the Python version and environment."""
    meta.signature = signature
    meta.saved_input_example_info = save_input_example(model_dir, input_example)
    meta.metadata = metadata
    pip = pip_requirements if pip_requirements is None or isinstance(pip_requirements, list) else list(pip_requirements)
    lines = write_requirements(model_dir, requirements, pip, extra_pip_requirements)
    write_environment(model_dir, lines, pip)
    pyfunc = meta.flavors.get(PYFUNC_FLAVOR)
    if isinstance(pyfunc, dict):
        pyfunc.setdefault("python_version", platform.python_version())
        pyfunc["env"] = env_entry()
    meta.model_size_bytes = dir_size(model_dir)
    meta.save(model_dir)
