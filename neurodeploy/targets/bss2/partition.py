"""Partition a network too big for one BSS-2 chip across K chips, and the design rules of the links between them.

**Partition** (:func:`plan_partition`). The network must be a chain: each population receives one feed-forward
projection, from the population before it (plus, optionally, its own recurrent one). A layer costs
:math:`n_l k_l` neuron circuits, :math:`k_l = \\lceil n_{l-1}/128 \\rceil` (rounded to whole columns, lower.py);
a chip has :math:`C` = 512 (bss2.md §1.1).

1. *Layer-wise first*: when every layer fits a chip alone, the chain is cut at layer boundaries into exactly K
   contiguous groups, each within :math:`C`, the largest group as small as possible (few layers: all cuts are
   tried). A network whose layers fit fewer chips than K still gets K (``--chips 2`` on a network that fits one).
2. *Then splitting*: a layer with :math:`n_l k_l > C` is split into :math:`s_l = \\lceil n_l k_l / C \\rceil`
   slices of nearly equal size, one chip each, starting on a chip of its own; the whole layers after it fill the
   last slice's chip first (greedily, as in 1). Every slice receives all of the layer's inputs (the same events)
   and the next layer receives all slices' outputs: the last slice's on the chip, the others' through the FPGA.
   Chips left over widen the largest split (more, smaller slices).

A chip's FPGA inputs form one input population. On the chip of a last slice that is shared with the next layer
it is the slice's source layer followed by the other slices' neurons; the slice listens to the first part only
(``first_inputs``, mapper.py), so its fan-in stays its layer's. Recurrent, readout (li) and convolution layers are
never split; learned delays are not partitioned.

**Links** (:func:`check_links`). Spikes that cross chips leave the chip through its crossbar's chip→FPGA
outputs and enter the next through its FPGA→chip inputs (bss2.md §1.4). Two numbers, as :class:`Link`:

- bandwidth = crossbar channels × events per clock / the FPGA clock period = 4 × 125 MEvent/s (hardware time)
  per chip-to-chip route, **derived**: the crossbar has 4 chip→FPGA outputs and 4 FPGA→chip inputs (halco
  ``routing_crossbar.h``, bss2.md §0, §1.4), each taken to carry one event per 8 ns FPGA clock cycle (the event
  spacing verified for synapse drivers, §1.4; the link rate itself is not verified, §10).
- latency = 1 µs (hardware time) per chip boundary, an **assumption**: bss2.md §10 says the routing latency was
  not found in any source. 1 µs is one step of the shipped recipes (dt 1 ms model time / 1000) and of the order
  of an FPGA-to-FPGA round of a few hundred 8 ns cycles.

Both come from the target file's ``links`` section (``targets/bss2.yaml``, :func:`spec_link`); give others with
``dataclasses.replace(spec_link(spec), latency_s=...)``.

BSS2-LINK-BANDWIDTH: the most events that cross one route in one hardware step (measured in software on
training samples, as bus_load.py) over the step, vs the route's events per second. BSS2-LINK-LATENCY: the
latency summed along the chain, vs the time a sample leaves after its last input spike (an event later than
that falls off the end of the run).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch

from ...errors import DesignRuleViolation, NeurodeployError
from ...graph import Graph, Population, Projection
from ...modelfile import ModelFile
from ...validation.common import NO_DATASET
from .lower import LoweredLayer
from .spec import BSS2Spec

MAX_CHIPS = 64  # as MAX_CHIPS_IN_RANGE (target.py): more is more likely a typo than a plan


@dataclass(frozen=True)
class Link:
    """An inter-chip route through the FPGAs: its latency (hardware s) and bandwidth (events per hardware s)."""

    latency_s: float
    events_per_s: float
    source: str = "targets/bss2.yaml, links (bandwidth derived, latency an assumption)"

    def to_dict(self) -> dict:
        return {"latency_s": self.latency_s, "events_per_s": self.events_per_s, "source": self.source}


def spec_link(spec: BSS2Spec) -> Link:
    """The target file's links: bandwidth = channels × events per clock / clock period, and the latency."""
    links = spec.raw["links"]
    clock_s = float(spec.raw["time"]["clock_period_s"])
    return Link(latency_s=float(links["latency_s"]),
                events_per_s=int(links["crossbar_channels"]) * int(links["events_per_clock"]) / clock_s)


@dataclass(frozen=True)
class Block:
    """Neurons ``start..stop-1`` of one layer, on one chip; the whole layer when they are all of it."""

    layer: str
    start: int
    stop: int
    whole: bool

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def name(self) -> str:
        """The population's name in the chip's own graph."""
        return self.layer if self.whole else f"{self.layer}[{self.start}:{self.stop}]"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "start": self.start, "stop": self.stop, "population": self.name}


def check_chips(chips: int) -> None:
    """``--chips``: 1..:data:`MAX_CHIPS`."""
    if isinstance(chips, bool) or not isinstance(chips, int) or not 1 <= chips <= MAX_CHIPS:
        raise NeurodeployError(f"--chips {chips!r} is not a number of chips in 1..{MAX_CHIPS}", "e.g. --chips 2")


def check_chain(model: ModelFile) -> None:
    """What :func:`plan_partition` partitions: a chain of layers without learned delays."""
    graph = model.graph
    if model.delays or any(p.max_delay_steps for p in graph.projections):
        raise NeurodeployError("a model with learned delays is not partitioned across chips yet",
                               "map it onto one chip (leave out --chips), or train it without delays")
    names = [p.name for p in graph.populations]
    for index, pop in enumerate(graph.populations[1:], start=1):
        feedforward = graph.feedforward(pop.name)
        if len(feedforward) != 1 or feedforward[0].pre != names[index - 1]:
            raise NeurodeployError(f"population '{pop.name}' is fed by {[p.pre for p in feedforward]}: only chains "
                                   "(each layer fed by the one before it) are partitioned across chips",
                                   "map it onto one chip, or make the network a chain")


def _groups(costs: list[int], chips: int, capacity: int) -> Optional[list[int]]:
    """Layers per chip cutting ``costs`` into exactly ``chips`` contiguous groups within ``capacity``, the
    largest group smallest; None if there is no such cut."""
    best: Optional[tuple[int, list[int]]] = None
    for cuts in itertools.combinations(range(1, len(costs)), chips - 1):
        bounds = [0, *cuts, len(costs)]
        loads = [sum(costs[a:b]) for a, b in itertools.pairwise(bounds)]
        if max(loads) <= capacity and (best is None or max(loads) < best[0]):
            best = (max(loads), [b - a for a, b in itertools.pairwise(bounds)])
    return None if best is None else best[1]


def _slices(size: int, parts: int) -> list[tuple[int, int]]:
    """``size`` neurons in ``parts`` contiguous slices whose sizes differ by at most one."""
    edges = [round(i * size / parts) for i in range(parts + 1)]
    return list(itertools.pairwise(edges))


def plan_partition(model: ModelFile, layers: list[LoweredLayer], chips: int, capacity: int) -> list[list[Block]]:
    """The blocks on each of ``chips`` chips (module docstring); ``NeurodeployError`` when it cannot be done."""
    check_chips(chips)
    check_chain(model)
    costs = [layer.circuits for layer in layers]
    if all(cost <= capacity for cost in costs):
        if chips > len(layers):
            raise NeurodeployError(f"--chips {chips} is more chips than this network's {len(layers)} layers fill "
                                   "(each fits one chip, none is split)", f"use --chips 1..{len(layers)}")
        counts = _groups(costs, chips, capacity)
        if counts is None:
            needed = _fewest_chips(costs, capacity)
            raise NeurodeployError(f"the network needs {needed} chips ({sum(costs)} neuron circuits, {capacity} per "
                                   f"chip, whole layers per chip), --chips gives {chips}",
                                   f"use --chips {needed}")
        out, position = [], 0
        for count in counts:
            out.append([Block(layer.name, 0, layer.size, True) for layer in layers[position:position + count]])
            position += count
        return out
    return _split_plan(model.graph, layers, chips, capacity)


def _fewest_chips(costs: list[int], capacity: int) -> int:
    used, free = 1, capacity
    for cost in costs:
        if cost > free:
            used, free = used + 1, capacity
        free -= cost
    return used


def _split_plan(graph: Graph, layers: list[LoweredLayer], chips: int, capacity: int) -> list[list[Block]]:
    """Layers that fit a chip alone are packed greedily between the split ones (module docstring, 2.)."""
    parts: dict[str, int] = {}
    for layer in layers:
        if layer.circuits <= capacity:
            continue
        per_chip = capacity // layer.circuits_per_neuron
        reason = ("a readout (li) layer" if layer.kind == "li" else "recurrent" if graph.recurrent(layer.name)
                  else "fed by a convolution" if layer.slots is not None or layer.connected is not None
                  else "larger than a chip even for one neuron" if per_chip == 0 else None)
        if reason is not None:
            raise NeurodeployError(f"layer '{layer.name}' needs {layer.circuits} neuron circuits, more than a chip's "
                                   f"{capacity}, and is {reason}: it cannot be split across chips",
                                   f"shrink '{layer.name}' to at most {max(per_chip, 1)} neurons")
        parts[layer.name] = max(math.ceil(layer.circuits / capacity), math.ceil(layer.size / per_chip))

    def build() -> list[list[Block]]:
        plan: list[list[Block]] = []
        free = 0
        for layer in layers:
            if layer.name in parts:
                slices = _slices(layer.size, parts[layer.name])
                plan += [[Block(layer.name, a, b, False)] for a, b in slices]
                free = capacity - (slices[-1][1] - slices[-1][0]) * layer.circuits_per_neuron
            elif layer.circuits <= free:
                plan[-1].append(Block(layer.name, 0, layer.size, True))
                free -= layer.circuits
            else:
                plan.append([Block(layer.name, 0, layer.size, True)])
                free = capacity - layer.circuits
        return plan

    plan = build()
    if len(plan) > chips:
        raise NeurodeployError(f"the network needs {len(plan)} chips (whole layers per chip, then "
                               f"{', '.join(f'{name} in {n} slices' for name, n in parts.items())}), --chips gives "
                               f"{chips}", f"use --chips {len(plan)}")
    sizes = {layer.name: layer.size for layer in layers}
    widest = max(parts, key=sizes.__getitem__)
    while len(plan) < chips:  # chips left over: more, smaller slices of the widest split layer
        # One more slice is one more chip, or none when the smaller last slice now leaves room for the next layer.
        if parts[widest] == sizes[widest]:
            raise NeurodeployError(f"--chips {chips} is more chips than this network fills ({widest} in "
                                   f"{sizes[widest]} slices of one neuron uses {len(plan)})",
                                   f"use --chips {len(plan)}")
        parts[widest] += 1
        plan = build()
    return plan


def chip_sources(model: ModelFile, blocks: list[Block]) -> list[dict]:
    """The segments of a chip's input population, in order: ``{"population", "start", "stop"}``. The source of its
    first block (the original input or the whole layer before); on a last slice's chip shared with the next
    layer, also the layer's other slices (module docstring)."""
    graph = model.graph
    names = [p.name for p in graph.populations]
    first = blocks[0]
    source = graph.populations[names.index(first.layer) - 1]
    segments = [{"population": source.name, "start": 0, "stop": source.size}]
    if shared_slice(blocks):
        segments.append({"population": first.layer, "start": 0, "stop": first.start})
    return segments


def shared_slice(blocks: list[Block]) -> bool:
    """Whether the chip holds the last slice of a split layer and the layers after it."""
    return not blocks[0].whole and blocks[0].start > 0 and len(blocks) > 1


def input_name(segments: list[dict]) -> str:
    """The name of a chip's input population: its source, or its segments joined by ``+``."""
    if len(segments) == 1:
        return segments[0]["population"]
    return "+".join(f"{s['population']}[{s['start']}:{s['stop']}]" for s in segments)


def sub_model(model: ModelFile, blocks: list[Block]) -> tuple[ModelFile, dict[str, int]]:
    """The network one chip holds, and its ``first_inputs`` (mapper.py): its blocks, fed by one input population
    (:func:`chip_sources`: what arrives through the FPGA), with the blocks' rows of the weights."""
    graph = model.graph
    segments = chip_sources(model, blocks)
    width = sum(s["stop"] - s["start"] for s in segments)
    name = input_name(segments)
    populations = [Population(name, width, "input")]
    projections, weights, recurrent = [], {}, {}
    pinned = model.mapping.get("weight_scale", {})
    scales, potentials = {}, {}
    previous: Optional[Block] = None
    first_inputs: dict[str, int] = {}
    for block in blocks:
        pop = graph.population(block.layer)
        populations.append(Population(block.name, block.size, pop.kind, pop.neuron))
        (incoming,) = graph.feedforward(block.layer)
        w = model.weights[incoming.name][block.start:block.stop]
        if previous is None and width == w.shape[1]:  # fed by its source alone
            projections.append(Projection(name, block.name, geometry=incoming.geometry if block.whole else None))
            weights[f"{name}->{block.name}"] = w
        elif previous is None:  # the first segment of a wider input population: the slice listens to it only
            padded = torch.zeros(block.size, width)
            padded[:, :w.shape[1]] = w
            projections.append(Projection(name, block.name))
            weights[f"{name}->{block.name}"] = padded
            first_inputs[block.name] = int(w.shape[1])
        elif previous.whole:
            projections.append(Projection(previous.name, block.name, geometry=incoming.geometry))
            weights[f"{previous.name}->{block.name}"] = w
        else:  # after the last slice of a split layer: the other slices through the FPGA, this one on the chip
            outside = torch.zeros(block.size, width)
            outside[:, width - previous.start:] = w[:, :previous.start]
            projections += [Projection(name, block.name), Projection(previous.name, block.name)]
            weights[f"{name}->{block.name}"] = outside
            weights[f"{previous.name}->{block.name}"] = w[:, previous.start:previous.stop]
        own = graph.recurrent(block.layer)
        if own is not None:  # a recurrent layer is whole (never split)
            projections.append(Projection(block.name, block.name, recurrent=True))
            weights[f"{block.name}->{block.name}"] = model.weights[own.name]
            if own.name in model.recurrent:
                recurrent[f"{block.name}->{block.name}"] = model.recurrent[own.name]
        if block.layer in pinned:  # scales in-the-loop training kept fixed: the block's neurons' own
            scale = torch.as_tensor(pinned[block.layer])
            scales[block.name] = scale.reshape(-1)[block.start:block.stop] if scale.numel() > 1 else scale
        if block.layer in model.mapping.get("cadc_per_model_unit", {}):
            potentials[block.name] = model.mapping["cadc_per_model_unit"][block.layer]
        previous = block
    mapping = {k: v for k, v in model.mapping.items() if k not in ("weight_scale", "cadc_per_model_unit")}
    mapping.update({**({"weight_scale": scales} if scales else {}),
                    **({"cadc_per_model_unit": potentials} if potentials else {})})
    # A chip fed by another chip has no dataset of its own (its inputs are spikes, not the dataset's features).
    dataset = model.dataset if name == graph.input.name else NO_DATASET
    sub = replace(model, graph=Graph(tuple(populations), tuple(projections), graph.discretisation),
                  dataset=dataset, weights=weights, recurrent=recurrent, mapping=mapping, delays={},
                  delay_sigma_steps={})
    return sub, first_inputs


def check_links(crossing: list[dict], spikes: dict[str, torch.Tensor], last_input_step: Optional[int], steps: int,
                chain_boundaries: int, dt_hw_s: float, link: Link) -> tuple[list[DesignRuleViolation], list[str]]:
    """BSS2-LINK-BANDWIDTH and BSS2-LINK-LATENCY (module docstring); each route of ``crossing`` gets its
    measured ``peak_events_per_step`` and ``mean_events_per_s`` (hardware time) filled in.

    ``crossing``: routes ``{"layer", "neurons": [a, b], "from_chip", "to_chip"}``; ``spikes``: each layer's
    ``[T, B, N]`` spikes on training samples (None: not measured); ``chain_boundaries``: chip boundaries a
    spike crosses on its way from the input to the readout.
    """
    violations, warnings = [], []
    per_step = link.events_per_s * dt_hw_s
    for route in crossing:
        z = spikes.get(route["layer"])
        if z is None or z.shape[1] == 0:
            route.update(peak_events_per_step=None, mean_events_per_s=None)
            continue
        a, b = route["neurons"]
        counts = z[..., a:b].sum(-1)  # [T, B] events on the route per step and sample
        peak = float(counts.max())
        route.update(peak_events_per_step=peak, mean_events_per_s=float(counts.mean()) / dt_hw_s)
        if peak > per_step:
            violations.append(DesignRuleViolation(
                "BSS2-LINK-BANDWIDTH", route["layer"],
                f"events per second from chip {route['from_chip']} to chip {route['to_chip']} (hardware, peak "
                f"{peak:.0f} in one {dt_hw_s * 1e6:.3g} us step)", f"{peak / dt_hw_s:.3g}", f"{link.events_per_s:.3g}",
                "lower the layer's firing rate (fewer synchronous spikes), or choose a longer dt_s"))
    latency = chain_boundaries * link.latency_s
    if last_input_step is not None and chain_boundaries:
        slack = (steps - 1 - last_input_step) * dt_hw_s
        if latency > slack:
            violations.append(DesignRuleViolation(
                "BSS2-LINK-LATENCY", "(network)", f"inter-chip latency along {chain_boundaries} chip boundaries "
                f"(hardware)", f"{latency * 1e6:.3g} us", f"{slack * 1e6:.3g} us (the run left after the last input "
                "spike)", "use fewer chips, or a longer encoding.duration_s"))
        elif latency > 0:
            warnings.append(f"BSS2-LINK-LATENCY: spikes that cross chips arrive {latency * 1e6:.3g} us later in all "
                            f"({chain_boundaries} boundaries x {link.latency_s * 1e6:.3g} us, "
                            f"{latency / dt_hw_s:.3g} steps); the model was trained without it")
    return violations, warnings


def quantised_spikes(model: ModelFile, deployment_arrays: dict, probe: torch.Tensor) -> dict[str, torch.Tensor]:
    """The chip's spiking blocks' spikes ``[T, B, n]`` on ``probe`` with the chip's own (dequantised) weights:
    what the next chips receive, and what the links carry."""
    from ...models.network import SpikingNetwork

    deq = {key.split(":", 1)[1]: torch.as_tensor(value.astype(np.float32))
           * torch.as_tensor(deployment_arrays[f"weight_scale:{key.split('->')[-1]}"].astype(np.float32))[:, None]
           for key, value in deployment_arrays.items() if key.startswith("quantised_weight:")}
    net = SpikingNetwork(model.graph, model.dt_s, weights=deq)
    with torch.no_grad():
        out = net(probe)
    return {pop.name: out.spikes[pop.name] for pop in model.graph.populations[1:] if pop.kind == "lif"}


def delayed(spikes: torch.Tensor, steps: int) -> torch.Tensor:
    """``spikes`` ``[T, B, N]`` ``steps`` later (the inter-chip latency on the step grid); those beyond T are lost."""
    if steps <= 0:
        return spikes
    out = torch.zeros_like(spikes)
    if steps < spikes.shape[0]:
        out[steps:] = spikes[:-steps]
    return out
