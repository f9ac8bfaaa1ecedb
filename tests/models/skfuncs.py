"""A user function used inside a scikit-learn pipeline: a type skops does not trust by default."""

from __future__ import annotations

from typing import Any

__all__ = ["double"]


def double(x: Any) -> Any:
    """Twice the input."""
    return x * 2
