r"""Quantisation for Xylo: a state scale per neuron, a left shift per weight matrix, 8-bit weights.

A target neuron :math:`n` of layer :math:`L` holds its membrane as :math:`V = S_n (v - v_{leak})`
(:math:`S_n` LSB per model unit). Its threshold is :math:`\theta_n = \mathrm{round}(S_n (v_{th} - v_{leak}))`;
a readout gets the largest threshold (it never spikes below saturation). A model weight
:math:`w_{nj}` reaches the chip as the effective weight :math:`E_{nj} = S_n c_L w_{nj}` (``c_L``:
:mod:`.lower`), stored as :math:`W_{nj} = \mathrm{clip}(\mathrm{round}(E_{nj} / 2^{s_m}), \pm 127)`
in the matrix :math:`m` that carries it (``in``: from the input channels, ``rec``: from hidden
neurons to hidden neurons, ``out``: from hidden neurons to output neurons), each with its own shift
:math:`s_m`.

1. Start from :math:`S_L^0` that puts a spiking neuron's threshold at ``threshold_target`` LSB, or
   a readout's typical peak (``readout_peak`` model units, measured on training samples) at
   ``readout_target`` LSB.
2. Choose each matrix's shift as the smallest that holds the ``clip_quantile`` of its
   :math:`|E|` within 127.
3. ``per-neuron``: raise (or lower) each neuron's scale until its own ``clip_quantile`` of
   :math:`|E|` fills the 8 bits, at most by ``threshold_max / threshold_target``; ``per-projection``:
   one factor per layer, the smallest of its neurons'. More LSB per model unit keeps the chip's
   integer decays (which move a state by at least 1 LSB per step) closer to the model's.
"""

from __future__ import annotations

from typing import NamedTuple, Optional
from collections.abc import Mapping

import numpy as np
import torch

from ...core.quantise import round_half_away
from .lower import XyloLayer
from .spec import XyloSpec

MATRICES = ("in", "rec", "out")


class XyloQuantised(NamedTuple):
    scale: dict[str, np.ndarray]  # layer → [size] LSB per model unit
    weights: dict[str, np.ndarray]  # projection → int [post, pre] stored weights
    matrix: dict[str, str]  # projection → "in", "rec" or "out"
    shift: dict[str, int]  # matrix → left shift
    threshold: dict[str, np.ndarray]  # layer → int [size]
    clipped_fraction: dict[str, float]  # layer → share of its weights clipped


def matrix_of(pre: Optional[XyloLayer], post: XyloLayer) -> str:
    """The chip's weight matrix for a projection (``pre`` None: the input channels)."""
    if pre is None:
        return "in"
    return "out" if post.bank == "output" else "rec"


def _reference(magnitudes: np.ndarray, clip_quantile: float, axis: Optional[int] = None) -> np.ndarray:
    if magnitudes.size == 0:
        return np.zeros(magnitudes.shape[0] if axis == 1 else ())
    return np.quantile(magnitudes, clip_quantile, axis=axis) if clip_quantile < 1 else magnitudes.max(axis=axis)


def quantise(layers: list[XyloLayer], weights: Mapping[str, torch.Tensor], spec: XyloSpec, *,
             clip_quantile: float = 1.0, mode: str = "per-neuron", readout_peak: Optional[float] = None
             ) -> XyloQuantised:
    """Scales, shifts, stored weights and thresholds for all layers (module docstring)."""
    q = spec["quantisation"]
    w_max, by_name = spec.weight_max, {layer.name: layer for layer in layers}
    base = {layer.name: (q["threshold_target"] / layer.span if layer.kind == "lif"
                         else q["readout_target"] / (readout_peak if readout_peak and readout_peak > 0 else 1.0))
            for layer in layers}
    projections = {f"{pre}->{layer.name}": (by_name.get(pre), layer) for layer in layers for pre in layer.inputs}
    matrix = {name: matrix_of(pre, post) for name, (pre, post) in projections.items()}
    effective = {name: base[post.name] * post.gain * weights[name].detach().double().numpy()
                 for name, (_, post) in projections.items()}
    shift = {}
    for m in MATRICES:
        values = [np.abs(e).ravel() for name, e in effective.items() if matrix[name] == m]
        reference = float(_reference(np.concatenate(values), clip_quantile)) if values else 0.0
        needed = int(np.ceil(np.log2(reference / w_max))) if reference > 0 else 0
        shift[m] = int(np.clip(needed, 0, spec["weights"]["shift_max"]))
    raise_max = q["threshold_max"] / q["threshold_target"]
    scale, threshold = {}, {}
    for layer in layers:
        room = np.full(layer.size, raise_max)  # how far each neuron's scale may grow
        for name, (_, post) in projections.items():
            if post is layer:
                per_neuron = _reference(np.abs(effective[name]), clip_quantile, axis=1)
                fill = np.where(per_neuron > 0, w_max * 2.0 ** shift[matrix[name]] / np.maximum(per_neuron, 1e-300),
                                np.inf)
                room = np.minimum(room, fill)
        factor = room if mode == "per-neuron" else np.full(layer.size, room.min())
        scale[layer.name] = base[layer.name] * factor
        threshold[layer.name] = (np.maximum(1, np.round(scale[layer.name] * layer.span)).astype(np.int64)
                                 if layer.kind == "lif" else np.full(layer.size, spec.state_max, np.int64))
    stored, clipped, total = {}, {layer.name: 0 for layer in layers}, {layer.name: 0 for layer in layers}
    for name, (_, post) in projections.items():
        factor = scale[post.name][:, None] / base[post.name] / 2.0 ** shift[matrix[name]]
        rounded = round_half_away(torch.as_tensor(effective[name] * factor)).numpy()
        clipped[post.name] += int((np.abs(rounded) > w_max).sum())
        total[post.name] += rounded.size
        stored[name] = np.clip(rounded, -w_max, w_max).astype(np.int64)
    return XyloQuantised(scale, stored, matrix, shift, threshold,
                         {k: clipped[k] / max(total[k], 1) for k in clipped})
