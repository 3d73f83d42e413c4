"""Data that ships with a package: nothing is downloaded."""
from __future__ import annotations

import numpy as np


def digits(test_size: float = 0.2, seed: int = 42):
    """scikit-learn's bundled 8x8 digits (1,797 images), as float32 NHWC in [0, 1].

    Returns ``(x_train, y_train), (x_test, y_test)`` with ``x`` of shape ``(n, 8, 8, 1)`` and integer labels 0-9.
    The split is stratified and seeded, so every chapter and test sees the same split (1,437 train, 360 test).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    y = d.target.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return (x_train, y_train), (x_test, y_test)


def calibration_sample(x, n: int = 200, seed: int = 0):
    """A seeded random subset of ``x`` for post-training calibration (the representative dataset)."""
    x = np.asarray(x)
    if len(x) <= n:
        return x
    idx = np.random.default_rng(seed).choice(len(x), size=n, replace=False)
    return x[np.sort(idx)]
