r"""Surrogate gradients for the spike non-linearity.

Forward: :math:`z = \Theta(u)` with :math:`u = v - v_{th}`; spikes stay binary.
Backward (SuperSpike / fast sigmoid, Zenke & Ganguli 2018, seed 004_5fb35622c679aa12.txt):

.. math:: \frac{\partial z}{\partial u} \approx \frac{1}{(\beta |u| + 1)^2}

where :math:`\beta` is the steepness (per unit of membrane potential).
"""

from __future__ import annotations

import torch


class SuperSpike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid derivative backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, steepness: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.steepness = steepness
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad_z / (ctx.steepness * u.abs() + 1.0) ** 2, None


def superspike_derivative(u: torch.Tensor, steepness: float) -> torch.Tensor:
    """The surrogate derivative itself, for code that applies it by hand (the fused kernel)."""
    return 1.0 / (steepness * u.abs() + 1.0) ** 2


def spike(u: torch.Tensor, steepness: float = 10.0) -> torch.Tensor:
    """Binary spike of ``u = v - v_th`` with the SuperSpike surrogate gradient."""
    return SuperSpike.apply(u, steepness)
