"""The ``software`` backend: the float network of a deployment, as the ideal reference."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..data.encoding import bin_spike_times, n_steps
from ..deployment import Deployment
from ..graph import Graph
from ..models.network import NetworkOutput, SpikingNetwork
from ..errors import BackendError
from .base import Observations, Recording


class SoftwareBackend:
    """Runs the deployment's float weights with the model's own discretisation (no quantisation)."""

    name = "software"
    target: Optional[str] = None  # any target's deployment: it runs the float weights every deployment carries
    chip_id: Optional[str] = None
    uses_codes = False
    capabilities: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._built: tuple[int, SpikingNetwork] | None = None

    def _network(self, deployment: Deployment) -> SpikingNetwork:
        # Built once per deployment, not once per batch.
        if self._built is None or self._built[0] != id(deployment):
            weights = {k: torch.as_tensor(v) for k, v in deployment.float_weights().items()}
            delays = {k.split(":", 1)[1]: torch.as_tensor(v) for k, v in deployment.arrays.items()
                      if k.startswith("float_delay:")}  # trained delays, with their final σ
            sigma = deployment.meta.get("delays", {}).get("sigma_steps", {})
            net = SpikingNetwork(Graph.from_dict(deployment.meta["graph"]), deployment.meta["dt_s"], weights=weights,
                                 delays=delays or None, delay_sigma_steps=sigma)
            self._built = (id(deployment), net)
        return self._built[1]

    def trace(self, deployment: Deployment, input_times_s: np.ndarray) -> NetworkOutput:
        """The float network's spikes, readout, and every layer's membrane and weighted input on these inputs."""
        return self._forward(deployment, input_times_s, record_membranes=True)

    def _forward(self, deployment: Deployment, input_times_s: np.ndarray, record_membranes: bool) -> NetworkOutput:
        meta = deployment.meta
        if "graph" not in meta:
            raise BackendError("the software backend runs model deployments only, not chip experiments",
                               "use a mock chip (--backend mock:0) or hardware")
        net = self._network(deployment)
        spikes_in = bin_spike_times(input_times_s, meta["dt_s"], n_steps(meta["encoding"], meta["dt_s"]))
        with torch.no_grad():
            return net(spikes_in, record_membranes=record_membranes)

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        """Spikes of every neuron; membranes of the readout, or of every neuron when ``record`` asks for them."""
        meta = deployment.meta
        if record is not None and record.madc_neuron is not None:
            raise BackendError("the software backend has no MADC", "record the MADC on a mock or hardware backend")
        every = record is not None and record.membrane
        out = self._forward(deployment, input_times_s, record_membranes=every)
        graph = self._network(deployment).graph
        spikes = torch.cat([out.spikes[name] if kind == "lif" else
                            torch.zeros(*out.spikes[graph.input.name].shape[:2], graph.population(name).size)
                            for name, kind in zip(meta["layers"], meta["layer_kinds"])], dim=-1)
        first, count = meta["readout_neurons"]
        readout_v = out.readout_v if out.readout_v is not None else torch.zeros(*spikes.shape[:2], 0)
        if out.readout_v is None:  # a network without an li readout (all spiking): no membranes to report
            first, count = 0, 0
        if every and out.membranes is not None:
            membrane = torch.cat([out.membranes[name] for name in meta["layers"]], dim=-1)
            recorded = np.arange(membrane.shape[-1])
            populations = [graph.population(name) for name in meta["layers"]]
            baseline = torch.cat([torch.full((pop.size,), float(pop.parameters.v_leak)) for pop in populations])
        else:
            membrane, recorded = readout_v, np.arange(first, first + count)
            baseline = torch.full((count,), graph.readout.parameters.v_leak)
        return Observations(spikes=spikes, membrane=membrane, recorded=recorded, baseline=baseline,
                            time_step_s=meta["dt_s"], counters={"events_in": int(out.spikes[graph.input.name].sum())})
