r"""The task loss every trainer shares (``train`` and ``itl``).

.. math::
    L = \mathrm{CE}(r \cdot s, y) + \lambda \sum_\ell (\bar z_\ell - \rho)^2

with :math:`s` the readout's decoded scores, :math:`r` the recipe's ``readout_scale``, and, when
``rate_weight`` :math:`\lambda > 0`, a penalty on each spiking layer's mean spike probability
per step :math:`\bar z_\ell` away from ``rate_target`` :math:`\rho`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def task_loss(scores: torch.Tensor, labels: torch.Tensor, spikes: Mapping[str, torch.Tensor], input_name: str,
              settings: Mapping) -> torch.Tensor:
    """The loss above; ``spikes``: layer name → ``[T, B, N]`` (the input layer, ``input_name``, is left out)."""
    loss = torch.nn.functional.cross_entropy(settings["readout_scale"] * scores, labels)
    if settings.get("rate_weight", 0) > 0:
        rates = torch.stack([z.mean() for name, z in spikes.items() if name != input_name])
        loss = loss + settings["rate_weight"] * ((rates - settings["rate_target"]) ** 2).sum()
    return loss
