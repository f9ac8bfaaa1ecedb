"""Safety checks before torch loads anything from a model: torch's version, and .pt2 archives.

`torch.export.load` is not safe on its own (torch 2.13): it unpickles "opaque" constants
with plain pickle, loads pickled tensors with weights_only=False, and dlopens AOTInductor
libraries bundled in the archive. An archive is accepted only if every record is a known
text record, JSON, a raw tensor payload named by the archive's configs, or a torch.save
file that torch's weights_only unpickler accepts; while it loads, weights_only is forced.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gitml.config import swap_env
from gitml.exceptions import InvalidParameterValue

__all__ = ["MIN_SAFE_TORCH", "check_pt2", "forced_weights_only", "require_safe_torch"]

# weights_only=True could be bypassed before torch 2.6 (CVE-2025-32434).
MIN_SAFE_TORCH = (2, 6)
_TEXT_RECORDS = {"archive_format", "archive_version", "byteorder", "version", "serialization_id"}
_TEXT = re.compile(r"[A-Za-z0-9_.\-]{0,64}\s*")
_CONFIG = re.compile(r"_(weights|constants)_config\.json$")
_ENV_LOCK = threading.Lock()


def require_safe_torch(torch: Any) -> None:
    """Refuse to load weights with a torch whose weights_only loader is known to be unsafe."""
    parts = [int(p) for p in re.findall(r"\d+", str(torch.__version__))[:2]]
    if tuple(parts) < MIN_SAFE_TORCH:
        raise InvalidParameterValue(
            f"torch {torch.__version__} cannot load model weights safely (its weights_only "
            "loader can be bypassed, CVE-2025-32434): install torch>=2.6"
        )


def _refuse(file: Path, record: str, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"refusing to load {file.name}: record {record!r} {why}")


def _raw_tensor_records(archive: zipfile.ZipFile, file: Path) -> set[str]:
    """Records the configs name as raw (unpickled-free) tensor payloads; refuses pickled
    Python constants on the way."""
    from torch.export.pt2_archive.constants import TENSOR_CONSTANT_FILENAME_PREFIX

    raw: set[str] = set()
    for name in archive.namelist():
        match = _CONFIG.search(name)
        if not match:
            continue
        config = json.loads(archive.read(name)).get("config") or {}
        folder = name.rsplit("/", 1)[0]
        for fqn, entry in config.items():
            path_name = str((entry or {}).get("path_name", ""))
            if match.group(1) == "constants" and not path_name.startswith(TENSOR_CONSTANT_FILENAME_PREFIX):
                raise _refuse(file, fqn, "is a pickled Python object, and unpickling it would run code")
            if not (entry or {}).get("use_pickle"):
                raw.add(f"{folder}/{path_name}")
    return raw


def _is_safe_record(torch: Any, name: str, data: bytes) -> bool:
    base = name.rsplit("/", 1)[-1]
    if base in _TEXT_RECORDS and _TEXT.fullmatch(data.decode("ascii", errors="replace")):
        return True
    try:
        json.loads(data)
        return True
    except ValueError:
        pass
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return True


def check_pt2(torch: Any, file: Path) -> None:
    """Raise InvalidParameterValue unless every record of the archive is safe to load."""
    try:
        with zipfile.ZipFile(file) as archive:
            raw = _raw_tensor_records(archive, file)
            for info in archive.infolist():
                if info.is_dir() or info.filename in raw:
                    continue
                if "/aotinductor/" in f"/{info.filename}":
                    raise _refuse(file, info.filename, "is a compiled library, which loading would run")
                if not _is_safe_record(torch, info.filename, archive.read(info)):
                    raise _refuse(file, info.filename, "is neither text, JSON nor plain tensors")
    except InvalidParameterValue:
        raise
    except (zipfile.BadZipFile, ValueError, AttributeError, OSError) as e:
        raise InvalidParameterValue(f"refusing to load {file.name}: not a valid exported program ({e})") from e


@contextlib.contextmanager
def forced_weights_only() -> Iterator[None]:
    """Force weights_only for every torch.load in the block (torch's own switch)."""
    with _ENV_LOCK:
        saved = swap_env({"TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": None})
        try:
            yield
        finally:
            swap_env(saved)
