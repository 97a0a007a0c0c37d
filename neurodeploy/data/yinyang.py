"""The Yin-Yang dataset, generated from its published definition (Kriener, Göltz, Petrovici 2022).

The class rule and rejection sampling follow ../shared/reference/bss2.md §8: R = 0.5, r = 0.1,
NumPy legacy ``RandomState(seed)``, per sample one class draw in [0, 3) then pairs of uniform draws
until a point of that class lies inside the big circle. Features are (x, y, 1 - x, 1 - y).
Standard splits: train 5000 (seed 42), validation 1000 (seed 41), test 1000 (seed 40).
"""

from __future__ import annotations

import numpy as np

R_BIG = 0.5
R_SMALL = 0.1
SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}


def yinyang_class(x: float, y: float) -> int:
    """Class of a point inside the big circle: 0, 1 or 2 ("dot")."""
    d_right = np.hypot(x - 1.5 * R_BIG, y - R_BIG)
    d_left = np.hypot(x - 0.5 * R_BIG, y - R_BIG)
    if d_right < R_SMALL or d_left < R_SMALL:
        return 2
    is_one = (d_right <= R_SMALL or R_SMALL < d_left <= 0.5 * R_BIG
              or (y > R_BIG and d_right > 0.5 * R_BIG))
    return 1 if is_one else 0


def generate_yinyang(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` points → features ``[n, 4]`` float32 (x, y, 1-x, 1-y) and labels ``[n]`` int64."""
    rng = np.random.RandomState(seed)
    features = np.empty((n_samples, 4), dtype=np.float32)
    labels = np.empty(n_samples, dtype=np.int64)
    for n in range(n_samples):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2 * R_BIG
            if np.hypot(x - R_BIG, y - R_BIG) > R_BIG:
                continue
            if yinyang_class(x, y) == goal:
                break
        features[n] = (x, y, 1 - x, 1 - y)
        labels[n] = goal
    return features, labels


def load_yinyang(split: str) -> tuple[np.ndarray, np.ndarray]:
    """One of the standard splits: ``train``, ``validation`` or ``test``."""
    n_samples, seed = SPLITS[split]
    return generate_yinyang(n_samples, seed)
