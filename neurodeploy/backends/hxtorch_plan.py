r"""What a BSS-2 deployment becomes in hxtorch's terms, computed without hxtorch (numpy only).

The hxtorch backend (:mod:`.hxtorch`) builds hxtorch.spiking objects from a :class:`NetworkPlan`;
everything that decides *what* to build lives here, so that it is testable where hxtorch is not.

**Connectivity is re-derived from the chip configuration** (as the mock chip does): for every route
(source, hemisphere h, driver d, label ℓ) and both rows r of driver d, a synapse in column c adds
:math:`\sigma_r\,w_{h,r,c}\,[\ell_{h,r,c}=\ell]` LSB to circuit (h, c) (σ = +1 excitatory row, −1
inhibitory, 0 disabled); the circuits of a merged neuron add up. The result is one signed integer
per (source, logical neuron): our 6-bit weights, summed over weight copies and merged circuits.
grenade realises an integer above 63 with several synapses (a "virtualised" weight, grenade
``network::Projection::Connection::Weight``), so weight copies need no special treatment.

**One synaptic gain for the whole chip.** hxtorch calibrates ``i_synin_gm`` and ``synapse_dac_bias``
to one value for all populations (hxtorch ``modules/types.py``, ``Population.calibration_from_params``
raises otherwise), so every circuit gets the same gain :math:`g` (CADC per weight LSB), while the
deployment asks for a gain :math:`g_n` per neuron (its weight scale). Each neuron's potentials are
scaled about its leak by :math:`r_n`:

.. math::
    \vartheta'_n = v_{leak,n} + r_n(\vartheta_n - v_{leak,n}), \qquad
    v'_{reset,n} = v_{leak,n} + r_n(v_{reset,n} - v_{leak,n}),

and its integer weights by :math:`f_n = g_n r_n / g` (rounded half away from zero). With
:math:`r_n = g/g_n`, :math:`f_n = 1`: our weights exactly, the LIF dynamics (linear in :math:`v - v_{leak}`)
and every spike unchanged. :math:`r_n` is kept within :math:`[r^{min}_n, r^{max}_n]`: at most what keeps the
scaled threshold and reset inside calix's ranges (a readout, fitted to the CADC's reliable range, is never
expanded), at least what keeps :data:`MIN_SWING_CADC` between leak and threshold (for a readout: of the room
up to the reliable range's top), since 1-2 LSB of CADC noise would swamp a smaller swing. :math:`g` is
:math:`\min_n g_n r^{max}_n` when every neuron can then keep its floor (all weights exact); otherwise
:math:`\max_n g_n r^{min}_n`, and neurons whose gain is far below the rest lose weight resolution
(:math:`f_n < 1`, counted in :attr:`NetworkPlan.requantised`). ``map --weight-scale per-projection`` makes
the gains of a layer equal; between layers (a readout's gain is fitted to the CADC range, typically several
times below the hidden layer's) the spread remains.
A reading :math:`v'` converts back as :math:`v = v_{leak} + (v' - v_{leak})/r_n`.

**Time.** hxtorch's numerics (``functional/aelif.py``, ``step_integration_code_factory.py``) are
forward Euler, :math:`i \leftarrow i(1-\Delta t/\tau_{syn}) + x`, :math:`v \leftarrow v + \Delta t/c\,
(i + g_L(v_{leak} - v))`. With the model-side values :math:`\tau' = \Delta t / (1 - e^{-\Delta t/\tau})`
and :math:`c = \tau'_{mem}` (so :math:`g_L = 1`) they are exactly neurodeploy's exponential
discretisation (core/lif.py), and the one-step lag of hxtorch's membrane behind its current is the
mock chip's one step of routing latency. Hardware-side values are the physical ones (seconds on the chip).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from ..data.encoding import grid_events, n_steps
from ..deployment import Deployment
from ..errors import BackendError
from ..graph import Graph
from ..targets.bss2.analog import nominal_gain
from ..targets.bss2.delays import input_copy_times
from ..targets.bss2.spec import BSS2Spec

ROW_SIGN = np.array([0, 1, -1], np.int64)  # row mode 0 disabled, 1 excitatory, 2 inhibitory (route.py)
CAPACITANCE_LSB = 63  # hxtorch's default membrane capacitance (hardware value, LSB): calix sets tau_mem by the leak
DOCS = "docs/real-chip.md"
MIN_SWING_CADC = 40.0  # leak-to-threshold floor: ~20x the CADC's 1-2 LSB noise (bss2.md §1.6)


class PopulationPlan(NamedTuple):
    """One hxtorch population (``LIF`` or ``LI``): a layer's logical neurons and their parameters (per neuron)."""

    name: str
    kind: str  # "lif" or "li"
    neurons: np.ndarray  # [n] logical neuron ids of the deployment
    circuits: np.ndarray  # [n, k] circuit ids (hemisphere * 256 + column), column-major as hxtorch fills them
    leak_cadc: np.ndarray  # hardware = model value (CADC)
    reset_cadc: np.ndarray  # scaled about the leak by ratio (see module docstring)
    threshold_cadc: np.ndarray
    tau_mem_s: np.ndarray  # hardware value (chip seconds)
    tau_syn_s: np.ndarray
    refractory_s: np.ndarray
    tau_mem_model_s: np.ndarray  # the forward-Euler equivalent :math:`\Delta t/(1 - e^{-\Delta t/\tau})`
    tau_syn_model_s: np.ndarray
    refractory_model_s: np.ndarray  # round(t_ref / dt) steps, as neurodeploy counts them
    ratio: np.ndarray  # r_n: readings are v_leak + r_n (v - v_leak)

    @property
    def size(self) -> int:
        return len(self.neurons)

    @property
    def circuits_per_neuron(self) -> int:
        return int(self.circuits.shape[1])


class ProjectionPlan(NamedTuple):
    """One hxtorch ``Synapse`` from a source (``"input"`` or a population) to a population."""

    source: str
    target: str
    weight_lsb: np.ndarray  # [target size, source size] signed integers (hxtorch's weight layout: out × in)


class NetworkPlan(NamedTuple):
    dt_s: float  # hardware step (hxtorch's ``Experiment.dt``)
    steps: int  # hxtorch's runtime, in steps of dt
    speedup: float
    clock_period_s: float
    n_neurons: int
    input_size: int  # hxtorch InputNeuron size: input channels, or the FPGA's delayed copies
    populations: list[PopulationPlan]  # in feed-forward order
    projections: list[ProjectionPlan]
    gain_cadc_per_lsb: float  # g: the one synaptic gain hxtorch calibrates for all neurons
    i_synin_gm: int  # its hardware value: the nominal code for g (targets/bss2.yaml capmem curves)
    synapse_dac_bias: int
    max_weight: int  # largest |integer weight| of one connection (> 63: several synapses, grenade splits)
    requantised: int  # connections whose integer weight differs from the deployment's (f_n < 1)
    delay_copies: Optional[np.ndarray]  # [V, 3] (channel, delay steps, strength) the FPGA sends, or None
    dt_model_s: float

    @property
    def smallest_swing_cadc(self) -> float:
        """The smallest threshold − leak of a spiking neuron after scaling (CADC): its analog resolution."""
        swings = [p.threshold_cadc - p.leak_cadc for p in self.populations if p.kind == "lif" and p.size]
        return float(np.min(np.concatenate(swings))) if swings else math.inf

    def population(self, name: str) -> PopulationPlan:
        return next(p for p in self.populations if p.name == name)


def euler_tau(tau_s: np.ndarray, dt_s: float) -> np.ndarray:
    r"""The forward-Euler time constant :math:`\Delta t/(1 - e^{-\Delta t/\tau})` whose step equals the exact decay."""
    return dt_s / -np.expm1(-dt_s / np.asarray(tau_s, np.float64))


def effective_weights(routes: np.ndarray, n_sources: int, arrays: dict, n_neurons: int) -> np.ndarray:
    """``[n_sources, n_neurons]`` signed integer LSB each source's event delivers to each logical neuron."""
    weight = np.asarray(arrays["synapse_weight"], np.int64)
    label, row_mode = arrays["synapse_label"], arrays["row_mode"]
    hemispheres, _, columns = weight.shape
    per_circuit = np.zeros((n_sources, hemispheres * columns), np.int64)
    for source, h, d, ell in np.asarray(routes, np.int64):
        for r in (2 * d, 2 * d + 1):
            signed = ROW_SIGN[row_mode[h, r]] * weight[h, r] * (label[h, r] == ell)
            per_circuit[source, h * columns:(h + 1) * columns] += signed
    circuits = np.asarray(arrays["neuron_circuits"], np.int64)
    out = np.zeros((n_sources, n_neurons), np.int64)
    for k in range(circuits.shape[1]):
        used = circuits[:, k] >= 0
        out[:, used] += per_circuit[:, circuits[used, k]]
    return out


def _refuse_unsupported(deployment: Deployment) -> None:
    meta = deployment.meta
    if meta.get("kind") == "chip-experiment" or "graph" not in meta:
        raise BackendError("the hxtorch backend runs model deployments, not neurodeploy's calibration experiments: "
                           "hxtorch sets neurons by calibrated parameters (calix), not by raw CapMem codes",
                           f"hxtorch calibrates the chip itself with calix on the first run ({DOCS})")
    if int(meta.get("delays", {}).get("strength_bits", 0)) > 0:
        raise BackendError("the spike-strength delay strategy carries strength in label bits, which hxtorch's "
                           "routing (grenade) assigns itself", "map with --delays multi-synapse or gradient-only")


def _ratio_range(kind: str, leak: np.ndarray, th: np.ndarray, reset: np.ndarray,
                 spec: BSS2Spec) -> tuple[np.ndarray, np.ndarray]:
    """``(r_min, r_max)`` per neuron: how far its potentials may shrink / stretch about its leak (module docstring)."""
    ranges = spec["neuron"]["potentials_cadc"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind != "lif":
            room = spec["readout"]["cadc"]["reliable_range"][1] - leak
            return np.minimum(1.0, MIN_SWING_CADC / room), np.ones(len(leak))
        up = np.where(th > leak, (ranges["threshold"][1] - leak) / (th - leak), np.inf)
        down = np.where(reset < leak, (leak - ranges["reset"][0]) / (leak - reset), np.inf)
        r_max = np.minimum(up, down)
        return np.minimum(r_max, np.where(th > leak, MIN_SWING_CADC / (th - leak), 0.0)), r_max


def _rounded(values: np.ndarray) -> np.ndarray:
    """Half away from zero, as hxtorch's ``Synapse`` (±0.5, then truncation) and our quantiser round."""
    return (np.sign(values) * np.floor(np.abs(values) + 0.5)).astype(np.int64)


def plan_network(deployment: Deployment, spec: BSS2Spec) -> NetworkPlan:
    """The hxtorch network of a mapped model deployment; a construct hxtorch cannot express is a BackendError."""
    _refuse_unsupported(deployment)
    a, meta = deployment.arrays, deployment.meta
    graph = Graph.from_dict(meta["graph"])
    layers, kinds = list(meta["layers"]), list(meta["layer_kinds"])
    circuits = np.asarray(a["neuron_circuits"], np.int64)
    n = len(circuits)
    neuron_layer = np.asarray(a["neuron_layer"], np.int64)
    dt_hw = float(meta["dt_s"]) / float(meta["speedup"])
    delay_copies = np.asarray(a["delay_copies"]) if "delays" in meta else None
    input_size = len(delay_copies) if delay_copies is not None else int(meta.get("input_channels", graph.input.size))
    from_input = effective_weights(a["input_routes"], input_size, a, n)
    from_neurons = effective_weights(a["neuron_routes"], n, a, n)

    first = circuits[:, 0]
    gain = np.asarray(a["circuit_synaptic_gain_cadc_per_lsb"], np.float64)[first]
    leak = np.asarray(a["circuit_v_leak_cadc"], np.float64)[first]
    th = np.asarray(a["circuit_v_th_cadc"], np.float64)[first]
    reset = np.asarray(a["circuit_v_reset_cadc"], np.float64)[first]
    r_min, r_max = np.zeros(n), np.ones(n)
    for index, kind in enumerate(kinds):
        mine = neuron_layer == index
        r_min[mine], r_max[mine] = _ratio_range(kind, leak[mine], th[mine], reset[mine], spec)
    receives = (from_input != 0).any(0) | (from_neurons != 0).any(0)
    if receives.any():
        exact, floor = float(np.min(gain[receives] * r_max[receives])), float(np.max(gain[receives] * r_min[receives]))
        g = exact if exact >= floor else floor
    else:
        g = 1.0
    if not g > 0 or not math.isfinite(g):
        raise BackendError(f"no common synaptic gain fits this deployment (got {g})", "map the model again")
    safe_gain = np.where(gain > 0, gain, 1.0)
    ratio = np.where(gain > 0, np.clip(g / safe_gain, r_min, r_max), 1.0)
    factor = np.where(gain > 0, safe_gain * ratio / g, 1.0)  # f_n: 1 where the weights stay exact
    from_input_hw, from_neurons_hw = _rounded(from_input * factor), _rounded(from_neurons * factor)
    requantised = int((from_input_hw != from_input).sum() + (from_neurons_hw != from_neurons).sum())
    from_input, from_neurons = from_input_hw, from_neurons_hw

    potentials = spec["neuron"]["potentials_cadc"]
    if ((leak < potentials["leak"][0]) | (leak > potentials["leak"][1])).any():
        raise BackendError(f"a leak potential lies outside calix's range {potentials['leak']} CADC",
                           "map the model again with the default potentials (targets/bss2.yaml)")
    dac = np.unique(np.asarray(a["code:synapse_dac_bias"]))
    if len(dac) != 1:
        raise BackendError(f"hxtorch sets one synapse_dac_bias for the chip, the deployment has {dac.tolist()}",
                           "map the model again without a per-quadrant DAC bias")
    i_synin_gm = int(round(g / float(nominal_gain(1.0, dac[0], spec))))
    if not 0 <= i_synin_gm <= spec["capmem"]["code_max"]:
        raise BackendError(f"the common synaptic gain {g:.3g} CADC/LSB needs i_synin_gm={i_synin_gm}, outside "
                           f"0..{spec['capmem']['code_max']}", "map with --clip-quantile 0.99 (larger integer weights)")

    populations = []
    for index, (name, kind) in enumerate(zip(layers, kinds)):
        ids = np.flatnonzero(neuron_layer == index)
        c = circuits[ids]
        k = int((c >= 0).sum(1).max()) if len(ids) else 1
        if len(ids) and ((c >= 0).sum(1) != k).any():
            raise BackendError(f"layer '{name}' has neurons of different sizes; hxtorch gives a population one "
                               "neuron structure", "map the model again")
        p = lambda key, ids=ids: np.asarray(a[f"circuit_{key}"], np.float64)[first[ids]]  # noqa: E731
        r = ratio[ids]
        t_ref = p("t_ref_s") if kind == "lif" else np.zeros(len(ids))
        populations.append(PopulationPlan(
            name=name, kind=kind, neurons=ids, circuits=c[:, :k], leak_cadc=leak[ids],
            reset_cadc=leak[ids] + r * (reset[ids] - leak[ids]) if kind == "lif" else leak[ids],
            threshold_cadc=leak[ids] + r * (th[ids] - leak[ids]) if kind == "lif" else np.full(len(ids), np.inf),
            tau_mem_s=p("tau_mem_s"), tau_syn_s=p("tau_syn_s"), refractory_s=t_ref,
            tau_mem_model_s=euler_tau(p("tau_mem_s"), dt_hw), tau_syn_model_s=euler_tau(p("tau_syn_s"), dt_hw),
            refractory_model_s=np.round(t_ref / dt_hw) * dt_hw, ratio=r))

    projections = []
    for target in populations:
        incoming = from_input[:, target.neurons]
        if (incoming != 0).any():
            projections.append(ProjectionPlan("input", target.name, incoming.T.copy()))
        for source in populations:
            block = from_neurons[np.ix_(source.neurons, target.neurons)]
            if not (block != 0).any():
                continue
            if layers.index(source.name) >= layers.index(target.name):
                raise BackendError(f"'{source.name}' → '{target.name}' is a recurrent or backward projection; this "
                                   "backend builds hxtorch networks feed-forward (no HXModuleWrapper yet)",
                                   "run recurrent models on mock:ideal or mock:CHIP")
            projections.append(ProjectionPlan(source.name, target.name, block.T.copy()))
    every = [abs(int(pr.weight_lsb.max(initial=0))) for pr in projections] + \
        [abs(int(pr.weight_lsb.min(initial=0))) for pr in projections]
    steps = int(meta["steps"]) if "steps" in meta else n_steps(meta["encoding"], meta["dt_s"])
    return NetworkPlan(dt_s=dt_hw, steps=steps, speedup=float(meta["speedup"]),
                       clock_period_s=float(meta["clock_period_s"]), n_neurons=n, input_size=input_size,
                       populations=populations, projections=projections, gain_cadc_per_lsb=g, i_synin_gm=i_synin_gm,
                       synapse_dac_bias=int(dac[0]), max_weight=max(every, default=0), requantised=requantised,
                       delay_copies=delay_copies,
                       dt_model_s=float(meta["dt_s"]))


def input_spikes(plan: NetworkPlan, times_model_s: np.ndarray) -> np.ndarray:
    """Input spike times ``[B, channels]`` or trains ``[B, channels, K]`` (model seconds, NaN: none) → dense
    ``[T, B, input_size]`` 0/1 spikes on hxtorch's dt grid: each time on the FPGA's clock (8 ns) first, then the
    nearest step, as the mock chip bins. With delays, the FPGA's delayed copies are the inputs
    (targets/bss2/delays.py ``input_copy_times``; one spike per channel only)."""
    times = np.asarray(times_model_s, np.float64)
    if plan.delay_copies is not None:
        if times.ndim != 2:
            raise BackendError("a deployment with delay lines takes one spike per input channel ([batch, channels]), "
                               "not spike trains", "encode the inputs as the model was trained")
        times = input_copy_times(times, plan.delay_copies, plan.dt_model_s)
    if times.shape[1] != plan.input_size:
        raise BackendError(f"{times.shape[1]} input channels given, the deployment has {plan.input_size}",
                           "encode the inputs as the model was trained")
    cycles = np.round(times / plan.speedup / plan.clock_period_s)
    step, b, c = grid_events(np.round(cycles * plan.clock_period_s / plan.dt_s), plan.steps)
    dense = np.zeros((plan.steps, *times.shape[:2]), np.float32)
    dense[step, b, c] = 1.0
    return dense
