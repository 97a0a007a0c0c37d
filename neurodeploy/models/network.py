"""A spiking network built from a :class:`~neurodeploy.graph.Graph`, in the graph's discretisation.

``native``: each projection transmits with one step of latency (as BSS-2's routing does,
bss2.md §1.8): the input current of population ``post`` at step k is :math:`x_k = W z^{pre}_{k-1}`;
hidden populations are LIF (fused kernel or its twin, :mod:`neurodeploy.core.dispatch`), the
readout a non-spiking leaky integrator. ``nir-euler`` (imported NIR graphs): :math:`x_k = W z^{pre}_k`,
each population stepped by :func:`neurodeploy.core.euler.euler_sequence` in plain PyTorch. In both,
a recurrent projection adds the population's own spikes of the previous step, :math:`W_{rec} z_{k-1}`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional
from collections.abc import Mapping

import torch
from torch import nn

from ..core.delays import delayed_input, harden
from ..core.dispatch import lif_sequence
from ..core.euler import euler_coefficients, euler_sequence
from ..core.lif import li_sequence
from ..core.conv import dense
from ..core.quantise import fake_quantise
from ..core.recurrent import RecurrentConstraints, project_
from ..core.surrogate import Surrogate, resolve
from ..errors import GraphError
from ..graph import Graph, Population


class NetworkOutput(NamedTuple):
    spikes: dict  # population name → [T, B, N] spikes (input included)
    readout_v: Optional[torch.Tensor]  # [T, B, n_classes]; None: the graph has no li readout
    membranes: Optional[dict] = None  # population name → [T, B, N] membrane (after reset), when asked for
    layer_inputs: Optional[dict] = None  # population name → [T, B, N] weighted input x_k (lateral term excluded)


def delay_one_step(z: torch.Tensor) -> torch.Tensor:
    """Shift a ``[T, ...]`` sequence one step later, filling step 0 with zeros."""
    return torch.cat([torch.zeros_like(z[:1]), z[:-1]], dim=0)


def delay_steps(z: torch.Tensor, steps: int) -> torch.Tensor:
    """Shift a ``[T, ...]`` sequence ``steps`` steps later, filling the first steps with zeros."""
    if steps <= 0:
        return z
    return torch.cat([torch.zeros_like(z[:steps]), z[:-steps]], dim=0)[: z.shape[0]]


def decode(readout_v: torch.Tensor, how: str = "max_over_time") -> torch.Tensor:
    """Readout membrane ``[T, B, C]`` → per-class scores ``[B, C]`` (max or mean over time)."""
    return readout_v.amax(dim=0) if how == "max_over_time" else readout_v.mean(dim=0)


class SpikingNetwork(nn.Module):
    """Weights are float parameters keyed by projection name (``"pre->post"``), shape ``[post, pre]``.

    ``surrogate``: the spikes' surrogate gradient (:mod:`neurodeploy.core.surrogate`); ``None``: SuperSpike
    with ``surrogate_steepness``. ``recurrent``: the constraints of recurrent projections
    (:mod:`neurodeploy.core.recurrent`; missing: none), kept by :meth:`project_constraints`; a matrix that is not
    learnable gets no gradient. ``shared``: the trained parameters of projections with a geometry (a kernel, or
    a matrix on the pooled image; :mod:`neurodeploy.core.conv`): their dense weights are built from them in every
    forward pass, so that training shares the weights of a convolution; without it a projection's dense weights
    are used as they are (a model file holds those).
    """

    def __init__(self, graph: Graph, dt_s: float, *, surrogate_steepness: float = 10.0,
                 detach_reset: bool = True, weights: Optional[Mapping[str, torch.Tensor]] = None,
                 delays: Optional[Mapping[str, torch.Tensor]] = None,
                 delay_sigma_steps: Optional[Mapping[str, float]] = None,
                 surrogate: Optional[Surrogate] = None,
                 recurrent: Optional[Mapping[str, RecurrentConstraints]] = None,
                 shared: Optional[Mapping[str, torch.Tensor]] = None):
        super().__init__()
        self.graph = graph
        self.dt_s = dt_s
        self.surrogate: Surrogate = resolve(surrogate, surrogate_steepness)
        self.surrogate_steepness = surrogate_steepness
        self.detach_reset = detach_reset
        self.projection_names = [p.name for p in graph.projections]
        self.quantise_levels: Optional[int] = None  # set: forward uses fake-quantised weights
        self.weights = nn.ParameterList()
        for proj in graph.projections:
            shape = (graph.population(proj.post).size, graph.population(proj.pre).size)
            w = torch.zeros(shape) if weights is None else torch.as_tensor(weights[proj.name]).float()
            self.weights.append(nn.Parameter(w.clone()))
        geometries = {p.name: p.geometry for p in graph.projections if p.geometry is not None}
        self.shared_names = [name for name in (shared or {}) if name in geometries]
        self.shared = nn.ParameterList([nn.Parameter(torch.as_tensor(shared[name]).float().clone())  # type: ignore[index]
                                        for name in self.shared_names])
        self.geometries = geometries
        for name in self.shared_names:
            self.weight(name).requires_grad_(False)  # built from the shared parameter instead
        self.recurrent = {name: constraints for name, constraints in (recurrent or {}).items()}
        for name, constraints in self.recurrent.items():
            self.weight(name).requires_grad_(constraints.learnable)
        # Delayed projections (graph max_delay_steps > 0): a delay parameter [post, pre] in steps and
        # the kernel width σ in steps (0: integer delays, as deployed); training shrinks σ.
        self.max_delay_steps = {p.name: p.max_delay_steps for p in graph.projections if p.max_delay_steps > 0}
        self.delay_names = list(self.max_delay_steps)
        self.delays = nn.ParameterList()
        for name in self.delay_names:
            shape = tuple(self.weights[self.projection_names.index(name)].shape)
            d = torch.zeros(shape) if delays is None else torch.as_tensor(delays[name]).float()
            self.delays.append(nn.Parameter(d.clone()))
        self.delay_sigma_steps = {name: float((delay_sigma_steps or {}).get(name, 0.0)) for name in self.delay_names}

    def weight(self, projection: str) -> nn.Parameter:
        return self.weights[self.projection_names.index(projection)]

    def project_constraints(self) -> None:
        """Bring every constrained recurrent matrix back onto its constraints (after an optimiser step)."""
        for name, constraints in self.recurrent.items():
            project_(self.weight(name).data, constraints)

    def delay_dict(self) -> dict[str, torch.Tensor]:
        return {name: d.detach().clone() for name, d in zip(self.delay_names, self.delays)}

    def weight_dict(self) -> dict[str, torch.Tensor]:
        """The dense ``[post, pre]`` weights (built from the shared parameters where there are some)."""
        dense_weights = self._dense_weights()
        return {name: dense_weights[name].detach().clone() for name in self.projection_names}

    def _dense_weights(self) -> dict[str, torch.Tensor]:
        weights = dict(zip(self.projection_names, self.weights))
        for name, parameter in zip(self.shared_names, self.shared):
            weights[name] = dense(parameter, self.geometries[name])
        return weights

    def effective_weights(self) -> dict[str, torch.Tensor]:
        r"""The weights forward uses: the parameters, fake-quantised when ``quantise_levels`` is set.

        Each target neuron has its own scale, :math:`s_n = \max_j |W_{nj}| / q_{max}` over all its
        incoming weights, as the BSS-2 mapping's default ``per-neuron`` scale does.
        """
        weights = self._dense_weights()
        if self.quantise_levels is None:
            return weights
        for pop in self.graph.populations[1:]:
            names = [p.name for p in self.graph.incoming(pop.name)]
            largest = torch.cat([weights[n].detach().abs() for n in names], dim=1).amax(dim=1, keepdim=True)
            scale = (largest / self.quantise_levels).clamp_min(1e-12)
            for n in names:
                weights[n] = fake_quantise(weights[n], scale, self.quantise_levels)
        return weights

    def forward(self, input_spikes: torch.Tensor, weights: Optional[Mapping[str, torch.Tensor]] = None,
                record_membranes: bool = False) -> NetworkOutput:
        """Run on ``[T, B, channels]`` input spikes; ``weights`` overrides the parameters (e.g. quantised);
        ``record_membranes`` keeps every layer's membrane and weighted input (``membranes``, ``layer_inputs``)."""
        weights = self.effective_weights() if weights is None else weights
        spikes = {self.graph.input.name: input_spikes}
        membranes: dict[str, torch.Tensor] = {}
        layer_inputs: dict[str, torch.Tensor] = {}
        readout_v = None
        for pop in self.graph.populations[1:]:
            x = layer_inputs[pop.name] = self._input(pop, spikes, weights)
            recurrent = self.graph.recurrent(pop.name)
            lateral = None if recurrent is None else weights[recurrent.name]
            params = pop.parameters.to_lif()
            if self.graph.discretisation == "nir-euler":
                n = pop.parameters
                coefficients = euler_coefficients(params, self.dt_s, pop.size, model=n.model, reset=n.reset,
                                                  i_bias=n.value("i_bias"), dtype=x.dtype, device=x.device)
                z, v = euler_sequence(x, coefficients, lateral=lateral, spiking=pop.kind == "lif",
                                      detach_reset=self.detach_reset, surrogate=self.surrogate)
                membranes[pop.name] = v
                if pop.kind == "lif":
                    spikes[pop.name] = z
                else:
                    readout_v = v
            elif pop.kind == "lif":
                spikes[pop.name], membranes[pop.name] = lif_sequence(
                    x, params, self.dt_s, lateral=lateral, detach_reset=self.detach_reset, surrogate=self.surrogate)
            else:
                readout_v = membranes[pop.name] = li_sequence(x, params, self.dt_s)
        return NetworkOutput(spikes=spikes, readout_v=readout_v,
                             **({"membranes": membranes, "layer_inputs": layer_inputs} if record_membranes else {}))

    def _uniform_delay(self, name: str) -> Optional[int]:
        """The one whole-step delay of all synapses of a delayed projection with σ = 0, else None."""
        if name not in self.max_delay_steps or self.delay_sigma_steps[name] > 0:
            return None
        hard = harden(self.delays[self.delay_names.index(name)], self.max_delay_steps[name])
        return int(hard.flatten()[0]) if bool((hard == hard.flatten()[0]).all()) else None

    def _input(self, pop: Population, spikes: dict, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Summed input of ``pop`` from the other populations (natively one step late)."""
        native = self.graph.discretisation == "native"
        x: torch.Tensor | int = 0
        for proj in self.graph.feedforward(pop.name):
            source = delay_one_step(spikes[proj.pre]) if native else spikes[proj.pre]
            uniform = None if native else self._uniform_delay(proj.name)
            if uniform is not None:  # one delay for all synapses (an imported latency): a shift, summed as natively
                x = x + delay_steps(source, uniform) @ weights[proj.name].t()
            elif proj.name in self.max_delay_steps:
                k = self.delay_names.index(proj.name)
                x = x + delayed_input(source, weights[proj.name], self.delays[k],
                                      self.delay_sigma_steps[proj.name], proj.max_delay_steps)
            else:
                x = x + source @ weights[proj.name].t()
        if isinstance(x, int):  # Graph.check() already refuses this; stated for the type checker
            raise GraphError(f"population '{pop.name}' receives no projection", "connect it")
        return x
