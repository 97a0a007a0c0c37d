r"""Seed 003's network (``003_7854d67f35f77eb1.txt``; :mod:`.stdp` trains it in numpy) as a model file that maps onto
a chip and learns there with a plasticity program (``neurodeploy learn``, :class:`~neurodeploy.plasticity.EventStdp`).

Pixels are Poisson-coded (``poisson`` encoding, several spikes per channel); ``n_exc`` LIF neurons receive them
through a plastic, excitatory projection and inhibit each other through one uniform lateral projection
:math:`-w_{inh}\,\mathbf 1 \mathbf 1^T` (its sources share one synapse driver and label, targets/bss2/lower.py;
the diagonal included, as :class:`~.stdp.StdpSettings` ``inhibit_self`` describes).

**Units.** The seed's neuron jumps by :math:`w` per input spike and fires at :math:`v_{th} + \theta`. The chip's
neuron (core/lif.py) integrates a synaptic current, :math:`I_k = \alpha I_{k-1} + x_k`,
:math:`v_k = \beta v_{k-1} + (1-\beta) I_k`; with a synaptic time constant of a few steps an event moves the
membrane by about :math:`(1-\beta)\,x / (1-\alpha)` in all (the leak during those steps neglected). So a seed
weight :math:`w` becomes :math:`x = w (1-\alpha) / ((1-\beta) V)` in a model whose threshold is 1, :math:`V` the
seed's threshold the chip holds (``threshold``): the seed's thresholds grow with its adaptation to some 28
(digits, 3 epochs, docs/stdp.md), and a chip's threshold setting cannot follow, so the network is built at that
working point and the program keeps only the adaptation's differences between neurons
(:class:`~neurodeploy.plasticity.EventStdp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..graph import Graph, Population, Projection
from ..modelfile import ModelFile
from ..neuron import NeuronParameters
from .stdp_rules import normalise_columns

INPUT, LAYER = "input", "exc"
PLASTIC = f"{INPUT}->{LAYER}"
LATERAL = f"{LAYER}->{LAYER}"


@dataclass(frozen=True)
class StdpNetwork:
    """The network in the seed's units (:class:`~.stdp.StdpSettings` where they share a name)."""

    n_exc: int = 400
    inputs: int = 64
    dt_s: float = 1e-3
    duration_s: float = 0.1
    max_rate_hz: float = 200.0
    tau_mem_s: float = 0.02
    tau_syn_s: float = 2e-3       # short, as the seed's instantaneous current; the shortest mock:0 calibrates (2 µs)
    t_ref_s: float = 1e-3         # one step (the seed has none; the chip's shortest is 40 ns)
    threshold: float = 28.0       # the seed's working threshold v_th + mean θ, held fixed
    w_inh: float = 1.0            # inhibition per spike, seed units
    w_max: float = 1.0
    w_init: float = 0.3
    weight_sum: float = 6.4

    @property
    def per_seed_unit(self) -> float:
        """Model weight per seed weight: :math:`(1-\\alpha) / ((1-\\beta) V)` (module docstring)."""
        alpha, beta = math.exp(-self.dt_s / self.tau_syn_s), math.exp(-self.dt_s / self.tau_mem_s)
        return (1.0 - alpha) / ((1.0 - beta) * self.threshold)


def stdp_network_model(network: StdpNetwork, seed: int = 0) -> ModelFile:
    """The untrained network: input weights uniform in ``[0, w_init w_max]`` scaled to sum to ``weight_sum`` per
    neuron (the seed's initialisation), the uniform inhibition, Poisson-coded digits."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, network.w_init * network.w_max, (network.n_exc, network.inputs))
    w = normalise_columns(w.T, np.ones(1), np.full(network.n_exc, network.weight_sum), network.w_max).T
    neuron = NeuronParameters(tau_mem_s=network.tau_mem_s, tau_syn_s=network.tau_syn_s, t_ref_s=network.t_ref_s)
    graph = Graph((Population(INPUT, network.inputs, "input"), Population(LAYER, network.n_exc, "lif", neuron)),
                  (Projection(INPUT, LAYER), Projection(LAYER, LAYER, recurrent=True)))
    scale = network.per_seed_unit
    weights = {PLASTIC: torch.as_tensor(w * scale, dtype=torch.float32),
               LATERAL: torch.full((network.n_exc, network.n_exc), -network.w_inh * scale)}
    encoding = {"kind": "poisson", "max_rate_hz": network.max_rate_hz, "dt_s": network.dt_s,
                "duration_s": network.duration_s, "seed": seed}
    return ModelFile(graph=graph, weights=weights, dt_s=network.dt_s, encoding=encoding, dataset="digits", seed=seed,
                     provenance={"built_by": "neurodeploy.training.stdp_network"})
