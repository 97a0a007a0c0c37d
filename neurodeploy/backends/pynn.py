"""``pynn:SIMULATOR`` (``pynn:brian2``): a deployment's weights, as its chip holds them, run through PyNN.

The network is :func:`neurodeploy.interchange.pynn_export.network_description` (IF_curr_exp cells, the
conversion of units, weights and delays in that module's docstring), built and run by
:mod:`neurodeploy.interchange.pynn_runtime`, the same code an exported script embeds. A batch of ``B`` samples
runs as ``B`` disjoint copies of the network in one simulation (at most :data:`COPIES` per ``sim.run``); on
Brian2 the synapses are made in bulk (``pynn_runtime._bulk_connect``, the same synapses as PyNN's own call).
Observations are on the model's step grid in model units, as the ``software`` backend's: spikes of every
logical neuron, the readout's membrane.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any, Optional

import numpy as np
import torch

from ..deployment import Deployment
from ..errors import BackendError
from ..graph import Graph
from ..interchange.pynn_export import network_description, source_times_ms
from ..interchange.pynn_runtime import build, run_samples
from .base import Observations, Recording

SIMULATORS = ("brian2",)
COPIES = 500  # samples per simulation: a network of COPIES copies is built once and reused


def pynn_simulator(name: str) -> Any:
    """``pyNN.NAME`` (``brian2``), set up quietly; a missing one is a one-line ``BackendError``."""
    if name not in SIMULATORS:
        raise BackendError(f"unknown PyNN simulator '{name}'", f"use one of {[f'pynn:{s}' for s in SIMULATORS]}")
    try:
        sim = importlib.import_module(f"pyNN.{name}")
    except ImportError as exc:
        raise BackendError(f"PyNN on {name} is not importable ({exc})",
                           "pip install 'pyNN==0.13.0' brian2 (the test extra has both)") from None
    if name == "brian2":
        import brian2
        brian2.prefs.codegen.target = "numpy"  # no C compiler needed; Cython is not a dependency
        brian2.prefs.logging.std_redirection = False
        logging.getLogger("brian2").setLevel(logging.ERROR)
    return sim


def deployment_weights(deployment: Deployment) -> dict[str, np.ndarray]:
    """The weights the deployment's chip holds, in model units (its target dequantises them)."""
    from ..targets.registry import get_target
    return get_target(deployment.target).model_unit_weights(deployment)


class PynnBackend:
    """Runs any target's deployment whose target gives model-unit weights (``Target.model_unit_weights``)."""

    target: Optional[str] = None
    chip_id: Optional[str] = None
    uses_codes = False
    capabilities: frozenset[str] = frozenset()

    def __init__(self, simulator: str = "brian2") -> None:
        self.name = f"pynn:{simulator}"
        self.simulator = simulator
        self._built: Optional[tuple[int, dict, dict, int]] = None  # (id(deployment), net, handles, copies)

    def _network(self, deployment: Deployment, batch: int) -> tuple[dict, dict]:
        copies = min(batch, COPIES)
        if self._built is None or self._built[0] != id(deployment) or self._built[3] < copies:
            meta = deployment.meta
            if "graph" not in meta:
                raise BackendError("PyNN runs model deployments only, not chip experiments", "use a mock chip")
            net = network_description(Graph.from_dict(meta["graph"]), deployment_weights(deployment), meta["dt_s"],
                                      meta["encoding"], meta["training"].get("loss"))
            sim = pynn_simulator(self.simulator)
            sim.setup(timestep=net["timestep_ms"], min_delay=net["timestep_ms"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                handles = build(sim, net, copies, bulk=self.simulator == "brian2")
            self._built = (id(deployment), net, handles, copies)
        return self._built[1], self._built[2]

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        """Spikes ``[T, B, neurons]`` (model steps) of every logical neuron and the readout membrane (model units)."""
        if record is not None and (record.madc_neuron is not None or record.correlation):
            raise BackendError("a PyNN backend records spikes and the readout membrane only",
                               "record the MADC or correlations on a mock chip")
        if np.ndim(input_times_s) != 2:
            raise BackendError(f"backend {self.name} takes one spike per input channel ([batch, channels]), not "
                               f"spike trains {np.shape(input_times_s)}",
                               "run spike trains on a mock chip (--backend mock:0) or the software backend")
        meta = deployment.meta
        net, handles = self._network(deployment, len(input_times_s))
        sim = pynn_simulator(self.simulator)
        times = source_times_ms(np.asarray(input_times_s, np.float64), net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sim.reset()
            spikes, readout = run_samples(sim, net, handles, times)
        graph = Graph.from_dict(meta["graph"])
        steps, batch = net["steps"], len(times)
        columns = [torch.as_tensor(spikes[name], dtype=torch.float32) if name in spikes else
                   torch.zeros(steps, batch, graph.population(name).size) for name in meta["layers"]]
        first, count = meta["readout_neurons"]
        return Observations(spikes=torch.cat(columns, dim=-1), membrane=torch.as_tensor(readout),
                            recorded=np.arange(first, first + count),
                            baseline=torch.full((count,), float(graph.readout.parameters.v_leak)),
                            time_step_s=meta["dt_s"], counters={"events_in": int(np.isfinite(times).sum())})
