"""scikit-learn's 8×8 handwritten digits (1797 images shipped inside the package, no download).

Pixel intensities 0..16 are scaled to [0, 1]. The split is fixed: a stratified 80/20 split with
seed 0, so that every user gets the same test set. ``digits_4x4`` is the same images and split,
each 2×2 block of pixels averaged: 16 features, for chips with 16 input channels (Xylo).
"""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``train`` (1437 images) or ``test`` (360): features ``[n, 64]`` in [0, 1], labels ``[n]``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    if split == "train":
        return x_train, y_train
    return x_test, y_test


def load_digits_4x4_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split of :func:`load_digits_split` with 2×2 mean pooling: features ``[n, 16]`` in [0, 1]."""
    x, y = load_digits_split(split)
    pooled = x.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4))
    return pooled.reshape(-1, 16).astype(np.float32), y
