"""The random-manifold data set (neurodeploy/data/randman.py, seed 004): deterministic, balanced, one value in
[0, 1] per channel, smooth along the manifold, and learnable by the shipped recipe."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.data.datasets import N_CLASSES, N_FEATURES, load_split
from neurodeploy.data.randman import ManifoldSpec, generate, manifold_values, terms


SMALL = ManifoldSpec(classes=3, channels=5, dimension=2, alpha=2.0, samples_per_class=50, seed=7)


def test_generation_is_deterministic_and_seeded():
    x1, y1 = generate(SMALL)
    x2, y2 = generate(SMALL)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    x3, _ = generate(SMALL._replace(seed=8))
    assert not np.allclose(x1, x3)


def test_samples_are_balanced_and_scaled_per_class_channel():
    x, y = generate(SMALL)
    assert x.shape == (150, 5) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 50, 50]
    for c in range(3):
        rows = x[y == c]
        assert np.allclose(rows.min(0), 0.0) and np.allclose(rows.max(0), 1.0)  # randman's standardize


def test_spectrum_cutoff_and_smoothness():
    """K = min(ceil(1e-3^(-1/alpha)), 1000); a smoother manifold (larger alpha) moves less for a small step."""
    assert terms(1.0) == 1000 and terms(2.0) == 32 and terms(3.0) == 10
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 2001)[:, None]
    roughness = {}
    for alpha in (1.0, 3.0):
        params = rng.random((8, 1, 3, terms(alpha)))
        params[:, :, 0, 0] = 0.0
        f = manifold_values(params, x, alpha)
        roughness[alpha] = np.abs(np.diff(f, axis=0)).sum(0).mean() / np.ptp(f, axis=0).mean()
    assert roughness[3.0] < roughness[1.0]


def test_the_builtin_set_is_the_seeds_easy_setting():
    assert N_FEATURES["random_manifolds"] == 20 and N_CLASSES["random_manifolds"] == 10
    sizes = {split: len(load_split("random_manifolds", split)[1]) for split in ("train", "validation", "test")}
    assert sizes == {"train": 7000, "validation": 1000, "test": 2000}
    train, test = load_split("random_manifolds", "train")[0], load_split("random_manifolds", "test")[0]
    assert not (train[:, None, :] == test[None, :200, :]).all(-1).any()  # no test sample is also a training one


@pytest.mark.slow
def test_the_recipe_learns_random_manifolds(tmp_path):
    """Three epochs of models/random_manifolds.yaml already do better than any linear read-out of the features
    (logistic regression: 41.5 % on the test split; chance 10 %; 20 epochs: 99.2 ± 0.2 %, docs/results.md)."""
    from neurodeploy.workflows.train import train
    from tests.conftest import ROOT

    metrics = train(ROOT / "models" / "random_manifolds.yaml", tmp_path / "rm.pt", epochs=3, progress=False)
    assert metrics["test_accuracy"] > 0.5, metrics["test_accuracy"]  # 68.9 % measured
