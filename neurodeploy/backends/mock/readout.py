r"""The chip's readouts and its trial-to-trial noise, as the mock emulates them (bss2.md §1.6, §2).

- **CADC**: all neurons in parallel, 8 bit (0–255) with read noise, one sample every ``period`` (≈2 µs), which
  hxtorch interpolates linearly onto the simulation grid; here the same.
- **MADC**: one neuron per run, 10 bit, :math:`m = \mathrm{round}(a\,v + b)` with a chip-specific
  gain and offset (the calibration cross-calibrates it against the CADC).
- **Spike times** on the 8 ns FPGA clock, with Gaussian jitter.
- **Membrane noise**: white noise added to each step's synaptic input, scaled so that the
  membrane's stationary standard deviation is ``sigma_v`` whatever the step and time constants.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple, Optional

import numpy as np
import torch

if TYPE_CHECKING:
    from .plan import Workspace


def input_noise_std(sigma_v: float, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r"""Per-step input noise giving a membrane std of ``sigma_v``.

    A unit impulse in the input reaches the membrane as
    :math:`h_k = (1-\beta)\,\frac{\alpha^{k+1} - \beta^{k+1}}{\alpha - \beta}`, so
    :math:`\mathrm{Var}\,v = \sigma_x^2 \sum_k h_k^2` with
    :math:`\sum_k h_k^2 = \frac{(1-\beta)^2}{(\alpha-\beta)^2}\left[\frac{\alpha^2}{1-\alpha^2}
    - \frac{2\alpha\beta}{1-\alpha\beta} + \frac{\beta^2}{1-\beta^2}\right]`
    (limit :math:`(1-\beta)^2 (1+\beta^2)/(1-\beta^2)^3` for :math:`\alpha = \beta`).
    """
    a, b = alpha.double(), beta.double()
    close = (a - b).abs() < 1e-6
    diff = torch.where(close, torch.ones_like(a), a - b)
    general = (1 - b) ** 2 / diff ** 2 * (a ** 2 / (1 - a ** 2) - 2 * a * b / (1 - a * b) + b ** 2 / (1 - b ** 2))
    equal = (1 - b) ** 2 * (1 + b ** 2) / (1 - b ** 2) ** 3
    gain = torch.where(close, equal, general)
    return (sigma_v / gain.sqrt()).float()


def cadc_samples(v: torch.Tensor, dt_s: float, period_s: float, read_noise: float = 0.0,
                 generator: Optional[torch.Generator] = None, workspace: Optional[Workspace] = None) -> torch.Tensor:
    r"""8-bit samples of ``v`` ``[T, B, N]`` every ``period_s`` (plus read noise), interpolated back onto the step grid.

    With sample steps :math:`a_j = a_0 + j e` (:math:`j < S`) and
    :math:`p_t = \mathrm{clamp}((t - a_0)/e,\ 0,\ S-1)`, step ``t`` reads
    :math:`s_{l_t} (1 - f_t) + s_{u_t} f_t` with :math:`l_t = \lfloor p_t \rfloor`,
    :math:`u_t = \min(l_t + 1, S - 1)`, :math:`f_t = p_t - l_t`.

    Steps ``t, t + e, t + 2e, ...`` read samples ``l, l + 1, l + 2, ...``, so the interpolation is a
    few strided slices (:func:`_interpolation`) instead of gathers, which on a shared machine with
    two threads cost 10-400 ms per batch; temporaries go to ``workspace`` buffers when given. Every
    product and sum is the one of the plain expression, so the values are the same.
    """
    every = max(1, int(round(period_s / dt_s)))
    first, count, groups = _interpolation(v.shape[0], every)
    sampled_shape = (count, *v.shape[1:])
    at = v[first:first + (count - 1) * every + 1:every]
    sampled = at.clone() if workspace is None else workspace.buffer("cadc_sampled", sampled_shape).copy_(at)
    if read_noise > 0:
        out = None if workspace is None else workspace.buffer("cadc_noise", sampled_shape)
        sampled.add_(torch.randn(sampled_shape, generator=generator, out=out).mul_(read_noise))
    sampled.round_().clamp_(0, 255)
    result = torch.empty_like(v)
    upper_products = None if workspace is None else workspace.buffer("cadc_upper", sampled_shape)
    shape = (-1, *([1] * (v.dim() - 1)))
    for t0, l0, u0, n, w_low, w_high in groups:
        target = result[t0:t0 + (n - 1) * every + 1:every]
        torch.mul(sampled[l0:l0 + n], w_low.view(shape), out=target)
        products = None if upper_products is None else upper_products[:n]
        target.add_(torch.mul(sampled[u0:u0 + n], w_high.view(shape), out=products))
    return result


Group = tuple[int, int, int, int, torch.Tensor, torch.Tensor]  # t0, l0, u0, n, 1 - f, f (each [n])


class CadcGrid(NamedTuple):
    """Where the CADC samples and how each step reads them: step ``t`` reads
    ``s[lower[t]] * low_weight[t] + s[upper[t]] * frac[t]`` of the samples taken at ``first + j every``."""

    first: int
    samples: int
    lower: torch.Tensor  # [T] long
    upper: torch.Tensor  # [T] long
    low_weight: torch.Tensor  # [T] float32, 1 - frac
    frac: torch.Tensor  # [T] float32


@functools.lru_cache(maxsize=16)
def cadc_grid(steps: int, every: int) -> CadcGrid:
    """The CADC's sample steps and interpolation weights for ``steps`` steps, a sample every ``every``."""
    at = torch.arange(every - 1, steps, every)
    if len(at) == 0:
        at = torch.tensor([steps - 1])
    # Linear interpolation between samples; before the first and after the last: hold.
    t = torch.arange(steps, dtype=torch.float32)
    position = ((t - at[0]) / every).clamp(0, len(at) - 1)
    lower = position.floor().long()
    upper = (lower + 1).clamp(max=len(at) - 1)
    frac = position - lower
    return CadcGrid(int(at[0]), len(at), lower, upper, 1 - frac, frac)


@functools.lru_cache(maxsize=16)
def _interpolation(steps: int, every: int) -> tuple[int, int, list[Group]]:
    """First sample step, number of samples, and the slices that interpolate between the samples.

    A group covers steps ``t0 + i e`` (``i < n``) reading samples ``l0 + i`` and ``u0 + i``.
    """
    first, count, lower, upper, low_weight, frac = cadc_grid(steps, every)
    groups: list[Group] = []
    for residue in range(min(every, steps)):
        ts = list(range(residue, steps, every))
        begin = 0
        for i in range(1, len(ts) + 1):
            if i == len(ts) or lower[ts[i]] != lower[ts[i - 1]] + 1 or upper[ts[i]] != upper[ts[i - 1]] + 1:
                span = torch.tensor(ts[begin:i])
                groups.append((ts[begin], int(lower[ts[begin]]), int(upper[ts[begin]]), i - begin,
                               low_weight[span], frac[span]))
                begin = i
    return first, count, groups


def madc_codes(v: torch.Tensor, gain: float, offset: float, quantise: bool) -> torch.Tensor:
    """10-bit MADC reading of a potential (CADC LSB) trace."""
    m = gain * v + offset
    return m.round().clamp(0, 1023) if quantise else m


def spike_events(spikes: torch.Tensor, dt_s: float, clock_s: float, jitter_s: float,
                 generator: torch.Generator) -> np.ndarray:
    """``[n, 3]`` rows ``(time_s, batch, neuron)``: spike times on the clock grid, jittered."""
    step, batch, neuron = torch.nonzero(spikes, as_tuple=True)  # spikes are 0 or 1: the indices of spikes > 0
    times = step.double() * dt_s
    if jitter_s > 0 and len(times):
        times = times + jitter_s * torch.randn(len(times), generator=generator, dtype=torch.float64)
    times = (times / clock_s).round().clamp_min(0) * clock_s
    return torch.stack([times, batch.double(), neuron.double()], dim=1).numpy()
