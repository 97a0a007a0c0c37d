r"""Accuracy over repeated runs and several chips, with its spread: never one number as if it were exact.

For values :math:`a_1 \dots a_n` (accuracies of runs): the mean :math:`\bar a`, the sample standard
deviation :math:`s` and the 95 % confidence interval of the mean,
:math:`\bar a \pm t_{0.975,\,n-1}\, s / \sqrt{n}` (Student's t; scipy's quantile). One value has no
spread: std 0 and no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Optional

CONFIDENCE = 0.95


class Spread(NamedTuple):
    """Mean, sample std, the confidence interval of the mean (None for one value) and the count."""

    mean: float
    std: float
    interval: Optional[tuple[float, float]]
    n: int

    def text(self, scale: float = 100.0, unit: str = " %", of: str = "runs") -> str:
        """``95.9 ± 0.4 % (95 % interval of the mean 95.5–96.3 %, 25 runs)``; ``of`` names what was counted."""
        if self.n == 1:
            return f"{scale * self.mean:.1f}{unit} (1 {of[:-1]})"
        low, high = self.interval or (self.mean, self.mean)
        return (f"{scale * self.mean:.1f} ± {scale * self.std:.1f}{unit} ({100 * CONFIDENCE:.0f} % interval of "
                f"the mean {scale * low:.1f}–{scale * high:.1f}{unit}, {self.n} {of})")


def spread(values: Sequence[float], confidence: float = CONFIDENCE) -> Spread:
    """The :class:`Spread` of ``values`` (at least one)."""
    if not values:
        raise ValueError("spread of no values")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Spread(mean, 0.0, None, 1)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    from scipy.stats import t  # scikit-learn's dependency; imported here, not for every verb

    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Spread(mean, std, (mean - half, mean + half), n)
