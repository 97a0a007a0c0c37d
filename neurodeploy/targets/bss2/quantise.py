"""Weight quantisation: signed float weights → 6-bit magnitudes on excitatory or inhibitory rows.

One scale :math:`s` per target layer (all of a layer's incoming projections share it, because the
chip sets the synaptic gain per neuron, not per projection):
:math:`s = Q_p(|W|) / w_{max}` with :math:`Q_p` the ``clip_quantile`` of the magnitudes (1.0: the
largest, nothing clipped) and :math:`w_{max} = 63`. Then :math:`q = \\mathrm{clip}(\\mathrm{round}(w/s),
-63, 63)`, rounding half away from zero as hxtorch does; positive :math:`q` goes to the excitatory
row, negative to the inhibitory one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...core.quantise import round_half_away


@dataclass(frozen=True)
class QuantisedLayer:
    scale: float  # model weight units per LSB
    weights: dict  # projection name → int16 tensor [post, pre] in -w_max..w_max
    clipped_fraction: float

    def dequantised(self) -> dict:
        return {name: q.float() * self.scale for name, q in self.weights.items()}


def quantise_layer(weights: dict, weight_max: int, clip_quantile: float = 1.0) -> QuantisedLayer:
    """Quantise all projections into one layer with a shared scale."""
    magnitudes = torch.cat([w.abs().flatten() for w in weights.values()])
    reference = float(torch.quantile(magnitudes, clip_quantile)) if clip_quantile < 1 else float(magnitudes.max())
    scale = reference / weight_max if reference > 0 else 1.0
    quantised, clipped = {}, 0
    for name, w in weights.items():
        q = round_half_away(w / scale)
        clipped += int((q.abs() > weight_max).sum())
        quantised[name] = q.clamp(-weight_max, weight_max).to(torch.int16)
    return QuantisedLayer(scale=scale, weights=quantised, clipped_fraction=clipped / max(magnitudes.numel(), 1))
