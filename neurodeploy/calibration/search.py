"""Vectorised searches over CapMem codes, one independent search per neuron (calix's algorithms, bss2.md §3.2)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Measure = Callable[[np.ndarray], np.ndarray]


def noisy_binary_search(measure: Measure, target: np.ndarray, n: int, rng: np.random.Generator, *,
                        inverted: bool = False, code_max: int = 1022, start_noise: int = 5
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Codes whose measurement is closest to ``target``, for ``n`` instances at once.

    Starts mid-range with ±``start_noise`` random offsets (calix's NoisyBinarySearch, so that
    neurons do not share codes), halves the step from 256 to 1, then tests the final code's
    neighbours and keeps the best of the three. ``inverted``: a larger code gives a smaller
    observable. Returns ``(codes, measured values at those codes)``; 12 measurement rounds.
    """
    target = np.broadcast_to(np.asarray(target, float), (n,))
    code = np.clip(code_max // 2 + rng.integers(-start_noise, start_noise + 1, n), 0, code_max)
    step = 256
    while step >= 1:
        value = measure(code)
        too_high = (value > target) != inverted  # move the code down
        code = np.clip(code + np.where(too_high, -step, step), 0, code_max)
        step //= 2
    candidates = [np.clip(code + delta, 0, code_max) for delta in (-1, 0, 1)]
    values = [measure(c) for c in candidates]
    error = np.abs(np.stack(values) - target)
    best = error.argmin(axis=0)
    pick = lambda arrays: np.stack(arrays)[best, np.arange(n)]  # noqa: E731
    return pick(candidates), pick(values)
