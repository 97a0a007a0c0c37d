r"""Temporal-pattern classification: classes that differ only in the relative timing of input spikes.

Each sample has ``CHANNELS`` input channels that spike exactly once. Class :math:`c` fixes an
order of the channels (a permutation :math:`\pi_c`); channel :math:`j` spikes at

.. math:: t_j = t_0 + \mathrm{SPACING}\cdot\pi_c(j) + \epsilon_j \quad
          (t_0 \sim U\{0..\mathrm{ONSET\_SPREAD}\},\ \epsilon_j \sim U\{-\mathrm{JITTER}..\mathrm{JITTER}\})

in milliseconds. The spikes are ``SPACING`` ms apart, much longer than the synaptic and membrane
time constants of models/delay_task.yaml, so without delays a neuron sees the same four separate
events in every class (only their order differs) and max-over-time decoding cannot tell the classes
apart. A neuron whose synaptic delays are :math:`d_j = \mathrm{const} - \mathrm{SPACING}\,\pi_c(j)`
sees them coincide for class :math:`c` only. Features are :math:`t_j / \mathrm{SPAN\_MS}` in
[0, 1], for the ``time_to_spike`` encoder with ``t_early_s = 0``, ``t_late_s = SPAN_MS`` ms.
Generated with fixed seeds (no download); the same call gives the same data.
"""

from __future__ import annotations

import numpy as np

CHANNELS = 4
CLASSES = 4
SPACING_MS = 10
ONSET_SPREAD_MS = 8
JITTER_MS = 1
SPAN_MS = 48.0  # features are t / SPAN_MS: the latest spike (8 + 3*10 + 2 = 40 ms) stays inside
SIZES = {"train": 1000, "test": 500}
SEEDS = {"train": 11, "test": 12, "orders": 7}


def class_orders() -> np.ndarray:
    """``[CLASSES, CHANNELS]``: the slot (0..CHANNELS-1) of each channel in each class; distinct permutations."""
    rng = np.random.default_rng(SEEDS["orders"])
    orders: list[tuple[int, ...]] = []
    while len(orders) < CLASSES:
        order = tuple(int(v) for v in rng.permutation(CHANNELS))
        if order not in orders:
            orders.append(order)
    return np.array(orders)


def load_temporal_patterns(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``train`` (1000) or ``test`` (500) samples, balanced: features ``[n, CHANNELS]`` in [0, 1], labels ``[n]``."""
    rng = np.random.default_rng(SEEDS[split])
    n = SIZES[split]
    labels = np.arange(n) % CLASSES
    rng.shuffle(labels)
    onset = rng.integers(0, ONSET_SPREAD_MS + 1, size=(n, 1))
    jitter = rng.integers(-JITTER_MS, JITTER_MS + 1, size=(n, CHANNELS))
    times_ms = onset + SPACING_MS * class_orders()[labels] + jitter + JITTER_MS  # ≥ 0
    return (times_ms / SPAN_MS).astype(np.float32), labels.astype(np.int64)
