r"""The network's forward pass with a backend's observations injected layer by layer.

For each population, in order, the input current is computed from the *measured* spikes of
the layer before, :math:`x_k = W z^{hw,pre}_{k-1}` (one step of latency, as the chip routes),
and the layer's own membrane and spikes are replaced by the measured ones
(:func:`~neurodeploy.itl.inject.inject`). A recurrent projection adds the layer's own *measured*
spikes of the step before, :math:`L z^{hw}_{k-1}`, inside the time loop (the injected spikes carry
the model's gradient back through time). Every value in the forward pass is then the chip's; every
gradient is the model's (surrogate) gradient evaluated on the chip's trajectory.
"""

from __future__ import annotations

from typing import NamedTuple, Optional
from collections.abc import Callable, Mapping

import numpy as np
import torch

from ..backends.base import Observations
from ..core.lif import li_sequence
from ..core.surrogate import Surrogate
from ..errors import GraphError
from ..graph import Graph
from ..models.network import NetworkOutput, delay_one_step
from .alignment import Alignment, recorded_columns, to_model_units
from .inject import inject, lif_sequence_injected


class Measured(NamedTuple):
    """One population's observables in model units; None where the backend does not record them."""

    v: Optional[torch.Tensor]  # [T, B, N]
    z: Optional[torch.Tensor]  # [T, B, N]


def layer_neurons(deployment_meta: dict, neuron_layer: np.ndarray) -> dict[str, np.ndarray]:
    """Population name → its logical neuron ids in the deployment."""
    return {name: np.flatnonzero(neuron_layer == i) for i, name in enumerate(deployment_meta["layers"])}


def measured_per_layer(obs: Observations, graph: Graph, neurons: Mapping[str, np.ndarray],
                       alignment: Alignment) -> dict[str, Measured]:
    """Cut the observations into populations and bring membranes into model units."""
    out = {}
    for pop in graph.populations[1:]:
        ids = neurons[pop.name]
        z = obs.spikes[..., torch.as_tensor(ids)] if pop.kind == "lif" and obs.spikes.shape[-1] else None
        columns = recorded_columns(obs.recorded, ids)
        v = None
        if columns is not None and pop.name in alignment.layers:
            samples = obs.membrane[..., torch.as_tensor(columns)]
            v = to_model_units(samples, alignment.offset[torch.as_tensor(ids)], alignment.layers[pop.name],
                               pop.parameters.v_leak)
        out[pop.name] = Measured(v, z)
    return out


ProjectionInput = Callable[[str, torch.Tensor, Mapping[str, torch.Tensor]], Optional[torch.Tensor]]


def feedforward_input(graph: Graph, name: str, spikes: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor],
                      projection_input: Optional[ProjectionInput] = None) -> torch.Tensor:
    r"""Population ``name``'s input from the populations before it, :math:`\sum W z^{pre}_{k-1}`, or what
    ``projection_input`` (the target's :meth:`~neurodeploy.targets.base.ItlSession.projection_input`) says a
    projection delivers (learned delays)."""
    x: torch.Tensor | int = 0
    for proj in graph.feedforward(name):
        own = None if projection_input is None else projection_input(proj.name, spikes[proj.pre], weights)
        x = x + (own if own is not None else delay_one_step(spikes[proj.pre]) @ weights[proj.name].t())
    if isinstance(x, int):  # Graph.check() already refuses this; stated for the type checker
        raise GraphError(f"population '{name}' receives no projection", "connect it")
    return x


def injected_forward(graph: Graph, weights: Mapping[str, torch.Tensor], input_spikes: torch.Tensor, dt_s: float,
                     measured: Mapping[str, Measured], surrogate_steepness: float = 10.0,
                     surrogate: Optional[Surrogate] = None,
                     projection_input: Optional[ProjectionInput] = None) -> NetworkOutput:
    """The forward pass of :class:`~neurodeploy.models.network.SpikingNetwork` on the chip's trajectory.

    ``surrogate``: the model's surrogate gradient (:func:`neurodeploy.core.surrogate.surrogate_of` of its
    training settings); ``None``: SuperSpike with ``surrogate_steepness``. ``projection_input``: see
    :func:`feedforward_input`.
    """
    spikes = {graph.input.name: input_spikes}
    readout_v = None
    for pop in graph.populations[1:]:
        x = feedforward_input(graph, pop.name, spikes, weights, projection_input)
        loop = graph.recurrent(pop.name)
        params = pop.parameters.to_lif()
        seen = measured.get(pop.name, Measured(None, None))
        if pop.kind == "lif":
            spikes[pop.name], _ = lif_sequence_injected(x, params, dt_s, v_measured=seen.v, z_measured=seen.z,
                                                        lateral=None if loop is None else weights[loop.name],
                                                        surrogate_steepness=surrogate_steepness, surrogate=surrogate)
        else:
            readout_v = inject(li_sequence(x, params, dt_s), seen.v)
    return NetworkOutput(spikes=spikes, readout_v=readout_v)
