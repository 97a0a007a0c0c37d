r"""Random manifolds (Zenke & Vogels 2021, "randman"; seed 004_5fb35622c679aa12.txt): compact spike data sets
whose difficulty is set by a few numbers.

Each class :math:`c` is a smooth random map :math:`f_c: [0, 1]^D \to [0, 1]^M` from a D-dimensional
manifold into M input channels. Channel :math:`m` of class :math:`c` is a product over the manifold's
dimensions of random 1-d functions, each a sum of sines whose amplitudes fall as :math:`1/k^\alpha`:

.. math::
    f_{c,m}(x) = \prod_{d=1}^{D} \sum_{k=0}^{K-1} \frac{a_{k}}{(k+1)^{\alpha}}
                 \sin\!\big(2\pi (k\, x_d\, b_{k} + \phi_{k})\big),
    \qquad a, b, \phi \sim U[0, 1), \; K = \min(\lceil 10^{3/\alpha} \rceil, 1000)

(randman's ``prec = 1e-3`` cutoff; the ``k = 0`` term has no bias, as in randman's default). A sample of
class :math:`c` is :math:`f_c(x)` at a point :math:`x \sim U[0,1)^D`, each channel scaled to [0, 1] over
the class's samples (randman's ``standardize``). In randman each channel then fires one spike at that
fraction of the sample's duration: here the values are the features, and a recipe's ``time_to_spike``
encoding makes them that one spike per channel. Larger :math:`\alpha` is smoother (easier), larger
:math:`D` and more classes harder.

Everything is generated from one seed, deterministically (NumPy ``default_rng``), in well under a second;
nothing is downloaded. The ``random_manifolds`` data set is the seed's easy setting: 10 classes, D = 1,
α = 1, 20 channels; 1000 samples per class split 700 / 100 / 200 (train / validation / test).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np


class ManifoldSpec(NamedTuple):
    """How a random-manifold data set is drawn."""

    classes: int = 10
    channels: int = 20
    dimension: int = 1
    alpha: float = 1.0
    samples_per_class: int = 1000
    seed: int = 0


RANDOM_MANIFOLDS = ManifoldSpec()  # the seed's easy setting (the built-in data set `random_manifolds`)
SPLIT_FRACTIONS = {"train": (0.0, 0.7), "validation": (0.7, 0.8), "test": (0.8, 1.0)}
PRECISION = 1e-3  # randman's prec: the spectrum is cut where 1/k^alpha falls below it
MAX_TERMS = 1000


def terms(alpha: float) -> int:
    """K, the number of sine terms of each 1-d function."""
    return int(min(math.ceil(PRECISION ** (-1.0 / alpha)), MAX_TERMS))


def manifold_values(params: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """:math:`f(x)` ``[N, M]`` for points ``x`` ``[N, D]`` and one class's parameters ``params``
    ``[M, D, 3, K]`` (amplitude, frequency factor, phase per term)."""
    k = np.arange(params.shape[-1])
    spectrum = 1.0 / (k + 1.0) ** alpha
    amplitude, frequency, phase = params[:, :, 0], params[:, :, 1], params[:, :, 2]  # [M, D, K]
    weights = amplitude * spectrum
    out = np.empty((x.shape[0], params.shape[0]))
    block = max(1, 2**22 // max(1, params[..., 0, :].size))  # points per block: ~32 MiB of sines at a time
    for start in range(0, x.shape[0], block):
        points = x[start:start + block]
        # [n, M, D, K]: the sine of each term at each point, for each channel and dimension
        angle = 2 * np.pi * (k * points[:, None, :, None] * frequency[None] + phase[None])
        out[start:start + block] = np.einsum("mdk,nmdk->nmd", weights, np.sin(angle)).prod(axis=-1)
    return out


def scale_to_unit(values: np.ndarray) -> np.ndarray:
    """Each column to [0, 1] over the rows (a constant column becomes 0)."""
    low, high = values.min(axis=0), values.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (values - low) / span


def generate(spec: ManifoldSpec) -> tuple[np.ndarray, np.ndarray]:
    """All samples of ``spec``: features ``[classes * samples, channels]`` float32 in [0, 1], labels int64,
    in a fixed shuffled order."""
    rng = np.random.default_rng(spec.seed)
    n_terms = terms(spec.alpha)
    features, labels = [], []
    for c in range(spec.classes):
        params = rng.random((spec.channels, spec.dimension, 3, n_terms))
        params[:, :, 0, 0] = 0.0  # randman without bias: the constant term's amplitude is 0
        points = rng.random((spec.samples_per_class, spec.dimension))
        features.append(scale_to_unit(manifold_values(params, points, spec.alpha)))
        labels.append(np.full(spec.samples_per_class, c))
    order = rng.permutation(spec.classes * spec.samples_per_class)
    return (np.concatenate(features)[order].astype(np.float32), np.concatenate(labels)[order].astype(np.int64))


@lru_cache(maxsize=4)
def _generated(spec: ManifoldSpec) -> tuple[np.ndarray, np.ndarray]:
    return generate(spec)


def load_random_manifolds(split: str, spec: ManifoldSpec = RANDOM_MANIFOLDS) -> tuple[np.ndarray, np.ndarray]:
    """One split (``train`` / ``validation`` / ``test``, :data:`SPLIT_FRACTIONS`) of ``spec``'s samples."""
    x, y = _generated(spec)
    start, stop = (round(f * len(y)) for f in SPLIT_FRACTIONS[split])
    return x[start:stop].copy(), y[start:stop].copy()
