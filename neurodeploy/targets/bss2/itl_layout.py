r"""Fixed-scale quantisation of the float shadow weights, and the deployment after an update.

The quantisation step of each target neuron, :math:`s_n`, is the one the first mapping chose and
stays fixed for the whole run: the chip's synaptic gain for it was set (and, with a calibration,
measured) once, so :math:`q = \mathrm{clip}(\mathrm{round}(w/s_n), -63, 63)` keeps meaning
:math:`s_n q` model units whatever the weights become. (Re-deriving :math:`s_n` from the new
weights would silently change every gain on the chip.) The shadow weights are clamped to
:math:`|w| \le 63.5\, s_n` so they cannot drift where rounding no longer sees them.

Placement and routing do not depend on the weight values (both rows of a driver are always
used, bss2.md §1.3), so an update rewrites only synapse weights; the number rewritten is counted.
"""

from __future__ import annotations

from typing import NamedTuple, Optional
from collections.abc import Mapping

import numpy as np
import torch

from ...core.quantise import fake_quantise
from ...deployment import Deployment
from ...errors import BackendError
from ...modelfile import ModelFile
from .lower import LoweredLayer
from .mapper import check
from .place import Placement, place
from .quantise import QuantisedLayer, quantise_layer
from .route import route
from .spec import BSS2Spec


class Layout(NamedTuple):
    """What stays fixed while the weights change: lowered layers, placement, scales."""

    layers: list[LoweredLayer]
    placement: Placement
    spec: BSS2Spec
    input_name: str
    scale: dict  # layer name → [post] model units per LSB

    def projections(self, layer: LoweredLayer) -> list[str]:
        return [f"{pre}->{layer.name}" for pre, _ in layer.inputs]


def fixed_layout(model: ModelFile, spec: BSS2Spec, deployment: Deployment,
                 circuit_ok: Optional[np.ndarray]) -> Layout:
    """Re-derive the deployment's layers and placement (deterministic), and read its scales."""
    layers, _, _ = check(model, spec, circuit_ok, weight_copies=int(deployment.meta.get("weight_copies", 1)))
    placement, _ = place(layers, spec, circuit_ok)
    if placement is None or not np.array_equal(placement.neuron_circuits, deployment["neuron_circuits"]):
        raise BackendError("the placement could not be reproduced for in-the-loop updates",
                           "map the model again with this version of neurodeploy")
    scale = {layer.name: torch.as_tensor(deployment[f"weight_scale:{layer.name}"]).float() for layer in layers}
    return Layout(layers, placement, spec, model.graph.input.name, scale)


def clamp_to_range(weights: Mapping[str, torch.Tensor], layout: Layout) -> None:
    """In place: :math:`|w| \\le (q_{max} + 1/2)\\, s_n` (module docstring)."""
    q_max = layout.spec.weight_max
    with torch.no_grad():
        for layer in layout.layers:
            bound = (q_max + 0.5) * layout.scale[layer.name][:, None]
            for name in layout.projections(layer):
                weights[name].copy_(torch.maximum(torch.minimum(weights[name], bound), -bound))


def chip_weights(weights: Mapping[str, torch.Tensor], layout: Layout) -> dict[str, torch.Tensor]:
    """:math:`s_n q` forward, identity gradient backward: the weights the chip holds, differentiably."""
    out = {}
    for layer in layout.layers:
        for name in layout.projections(layer):
            out[name] = fake_quantise(weights[name], layout.scale[layer.name][:, None], layout.spec.weight_max)
    return out


def quantised_layers(weights: Mapping[str, torch.Tensor], layout: Layout) -> dict[str, QuantisedLayer]:
    return {layer.name: quantise_layer({n: weights[n].detach() for n in layout.projections(layer)},
                                       layout.spec.weight_max, scale=layout.scale[layer.name])
            for layer in layout.layers}


def reconfigured(deployment: Deployment, weights: Mapping[str, torch.Tensor],
                 layout: Layout) -> tuple[Deployment, int]:
    """The deployment holding ``weights`` (fixed scales), and how many synapses changed."""
    quantised = quantised_layers(weights, layout)
    routing, violations = route(layout.layers, layout.placement, quantised, layout.spec, layout.input_name)
    same_wiring = (not violations and np.array_equal(routing.synapse_label, deployment["synapse_label"])
                   and np.array_equal(routing.row_mode, deployment["row_mode"]))
    if not same_wiring:
        raise BackendError("a weight update changed the routing, which in-the-loop updates never should",
                           "map the model again with this version of neurodeploy")
    changed = int((routing.synapse_weight != deployment["synapse_weight"]).sum())
    arrays = {**deployment.arrays, "synapse_weight": routing.synapse_weight,
              **{f"quantised_weight:{k}": v.numpy() for q in quantised.values() for k, v in q.weights.items()},
              **{f"float_weight:{k}": w.detach().numpy().copy() for k, w in weights.items()}}
    return Deployment(meta=deployment.meta, arrays=arrays), changed
