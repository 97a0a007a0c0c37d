"""Weight quantisation: signed float weights → 6-bit magnitudes on excitatory or inhibitory rows.

The scale is one number per target neuron (default, ``per-neuron``) or one per target layer
(``per-projection``: all of a layer's incoming projections share it). Both are realisable on BSS-2
because each neuron circuit has its own synaptic input strength (bss2.md §1.1, ``i_bias_gm``), which
calibration sets. With :math:`Q_p` the ``clip_quantile`` of the magnitudes (1.0: the largest,
nothing clipped) over the neuron's (or layer's) incoming weights and :math:`w_{max} = 63`:
:math:`s = Q_p(|W|) / w_{max}` and :math:`q = \\mathrm{clip}(\\mathrm{round}(w/s), -63, 63)`, rounding
half away from zero as hxtorch does. Positive :math:`q` goes to the excitatory row, negative to the
inhibitory one. A given ``scale`` (in-the-loop training pins it, so that the synaptic gains
measured for it on the chip stay valid) replaces :math:`s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ...core.quantise import round_half_away

SCALE_MODES = ("per-neuron", "per-projection")


@dataclass(frozen=True)
class QuantisedLayer:
    scale: torch.Tensor  # [post] model weight units per LSB, one per target neuron
    weights: dict  # projection name → int16 tensor [post, pre] in -w_max..w_max
    clipped_fraction: float

    def dequantised(self) -> dict:
        return {name: q.float() * self.scale[:, None] for name, q in self.weights.items()}


def quantise_layer(weights: dict, weight_max: int, clip_quantile: float = 1.0,
                   mode: str = "per-neuron", scale: Optional[torch.Tensor] = None) -> QuantisedLayer:
    """Quantise all projections into one layer (``weights``: name → ``[post, pre]``; ``scale``: fixed ``[post]``)."""
    magnitudes = torch.cat([w.abs() for w in weights.values()], dim=1)
    if mode == "per-projection":
        magnitudes = magnitudes.flatten()[None, :]
    reference = (torch.quantile(magnitudes, clip_quantile, dim=1) if clip_quantile < 1
                 else magnitudes.amax(dim=1))
    pinned = scale
    scale = torch.where(reference > 0, reference / weight_max, torch.ones_like(reference))
    scale = scale.expand(next(iter(weights.values())).shape[0]).contiguous()
    if pinned is not None:
        scale = torch.as_tensor(pinned, dtype=scale.dtype).reshape(scale.shape).clone()
    quantised, clipped = {}, 0
    for name, w in weights.items():
        q = round_half_away(w / scale[:, None])
        clipped += int((q.abs() > weight_max).sum())
        quantised[name] = q.clamp(-weight_max, weight_max).to(torch.int16)
    total = sum(w.numel() for w in weights.values())
    return QuantisedLayer(scale=scale, weights=quantised, clipped_fraction=clipped / max(total, 1))
