r"""Uniform symmetric weight quantisation, and its straight-through twin for training.

:math:`q = \mathrm{clip}(\mathrm{round}(w / s), -q_{max}, q_{max})` with rounding half away from zero
(as hxtorch rounds). ``fake_quantise`` returns :math:`s\,q` in the forward pass and passes the
gradient straight through (identity) in the backward pass, so a network can be fine-tuned for the
weights the chip will actually hold.
"""

from __future__ import annotations

import torch


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def quantise(w: torch.Tensor, scale: float | torch.Tensor, q_max: int) -> torch.Tensor:
    """Integer levels (as float) of ``w`` for a step of ``scale``."""
    return round_half_away(w / scale).clamp(-q_max, q_max)


def fake_quantise(w: torch.Tensor, scale: float | torch.Tensor, q_max: int) -> torch.Tensor:
    """``scale * quantise(w)`` forward, identity gradient backward."""
    return w + (quantise(w.detach(), scale, q_max) * scale - w).detach()
