r"""``export_nir``: a model → a NIR graph whose equations, integrated with forward Euler at the
model's ``dt_s``, give the model's spikes (:mod:`neurodeploy.core.euler`).

Each population becomes a neuron node of its name: CubaLIF/CubaLI (``cuba``), LIF/LI (``leaky``)
or IF/I (``integrator``). Time constants are chosen so that Euler's decay per step is the one the
model's simulation uses, :math:`\tau_{Euler} = \Delta t / (1 - a)` with :math:`a` the per-step
decay as that simulation computes it (float32 for native models), and the input gains are 1
(:math:`r = 1`, :math:`w_{in} = \tau_{syn}/\Delta t`; IF/I: :math:`r = 1/\Delta t`), so the
weights are the model's. A projection is a Linear node, an Affine one carrying the target's bias;
delayed synapses get one Linear and one Delay node per distinct delay. A native model's one step
of transmission latency becomes a Delay of ``dt_s`` on every feed-forward projection (a recurrent
projection already sees the previous step, in NIR as in neurodeploy). Importing the graph again
gives a ``nir-euler`` model with the same spikes and membranes, bit for bit (tests/test_nir_roundtrip.py).

NIR cannot say: a refractory period, a subtractive reset, learned delays that are not yet whole
steps (σ > 0). These are errors, or with ``lossy=True`` dropped (refractory, reset to
``v_reset``) or hardened (delays), each named in the graph's ``metadata["lossy"]``.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch

from .. import __version__
from ..atomic import atomic_path
from ..core.delays import harden
from ..core.euler import euler_coefficients
from ..core.lif import lif_coefficients
from ..errors import InterchangeError
from ..graph import Population
from ..modelfile import ModelFile


def _decays(model: ModelFile, pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Synaptic and membrane decay per step ``[N]`` as the model's own simulation computes them."""
    p = pop.parameters
    if model.discretisation == "native":
        c = lif_coefficients(p.to_lif(), model.dt_s, pop.size, torch.float32)
        return c.alpha.double().numpy(), c.beta.double().numpy()
    e = euler_coefficients(p.to_lif(), model.dt_s, pop.size, model=p.model, dtype=torch.float64)
    return e.a.numpy(), e.b.numpy()


def _neuron_node(model: ModelFile, pop: Population) -> nir.NIRNode:
    p, n, dt = pop.parameters, pop.size, model.dt_s
    value = {name: np.broadcast_to(np.asarray(p.value(name), dtype=np.float64), (n,)).copy()
             for name in ("v_leak", "v_th", "v_reset")}
    ones, spiking = np.ones(n), pop.kind == "lif"
    if p.model == "integrator":
        if spiking:
            return nir.IF(r=ones / dt, v_threshold=value["v_th"], v_reset=value["v_reset"])
        return nir.I(r=ones / dt)
    a, b = _decays(model, pop)
    tau_syn, tau_mem = dt / (1.0 - a), dt / (1.0 - b)  # Euler's decay per step 1 - dt/tau is the model's
    if p.model == "leaky":
        if spiking:
            return nir.LIF(tau=tau_mem, r=ones, v_leak=value["v_leak"], v_threshold=value["v_th"],
                           v_reset=value["v_reset"])
        return nir.LI(tau=tau_mem, r=ones, v_leak=value["v_leak"])
    if spiking:
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=ones, v_leak=value["v_leak"], v_threshold=value["v_th"],
                           v_reset=value["v_reset"], w_in=tau_syn / dt)
    return nir.CubaLI(tau_syn=tau_syn, tau_mem=tau_mem, r=ones, v_leak=value["v_leak"], w_in=tau_syn / dt)


def _lossless(model: ModelFile, lossy: bool) -> list[str]:
    """What NIR cannot say about this model: an error, or with ``lossy`` the list of what is dropped."""
    dropped = []
    for pop in model.graph.populations[1:]:
        p = pop.parameters
        if p.t_ref_s > 0 and pop.kind == "lif":
            dropped.append(f"population '{pop.name}': refractory period {p.t_ref_s:g} s dropped")
        if p.reset == "subtract":
            dropped.append(f"population '{pop.name}': subtractive reset replaced by a reset to v_reset")
    for name, sigma in model.delay_sigma_steps.items():
        if sigma > 0:
            dropped.append(f"projection {name}: delays hardened to whole steps (kernel width {sigma:g} steps)")
    if dropped and not lossy:
        raise InterchangeError(f"NIR cannot express {dropped[0]} " + (f"(+{len(dropped) - 1} more)" if len(dropped) > 1
                               else "").strip(), "train without it (t_ref_s: 0, hardened delays), or export with "
                               "lossy=True to drop it")
    return dropped


def export_nir(model: ModelFile, *, lossy: bool = False) -> nir.NIRGraph:
    """The model as a NIR graph (module docstring); what NIR cannot say is an error unless ``lossy``."""
    dropped = _lossless(model, lossy)
    graph, dt = model.graph, model.dt_s
    taken = {pop.name for pop in graph.populations}

    def fresh(name: str) -> str:
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    nodes: dict[str, nir.NIRNode] = {graph.input.name: nir.Input(input_type={"input": np.array([graph.input.size])})}
    edges: list[tuple[str, str]] = []
    for pop in graph.populations[1:]:
        nodes[pop.name] = _neuron_node(model, pop)
        bias = np.broadcast_to(np.asarray(pop.parameters.value("i_bias"), dtype=np.float64), (pop.size,)).copy()
        first = graph.feedforward(pop.name)[0]  # carries the bias (a loop's Affine would lose it at step 0 in nirtorch)
        for proj in graph.incoming(pop.name):
            weight = model.weights[proj.name].detach().double().numpy()
            steps = np.zeros(weight.shape, dtype=int)
            if proj.max_delay_steps:
                steps = harden(model.delays[proj.name], proj.max_delay_steps).long().numpy()
            steps = steps + int(graph.discretisation == "native" and not proj.recurrent)  # native latency
            for delay in np.unique(steps):
                part = np.where(steps == delay, weight, 0.0)
                with_bias = proj is first and delay == steps.min() and bool(bias.any())
                linear = fresh(f"w_{proj.pre}_{proj.post}" + (f"_d{delay}" if len(np.unique(steps)) > 1 else ""))
                nodes[linear] = nir.Affine(weight=part, bias=bias) if with_bias else nir.Linear(weight=part)
                edges.append((proj.pre, linear))
                if delay:
                    delayed = fresh(f"delay_{proj.pre}_{proj.post}_d{delay}")
                    nodes[delayed] = nir.Delay(delay=np.full(pop.size, delay * dt))
                    edges.append((linear, delayed))
                    linear = delayed
                edges.append((linear, pop.name))
    output = fresh("output")
    nodes[output] = nir.Output(output_type={"output": np.array([graph.readout.size])})
    edges.append((graph.readout.name, output))
    metadata = {"writer": f"neurodeploy {__version__}", "dt_s": float(dt), "discretisation": model.discretisation,
                **({"lossy": "; ".join(dropped)} if dropped else {})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(model: ModelFile, path: str | Path, *, lossy: bool = False) -> None:
    """Write the model as a ``.nir`` file, atomically (``nir.write``: HDF5)."""
    graph = export_nir(model, lossy=lossy)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
