"""Lowering: graph populations → layers with fan-in, circuits per neuron and hardware parameters.

Potentials map affinely onto CADC units, :math:`v_{hw} = v^{hw}_{leak} + \\frac{v - v_{leak}}{v_{th} - v_{leak}}
(v^{hw}_{th} - v^{hw}_{leak})`; times divide by the speed-up (1000×). A neuron whose signed fan-in
exceeds one circuit's 128 inputs merges :math:`k = \\lceil n_{in} / 128 \\rceil` circuits (bss2.md §1.2),
rounded up to whole columns (a top and a bottom circuit) because merged circuits are shorted
vertically and then to the right, as hxtorch fills them.

**Weight copies.** A layer whose inputs leave synapse drivers free can spread each integer weight
:math:`q` over :math:`K` synapses on :math:`K` rows, in parts :math:`q_i` that differ by at most one LSB
(the source sends one event per row; grenade likewise splits weights above 63 over several
synapses, bss2.md §1.3). The sum, and so the circuit's synaptic gain and its calibration, are
unchanged, but each synapse's own gain error :math:`\\epsilon_i` now enters as
:math:`\\sum_i q_i \\epsilon_i`, whose spread is up to :math:`\\sqrt{K}` times smaller than :math:`q\\,\\epsilon`.
That holds for a multiplicative error per synapse (a current-mirror mismatch, the mock's model);
an error per unit of DAC current would not average this way (docs/calibration.md). ``weight_copies``
is the most a layer may use; it uses as many as its drivers hold,
:math:`\\lfloor 128 / \\lceil n_{in}/k \\rceil \\rfloor`.

**Convolutions.** A layer fed only by a convolution needs one input slot (synapse driver) per position of its
receptive field, :math:`C_{in} (k p)^2`, not one per pixel: pixels that no receptive field holds together share
a driver and are told apart by their labels (``input_slots``). Its fan-in is that slot count.

**Shared sources.** A projection whose weight matrix has identical columns (every source acts on every target
alike, as a uniform lateral inhibition :math:`-w\\,\\mathbf 1 \\mathbf 1^T` does) needs one input slot, not one per
source: all its sources send the same label on one driver, as BSS-2's neurons may share an event address, and
each event adds the same synapse row (``LoweredLayer.shared``). A 400-neuron layer with such an inhibition
then takes 1 driver per hemisphere for it instead of 400 (seed 003's network, docs/stdp.md).

**Imported models** (discretisation ``nir-euler``): their time constants are already the exact
exponential ones with the graph's per-step decay, which the chip's continuous-time circuits
realise as they are. A neuron without synaptic current (NIR LIF/LI, model ``leaky``) gets the
chip's shortest synaptic time constant (rule ``BSS2-NEURON-MODEL`` checks that its decay per step
is negligible); what else differs is reported by ``BSS2-DISCRETISATION``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ...core.conv import connected, input_slots
from ...graph import Graph, NeuronParameters, Projection
from .spec import BSS2Spec


@dataclass(frozen=True)
class HardwareNeuron:
    """Physical settings of one layer's neurons: hardware seconds and CADC units."""

    tau_mem_s: float
    tau_syn_s: float
    t_ref_s: float
    v_leak_cadc: float
    v_th_cadc: float  # +inf: threshold comparator off (non-spiking readout)
    v_reset_cadc: float
    cadc_per_model_unit: float  # CADC LSB per unit of model potential


@dataclass(frozen=True)
class LoweredLayer:
    name: str
    kind: str
    size: int
    fan_in: int
    inputs: tuple[tuple[str, int], ...]  # (pre population, pre size) per incoming projection
    circuits_per_neuron: int
    neuron: NeuronParameters
    hw: HardwareNeuron
    weight_copies: int = 1  # synapses (rows) that share each weight
    discretisation: str = "native"  # the graph's (rules BSS2-DISCRETISATION, BSS2-NEURON-MODEL)
    connected: Optional[np.ndarray] = field(default=None, compare=False)  # [size, sources] bool; None: all pairs
    slots: Optional[np.ndarray] = field(default=None, compare=False)  # [sources] input slot of each; None: its index
    shared: tuple[str, ...] = ()  # pre populations whose sources all share one slot and one label (module)

    @property
    def circuits(self) -> int:
        return self.size * self.circuits_per_neuron


def hardware_neuron(neuron: NeuronParameters, kind: str, spec: BSS2Spec) -> HardwareNeuron:
    potentials = spec["neuron"]["default_potentials_cadc"]
    leak = float(spec["neuron"]["readout_leak_cadc"] if kind == "li" else potentials["leak"])
    swing = float(potentials["threshold"] - potentials["leak"])
    per_unit = swing / (neuron.v_th - neuron.v_leak)
    speedup = spec.speedup
    shortest_syn = float(spec["neuron"]["tau_syn_s"]["limits"][0])  # a neuron without synaptic current
    return HardwareNeuron(
        tau_mem_s=neuron.tau_mem_s / speedup,
        tau_syn_s=neuron.tau_syn_s / speedup if neuron.model == "cuba" else shortest_syn,
        t_ref_s=neuron.t_ref_s / speedup, v_leak_cadc=leak,
        v_th_cadc=math.inf if kind == "li" else leak + swing,
        v_reset_cadc=leak + (neuron.v_reset - neuron.v_leak) * per_unit, cadc_per_model_unit=per_unit)


def circuits_per_neuron(fan_in: int, inputs_per_circuit: int) -> int:
    """Circuits one neuron needs: 1, or whole columns (an even number) when merged."""
    needed = max(1, math.ceil(fan_in / inputs_per_circuit))
    return 1 if needed == 1 else 2 * math.ceil(needed / 2)


def copies_that_fit(fan_in: int, circuits: int, inputs_per_circuit: int, wanted: int) -> int:
    """Synapses per weight: up to ``wanted``, as many as one circuit's drivers hold for its share of the inputs."""
    share = max(1, math.ceil(fan_in / circuits))
    return max(1, min(wanted, inputs_per_circuit // share))


def structure(incoming: list[Projection], graph: Graph, size: int) -> Optional[np.ndarray]:
    """``[size, fan_in]``: the pairs that get a synapse, over the inputs in order; None when all do. A
    convolution's unrolled kernel joins only the pixels of each neuron's receptive field (core/conv.py)."""
    if all(p.geometry is None for p in incoming):
        return None
    return np.concatenate([np.ones((size, graph.population(p.pre).size), bool) if p.geometry is None
                           else connected(p.geometry, size).numpy() for p in incoming], axis=1)


def shared_slots(incoming: list[Projection]) -> Optional[np.ndarray]:
    """Input slots of a layer fed by one convolution only (:func:`~neurodeploy.core.conv.input_slots`), else None."""
    if len(incoming) != 1 or incoming[0].geometry is None:
        return None
    slots = input_slots(incoming[0].geometry)
    return None if slots is None else slots.numpy()


def uniform_sources(matrix: np.ndarray) -> bool:
    """Whether every source (column of ``matrix [post, pre]``) acts on every target alike: one slot may carry all."""
    matrix = np.asarray(matrix)
    return matrix.shape[1] > 1 and bool((matrix == matrix[:, :1]).all())


def shared_projections(incoming: list[Projection], weights: Optional[dict]) -> tuple[str, ...]:
    """The pre populations of ``incoming`` whose sources can share one slot and label (module docstring): dense,
    undelayed projections with identical columns, in a layer without convolutions."""
    if weights is None or any(p.geometry is not None for p in incoming):
        return ()
    return tuple(p.pre for p in incoming
                 if p.max_delay_steps == 0 and p.name in weights and uniform_sources(np.asarray(weights[p.name])))


def lower(graph: Graph, spec: BSS2Spec, weight_copies: int = 1, weights: Optional[dict] = None) -> list[LoweredLayer]:
    """One lowered layer per non-input population, in graph order (``weight_copies``: see the module; ``weights``
    given: projections with identical columns share a slot, :func:`shared_projections`)."""
    per_circuit = spec["synapse"]["signed_inputs_per_circuit"]
    layers = []
    for pop in graph.populations[1:]:
        incoming = graph.incoming(pop.name)
        inputs = tuple((p.pre, graph.population(p.pre).size) for p in incoming)
        slots = shared_slots(incoming)
        shared = shared_projections(incoming, weights)
        fan_in = (sum(1 if pre in shared else size for pre, size in inputs) if slots is None
                  else int(slots.max()) + 1)
        circuits = circuits_per_neuron(fan_in, per_circuit)
        layers.append(LoweredLayer(
            name=pop.name, kind=pop.kind, size=pop.size, fan_in=fan_in, inputs=inputs,
            circuits_per_neuron=circuits, neuron=pop.parameters, hw=hardware_neuron(pop.parameters, pop.kind, spec),
            weight_copies=copies_that_fit(fan_in, circuits, per_circuit, weight_copies),
            discretisation=graph.discretisation, connected=structure(incoming, graph, pop.size), slots=slots,
            shared=shared))
    return layers
