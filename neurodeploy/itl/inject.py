r"""The straight-through injection of measured observables, and time loops that use it.

:func:`inject` returns the measured value in the forward pass and routes the gradient to the
model's value in the backward pass (hxtorch's "Unterjubel", bss2.md §4.3):

.. math:: y = m + (x - \mathrm{sg}[x]) \quad\Rightarrow\quad y = m,\ \ \partial y/\partial x = 1

where :math:`m` is the measurement and :math:`\mathrm{sg}` stops the gradient. Applied at every
step to the membrane :math:`v_k` and the spikes :math:`z_k`, the surrogate gradient is evaluated
on the *chip's* trajectory (Cramer et al. 2022), not on the one the model would have taken.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..core.lif import LIFParameters, lif_coefficients
from ..core.surrogate import spike


def inject(model_value: torch.Tensor, measured: Optional[torch.Tensor]) -> torch.Tensor:
    """``measured`` forward, gradient to ``model_value`` backward; ``measured`` None: the model's value."""
    if measured is None:
        return model_value
    return model_value + (measured.to(model_value.dtype) - model_value).detach()


def lif_sequence_injected(x: torch.Tensor, p: LIFParameters, dt_s: float, *,
                          v_measured: Optional[torch.Tensor] = None, z_measured: Optional[torch.Tensor] = None,
                          surrogate_steepness: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The LIF loop of :func:`neurodeploy.core.lif.lif_sequence` with measured state injected each step.

    ``x`` ``[T, B, N]``; ``v_measured`` (model units) and ``z_measured`` the same shape or None.
    With a measured membrane the model's reset is skipped: the measured trace already contains
    it (as hxtorch does). The refractory counter follows the injected spikes.
    """
    c = lif_coefficients(p, dt_s, x.shape[-1], x.dtype, x.device)
    i_syn = torch.zeros_like(x[0])
    v = c.v_leak.expand_as(i_syn).clone()
    refractory = torch.zeros(i_syn.shape, dtype=torch.int32)
    v_steps = [None] * x.shape[0] if v_measured is None else v_measured.unbind(0)
    z_steps = [None] * x.shape[0] if z_measured is None else z_measured.unbind(0)
    spikes, membrane = [], []
    for x_k, v_hw, z_hw in zip(x.unbind(0), v_steps, z_steps):
        i_syn = c.alpha * i_syn + x_k
        v_free = c.v_leak + c.beta * (v - c.v_leak) + (1.0 - c.beta) * i_syn
        v = inject(torch.where(refractory > 0, c.v_reset, v_free), v_hw)
        z = inject(spike(v - c.v_th, surrogate_steepness), z_hw)
        if v_hw is None:
            v = v - z.detach() * (v - c.v_reset)
        refractory = torch.where(z.detach() > 0, c.n_ref, (refractory - 1).clamp_min(0))
        spikes.append(z)
        membrane.append(v)
    return torch.stack(spikes), torch.stack(membrane)
