r"""run(): the PyNN network → a neurodeploy model → the BSS-2 mapper and design rules → the emulated chip → records.

**The path.** Every ``run()`` turns the populations and projections into a neurodeploy :class:`~neurodeploy.graph.Graph`
with model-unit weights (a :class:`~neurodeploy.modelfile.ModelFile`), maps it with the BSS-2 target's own mapper
(:func:`~neurodeploy.targets.bss2.mapper.map_to_bss2`: lowering, every design rule, quantisation, placement,
routing), sets each population's analog settings (below) and runs the deployment on the chosen backend
(``mock:ideal``, ``mock:N``) with one batch entry. A network that breaks design rules raises
:class:`~neurodeploy.errors.DoesNotFitError` with every violation; other refusals are ``GraphError`` (the
network), ``BackendError`` (a construct the chip lacks) or ``CalibrationError``. The chip starts every
experiment from rest, so ``run(a); run(b)`` runs the whole experiment again for ``a + b``, and a changed
network (parameters, weights) applies to the whole experiment; ``reset()`` starts a new segment at t = 0.

**Graph.** All ``SpikeSourceArray`` cells that project anywhere become the graph's one input population; the
neuron populations become ``lif`` layers (``li`` for an ``HXNeuron`` whose ``threshold_enable`` is False) in
feed-forward order; a population's projections onto itself become its recurrent projection. Projections between
the same two populations are summed into one signed matrix (inhibitory receptors subtract). A population that
receives nothing gets an all-zero projection from the input (the graph wants every layer fed).

**Inputs with several spikes.** A backend takes one spike per input channel and run
(``input_times_s [B, channels]``), so every spike of a source cell gets its own channel, routed to the
synapses of that cell's connections (the chip's FPGA would send them on one address). Each channel costs a
synapse row per target neuron: design rule ``BSS2-FANIN`` says when a source spikes too often for the chip.

**Potentials and weights.** Model potentials are in units of each population's swing
:math:`v_{th} - v_{leak}` (CADC), so :math:`v = (V - V_{leak})/(V_{th} - V_{leak})`; a synaptic weight of one model
unit moves the stationary membrane by one swing. ``HXNeuron`` and ``CalibHXNeuronCuba`` weights are integer
synapse codes :math:`q`; a code is worth :math:`g/(V_{th}-V_{leak})` model units, :math:`g` the circuit's synaptic gain
(CADC per LSB) from its ``i_bias_gm`` code, and the mapper's quantisation scale is pinned to that, so the chip
gets exactly :math:`q`. ``IF_curr_exp`` weights (nA) become
:math:`w = w_{nA}\,(\tau_m/c_m)/(V_{th}-V_{rest}) / f`, :math:`f` the discretisation factor of
:func:`~neurodeploy.interchange.pynn_export.weight_factor`, and are quantised per neuron as a trained model's.

**Analog settings.** After mapping, each population's circuits get its own potentials (CADC), time constants,
refractory period and synaptic gain; codes follow from the nominal curves, or from the calibration
(``setup(calibration=...)``) for every setting a population leaves at its calibrated value. ``HXNeuron`` codes
that differ from the defaults are written as they are. ``mock:ideal`` realises the settings exactly, ``mock:N``
the codes through chip N's curves.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..backends.base import Recording
from ..backends.registry import get_backend
from ..deployment import Deployment
from ..errors import BackendError, CalibrationError, DesignRuleViolation, DoesNotFitError, GraphError
from ..graph import Graph, NeuronParameters, Population as GraphPopulation, Projection as GraphProjection
from ..interchange.pynn_export import weight_factor
from ..modelfile import ModelFile
from ..targets.bss2.analog import (ChipCodes, nominal_codes, nominal_gain, nominal_potential_cadc, nominal_tau_s)
from ..targets.bss2.calibrated import calibrated_codes
from ..targets.bss2.mapper import map_to_bss2
from ..targets.bss2.spec import BSS2Spec, load_bss2_spec
from . import cells

SPEC: BSS2Spec = load_bss2_spec()
ROUTING_LATENCY_STEPS = int(SPEC["time"]["routing_latency_steps"])


@dataclass
class Layer:
    """One neuron population as a graph layer, with its hardware settings (hardware seconds, CADC)."""

    population: Any
    name: str
    kind: str  # lif or li
    tau_mem_s: float
    tau_syn_s: float
    t_ref_s: float
    v_leak_cadc: float
    v_th_cadc: float  # the level that defines the model unit (also for an li layer, whose comparator is off)
    v_reset_cadc: float
    per_lsb: np.ndarray  # [size] model units per weight code (integer cells), or per nA (IF_curr_exp)
    integer: bool  # weights are synapse codes 0..63
    user_offset: float  # recorded v in the user's units: offset + scale * (cadc - v_leak_cadc)
    user_scale: float
    literal: dict = field(default_factory=dict)  # HXNeuron code name -> value written as it is
    calibrated: tuple = ()  # settings left at the calibration's targets (HXNeuron)

    @property
    def swing(self) -> float:
        return self.v_th_cadc - self.v_leak_cadc


@dataclass
class Experiment:
    """What one run returned, in the script's units: spike times (ms) and membranes per cell id."""

    spikes: dict  # cell id -> spike times (ms)
    membrane: dict  # cell id -> [samples] (CADC, or mV for IF_curr_exp)
    sample_times_ms: np.ndarray
    counters: dict
    report: dict


def _frame_ms_to_hw_s(state: Any) -> float:
    """Seconds of hardware time per ms of the script's time."""
    return 1e-3 / (SPEC.speedup if state.time_scale == "biological" else 1.0)


def _uniform(pop: Any, name: str, values: np.ndarray) -> float:
    first = values.flat[0]
    if not np.all(values == first):
        raise GraphError(f"population '{pop.label}' has different values of {name} per neuron; a layer's neurons "
                         "share one setting on the chip here", "give one value per population, or split it")
    return float(first)


def _label(pop: Any, used: set) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", str(pop.label or "population")).strip("_") or "population"
    name, n = base, 1
    while name in used or name == "input":
        n += 1
        name = f"{base}_{n}"
    used.add(name)
    return name


def _targets(state: Any) -> dict:
    """The calibration's targets, or the chip's default ones (targets/bss2.yaml ``calibration``)."""
    return dict(state.calibration.targets) if state.calibration is not None else dict(SPEC["calibration"])


def _hx_layer(pop: Any, name: str, state: Any) -> Layer:
    values = {key: pop.values(key) for key in cells.HXNeuron.default_parameters}
    defaults = cells.HXNeuron.default_parameters
    targets = _targets(state)
    dac = np.asarray(SPEC["capmem"]["synapse_dac_bias"])
    for exc, inh in (("excitatory_input_i_bias_tau", "inhibitory_input_i_bias_tau"),
                     ("excitatory_input_i_bias_gm", "inhibitory_input_i_bias_gm")):
        if not np.array_equal(values[exc], values[inh]):
            raise GraphError(f"population '{pop.label}' sets {exc} and {inh} differently; the emulated circuit has "
                             "one synaptic input for both receptors", f"give {inh} the value of {exc}")
    for key, value in values.items():
        if key in cells.HX_CODES and not np.all((value >= 0) & (value <= SPEC["capmem"]["code_max"])):
            raise GraphError(f"population '{pop.label}': {key} {value.min()}..{value.max()} is not a CapMem code",
                             f"use codes 0..{SPEC['capmem']['code_max']}")
    literal: dict = {}
    calibrated = []

    def setting(key: str, physical: Any, target_key: str) -> float:
        value = _uniform(pop, key, values[key])
        if value == defaults[key]:
            calibrated.append(target_key)
            return float(targets[target_key])
        literal[cells.HX_CODES[key]] = int(value)
        return float(physical(np.asarray(value)))

    potential = lambda c: nominal_potential_cadc(c, SPEC)  # noqa: E731
    v_leak = setting("leak_v_leak", potential, "v_leak_cadc")
    v_reset = setting("reset_v_reset", potential, "v_reset_cadc")
    v_th = setting("threshold_v_threshold", potential, "v_threshold_cadc")
    tau_mem = setting("leak_i_bias", lambda c: nominal_tau_s(c, SPEC, "tau_mem"), "tau_mem_s")
    tau_syn = setting("excitatory_input_i_bias_tau", lambda c: nominal_tau_s(c, SPEC, "tau_syn"), "tau_syn_s")
    gm = values["excitatory_input_i_bias_gm"].astype(np.float64)
    gain = np.where(gm == defaults["excitatory_input_i_bias_gm"], float(targets["synaptic_gain_cadc_per_lsb"]),
                    nominal_gain(gm, dac, SPEC))
    if np.any(gm != defaults["excitatory_input_i_bias_gm"]):
        literal["i_bias_synin_gm"] = gm  # written per circuit: the gain is the only per-neuron code here
    counter = _uniform(pop, "refractory_period_refractory_time", values["refractory_period_refractory_time"])
    t_ref = counter / SPEC["refractory"]["clock_hz"]
    spiking = bool(_uniform(pop, "threshold_enable", values["threshold_enable"].astype(float)))
    if v_th <= v_leak:
        if spiking:
            raise GraphError(f"population '{pop.label}' has its threshold ({v_th:.0f} CADC) at or below its leak "
                             f"({v_leak:.0f} CADC): it would fire without input, which is not emulated",
                             "raise threshold_v_threshold above leak_v_leak")
        v_th = v_leak + float(SPEC["neuron"]["default_potentials_cadc"]["threshold"]
                              - SPEC["neuron"]["default_potentials_cadc"]["leak"])  # a unit for a readout only
    swing = v_th - v_leak
    return Layer(pop, name, "lif" if spiking else "li", tau_mem, tau_syn, t_ref, v_leak, v_th, v_reset,
                 per_lsb=gain / swing, integer=True, user_offset=v_leak, user_scale=1.0, literal=literal,
                 calibrated=tuple(calibrated))


def _calib_cuba_layer(pop: Any, name: str) -> Layer:
    get = lambda key: _uniform(pop, key, pop.values(key))  # noqa: E731
    for exc, inh in (("tau_syn_E", "tau_syn_I"), ("i_synin_gm_E", "i_synin_gm_I")):
        if get(exc) != get(inh):
            raise GraphError(f"population '{pop.label}' sets {exc} and {inh} differently; the emulated circuit has "
                             "one synaptic input for both receptors", f"give {inh} the value of {exc}")
    v_leak, v_th, v_reset = get("v_rest"), get("v_thresh"), get("v_reset")
    if v_th <= v_leak:
        raise GraphError(f"population '{pop.label}': v_thresh ({v_th}) must lie above v_rest ({v_leak})",
                         "raise v_thresh")
    gain = nominal_gain(pop.values("i_synin_gm_E").astype(np.float64), pop.values("synapse_dac_bias"), SPEC)
    return Layer(pop, name, "lif", get("tau_m") * 1e-6, get("tau_syn_E") * 1e-6, get("tau_refrac") * 1e-6,
                 v_leak, v_th, v_reset, per_lsb=np.asarray(gain, np.float64) / (v_th - v_leak), integer=True,
                 user_offset=v_leak, user_scale=1.0)


def _if_curr_exp_layer(pop: Any, name: str, state: Any) -> Layer:
    get = lambda key: _uniform(pop, key, pop.values(key))  # noqa: E731
    if get("i_offset") != 0:
        raise BackendError(f"population '{pop.label}' has i_offset {get('i_offset')} nA: constant input currents "
                           "are not supported on the chip (rule BSS2-BIAS)", "set i_offset to 0")
    if get("tau_syn_E") != get("tau_syn_I"):
        raise GraphError(f"population '{pop.label}' sets tau_syn_E and tau_syn_I differently; the emulated circuit "
                         "has one synaptic time constant", "give tau_syn_I the value of tau_syn_E")
    v_rest, v_thresh, v_reset = get("v_rest"), get("v_thresh"), get("v_reset")
    if v_thresh <= v_rest:
        raise GraphError(f"population '{pop.label}': v_thresh ({v_thresh} mV) must lie above v_rest ({v_rest} mV)",
                         "raise v_thresh")
    targets = _targets(state)
    leak, threshold = float(targets["v_leak_cadc"]), float(targets["v_threshold_cadc"])
    unit_mv = v_thresh - v_rest
    swing = threshold - leak
    to_hw = _frame_ms_to_hw_s(state)
    tau_m, tau_syn, dt = get("tau_m"), get("tau_syn_E"), float(state.dt)
    per_na = (tau_m / get("cm")) / unit_mv / weight_factor(dt, tau_syn)  # model units per nA (module docstring)
    return Layer(pop, name, "lif", tau_m * to_hw, tau_syn * to_hw, get("tau_refrac") * to_hw, leak, threshold,
                 leak + (v_reset - v_rest) / unit_mv * swing, per_lsb=np.full(pop.size, per_na), integer=False,
                 user_offset=v_rest, user_scale=unit_mv / swing)


def _layer(pop: Any, name: str, state: Any) -> Layer:
    celltype = pop.celltype
    refusal = getattr(celltype, "refusal", None)
    if refusal is not None:
        raise BackendError(f"population '{pop.label}' uses {type(celltype).__name__}: {refusal[0]}", refusal[1])
    if isinstance(celltype, cells.HXNeuron):
        return _hx_layer(pop, name, state)
    if isinstance(celltype, cells.CalibHXNeuronCuba):
        return _calib_cuba_layer(pop, name)
    if isinstance(celltype, cells.IF_curr_exp):
        return _if_curr_exp_layer(pop, name, state)
    raise BackendError(f"population '{pop.label}' uses {type(celltype).__name__}, which neurodeploy.pynn does not "
                       "run", "use HXNeuron, CalibHXNeuronCuba, IF_curr_exp or SpikeSourceArray")


def _check_delay(projection: Any, delays: np.ndarray, state: Any) -> None:
    ok = np.isclose(delays, 0.0) | np.isclose(delays, ROUTING_LATENCY_STEPS * state.dt)
    if not np.all(ok):
        bad = float(delays[~ok][0])
        raise BackendError(f"projection '{projection.label}' has delay {bad:g} ms; the chip has no programmable "
                           f"delays, only its routing latency of {ROUTING_LATENCY_STEPS} time step "
                           f"({state.dt:g} ms)", f"use delay 0 or {state.dt:g} ms (both mean the routing latency)")


def _cell(id_: Any) -> tuple[Any, int]:
    parent = id_.parent
    return parent, int(parent.id_to_index(id_))


@dataclass
class Network:
    """The graph-ready form of the PyNN network for one run."""

    model: ModelFile
    layers: list
    channels: np.ndarray  # [channels] input spike time (model s), NaN: none
    source_channels: dict  # source cell id -> its channels
    recorded_v: bool
    fingerprint: str


def _source_times(pop: Any, index: int, state: Any) -> np.ndarray:
    """A source cell's spikes up to ``state.t``: those sent in earlier runs of this segment (kept, as a chip's
    FPGA sent them), then those its current ``spike_times`` give after the previous run's end."""
    train = pop.values("spike_times")[index]
    times = np.asarray(train.value if hasattr(train, "value") else train, np.float64).ravel()
    cell = int(pop.all_cells[index])
    sent = state.sent.get(cell, np.zeros(0))
    new = times[(times >= state.t_previous) & (times < float(state.t))]
    return np.sort(np.concatenate([sent[sent < state.t_previous], new]))


def build_network(state: Any) -> Network:
    """The model file of the current network for a run of ``state.t`` ms (see the module docstring)."""
    for source in getattr(state, "current_sources", []):
        raise BackendError(f"{type(source).__name__}: {source.refusal[0]}", source.refusal[1])
    neuron_pops = [p for p in state.populations if not isinstance(p.celltype, cells.SpikeSourceArray)]
    used: set = set()
    names = {id(p): _label(p, used) for p in neuron_pops}
    layers = {id(p): _layer(p, names[id(p)], state) for p in neuron_pops}
    # connections: (pre cell, post cell, signed weight in the user's units)
    edges: dict = {}  # (pre pop id or "input", post pop id) -> list of (pre index/cell, post index, weight)
    source_cells: list = []
    for proj in state.projections:
        refusal = getattr(proj.synapse_type, "refusal", None)
        if refusal is not None:
            raise BackendError(f"projection '{proj.label}' uses {type(proj.synapse_type).__name__}: {refusal[0]}",
                               refusal[1])
        if not proj.connections:
            continue
        sign = -1.0 if proj.receptor_type == "inhibitory" else 1.0
        if proj.receptor_type not in ("excitatory", "inhibitory"):
            raise GraphError(f"projection '{proj.label}' has receptor_type {proj.receptor_type!r}",
                             "use 'excitatory' or 'inhibitory'")
        table = np.array([c.as_tuple("presynaptic_index", "postsynaptic_index", "weight", "delay")
                          for c in proj.connections], np.float64)
        _check_delay(proj, table[:, 3], state)
        if sign > 0 and np.any(table[:, 2] < 0):
            raise GraphError(f"projection '{proj.label}' has negative weights on its excitatory receptor",
                             "use receptor_type='inhibitory' for inhibitory connections")
        pre_ids, post_ids = proj.pre.all_cells, proj.post.all_cells
        for i, j, w in zip(table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2]):
            pre_pop, pre_index = _cell(pre_ids[i])
            post_pop, post_index = _cell(post_ids[j])
            if id(post_pop) not in layers:
                raise GraphError(f"projection '{proj.label}' ends on a spike source", "project onto neurons")
            if isinstance(pre_pop.celltype, cells.SpikeSourceArray):
                key: tuple = ("input", id(post_pop))
                source_cells.append(pre_ids[i])
                edges.setdefault(key, []).append((int(pre_ids[i]), post_index, sign * abs(w)))
            else:
                edges.setdefault((id(pre_pop), id(post_pop)), []).append((pre_index, post_index, sign * abs(w)))
    order = _feedforward_order(neuron_pops, edges, names)
    to_model_s = _frame_ms_to_hw_s(state) * SPEC.speedup * 1e3 * 1e-3  # model seconds per script ms
    source_channels: dict = {}
    times: list = []
    for cell in dict.fromkeys(int(c) for c in source_cells):
        pop, index = _cell(next(c for c in source_cells if int(c) == cell))
        spikes = _source_times(pop, index, state)
        source_channels[cell] = list(range(len(times), len(times) + len(spikes)))
        times.extend(spikes * to_model_s)
    if not times:
        times = [math.nan]  # the graph needs an input population; this channel never spikes
    channels = np.asarray(times, np.float64)
    return _model(state, order, layers, names, edges, channels, source_channels)


def _feedforward_order(pops: list, edges: dict, names: dict) -> list:
    """Neuron populations in an order where every projection but a self-projection runs forward."""
    remaining = {id(p): p for p in pops}
    order: list = []
    while remaining:
        ready = [key for key in remaining if not any(pre in remaining and pre != post == key
                                                     for pre, post in edges if pre != "input")]
        if not ready:
            cycle = ", ".join(names[k] for k in remaining)
            raise GraphError(f"the projections between populations {cycle} form a loop; the graph runs feed-forward "
                             "with recurrence only within a population", "merge the looping populations into one "
                             "population with a projection onto itself")
        for key in ready:
            order.append(remaining.pop(key))
    return order


def _check_potentials(layers: list) -> None:
    """BSS2-POTENTIAL on the potentials each population asks for (CADC), all violations at once."""
    ranges = SPEC["neuron"]["potentials_cadc"]
    violations = []
    for layer in layers:
        asked = [("leak", layer.v_leak_cadc)] + ([("reset", layer.v_reset_cadc), ("threshold", layer.v_th_cadc)]
                                                 if layer.kind == "lif" else [])
        for name, value in asked:
            lo, hi = ranges[name]
            if not lo <= value <= hi:
                violations.append(DesignRuleViolation(
                    "BSS2-POTENTIAL", layer.name, f"{name} potential (CADC)", round(value, 1), f"{lo}..{hi}",
                    f"choose the {name} potential of '{layer.population.label}' inside the chip's range"))
    if violations:
        raise DoesNotFitError("bss2", violations)


def _mappable_reset(layer: Layer) -> float:
    """The reset in model units for the mapper, which lowers potentials onto the chip's default levels; the real
    ones (checked by :func:`_check_potentials`) replace them after mapping, so a reset the default levels cannot
    hold is moved inside them here."""
    if layer.kind != "lif":
        return 0.0
    levels = SPEC["neuron"]["default_potentials_cadc"]
    swing = float(levels["threshold"] - levels["leak"])
    lo, hi = SPEC["neuron"]["potentials_cadc"]["reset"]
    relative = (layer.v_reset_cadc - layer.v_leak_cadc) / layer.swing
    return float(np.clip(relative, (lo - levels["leak"]) / swing, min((hi - levels["leak"]) / swing, 0.99)))


def _model(state: Any, order: list, layers: dict, names: dict, edges: dict, channels: np.ndarray,
           source_channels: dict) -> Network:
    n_in = len(channels)
    pops = [GraphPopulation("input", n_in, "input")]
    ordered = [layers[id(p)] for p in order]
    dt_s = float(state.dt) * _frame_ms_to_hw_s(state) * SPEC.speedup
    _check_potentials(ordered)
    for layer in ordered:
        neuron = NeuronParameters(tau_mem_s=layer.tau_mem_s * SPEC.speedup, tau_syn_s=layer.tau_syn_s * SPEC.speedup,
                                  v_leak=0.0, v_th=1.0, v_reset=_mappable_reset(layer),
                                  t_ref_s=layer.t_ref_s * SPEC.speedup)
        neuron.check(f"population '{layer.population.label}'")
        pops.append(GraphPopulation(layer.name, layer.population.size, layer.kind, neuron))
    projections, weights = [], {}
    for layer, pop in zip(ordered, order):
        incoming = [(pre, rows) for (pre, post), rows in edges.items() if post == id(pop)]
        if not incoming:
            incoming = [("input", [])]
        for pre, rows in sorted(incoming, key=lambda item: -1 if item[0] == "input" else
                                [id(p) for p in order].index(item[0])):
            pre_name = "input" if pre == "input" else names[pre]
            pre_size = n_in if pre == "input" else layers[pre].population.size
            w = np.zeros((layer.population.size, pre_size), np.float64)
            for i, j, value in rows:
                for column in (source_channels[i] if pre == "input" else [i]):
                    w[j, column] += value
            if layer.integer:
                magnitude = np.abs(w)
                if np.any(magnitude > SPEC.weight_max) or not np.allclose(magnitude, np.round(magnitude)):
                    kind = type(layer.population.celltype).__name__
                    raise GraphError(f"projection onto '{layer.population.label}' has weights "
                                     f"{magnitude.max():g} (summed per pair): {kind} "
                                     f"weights are integer synapse codes 0..{SPEC.weight_max}",
                                     "use integer weights up to 63; for stronger synapses raise the synaptic input "
                                     "strength (i_bias_gm, i_synin_gm)")
            model_w = w * layer.per_lsb[:, None]
            name = f"{pre_name}->{layer.name}"
            projections.append(GraphProjection(pre_name, layer.name, recurrent=pre == id(pop)))
            weights[name] = torch.as_tensor(model_w, dtype=torch.float32)
    graph = Graph(tuple(pops), tuple(projections))
    steps = int(round(float(state.t) / float(state.dt)))
    # Pinned for the mapper: integer cells' scales (the chip gets their codes as they are), and every layer's CADC
    # per model unit, its own swing (the mapper's synaptic gains and its BSS2-GAIN rule then see the real ones).
    mapping: dict = {"weight_scale": {layer.name: torch.as_tensor(layer.per_lsb, dtype=torch.float32)
                                      for layer in ordered if layer.integer},
                     "cadc_per_model_unit": {layer.name: layer.swing for layer in ordered}}
    model = ModelFile(graph=graph, weights=weights, dt_s=dt_s,
                      encoding={"kind": "pynn", "duration_s": steps * dt_s}, dataset="pynn", seed=0,
                      training={"loss": "max_over_time"}, provenance={"source": "neurodeploy.pynn"},
                      mapping=mapping)
    recorded_v = any(any(v.name == "v" for v in layer.population.recorder.recorded) for layer in ordered)
    digest = hashlib.sha256(json.dumps(
        {"graph": graph.to_dict(), "dt": dt_s, "steps": steps, "backend": state.backend,
         "calibration": None if state.calibration is None else state.calibration.checksum,
         "layers": [[lay.kind, lay.v_leak_cadc, lay.v_th_cadc, lay.v_reset_cadc, sorted(lay.literal),
                     [np.asarray(v).tolist() for _, v in sorted(lay.literal.items())]] for lay in ordered]},
        sort_keys=True, default=str).encode())
    for key in sorted(weights):
        digest.update(key.encode())
        digest.update(weights[key].numpy().tobytes())
    for lay in ordered:
        digest.update(np.asarray(lay.per_lsb, np.float64).tobytes())
    return Network(model, ordered, channels, source_channels, recorded_v, digest.hexdigest())


def _settings_and_codes(deployment: Deployment, layers: list, state: Any) -> Deployment:
    """Each population's analog settings on its circuits, and the codes that realise them (module docstring)."""
    arrays = dict(deployment.arrays)
    circuits_of = deployment["neuron_circuits"]
    neuron_layer = deployment["neuron_layer"]
    masks = []
    for index, layer in enumerate(layers):
        rows = circuits_of[neuron_layer == index]
        scale = np.asarray(deployment[f"weight_scale:{layer.name}"], np.float64)
        for neuron, row in enumerate(rows):
            used = row[row >= 0]
            values = {"tau_mem_s": layer.tau_mem_s, "tau_syn_s": layer.tau_syn_s, "t_ref_s": layer.t_ref_s,
                      "v_leak_cadc": layer.v_leak_cadc, "v_reset_cadc": layer.v_reset_cadc if layer.kind == "lif"
                      else layer.v_leak_cadc, "v_th_cadc": layer.v_th_cadc if layer.kind == "lif" else math.inf,
                      "synaptic_gain_cadc_per_lsb": scale[neuron] * layer.swing}
            for key, value in values.items():
                arrays[f"circuit_{key}"] = np.array(arrays[f"circuit_{key}"], np.float64)
                arrays[f"circuit_{key}"][used] = value
        mask = np.zeros(len(arrays["circuit_enabled"]), bool)
        mask[rows[rows >= 0]] = True
        masks.append(mask)
    settings = {key: arrays[f"circuit_{key}"] for key in ("tau_mem_s", "tau_syn_s", "t_ref_s", "v_leak_cadc",
                                                          "v_th_cadc", "v_reset_cadc", "synaptic_gain_cadc_per_lsb")}
    calibration = state.calibration
    if calibration is None:
        codes = nominal_codes(settings, SPEC)
        gain_code = settings["synaptic_gain_cadc_per_lsb"] / nominal_gain(1.0, codes.synapse_dac_bias[0], SPEC)
    else:
        _check_calibration_targets(layers, calibration)
        codes, gain_code = calibrated_codes(settings, calibration, SPEC)
    violations = []
    for layer, mask in zip(layers, masks):
        out = mask & ~((gain_code >= 0) & (gain_code <= SPEC["capmem"]["code_max"]))
        if out.any() and "i_bias_synin_gm" not in layer.literal:
            violations.append(DesignRuleViolation(
                "BSS2-GAIN", layer.name, "synaptic gain (CADC per weight LSB) of a circuit",
                f"{float(np.max(settings['synaptic_gain_cadc_per_lsb'][out])):.3g}",
                f"codes 0..{SPEC['capmem']['code_max']}",
                f"{int(out.sum())} circuits are out of range: make the weights onto '{layer.population.label}' larger "
                "relative to each other's maximum, or its threshold distance smaller"))
    if violations:
        raise DoesNotFitError("bss2", violations)
    fields = codes._asdict()
    for layer, mask in zip(layers, masks):
        for code, value in layer.literal.items():
            column = np.array(fields[code], np.int32)
            if np.ndim(value):
                rows = circuits_of[neuron_layer == layers.index(layer)]
                for neuron, row in enumerate(rows):
                    column[row[row >= 0]] = int(value[neuron])
            else:
                column[mask] = int(value)
            fields[code] = column
    arrays.update(ChipCodes(**fields).to_arrays())
    meta = dict(deployment.meta)
    if calibration is not None:
        meta.update(chip=calibration.chip, calibration={"chip": calibration.chip, "checksum": calibration.checksum,
                                                        "created": calibration.created, "madc": dict(calibration.madc)})
    return Deployment(meta=meta, arrays=arrays)


def _check_calibration_targets(layers: list, calibration: Any) -> None:
    """A calibrated chip realises its targets only: a population must ask for them (HXNeuron: where it leaves
    a setting at its default)."""
    for layer in layers:
        wanted = {"tau_mem_s": layer.tau_mem_s, "tau_syn_s": layer.tau_syn_s, "v_leak_cadc": layer.v_leak_cadc}
        if layer.kind == "lif":
            wanted.update(v_threshold_cadc=layer.v_th_cadc, v_reset_cadc=layer.v_reset_cadc, t_ref_s=layer.t_ref_s)
        for key, need in wanted.items():
            if isinstance(layer.population.celltype, cells.HXNeuron) and key not in layer.calibrated:
                continue  # a code the user wrote is used as it is
            if key == "t_ref_s" and isinstance(layer.population.celltype, cells.HXNeuron):
                continue  # the refractory counter is digital: exact without calibration
            have = float(calibration.targets[key])
            if not np.isclose(need, have, rtol=0.01, atol=0.5 if key.endswith("cadc") else 0.0):
                raise CalibrationError(
                    f"population '{layer.population.label}' needs {key}={need:g} (hardware units) but the calibration "
                    f"of chip {calibration.chip} targets {have:g}",
                    f"calibrate for it: neurodeploy calibrate --backend {calibration.backend} --target bss2 "
                    f"--set {key}={need:g} -o FILE (or leave the parameter at the calibrated value)")


def _deployment(network: Network, state: Any) -> Deployment:
    cached = state.cache.get(network.fingerprint)
    if cached is not None:
        return cached
    circuit_ok = None if state.calibration is None else np.asarray(state.calibration.success, bool)
    deployment, report, violations = map_to_bss2(network.model, SPEC, circuit_ok=circuit_ok, weight_copies=1)
    if violations or deployment is None:
        raise DoesNotFitError("bss2", violations)
    deployment = _settings_and_codes(deployment, network.layers, state)
    state.cache = {network.fingerprint: deployment}  # one network at a time: a changed one replaces it
    return deployment


def execute(state: Any) -> Experiment:
    """Build, map and run the network for ``state.t`` ms; the recordings in the script's units."""
    if not any(not isinstance(p.celltype, cells.SpikeSourceArray) for p in state.populations):
        return _sources_only(state)  # nothing runs on the chip: the sources' spikes are the whole experiment
    network = build_network(state)
    engine = state.engine if getattr(state, "engine", None) is not None else get_backend(state.backend)
    if engine.target not in (None, "bss2"):
        raise BackendError(f"backend '{state.backend}' runs target '{engine.target}' deployments",
                           "use mock:ideal or mock:N (BSS-2)")
    if state.calibration is not None and engine.chip_id is not None and state.calibration.chip != engine.chip_id:
        raise CalibrationError(f"the calibration is of chip {state.calibration.chip}, the backend is chip "
                               f"{engine.chip_id}", f"calibrate this chip: neurodeploy calibrate --backend "
                               f"{state.backend} -o FILE")
    deployment = _deployment(network, state)
    obs = engine.run(deployment, network.channels[None, :], Recording(spikes=True, membrane=network.recorded_v))
    hw_to_ms = 1.0 / _frame_ms_to_hw_s(state)  # script ms per hardware second
    neuron_layer = np.asarray(deployment["neuron_layer"])
    starts = [int(np.flatnonzero(neuron_layer == i)[0]) for i in range(len(network.layers))]
    spikes: dict = {}
    events = obs.spike_events if obs.spike_events is not None else np.zeros((0, 3))
    for index, layer in enumerate(network.layers):
        ids = layer.population.all_cells
        for n in range(layer.population.size):
            times = events[events[:, 2] == starts[index] + n, 0] * hw_to_ms
            spikes[int(ids[n])] = np.sort(np.round(times, 9))  # the 8 ns clock grid, without float residue
    for pop in state.populations:  # a source's spikes, as the FPGA sent them
        if isinstance(pop.celltype, cells.SpikeSourceArray):
            for n, cell in enumerate(pop.all_cells):
                spikes[int(cell)] = _source_times(pop, n, state)
    steps = int(round(float(state.t) / float(state.dt)))
    membrane: dict = {}
    if network.recorded_v and obs.membrane.shape[-1]:
        readings = obs.membrane[:, 0, :].double().numpy()
        for index, layer in enumerate(network.layers):
            block = readings[:, starts[index]:starts[index] + layer.population.size]
            values = layer.user_offset + layer.user_scale * (block - layer.v_leak_cadc)
            for n, cell in enumerate(layer.population.all_cells):
                membrane[int(cell)] = _on_grid(values[:, n], obs.time_step_s * hw_to_ms, float(state.dt), steps)
    state.last_mapping = deployment.meta.get("report")
    return Experiment(spikes, membrane, np.arange(steps) * float(state.dt), dict(obs.counters),
                      dict(deployment.meta.get("report", {})))


def _sources_only(state: Any) -> Experiment:
    spikes = {int(cell): _source_times(pop, n, state) for pop in state.populations
              for n, cell in enumerate(pop.all_cells)}
    steps = int(round(float(state.t) / float(state.dt)))
    return Experiment(spikes, {}, np.arange(steps) * float(state.dt), {}, {})


def _on_grid(values: np.ndarray, period_ms: float, dt_ms: float, steps: int) -> np.ndarray:
    """Samples every ``period_ms`` → one per time step (the latest sample at or before it)."""
    if abs(period_ms - dt_ms) < 1e-12 and len(values) >= steps:
        return values[:steps]
    index = np.clip(np.floor(np.arange(steps) * dt_ms / period_ms + 1e-9).astype(int), 0, len(values) - 1)
    return values[index]
