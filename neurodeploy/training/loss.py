r"""The task loss every trainer shares (``train`` and ``itl``).

.. math::
    L = \mathrm{CE}(r \cdot s, y) + \lambda \sum_\ell (\bar z_\ell - \rho)^2
        + \lambda_1 \sum_\ell \langle \zeta^\ell_{bi} \rangle_{b,i}
        + \lambda_u \sum_\ell \langle [\zeta^\ell_{bi} - \theta_u]_+^2 \rangle_{b,i}

with :math:`s` the readout's decoded scores, :math:`r` the recipe's ``readout_scale``, and, when
``rate_weight`` :math:`\lambda > 0`, a penalty on each spiking layer's mean spike probability
per step :math:`\bar z_\ell` away from ``rate_target`` :math:`\rho`. The last two terms regularise
activity of the two kinds Zenke & Vogels (2021) use (../shared/reference/seeds-gaps.md, seed 004: "sparse spiking"): on
the spike count :math:`\zeta^\ell_{bi}` of neuron :math:`i` of layer :math:`\ell` in sample :math:`b`, an L1
term (``activity_l1`` :math:`\lambda_1`: fewer spikes overall) and a per-neuron upper bound
(``activity_upper_weight`` :math:`\lambda_u`, ``activity_upper_spikes`` :math:`\theta_u`: no neuron fires
more than :math:`\theta_u` times per sample). Their paper's exact constants were not available here;
the recipes' values are this project's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def task_loss(scores: torch.Tensor, labels: torch.Tensor, spikes: Mapping[str, torch.Tensor], input_name: str,
              settings: Mapping) -> torch.Tensor:
    """The loss above; ``spikes``: layer name → ``[T, B, N]`` (the input layer, ``input_name``, is left out)."""
    loss = torch.nn.functional.cross_entropy(settings["readout_scale"] * scores, labels)
    hidden = [z for name, z in spikes.items() if name != input_name]
    if settings.get("rate_weight", 0) > 0:
        rates = torch.stack([z.mean() for z in hidden])
        loss = loss + settings["rate_weight"] * ((rates - settings["rate_target"]) ** 2).sum()
    l1, upper = settings.get("activity_l1", 0.0), settings.get("activity_upper_weight", 0.0)
    if l1 > 0 or upper > 0:
        counts = [z.sum(0) for z in hidden]  # [B, N] spikes per neuron and sample
        bound = settings.get("activity_upper_spikes", 0.0)
        loss = loss + sum(l1 * c.mean() + upper * torch.relu(c - bound).pow(2).mean() for c in counts)
    return loss


def spikes_per_sample(spikes: Mapping[str, torch.Tensor], input_name: str) -> dict[str, float]:
    r"""Per spiking layer: the mean spike count of one neuron in one sample, :math:`\langle \zeta_{bi} \rangle`."""
    return {name: float(z.sum(0).mean()) for name, z in spikes.items() if name != input_name}
