"""``import_nir``: a NIR graph → a neurodeploy model in the ``nir-euler`` discretisation.

Each neuron node becomes a population (:mod:`.nir_neurons`), the linear nodes between them
projections (:mod:`.nir_linear`): a skip connection is one more projection into a population, a
neuron's loop back to itself through Affine/Linear nodes a ``recurrent`` projection, Delay nodes
per-synapse delays. The model simulates the graph's equations with forward Euler at ``dt_s``
(:mod:`neurodeploy.core.euler`). What the graph cannot express in neurodeploy is an
:class:`~neurodeploy.errors.InterchangeError` naming the node, why, and a fix; signs of the peer
exporters' known slips are warnings (:class:`InterchangeWarning`, and ``provenance["warnings"]``),
never silently corrected: ``tau_scale`` and ``reset`` say what to do about them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import nir
import numpy as np
import torch

from .. import __version__
from ..data.datasets import N_CLASSES, N_FEATURES, check_dataset_name
from ..data.encoding import n_channels, validate_encoding
from ..errors import GraphError, InterchangeError
from ..graph import Graph, Population, Projection
from ..modelfile import ModelFile
from ..neuron import NeuronParameters
from .nir_linear import Composer, check_supported, projections
from .nir_neurons import ImportedNeuron, convert, is_neuron, peer_warnings
from .nir_params import check_parameters
from .nir_read import FlatGraph, flatten, read_graph

DEFAULT_DT_S = 1e-3  # Norse's default step; snnTorch's exporter assumes 1e-4 (a warning says so)
NO_DATASET = "none"  # an imported model without a dataset: `evaluate` and `map` need one
RESETS = ("graph", "subtract")
DISCRETISATION_OPTIONS = ("auto", "nir-euler", "native")


class InterchangeWarning(UserWarning):
    """A graph imported as written although it shows signs of a known exporter slip."""


def _time_step(dt_s: Optional[float], metadata: dict) -> tuple[float, str]:
    if dt_s is None:
        written = metadata.get("dt_s")
        return (float(written), "graph metadata") if isinstance(written, (int, float)) else (DEFAULT_DT_S, "default")
    if not (isinstance(dt_s, (int, float)) and math.isfinite(dt_s) and dt_s > 0):
        raise InterchangeError(f"dt_s = {dt_s!r} is not a positive time", "give the step in seconds, e.g. 1e-3")
    return float(dt_s), "option"


def _readout(flat: FlatGraph, composer: Composer) -> str:
    """The neuron node that the Output node shows, unchanged."""
    signal = composer.input_of(flat.output)
    term = signal.terms[0] if len(signal.terms) == 1 else None
    if (term is None or term.source == flat.input or term.delay or np.any(signal.bias)
            or not np.array_equal(term.matrix, np.eye(signal.size))):
        raise InterchangeError(f"Output '{flat.output}' is not fed by exactly one neuron node (directly)",
                               "end the graph with one LIF, CubaLIF, IF, LI, CubaLI or I node feeding the Output")
    return term.source


def _order(names: list[str], sources: dict[str, list[str]], readout: str) -> list[str]:
    """Neuron nodes in feed-forward order (the readout last); loops other than a node's own are refused."""
    ancestors, todo = {readout}, [readout]
    while todo:
        for source in sources[todo.pop()]:
            if source in sources and source not in ancestors:
                ancestors.add(source)
                todo.append(source)
    if stray := [n for n in names if n not in ancestors]:
        raise InterchangeError(f"node '{stray[0]}' does not lead to the Output",
                               "connect it to the output or remove it")
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names
                 if n not in order and all(s in order or s == n or s not in sources for s in sources[n])]
        if not ready:
            loop = [n for n in names if n not in order]
            raise InterchangeError(f"the loop through {loop} is not supported: only a neuron's own recurrence "
                                   "(LIF -> Affine -> the same LIF) is", "restructure the graph without that loop")
        order.append(ready[0])
    return order


def _with_bias(params: NeuronParameters, bias: np.ndarray) -> NeuronParameters:
    if len(set(bias.tolist())) == 1:
        return replace(params, i_bias=float(bias[0]))
    return replace(params, i_bias=float(np.mean(bias)),
                   per_neuron=(*params.per_neuron, ("i_bias", tuple(bias.tolist()))))


def _native(graph: Graph, weights: dict[str, torch.Tensor], delays: dict[str, torch.Tensor]) -> Optional[str]:
    """Why the graph is not a native model in disguise (None: it is one).

    A native model is the ``nir-euler`` one with one step of latency on every feed-forward
    projection, and native neurons (CubaLIF/CubaLI without bias, reset to v_reset): exactly what
    :func:`~neurodeploy.interchange.export_nir` writes for a native model.
    """
    for pop in graph.populations[1:]:
        if pop.parameters.extended:
            return f"population '{pop.name}' uses {', '.join(pop.parameters.extended)}"
    for proj in graph.projections:
        if proj.recurrent:
            continue
        delayed = (delays[proj.name] >= 1) | (weights[proj.name] == 0) if proj.name in delays else None
        if delayed is None or not bool(delayed.all()):
            return f"projection {proj.name} has synapses without a delay of at least one step"
    return None


def _to_native(graph: Graph, weights: dict, delays: dict) -> tuple[Graph, dict]:
    """The native model: the latency step taken off every feed-forward projection's delays."""
    projs, left = [], {}
    for proj in graph.projections:
        if proj.recurrent:
            projs.append(proj)
            continue
        rest = delays[proj.name] - 1.0
        rest[weights[proj.name] == 0] = 0.0  # a synapse without weight has no delay to keep
        projs.append(replace(proj, max_delay_steps=int(rest.max())))
        if rest.max() > 0:
            left[proj.name] = rest
    return replace(graph, projections=tuple(projs), discretisation="native"), left


def _check_dataset(graph: Graph, dataset: Optional[str], encoding: Optional[dict]) -> tuple[str, dict]:
    if dataset is None:
        return NO_DATASET, dict(encoding or {})
    check_dataset_name(dataset)
    if encoding is None:
        raise InterchangeError(f"dataset '{dataset}' needs an encoding", "give the encoding block of a recipe, "
                               f"e.g. models/{dataset}.yaml's")
    validate_encoding(encoding)
    channels = n_channels(encoding, N_FEATURES[dataset])
    if channels != graph.input.size:
        raise InterchangeError(f"the graph's Input has {graph.input.size} channels, dataset '{dataset}' with this "
                               f"encoding gives {channels}", "choose the dataset and encoding the graph was made for")
    if graph.readout.kind != "li":
        raise InterchangeError(f"the graph's output '{graph.readout.name}' spikes: evaluate and map score a dataset on "
                               "a non-spiking readout's membrane", "end the graph with an LI or CubaLI node to use a "
                               "dataset, or import it without one")
    if graph.readout.size != N_CLASSES[dataset]:
        raise InterchangeError(f"the graph's readout has {graph.readout.size} neurons, dataset '{dataset}' has "
                               f"{N_CLASSES[dataset]} classes", "choose the dataset the graph was made for")
    return dataset, dict(encoding)


def import_nir(graph_or_path: str | Path | nir.NIRGraph, dt_s: Optional[float] = None, dataset: Optional[str] = None,
               encoding: Optional[dict] = None, *, tau_scale: float = 1.0, reset: str = "graph",
               discretisation: str = "auto", readout: str = "graph") -> ModelFile:
    """A NIR graph (path or object) as a model file at ``dt_s`` seconds per step.

    ``dt_s`` None: the graph's metadata ``dt_s`` (graphs neurodeploy wrote), else 1 ms.
    ``dataset``/``encoding``: what `evaluate` and `map` feed it (without: dataset ``"none"``).
    ``tau_scale`` multiplies every time constant (Norse 1.1 writes dt·τ: pass 1000); ``reset``
    ``"subtract"`` makes spiking neurons subtract ``v_th - v_reset`` instead of resetting to
    ``v_reset`` (snnTorch 1.0 writes ``v_reset = 0`` also for its default subtractive reset).
    ``discretisation``: ``auto`` gives a ``native`` model when the graph is one in disguise (one step
    of delay on every feed-forward projection and native neurons: what neurodeploy exports for a
    native model; the same spikes, and the model trains and maps as any native one), else
    ``nir-euler``; ``nir-euler`` or ``native`` force one (``native``: an error if impossible).
    ``readout`` ``"membrane"``: the graph's last layer, if it spikes, becomes a non-spiking readout
    scored by its membrane as neurodeploy's readouts are (threshold and reset dropped; exporters such
    as snnTorch 1.0 write no LI node, so their networks end in spiking neurons).
    """
    if discretisation not in DISCRETISATION_OPTIONS:
        raise InterchangeError(f"discretisation {discretisation!r} is unknown", f"use one of {DISCRETISATION_OPTIONS}")
    if readout not in ("graph", "membrane"):
        raise InterchangeError(f"readout {readout!r} is unknown", "use 'graph' or 'membrane'")
    if reset not in RESETS:
        raise InterchangeError(f"reset {reset!r} is unknown", f"use one of {RESETS}")
    if not (isinstance(tau_scale, (int, float)) and math.isfinite(tau_scale) and tau_scale > 0):
        raise InterchangeError(f"tau_scale = {tau_scale!r} is not a positive number", "e.g. 1, or 1000 for Norse 1.1")
    graph, source = read_graph(graph_or_path)
    flat = flatten(graph)
    check_supported(flat)
    check_parameters(flat)
    dt, dt_from = _time_step(dt_s, flat.metadata)
    composer = Composer(flat, dt)
    names = [n for n, node in flat.nodes.items() if is_neuron(node)]
    if not names:
        raise InterchangeError("the graph has no neuron node", "add a LIF, CubaLIF, IF, LI, CubaLI or I node")
    neurons: dict[str, ImportedNeuron] = {n: convert(n, flat.nodes[n], composer.size(n), dt, tau_scale, reset)
                                          for n in names}
    signals = {n: composer.input_of(n) for n in names}
    for n in names:
        if signals[n].size != composer.size(n):
            raise InterchangeError(f"node '{n}' ({type(flat.nodes[n]).__name__}) has {composer.size(n)} neurons but "
                                   f"receives a vector of size {signals[n].size}",
                                   "make the rows of the weights into it match its size")
    incoming = {n: projections(n, signals[n]) for n in names}
    order = _order(names, {n: list(incoming[n]) for n in names}, _readout(flat, composer))
    if readout == "membrane" and neurons[order[-1]].kind == "lif":
        last = neurons[order[-1]]
        neurons[order[-1]] = replace(last, kind="li", params=replace(last.params, reset="value"))
    pops = [Population(flat.input, composer.size(flat.input), "input")]
    projs, weights, delays = [], {}, {}
    for name in order:
        neuron = neurons[name]
        pops.append(Population(name, composer.size(name), neuron.kind,
                               _with_bias(neuron.params, neuron.gain * signals[name].bias)))
        for pre, (weight, delay) in sorted(incoming[name].items(), key=lambda item: item[0] == name):  # loop last
            if pre == name and delay.any():
                raise InterchangeError(f"the recurrent loop of node '{name}' passes a Delay node: not supported",
                                       "feed the neuron back without Delay nodes (it sees its previous step)")
            proj = Projection(pre, name, int(delay.max()), recurrent=pre == name)
            projs.append(proj)
            weights[proj.name] = torch.as_tensor(neuron.gain[:, None] * weight, dtype=torch.float32)
            if proj.max_delay_steps:
                delays[proj.name] = torch.as_tensor(delay, dtype=torch.float32)
    try:
        result = Graph(tuple(pops), tuple(projs), discretisation="nir-euler")
    except GraphError as exc:
        raise InterchangeError(f"the graph cannot be expressed: {exc.message}", exc.fix) from None
    why_not = _native(result, weights, delays) if discretisation != "nir-euler" else "nir-euler was asked for"
    if discretisation == "native" and why_not:
        raise InterchangeError(f"the graph is not a native model: {why_not}", "import it with discretisation='auto'")
    if why_not is None:
        result, delays = _to_native(result, weights, delays)
    data_name, data_encoding = _check_dataset(result, dataset, encoding)
    found = peer_warnings(flat.nodes, dt, tau_scale, reset)
    for text in found:
        warnings.warn(text, InterchangeWarning, stacklevel=2)
    provenance: dict[str, Any] = {
        "imported_from": source, "nir_version": nir.__version__, "software_version": __version__,
        "writer": str(flat.metadata.get("writer", "unknown")), "dt_s_from": dt_from,
        "tau_scale": float(tau_scale), "reset": reset, "readout": readout, "discretisation": result.discretisation,
        "not_native_because": why_not or "", "warnings": found}
    return ModelFile(graph=result, weights=weights, dt_s=dt, encoding=data_encoding, dataset=data_name, seed=0,
                     provenance=provenance, delays=delays, delay_sigma_steps={k: 0.0 for k in delays})


def read_nir(path: str | Path, **options: Any) -> ModelFile:
    """:func:`import_nir` of a ``.nir`` file (``options``: its keyword arguments)."""
    return import_nir(Path(path), **options)
