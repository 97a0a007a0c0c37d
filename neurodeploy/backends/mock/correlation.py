r"""The synapses' correlation sensors, as the mock emulates them (bss2.md §1.3, §1.6, §1.7).

Every BSS-2 synapse has a correlation sensor: a presynaptic spike sets a *causal trace* that decays with
:math:`\tau_+`; a postsynaptic spike reads it into the synapse's causal accumulator and sets an *acausal
trace* (:math:`\tau_-`), which the next presynaptic spike reads into the acausal accumulator. The CADC
reads both accumulators of a row at once (8 bit) and the plasticity processor (PPU) resets them. So after a
time slice, synapse :math:`(i, j)` (post :math:`i`, pre :math:`j`) holds

.. math::
    c^+_{ij} = \eta_{ij} \sum_{t \in \text{post}_i} e^{-(t - \hat t_j(t))/\tau_+}, \qquad
    c^-_{ij} = \eta_{ij} \sum_{t \in \text{pre}_j} e^{-(t - \hat t_i(t))/\tau_-}

with :math:`\hat t_j(t)` the last presynaptic spike at or before :math:`t` (nearest-neighbour pairing: a
spike *sets* its trace, it does not add to it; a pre and a post spike in the same step count as causal)
and :math:`\hat t_i(t)` the last postsynaptic spike strictly before :math:`t`. The reading is
:math:`\min(255, \mathrm{round}(c + \text{read noise}))`: an accumulator saturates.

Assumptions (bss2.md gives the circuit, not these numbers): :math:`\tau_\pm` = 5 µs of hardware time
(5 ms of model time at the speed-up 1000), 12 CADC LSB per pairing at :math:`\Delta t = 0`, a per-synapse
amplitude mismatch :math:`\eta_{ij} = \bar\eta (1 + 0.2\,\xi)` that calibration does not touch, 0.5 LSB
read noise. Sensors here are per *logical* synapse (a weight spread over several synapses reports its first
copy's sensor).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
import torch

READING_MAX = 255  # 8-bit CADC


class SensorSettings(NamedTuple):
    tau_causal_s: float = 5e-6  # hardware seconds
    tau_acausal_s: float = 5e-6
    amplitude_cadc: float = 12.0  # per pairing at Δt = 0
    mismatch_rel: float = 0.2
    read_noise_cadc: float = 0.5


def trace(spikes: torch.Tensor, dt_s: float, tau_s: float) -> torch.Tensor:
    r"""Nearest-neighbour trace of ``spikes`` ``[T, ...]``: 1 in a spike's step, :math:`e^{-k\,\Delta t/\tau}`
    ``k`` steps later, until the next spike sets it to 1 again."""
    decay = math.exp(-dt_s / tau_s)
    value = torch.zeros_like(spikes[0])
    out = torch.empty_like(spikes)
    for t, s in enumerate(spikes.unbind(0)):
        value = torch.where(s > 0, torch.ones_like(value), value * decay)
        out[t] = value
    return out


def pairings(pre: torch.Tensor, post: torch.Tensor, dt_s: float,
             settings: SensorSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal and acausal sums ``[B, post, pre]`` (unit amplitude) of spike trains ``pre`` ``[T, B, P]`` and
    ``post`` ``[T, B, Q]`` on the step ``dt_s``."""
    pre, post = (s.clamp(max=1).double() for s in (pre, post))  # a step with spikes pairs once
    causal = torch.einsum("tbq,tbp->bqp", post, trace(pre, dt_s, settings.tau_causal_s))
    acausal_trace = trace(post, dt_s, settings.tau_acausal_s)
    # read at the pre spike from post spikes strictly before it: the previous step's trace, decayed one step
    step = math.exp(-dt_s / settings.tau_acausal_s)
    before = torch.cat([torch.zeros_like(acausal_trace[:1]), acausal_trace[:-1]]) * step
    acausal = torch.einsum("tbp,tbq->bqp", pre, before)
    return causal, acausal


def sensor_gains(chip: Optional[int], projection_index: int, shape: tuple[int, int],
                 settings: SensorSettings) -> np.ndarray:
    """Each logical synapse's amplitude :math:`\\eta_{ij}` (CADC LSB per pairing) on chip ``chip`` (None: ideal)."""
    if chip is None:
        return np.full(shape, settings.amplitude_cadc)
    rng = np.random.default_rng(np.random.SeedSequence([0x636F72, chip, projection_index]))
    return settings.amplitude_cadc * np.clip(1 + settings.mismatch_rel * rng.standard_normal(shape), 0.0, None)


def readings(pairs: torch.Tensor, gains: np.ndarray, settings: SensorSettings,
             generator: Optional[torch.Generator]) -> np.ndarray:
    """8-bit readings ``[B, post, pre]`` of accumulated pairings; ``generator`` None: no read noise."""
    value = pairs * torch.as_tensor(gains, dtype=torch.float64)
    if generator is not None and settings.read_noise_cadc > 0:
        value = value + settings.read_noise_cadc * torch.randn(value.shape, generator=generator, dtype=torch.float64)
    return value.round().clamp(0, READING_MAX).numpy().astype(np.uint8)
