"""A bare state dict as an artifact (MLflow's `save_state_dict` / `load_state_dict`): one
`state_dict.pth` in a folder, written with `torch.save` and read back with `weights_only=True`,
so a planted file can hold tensors and plain containers but never an object to unpickle."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.models.flavors.pytorch._files import inside, torch_module
from gitml.models.flavors.pytorch._pt2 import require_safe_torch

__all__ = ["STATE_DICT_FILE", "load_state_dict", "save_state_dict"]

STATE_DICT_FILE = "state_dict.pth"  # MLflow's name, so folders load in either tool


def save_state_dict(state_dict: Mapping[str, Any], path: str | Path, **kwargs: Any) -> None:
    """Save `state_dict` (a module's `state_dict()`, or a dict of them) to `path/state_dict.pth`.

    `kwargs` go to `torch.save`. The folder is created if missing."""
    if not isinstance(state_dict, Mapping):
        raise InvalidParameterValue(
            f"state_dict must be a dict (a module's state_dict()), not {type(state_dict).__name__}"
        )
    torch = torch_module()
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameterValue(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict), folder / STATE_DICT_FILE, **kwargs)


def load_state_dict(state_dict_uri: str | Path, dst_path: str | Path | None = None, map_location: Any = None) -> Any:
    """Load a state dict saved by `save_state_dict` / `log_state_dict`: a local folder (or its
    `state_dict.pth`), `runs:/<run_id>/<path>` or `models:/...`. Read with `weights_only=True`:
    a file holding anything but tensors and plain containers is refused."""
    from gitml.models.uri import temporary_model_dir

    torch = torch_module()
    require_safe_torch(torch)
    with temporary_model_dir(state_dict_uri, dst_path) as (local, _keep):
        file = local.resolve() if local.is_file() else inside(local, STATE_DICT_FILE)
        try:
            # weights_only: tensors and plain containers only; any other pickled object is refused.
            return torch.load(file, map_location=map_location or "cpu", weights_only=True)
        except Exception as e:
            raise InvalidParameterValue(
                f"refusing to load {file.name}: it is not a plain state dict of tensors ({e})"
            ) from e
