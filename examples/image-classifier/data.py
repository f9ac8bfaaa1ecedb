"""scikit-learn's bundled digits (offline), upsampled to 3x32x32 float32 images in [0, 1]."""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits_3x32"]


def load_digits_3x32(seed: int = 0, test_fraction: float = 0.2) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): 1,797 8x8 digits, each pixel 4x4, grey to RGB."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0  # (n, 8, 8), values 0..16
    big = images.repeat(4, axis=1).repeat(4, axis=2)  # (n, 32, 32)
    x = np.repeat(big[:, None, :, :], 3, axis=1)  # (n, 3, 32, 32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]
