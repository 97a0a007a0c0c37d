r"""The LIF time loop of in-the-loop training: measured state injected at every step.

The injection itself (forward = measured, backward = model) is :func:`neurodeploy.core.inject.inject`,
re-exported here; the step, measured values included, is :func:`neurodeploy.core.lif.lif_step`.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..core.inject import inject
from ..core.lif import LIFParameters, initial_state, lif_coefficients, lif_step
from ..core.surrogate import Surrogate

__all__ = ["inject", "lif_sequence_injected"]


def lif_sequence_injected(x: torch.Tensor, p: LIFParameters, dt_s: float, *,
                          v_measured: Optional[torch.Tensor] = None, z_measured: Optional[torch.Tensor] = None,
                          lateral: Optional[torch.Tensor] = None, surrogate_steepness: float = 10.0,
                          surrogate: Optional[Surrogate] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The LIF loop of :func:`neurodeploy.core.lif.lif_sequence` with measured state injected each step.

    ``x`` ``[T, B, N]``; ``v_measured`` (model units) and ``z_measured`` the same shape or None.
    The reset is detached (``detach_reset``); see :func:`~neurodeploy.core.lif.lif_step` for the injection.
    ``lateral`` (``[N, N]``): the layer's recurrent weights, applied to the step before's (injected) spikes.
    ``surrogate``: the spikes' surrogate gradient; ``None``: SuperSpike with ``surrogate_steepness``.
    """
    c = lif_coefficients(p, dt_s, x.shape[-1], x.dtype, x.device)
    state = initial_state(x.shape[1], c)
    v_steps = [None] * x.shape[0] if v_measured is None else v_measured.unbind(0)
    z_steps = [None] * x.shape[0] if z_measured is None else z_measured.unbind(0)
    spikes, membrane = [], []
    for x_k, v_hw, z_hw in zip(x.unbind(0), v_steps, z_steps):
        state = lif_step(x_k, state, c, lateral=lateral, surrogate_steepness=surrogate_steepness, detach_reset=True,
                         v_measured=v_hw, z_measured=z_hw, surrogate=surrogate)
        spikes.append(state.z)
        membrane.append(state.v)
    return torch.stack(spikes), torch.stack(membrane)
