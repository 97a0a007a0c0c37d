r"""Constraints of a recurrent projection, :math:`x_k \mathrel{+}= L z_{k-1}` (seed 000_611cab4eccd6835b.txt).

* ``mask``: ``full`` (every pair) or ``hollow`` (no neuron feeds itself: :math:`L_{nn} = 0`);
* ``sign``: ``free`` or ``inhibitory`` (:math:`L \le 0`: lateral inhibition, seed 003's winner-take-all);
* ``learnable``: whether training and in-the-loop training change :math:`L`.

Training keeps them by projection: after every optimiser step (and once at initialisation),
:func:`project_` zeroes the masked entries and sets positive entries of an inhibitory matrix to 0.
:func:`violation` says which constraint a stored matrix breaks (model-file validation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

import torch

MASKS = ("full", "hollow")
SIGNS = ("free", "inhibitory")


class RecurrentConstraints(NamedTuple):
    mask: str = "full"
    sign: str = "free"
    learnable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"mask": self.mask, "sign": self.sign, "learnable": bool(self.learnable)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecurrentConstraints:
        return cls(mask=str(data.get("mask", "full")), sign=str(data.get("sign", "free")),
                   learnable=bool(data.get("learnable", True)))


@torch.no_grad()
def project_(weight: torch.Tensor, constraints: RecurrentConstraints) -> torch.Tensor:
    """Make ``weight`` (``[N, N]``, in place) satisfy ``constraints``; returns it."""
    if constraints.mask == "hollow":
        weight.fill_diagonal_(0.0)
    if constraints.sign == "inhibitory":
        weight.clamp_(max=0.0)
    return weight


def violation(weight: torch.Tensor, constraints: RecurrentConstraints) -> Optional[str]:
    """What ``weight`` breaks of ``constraints`` (a phrase), or None."""
    if constraints.mask == "hollow" and bool(torch.diagonal(weight).ne(0).any()):
        return "has non-zero self-connections, but its mask is hollow"
    if constraints.sign == "inhibitory" and bool((weight > 0).any()):
        return "has positive weights, but its sign is inhibitory"
    return None
