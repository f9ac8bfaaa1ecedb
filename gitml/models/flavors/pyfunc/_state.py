"""A PythonModel's attributes without pickle: JSON values in one file; arrays as `.npy` (read
with allow_pickle=False), tensors through torch's weights_only loader, scikit-learn objects
through skops, functions and classes as extracted source. Anything else is refused by name."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.models.code import ShippedCode
from gitml.models.shipping import ship_objects

__all__ = ["STATE_DIR", "STATE_FILE", "load_state", "save_state"]

STATE_FILE = "python_model.json"
STATE_DIR = "python_model"
_KINDS = ("npy", "tensor", "skops", "code")


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _kind(value: Any) -> str | None:
    np = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    if np is not None and isinstance(value, np.ndarray) and value.dtype != object:
        return "npy"
    if torch is not None and isinstance(value, torch.Tensor):
        return "tensor"
    if inspect.isfunction(value) or inspect.isclass(value):
        return "code"
    module = type(value).__module__ or ""
    if module.startswith("sklearn.") or (hasattr(value, "get_params") and hasattr(value, "fit")):
        return "skops"
    return None


def _no_form(owner: str, name: str, value: Any) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"{owner}.{name} is a {type(value).__module__}.{type(value).__name__}, which has no safe "
        "form to save (JSON values, numpy arrays, tensors, scikit-learn objects, functions and "
        "classes do): save it to a file, pass it as artifacts={...} and read it in load_context, "
        "or save with serialization='pickle' (loading then needs an explicit opt-in)"
    )


def save_state(
    python_model: Any, model_dir: Path, code: str | None, code_paths: Sequence[str | Path] | None
) -> tuple[dict[str, Any], str | None]:
    """Save the instance's attributes; returns (flavor conf entries, code folder)."""
    state = dict(getattr(python_model, "__dict__", None) or {})
    owner = type(python_model).__name__
    plain: dict[str, Any] = {}
    stored: dict[str, dict[str, str]] = {}
    shipped_objs: list[tuple[str, Any]] = []
    for name, value in state.items():
        if _is_json(value):
            plain[name] = value
            continue
        kind = _kind(value)
        if kind is None or not name.isidentifier():
            raise _no_form(owner, name, value)
        folder = model_dir / STATE_DIR
        folder.mkdir(exist_ok=True)
        if kind == "npy":
            import numpy as np

            np.save(folder / f"{name}.npy", value, allow_pickle=False)
            stored[name] = {"kind": kind, "path": f"{STATE_DIR}/{name}.npy"}
        elif kind == "tensor":
            import torch

            torch.save(value.detach().cpu(), folder / f"{name}.pt")
            stored[name] = {"kind": kind, "path": f"{STATE_DIR}/{name}.pt"}
        elif kind == "skops":
            from gitml.models.flavors.sklearn.flavor import _skops_io

            try:
                _skops_io().dump(value, folder / f"{name}.skops")
            except Exception as e:  # skops refuses what it cannot represent safely
                raise _no_form(owner, name, value) from e
            stored[name] = {"kind": kind, "path": f"{STATE_DIR}/{name}.skops"}
        else:
            shipped_objs.append((name, value))
    if shipped_objs:
        shipped = ship_objects([v for _, v in shipped_objs], model_dir, code, code_paths, f"attributes of {owner}")
        code = shipped.code
        for (name, _), ref in zip(shipped_objs, shipped.refs, strict=True):
            stored[name] = {"kind": "code", "ref": ref}
    conf: dict[str, Any] = {}
    if plain:
        (model_dir / STATE_FILE).write_text(json.dumps(plain))
        conf["python_model_state"] = STATE_FILE
    if stored:
        conf["python_model_attributes"] = stored
    return conf, code


def _inside(model_dir: Path, rel: Any) -> Path:
    target = (model_dir / str(rel)).resolve()
    if not target.is_relative_to(model_dir.resolve()) or not target.is_file():
        raise CorruptMetadata(f"model file {str(rel)[:200]!r} is missing or outside the model folder")
    return target


def _load_one(model_dir: Path, name: str, entry: Mapping[str, Any], code: ShippedCode, trusted: Any) -> Any:
    kind = entry.get("kind")
    if kind == "npy":
        import numpy as np

        try:
            return np.load(_inside(model_dir, entry.get("path")), allow_pickle=False)
        except ValueError as e:
            raise InvalidParameterValue(f"refusing attribute {name!r}: not a plain array ({e})") from e
    if kind == "tensor":
        import torch

        from gitml.models.flavors.pytorch._pt2 import require_safe_torch

        require_safe_torch(torch)
        try:
            return torch.load(_inside(model_dir, entry.get("path")), map_location="cpu", weights_only=True)
        except Exception as e:
            raise InvalidParameterValue(f"refusing attribute {name!r}: not a plain tensor ({e})") from e
    if kind == "skops":
        from gitml.models.flavors.sklearn.flavor import load_skops

        return load_skops(_inside(model_dir, entry.get("path")), trusted)
    if kind == "code":
        obj = code.import_object(str(entry.get("ref")))
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            raise CorruptMetadata(f"attribute {name!r} names {entry.get('ref')!r}, not a function or class")
        return obj
    raise CorruptMetadata(f"attribute {name!r} has an unknown kind {str(kind)[:50]!r} (known: {', '.join(_KINDS)})")


def load_state(model_dir: Path, conf: Mapping[str, Any], code: ShippedCode, trusted: Any = None) -> dict[str, Any]:
    """The saved attributes of the instance (JSON values and the stored ones)."""
    state: dict[str, Any] = {}
    if conf.get("python_model_state"):
        file = _inside(model_dir, conf["python_model_state"])
        try:
            plain = json.loads(file.read_text())
        except (OSError, ValueError, RecursionError) as e:
            raise CorruptMetadata(f"{file.name} is not the model's JSON state: {e}") from e
        if not isinstance(plain, dict):
            raise CorruptMetadata(f"{file.name} is not a JSON object")
        state.update(plain)
    stored = conf.get("python_model_attributes") or {}
    if not isinstance(stored, Mapping):
        raise CorruptMetadata("python_model_attributes is not a mapping")
    for name, entry in stored.items():
        if not isinstance(name, str) or not name.isidentifier() or not isinstance(entry, Mapping):
            raise CorruptMetadata(f"malformed attribute entry {str(name)[:50]!r}")
        state[name] = _load_one(model_dir, name, entry, code, trusted)
    return state
