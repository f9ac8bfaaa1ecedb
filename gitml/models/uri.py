"""Model URIs (a path, `runs:/`, `models:/`) resolved to a local model folder, in one place."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlparse

from gitml import config
from gitml.artifacts.uri import resolve_runs_uri
from gitml.exceptions import InvalidParameterValue, MissingDependency, ResourceDoesNotExist
from gitml.registry.resolve import resolve_models_uri
from gitml.tracking.tracker import get_tracker

__all__ = [
    "RunsUri",
    "is_remote_uri",
    "model_file",
    "parse_runs_uri",
    "resolve_model_uri",
    "temporary_model_dir",
]

class RunsUri(NamedTuple):
    """A parsed `runs:/<run_id>/<path>` URI."""

    run_id: str
    path: str


def parse_runs_uri(uri: str) -> RunsUri:
    """Split `runs:/<run_id>/<path>`; the path is normalised and confined (`..` is refused)."""
    run_id, path = resolve_runs_uri(uri)
    return RunsUri(run_id, path)


def _download(run_id: str, path: str, dst: Path | str | None) -> Path:
    try:
        from gitml.artifacts.api import download_artifacts
    except ImportError as e:
        if isinstance(e, ModuleNotFoundError) and e.name and e.name.startswith("gitml"):
            raise InvalidParameterValue(f"runs:/ URIs need gitml's artifact store ({e})") from e
        raise MissingDependency(getattr(e, "name", None) or "dvc", "artifacts") from e
    # the repository set_tracking_uri / GITML_TRACKING_URI names, as for every other read
    tracker = get_tracker(config.tracking_uri())
    local = download_artifacts(tracker, run_id, path, dst_path=str(dst) if dst else None)
    return Path(local)


def _resolve_runs(uri: str, dst: Path | str | None) -> Path:
    parsed = parse_runs_uri(uri)
    return _download(parsed.run_id, parsed.path, dst)


def _models_target(uri: str) -> str:
    """What the registry says a `models:/` URI names: a `runs:/` URI or a local path."""
    target = str(resolve_models_uri(uri))
    if target.startswith("models:/"):
        raise InvalidParameterValue(f"{uri!r} resolves to another models:/ URI ({target})")
    return target


def _resolve_models(uri: str, dst: Path | str | None) -> Path:
    return resolve_model_uri(_models_target(uri), dst)


@contextlib.contextmanager
def model_file(uri: str | Path, name: str = "MLmodel") -> Iterator[Path]:
    """One file of the model at `uri` (default its MLmodel), fetched alone for a remote URI:
    reading a 100 MB model's description does not download its weights."""
    text = str(uri)
    if text.startswith("models:/"):
        text = _models_target(text)
    if not text.startswith("runs:/"):
        folder = resolve_model_uri(text)
        yield folder / name if folder.is_dir() else folder
        return
    parsed = parse_runs_uri(text)
    root = Path(tempfile.mkdtemp(prefix="gitml-model-"))
    try:
        yield _download(parsed.run_id, f"{parsed.path}/{name}".lstrip("/"), root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def resolve_model_uri(uri: str | Path, dst: Path | str | None = None) -> Path:
    """The local folder holding the model that `uri` names.

    Accepts a local path (or `file://`), `runs:/<run_id>/<path>` (downloaded through the
    artifact store, to `dst` if given) and `models:/<name>/<version|stage>` or
    `models:/<name>@<alias>` (resolved by the registry to a `runs:/` URI).
    """
    text = str(uri)
    if text.startswith("runs:/"):
        return _resolve_runs(text, dst)
    if text.startswith("models:/"):
        return _resolve_models(text, dst)
    if text.startswith("file://"):
        text = unquote(urlparse(text).path)
    elif "://" in text:
        raise InvalidParameterValue(
            f"unsupported model URI {text!r}: use a local path, runs:/ or models:/"
        )
    path = Path(text).expanduser()
    if path.is_file() and path.name == "MLmodel":
        path = path.parent
    if not path.exists():
        raise ResourceDoesNotExist(f"no model at {path}")
    return path.resolve()


def is_remote_uri(uri: str | Path) -> bool:
    """Whether loading `uri` downloads a copy (runs:/ and models:/), rather than reading a path."""
    return str(uri).startswith(("runs:/", "models:/"))


@contextlib.contextmanager
def temporary_model_dir(uri: str | Path, dst: Path | str | None = None) -> Iterator[tuple[Path, list[bool]]]:
    """Resolve `uri` for loading; a download made only for this load is removed afterwards.

    Yields (local folder, keep): set `keep[0] = True` when the loaded model still reads its
    files after loading (a PythonModel's artifacts). Without this, every load of a `runs:/`
    URI would leave a full copy of the model in the temporary folder.
    """
    temporary = dst is None and is_remote_uri(uri)
    root = Path(tempfile.mkdtemp(prefix="gitml-model-")) if temporary else None
    keep = [not temporary]
    try:
        yield resolve_model_uri(uri, root if root is not None else dst), keep
    finally:
        if root is not None and not keep[0]:
            # Memory-mapped weights stay readable after their file is unlinked (POSIX).
            shutil.rmtree(root, ignore_errors=True)

