"""The PyTorch model folder's file names, the lazy torch import, and the confined file lookup
that every loader goes through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitml.exceptions import CorruptMetadata
from gitml.models.folder import require

__all__ = ["DATA_DIR", "EXPORTED", "STATE_DICT", "STRUCTURE", "TORCHSCRIPT", "inside", "torch_module"]

DATA_DIR = "data"
STATE_DICT = "data/state_dict.pt"
EXPORTED = "data/model.pt2"
STRUCTURE = "data/structure.json"
TORCHSCRIPT = "data/model.ts"


def torch_module() -> Any:
    """`torch`, imported on first use (a clear error naming the extra when it is absent)."""
    return require("torch", "torch")


def inside(model_dir: Path, rel: str) -> Path:
    """The model file `rel` names, refused unless it is a file inside the model folder."""
    target = (model_dir / rel).resolve()
    if not target.is_relative_to(model_dir.resolve()):
        raise CorruptMetadata(f"model file {rel!r} points outside the model folder")
    if not target.is_file():
        raise CorruptMetadata(f"model file {rel!r} is missing")
    return target
