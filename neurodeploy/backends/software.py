"""The ``software`` backend: the float network of a deployment, as the ideal reference."""

from __future__ import annotations

import numpy as np
import torch

from ..data.encoding import bin_spike_times, n_steps
from ..deployment import Deployment
from ..graph import Graph
from ..models.network import SpikingNetwork
from .base import Observations


class SoftwareBackend:
    """Runs the deployment's float weights with the model's own discretisation (no quantisation)."""

    name = "software"

    def run(self, deployment: Deployment, input_times_s: np.ndarray) -> Observations:
        meta = deployment.meta
        graph = Graph.from_dict(meta["graph"])
        weights = {k: torch.as_tensor(v) for k, v in deployment.float_weights().items()}
        net = SpikingNetwork(graph, meta["dt_s"], weights=weights)
        spikes_in = bin_spike_times(input_times_s, meta["dt_s"], n_steps(meta["encoding"], meta["dt_s"]))
        with torch.no_grad():
            out = net(spikes_in)
        spikes = torch.cat([out.spikes[name] if kind == "lif" else torch.zeros_like(out.readout_v)
                            for name, kind in zip(meta["layers"], meta["layer_kinds"])], dim=-1)
        first, count = meta["readout_neurons"]
        return Observations(spikes=spikes, membrane=out.readout_v, recorded=np.arange(first, first + count),
                            baseline=torch.zeros(count), time_step_s=meta["dt_s"],
                            counters={"events_in": int(spikes_in.sum())})
