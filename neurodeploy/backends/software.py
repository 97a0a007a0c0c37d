"""The ``software`` backend: the float network of a deployment, as the ideal reference."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..data.encoding import bin_spike_times, n_steps
from ..deployment import Deployment
from ..graph import Graph
from ..models.network import SpikingNetwork
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

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        meta = deployment.meta
        if record is not None and record.madc_neuron is not None:
            raise BackendError("the software backend has no MADC", "record the MADC on a mock or hardware backend")
        if "graph" not in meta:
            raise BackendError("the software backend runs model deployments only, not chip experiments",
                               "use a mock chip (--backend mock:0) or hardware")
        net = self._network(deployment)
        spikes_in = bin_spike_times(input_times_s, meta["dt_s"], n_steps(meta["encoding"], meta["dt_s"]))
        with torch.no_grad():
            out = net(spikes_in)
        spikes = torch.cat([out.spikes[name] if kind == "lif" else torch.zeros_like(out.readout_v)
                            for name, kind in zip(meta["layers"], meta["layer_kinds"])], dim=-1)
        first, count = meta["readout_neurons"]
        return Observations(spikes=spikes, membrane=out.readout_v, recorded=np.arange(first, first + count),
                            baseline=torch.full((count,), net.graph.readout.parameters.v_leak),
                            time_step_s=meta["dt_s"],
                            counters={"events_in": int(spikes_in.sum())})
