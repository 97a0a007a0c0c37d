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

from types import MappingProxyType
from typing import NamedTuple, Optional
from collections.abc import Mapping

import numpy as np
import torch

from ...core.quantise import fake_quantise
from ...models.network import delay_one_step, delay_steps
from ...deployment import Deployment
from ...errors import BackendError
from ...modelfile import ModelFile
from .lower import LoweredLayer
from .delay_mapping import route_delayed
from .delays import DelayPlan, DelayedSlots, slot_weights, strength_factor
from .mapper import lower_and_check
from .place import Placement, place
from .quantise import QuantisedLayer, quantise_layer
from .route import layer_matrix, route
from .spec import BSS2Spec


class DelayedRoutes(NamedTuple):
    """How a delayed layer's inputs reach it, fixed for a whole run: the FPGA copies, which copies (and with what
    strength) each route key carries, and each neuron's slots' keys."""

    copies: np.ndarray  # [V, 2] (input channel, delay steps) of each FPGA copy
    member: torch.Tensor  # [V, keys] strength factor of copy v on route key k (0: not on it)
    slot_key: torch.Tensor  # [post, slots] route key of each slot; ``keys`` (one past the last) where unused


class Layout(NamedTuple):
    """What stays fixed while the weights change: lowered layers, placement, scales, and the delay plan."""

    layers: list[LoweredLayer]
    placement: Placement
    spec: BSS2Spec
    input_name: str
    scale: dict  # layer name → [post] model units per LSB
    plan: Optional[DelayPlan] = None  # learned delays: their realisation (delays.py), fixed while weights train
    delayed: Mapping[str, DelayedRoutes] = MappingProxyType({})  # delayed layer → its routes, derived from plan once
    written: Optional[np.ndarray] = None  # route.Routing.written, where weights can be rewritten without routing

    def projections(self, layer: LoweredLayer) -> list[str]:
        return [f"{pre}->{layer.name}" for pre, _ in layer.inputs]

    def slots(self, layer: LoweredLayer) -> Optional[DelayedSlots]:
        """The input slots of a delayed layer (each a share of one trained weight), else None."""
        return None if self.plan is None else self.plan.layers.get(layer.name)


def fixed_layout(model: ModelFile, spec: BSS2Spec, deployment: Deployment,
                 circuit_ok: Optional[np.ndarray]) -> Layout:
    """Re-derive the deployment's layers, delay plan and placement (deterministic), and read its scales."""
    strategy = deployment.meta.get("delays", {}).get("strategy")
    layers, plan, _, _ = lower_and_check(model, spec, circuit_ok, strategy,
                                         int(deployment.meta.get("weight_copies", 1)))
    placement, _ = place(layers, spec, circuit_ok)
    if placement is None or not np.array_equal(placement.neuron_circuits, deployment["neuron_circuits"]):
        raise BackendError("the placement could not be reproduced for in-the-loop updates",
                           "map the model again with this version of neurodeploy")
    scale = {layer.name: torch.as_tensor(deployment[f"weight_scale:{layer.name}"]).float() for layer in layers}
    delayed = {} if plan is None else {post: delayed_routes(plan, post) for post in plan.layers}
    layout = Layout(layers, placement, spec, model.graph.input.name, scale, plan, delayed)
    if plan is not None or any(layer.slots is not None for layer in layers):
        return layout  # delays and convolutions place weights by slot: routed again at each update
    routing, _ = route(layers, placement, quantised_layers(model.weights, layout), spec, layout.input_name)
    return layout._replace(written=routing.written)


def clamp_to_range(weights: Mapping[str, torch.Tensor], layout: Layout) -> None:
    r"""In place: :math:`|w| \le (q_{max} + 1/2)\, s_n` (module docstring); a delayed synapse's weight so that
    its largest share :math:`w f` stays within that."""
    q_max = layout.spec.weight_max
    with torch.no_grad():
        for layer in layout.layers:
            bound = (q_max + 0.5) * layout.scale[layer.name][:, None]
            slots = layout.slots(layer)
            for name in layout.projections(layer):
                limit = bound if slots is None else bound / largest_share(slots, weights[name].shape[1])
                weights[name].copy_(torch.maximum(torch.minimum(weights[name], limit), -limit))


def largest_share(slots: DelayedSlots, pre: int) -> torch.Tensor:
    """``[post, pre]``: the largest fraction of each trained weight that one of its slots carries (1 where none)."""
    share = torch.zeros(slots.source.shape[0], pre + 1)
    share.scatter_reduce_(1, torch.where(slots.source >= 0, slots.source, pre), slots.fraction, reduce="amax")
    share = share[:, :pre]
    return torch.where(share > 0, share, torch.ones_like(share))


def chip_weights(weights: Mapping[str, torch.Tensor], layout: Layout) -> dict[str, torch.Tensor]:
    """:math:`s_n q` forward, identity gradient backward: the weights the chip holds, differentiably. A delayed
    projection's are its slots' (``[post, slots]``; :func:`delayed_input` consumes them)."""
    out = {}
    for layer in layout.layers:
        slots = layout.slots(layer)
        for name in layout.projections(layer):
            w = weights[name] if slots is None else slot_weights(weights[name], slots.source, slots.fraction)
            out[name] = fake_quantise(w, layout.scale[layer.name][:, None], layout.spec.weight_max)
    return out


def delayed_routes(plan: DelayPlan, post: str) -> DelayedRoutes:
    """:class:`DelayedRoutes` of the delayed layer ``post`` (built once per layout, not per batch)."""
    strength = (strength_factor(plan.virtual[:, 2]) if plan.strategy == "spike-strength"
                else np.ones(len(plan.virtual)))
    member = torch.zeros(len(plan.virtual), len(plan.route_keys))
    for key, events in enumerate(plan.route_keys):
        for v in events:
            member[v, key] += float(strength[v])
    unused = len(plan.route_keys)
    slot_key = torch.as_tensor([[unused if k is None else k for k in row] for row in plan.layers[post].keys],
                               dtype=torch.long)
    return DelayedRoutes(plan.virtual[:, :2].astype(np.int64), member, slot_key)


def delayed_input(name: str, source_spikes: torch.Tensor, weights: Mapping[str, torch.Tensor],
                  layout: Layout) -> Optional[torch.Tensor]:
    r"""The input ``[T, B, post]`` of a delayed projection as the chip delivers it, or None (not delayed).

    Each FPGA copy :math:`v` re-sends its channel's spikes :math:`d_v` steps later, with its strength factor;
    a slot's route key receives its copies' events, :math:`u_{key}(t)`; the neuron's input is
    :math:`x_i(t) = \sum_s W_{is}\, u_{key(i, s)}(t - 1)` with the slots' chip weights (one step of routing).
    """
    routes = layout.delayed.get(name.split("->", 1)[1])
    if routes is None or layout.plan is None or name not in layout.plan.projections.values():
        return None
    copies = torch.stack([delay_steps(source_spikes[..., c], d) for c, d in routes.copies], dim=-1)
    per_key = copies @ routes.member.to(copies.dtype)  # [T, B, keys]
    keys = routes.member.shape[1]  # unused slots add into a column that is dropped
    matrix = torch.zeros(routes.slot_key.shape[0], keys + 1, dtype=weights[name].dtype)
    matrix = matrix.scatter_add(1, routes.slot_key, weights[name])
    return delay_one_step(per_key) @ matrix[:, :keys].t()


def quantised_layers(weights: Mapping[str, torch.Tensor], layout: Layout) -> dict[str, QuantisedLayer]:
    out = {}
    for layer in layout.layers:
        slots = layout.slots(layer)
        chosen = {n: weights[n].detach() if slots is None
                  else slot_weights(weights[n].detach(), slots.source, slots.fraction)
                  for n in layout.projections(layer)}
        out[layer.name] = quantise_layer(chosen, layout.spec.weight_max, scale=layout.scale[layer.name])
    return out


def rewritten_synapses(quantised: Mapping[str, QuantisedLayer], layout: Layout, written: np.ndarray,
                       shape: tuple[int, ...]) -> np.ndarray:
    """The synapse weight array [hemispheres, rows, columns] holding ``quantised``, written where the first routing
    wrote each weight (``written``, route.py): what :func:`~.route.route` gives for the same wiring, without
    routing again. Each integer weight is split over its copies as :func:`~.route.split_weight` splits it."""
    weight = np.zeros(shape, np.uint8)
    for index, layer in enumerate(layout.layers):
        rows = written[written[:, 3] == index]
        if not len(rows):
            continue
        w = layer_matrix(layer, quantised[layer.name])[rows[:, 4], rows[:, 5]].astype(np.int64)
        base, extra = np.divmod(np.abs(w), layer.weight_copies)
        part = np.sign(w) * (base + (rows[:, 6] < extra))
        weight[rows[:, 0], rows[:, 1], rows[:, 2]] = np.maximum(part, 0)
        weight[rows[:, 0], rows[:, 1] + 1, rows[:, 2]] = np.maximum(-part, 0)
    return weight


def reconfigured(deployment: Deployment, weights: Mapping[str, torch.Tensor],
                 layout: Layout) -> tuple[Deployment, int]:
    """The deployment holding ``weights`` (fixed scales), and how many synapses changed."""
    quantised = quantised_layers(weights, layout)
    if layout.written is not None:
        synapse_weight = rewritten_synapses(quantised, layout, layout.written, deployment["synapse_weight"].shape)
    else:
        routing, violations = route_delayed(layout.plan, layout.layers, layout.placement, quantised, layout.spec,
                                            layout.input_name)
        same_wiring = (not violations and np.array_equal(routing.synapse_label, deployment["synapse_label"])
                       and np.array_equal(routing.row_mode, deployment["row_mode"]))
        if not same_wiring:
            raise BackendError("a weight update changed the routing, which in-the-loop updates never should",
                               "map the model again with this version of neurodeploy")
        synapse_weight = routing.synapse_weight
    changed = int((synapse_weight != deployment["synapse_weight"]).sum())
    arrays = {**deployment.arrays, "synapse_weight": synapse_weight,
              **{f"quantised_weight:{k}": v.numpy() for q in quantised.values() for k, v in q.weights.items()},
              **{f"float_weight:{k}": w.detach().numpy().copy() for k, w in weights.items()}}
    return Deployment(meta=deployment.meta, arrays=arrays), changed
