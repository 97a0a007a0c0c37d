r"""Learnable synaptic delays (DCLS, Hammouamri et al. 2024; seed 001_f48c37937a5de656.txt).

Each synapse :math:`(i, j)` has a weight :math:`w_{ij}` and a real-valued delay :math:`d_{ij}` in
steps. Its temporal kernel over the taps :math:`n = 0 \dots D` (:math:`D` = ``max_delay_steps``)
is a Gaussian centred on the delay, normalised to sum to one:

.. math::
    k_{ij}[n] = \frac{g_{ij}[n]}{\sum_m g_{ij}[m]}, \qquad
    g_{ij}[n] = \exp\!\left(-\tfrac12 \left(\tfrac{n - d_{ij}}{\sigma}\right)^2\right)

and the synaptic input of neuron :math:`i` at step :math:`t` is the causal convolution

.. math:: x_i[t] = \sum_j w_{ij} \sum_{n=0}^{D} k_{ij}[n]\, s_j[t - n].

It is applied to the input spikes *before* the neuron's time loop (one ``conv1d`` over time), so
the LIF kernel (fused or twin) is unchanged. :math:`\sigma` shrinks during training
(:func:`sigma_at`) so that early on a delay feels spikes far away and at the end it is a
sharp position; :func:`harden_delays` then rounds it to an integer (:math:`\sigma \to 0`,
a one-hot kernel), which is what a chip can realise.
"""

from __future__ import annotations

import math
from typing import Optional
from collections.abc import Mapping

import torch

SIGMA_FINAL_STEPS = 0.23  # DCLS's final σ: the Gaussian is then almost one tap wide
SIGMA_DECAY_FRACTION = 0.25  # σ reaches its final value after this fraction of training


SIGMA_SCHEDULES = ("linear", "exponential")


def sigma_at(progress: float, max_delay_steps: int, sigma_final_steps: float = SIGMA_FINAL_STEPS,
             decay_fraction: float = SIGMA_DECAY_FRACTION, sigma_start_steps: Optional[float] = None, *,
             schedule: str = "linear", epochs: int = 1, offset_steps: float = 0.0) -> float:
    r"""σ (steps) after the fraction ``progress`` ∈ [0, 1] of training.

    From :math:`\sigma_0 = D/2` (or ``sigma_start_steps``) down to :math:`\sigma_{f}` = ``sigma_final_steps``
    over the first ``decay_fraction`` of training, constant afterwards; then ``offset_steps`` is added.

    ``linear`` (the default): per optimiser step, :math:`\sigma = \sigma_0 + \min(p/f_d, 1)(\sigma_f - \sigma_0)`.
    ``exponential`` (DCLS, Hammouamri et al. 2024: their ``decrease_sig``): per epoch,
    :math:`\sigma = \sigma_0 \alpha^{\min(e, E)}` with :math:`e = \lfloor p \cdot epochs \rfloor`,
    :math:`E = \max(1, \lfloor f_d \cdot epochs \rfloor)` (DCLS: ``epochs // 4``) and
    :math:`\alpha = (\sigma_f/\sigma_0)^{1/E}`. DCLS's Gaussian is :math:`|SIG| + 0.27` wide: ``offset_steps = 0.27``
    with ``sigma_final_steps = 0.23`` ends at 0.5 steps, as DCLS does.
    """
    if schedule not in SIGMA_SCHEDULES:
        raise ValueError(f"sigma schedule {schedule!r} is not one of {SIGMA_SCHEDULES}")
    sigma_start = max(max_delay_steps / 2.0 if sigma_start_steps is None else sigma_start_steps, sigma_final_steps)
    if schedule == "linear":
        fraction = min(max(progress / decay_fraction, 0.0), 1.0) if decay_fraction > 0 else 1.0
        return sigma_start + fraction * (sigma_final_steps - sigma_start) + offset_steps
    last_epoch = max(1, math.floor(decay_fraction * epochs))
    epoch = min(max(math.floor(progress * epochs + 1e-9), 0), last_epoch) if decay_fraction > 0 else last_epoch
    alpha = (sigma_final_steps / sigma_start) ** (1.0 / last_epoch)
    return sigma_start * alpha ** epoch + offset_steps


def delay_kernel(delay_steps: torch.Tensor, sigma_steps: float, max_delay_steps: int) -> torch.Tensor:
    """Kernels ``[*delay.shape, D + 1]`` (module docstring); ``sigma_steps <= 0``: one-hot at the rounded delay."""
    taps = torch.arange(max_delay_steps + 1, dtype=delay_steps.dtype, device=delay_steps.device)
    if sigma_steps <= 0:
        index = harden(delay_steps, max_delay_steps).long()
        return torch.nn.functional.one_hot(index, max_delay_steps + 1).to(delay_steps.dtype)
    g = torch.exp(-0.5 * ((taps - delay_steps.unsqueeze(-1)) / sigma_steps) ** 2)
    return g / g.sum(-1, keepdim=True).clamp_min(1e-30)


def delayed_input(spikes: torch.Tensor, weight: torch.Tensor, delay_steps: torch.Tensor,
                  sigma_steps: float, max_delay_steps: int) -> torch.Tensor:
    """Synaptic input ``[T, B, post]`` from spikes ``[T, B, pre]`` through delayed synapses ``[post, pre]``.

    One causal ``conv1d``: the kernel :math:`w_{ij} k_{ij}[n]` is flipped in time and the input is
    padded with ``D`` zeros in front, so output step t sees input steps t-D..t.
    """
    kernel = weight.unsqueeze(-1) * delay_kernel(delay_steps, sigma_steps, max_delay_steps)  # [post, pre, D+1]
    steps = spikes.shape[0]
    signal = spikes.permute(1, 2, 0)  # [B, pre, T]
    signal = torch.nn.functional.pad(signal, (max_delay_steps, 0))
    out = torch.nn.functional.conv1d(signal, kernel.flip(-1).to(signal.dtype))  # [B, post, T]
    return out.permute(2, 0, 1)[:steps]


def harden(delay_steps: torch.Tensor, max_delay_steps: int) -> torch.Tensor:
    """Integer delays: rounded and clamped to 0..D (no gradient)."""
    return torch.round(delay_steps.detach()).clamp(0, max_delay_steps)


def harden_delays(delays: Mapping[str, torch.Tensor], max_delay_steps: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """Pure: each projection's delays rounded to whole steps in 0..D (σ → 0 for deployment)."""
    return {name: harden(d, max_delay_steps[name]) for name, d in delays.items()}


def first_spike_time(v_free: torch.Tensor, v_th: float | torch.Tensor) -> torch.Tensor:
    r"""Differentiable time (steps) of the first threshold crossing of a free membrane ``[T, ...]``.

    Between the steps :math:`k-1` and :math:`k` where :math:`v` first exceeds :math:`\vartheta`,
    :math:`t^* = k - 1 + (\vartheta - v_{k-1}) / (v_k - v_{k-1})` (linear interpolation). Its
    gradient is :math:`\partial t^*/\partial v = -1/\dot v` at the crossing, as in EventProp or
    hxtorch's spike-time estimators, so a delay that moves the crossing moves :math:`t^*`.
    Without a crossing: ``T`` (no gradient). The free membrane (no reset) equals a LIF neuron's
    membrane up to its first spike, so the integer part is the LIF's first spike step.
    """
    above = v_free > v_th
    steps = v_free.shape[0]
    fired = above.any(0)
    k = torch.where(fired, above.float().argmax(0), torch.full_like(fired, steps, dtype=torch.long))
    k_safe = k.clamp(1, steps - 1)
    v_k = v_free.gather(0, k_safe.unsqueeze(0)).squeeze(0)
    v_prev = v_free.gather(0, (k_safe - 1).unsqueeze(0)).squeeze(0)
    crossing = (k_safe - 1).to(v_free.dtype) + (v_th - v_prev) / (v_k - v_prev).clamp_min(1e-9)
    return torch.where(fired, crossing, torch.full_like(crossing, float(steps)))
