"""Measuring the trace alignment (:mod:`.alignment`) on a backend: a silent run and a probe batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import numpy as np
import torch

from ..backends.base import Backend, Recording
from ..core.lif import li_sequence, lif_sequence
from ..deployment import Deployment
from ..graph import Graph
from ..models.network import delay_one_step
from .forward import ProjectionInput, feedforward_input
from .alignment import Alignment, before_first_spike, fit_scale_and_shift, recorded_columns

SILENT_RUNS = 8


def measure_alignment(engine: Backend, deployment: Deployment, graph: Graph, weights: Mapping[str, torch.Tensor],
                      neurons: Mapping[str, np.ndarray], probe_times_s: np.ndarray, probe_spikes: torch.Tensor,
                      dt_s: float, projection_input: Optional[ProjectionInput] = None) -> Alignment:
    """Offsets from runs without input; per-layer scale and shift from ``probe_times_s`` (same samples as
    ``probe_spikes``); ``projection_input``: the target's own realisation of some projections (:mod:`.forward`).

    ``weights`` are the weights the chip holds (dequantised). Each layer's model potential is
    computed from the chip's own spikes of the layer before (and of itself, one step earlier, through a
    recurrent projection), so that the fit compares like with like.
    """
    record = Recording(spikes=True, membrane=True)
    silent = engine.run(deployment, np.full((SILENT_RUNS, probe_times_s.shape[1]), np.nan), record)
    offset = torch.zeros(len(deployment["neuron_layer"]))
    offset[torch.as_tensor(silent.recorded, dtype=torch.long)] = silent.membrane.float().mean(dim=(0, 1))
    obs = engine.run(deployment, probe_times_s, record)
    spikes = {graph.input.name: probe_spikes}
    layers = {}
    with torch.no_grad():
        for pop in graph.populations[1:]:
            ids = torch.as_tensor(neurons[pop.name])
            x = feedforward_input(graph, pop.name, spikes, weights, projection_input)
            params = pop.parameters.to_lif()
            z_hw = obs.spikes[..., ids].float() if obs.spikes.shape[-1] else None
            loop = graph.recurrent(pop.name)
            lateral = None
            if loop is not None and z_hw is not None:  # the layer's own measured spikes, as for a layer before
                x = x + delay_one_step(z_hw) @ weights[loop.name].t()
            elif loop is not None:
                lateral = weights[loop.name]
            if pop.kind == "lif":
                z_model, v_model = lif_sequence(x, params, dt_s, lateral=lateral)
                mask = before_first_spike(z_model, z_hw) if z_hw is not None else before_first_spike(z_model)
                spikes[pop.name] = z_hw if z_hw is not None else z_model
            else:
                v_model = li_sequence(x, params, dt_s)
                mask = torch.ones_like(v_model, dtype=torch.bool)
            columns = recorded_columns(obs.recorded, neurons[pop.name])
            if columns is None or obs.membrane.shape[0] != v_model.shape[0]:
                continue  # not recorded (or on another time grid): this layer's membrane is not injected
            samples = obs.membrane[..., torch.as_tensor(columns)].float() - offset[ids]
            layers[pop.name] = fit_scale_and_shift(v_model - pop.parameters.v_leak, samples, mask)
    return Alignment(offset, layers)
