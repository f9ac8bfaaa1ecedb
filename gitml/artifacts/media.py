"""Figures and images to files, as MLflow's `log_figure` and `log_image` write them.

Figures: a matplotlib `Figure` (or `Axes`, its figure is taken) is saved with `savefig`, the
format following the file's extension; a plotly figure is written with `write_html` for
`.html` (plotly.js from its CDN, as MLflow does) and `write_image` (kaleido) otherwise.
Images: a Pillow image is saved as is; a numpy array (HxW, HxWx1, HxWx3, HxWx4; integers
in [0, 255], floats or booleans in [0, 1]) is checked as MLflow checks it and saved through
Pillow, or encoded as PNG by hand when Pillow is absent.

Step-indexed images (`log_image(image, key=..., step=...)`, MLflow 2.12+) follow MLflow's
layout, which its UI reads back: under `images/`, `<key>+step+<step>+timestamp+<ms>+<uuid>.png`
(the image) and the same name with `+compressed.webp` (a preview scaled to fit a 256-pixel
square); the key may hold letters, digits, `_ - . /` and spaces, each `/` written as `~`.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from typing import Any

from gitml.exceptions import InvalidParameterValue, MissingDependency

__all__ = [
    "PREVIEW_SIZE",
    "image_array",
    "png_bytes",
    "save_figure",
    "save_image",
    "save_step_image",
    "step_image_names",
]

PREVIEW_SIZE = 256  # the compressed preview fits a square this size (MLflow's UI thumbnails)
_KEY = re.compile(r"[A-Za-z0-9_\-./ ]+")
_MAX_KEY = 150  # the file name (key + step, time, uuid) stays under the 255 bytes of a file system

_PLOTLY_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".svg", ".pdf", ".eps")


def _kind(figure: Any) -> str | None:
    if hasattr(figure, "savefig"):
        return "matplotlib"
    if hasattr(getattr(figure, "figure", None), "savefig"):  # a matplotlib Axes
        return "axes"
    if type(figure).__module__.split(".", 1)[0] == "plotly" or hasattr(figure, "write_html"):
        return "plotly"
    return None


def save_figure(figure: Any, local: str, save_kwargs: dict[str, Any] | None = None) -> None:
    """Write `figure` to the file `local` (its extension picks the format)."""
    kwargs = dict(save_kwargs or {})
    kind = _kind(figure)
    lower = local.lower()
    if kind == "axes":
        figure, kind = figure.figure, "matplotlib"
    if kind == "matplotlib":
        try:
            figure.savefig(local, **kwargs)
        except ValueError as e:  # an extension matplotlib has no writer for
            raise InvalidParameterValue(f"cannot save the figure as {local.rsplit('/', 1)[-1]!r}: {e}") from e
        return
    if kind == "plotly":
        if lower.endswith(".html"):
            kwargs.setdefault("include_plotlyjs", "cdn")
            kwargs.setdefault("auto_open", False)
            figure.write_html(local, **kwargs)
            return
        if not lower.endswith(_PLOTLY_IMAGE_SUFFIXES):
            raise InvalidParameterValue(
                f"a plotly figure is logged as .html or an image ({', '.join(_PLOTLY_IMAGE_SUFFIXES)}); "
                f"got {local.rsplit('/', 1)[-1]!r}"
            )
        try:
            figure.write_image(local, **kwargs)
        except (ValueError, RuntimeError, ImportError) as e:
            if "kaleido" in str(e).lower() or "chrome" in str(e).lower():
                raise MissingDependency("kaleido", "figures") from e  # plotly's image engine
            raise InvalidParameterValue(f"cannot write the plotly figure as an image: {e}") from e
        return
    raise InvalidParameterValue(
        f"cannot log a {type(figure).__name__} as a figure: pass a matplotlib Figure (or Axes) or a plotly figure"
    )


def image_array(image: Any) -> Any:
    """A numpy image as uint8 HxW or HxWxC, checked as MLflow checks it."""
    import numpy as np

    a = np.asarray(image)
    if a.dtype.kind not in "buif":
        raise InvalidParameterValue(
            f"an image array must hold booleans, integers or floats, not {a.dtype}"
        )
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InvalidParameterValue(f"an image must be HxW, HxWx1, HxWx3 or HxWx4; got shape {a.shape}")
    if a.dtype.kind in "iu":
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InvalidParameterValue(
                f"integer pixel values must be in [0, 255]; found {a.min()} to {a.max()}"
            )
        return a.astype(np.uint8)
    a = a.astype(np.float64)
    if a.size and (np.isnan(a).any() or a.min() < 0 or a.max() > 1):
        raise InvalidParameterValue(
            f"float pixel values must be in [0, 1]; found {np.nanmin(a)} to {np.nanmax(a)}"
        )
    return np.round(a * 255).astype(np.uint8)


def png_bytes(array: Any) -> bytes:
    """Encode a checked uint8 image array as PNG, without Pillow."""
    a = image_array(array)
    color = 0 if a.ndim == 2 else (2 if a.shape[2] == 3 else 6)
    height, width = a.shape[:2]
    raw = b"".join(b"\0" + a[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _is_pil(image: Any) -> bool:
    return type(image).__module__.split(".", 1)[0] == "PIL" or (hasattr(image, "save") and hasattr(image, "mode"))


def save_image(image: Any, local: str) -> None:
    """Write a Pillow image or a numpy image array to the file `local` (its extension picks
    the format; PNG only when Pillow is absent)."""
    if _is_pil(image):
        try:
            image.save(local)
        except (ValueError, KeyError, OSError) as e:  # unknown extension, mode the format lacks
            raise InvalidParameterValue(f"cannot save the image as {local.rsplit('/', 1)[-1]!r}: {e}") from e
        return
    array = image_array(image)
    try:
        from PIL import Image
    except ImportError:
        if not local.lower().endswith(".png"):
            raise MissingDependency("Pillow", "images") from None
        with open(local, "wb") as f:
            f.write(png_bytes(array))
        return
    save_image(Image.fromarray(array), local)


def step_image_names(key: Any, step: int, timestamp: int) -> tuple[str, str]:
    """(image, preview) artifact paths for a step-indexed image, under `images/`."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidParameterValue(
            f"an image key may only hold letters, digits, underscores, dashes, periods, spaces and "
            f"slashes; got {str(key)[:100]!r}"
        )
    if len(key) > _MAX_KEY:
        raise InvalidParameterValue(f"an image key is at most {_MAX_KEY} characters; got {len(key)}")
    stem = f"images/{key.replace('/', '~')}+step+{step}+timestamp+{timestamp}+{uuid.uuid4()}"
    return f"{stem}.png", f"{stem}+compressed.webp"


def save_step_image(image: Any, local_image: str, local_preview: str) -> None:
    """Write the image as PNG and its preview (scaled to fit a PREVIEW_SIZE square, aspect kept)
    as WebP. Needs Pillow (the preview is resized and WebP-encoded)."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependency("Pillow", "images") from None
    pil = image if _is_pil(image) else Image.fromarray(image_array(image))
    save_image(pil, local_image)
    width, height = pil.size
    if width <= 0 or height <= 0:
        raise InvalidParameterValue(f"an image must have pixels; got {width}x{height}")
    if width > height:
        size = (PREVIEW_SIZE, max(1, int(height * PREVIEW_SIZE / width)))
    else:
        size = (max(1, int(width * PREVIEW_SIZE / height)), PREVIEW_SIZE)
    preview = pil if pil.mode in ("RGB", "RGBA", "L", "LA") else pil.convert("RGBA" if "A" in pil.getbands() else "RGB")
    save_image(preview.resize(size), local_preview)
