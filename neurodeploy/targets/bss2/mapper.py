"""Map a model onto BSS-2: lower, check, quantise, place, route, and report."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple, Optional

import numpy as np
import torch

from ...deployment import Deployment
from ...errors import DesignRuleViolation
from ...modelfile import ModelFile
from ..base import training_meta
from ...models.network import SpikingNetwork
from .spec import BSS2Spec
from .calibration_file import Calibration
from .analog import ChipCodes, nominal_codes, nominal_gain
from .bus_load import bus_capacity, bus_load_warning, peak_bus_load
from .calibrated import calibrated_codes, check_targets
from .delay_mapping import delay_arrays, plan_and_check_delays, quantise_delayed, route_delayed
from .delays import DelayPlan
from .lower import LoweredLayer, circuits_per_neuron, copies_that_fit, lower
from .place import Placement, place
from .quantise import QuantisedLayer, quantise_layer
from .route import Routing
from .rules import check_all
from .thresholds import with_threshold_offsets


def check(model: ModelFile, spec: BSS2Spec, circuit_ok: Optional[np.ndarray] = None,
          delays: Optional[str] = None, weight_copies: Optional[int] = None
          ) -> tuple[list[LoweredLayer], list[DesignRuleViolation], list[str]]:
    """Lower and run all design rules (nothing is written); ``delays``: the delay strategy (delay_mapping.py);
    ``weight_copies``: the most synapses per weight (lower.py; None: as :func:`map_to_bss2`)."""
    layers, _, violations, warnings = lower_and_check(model, spec, circuit_ok, _strategy(model, delays),
                                                      _copies(model, weight_copies))
    return layers, violations, warnings


def lower_and_check(model: ModelFile, spec: BSS2Spec, circuit_ok: Optional[np.ndarray], delays: Optional[str],
                     weight_copies: int = 1, first_inputs: Optional[dict[str, int]] = None
                     ) -> tuple[list[LoweredLayer], Optional[DelayPlan], list[DesignRuleViolation], list[str]]:
    """:func:`check`, also returning the delay plan (``None`` without delays) so that mapping plans once;
    ``first_inputs``: layers that listen to the first channels of their input only (:func:`_first_inputs_only`)."""
    layers = lower(model.graph, spec, weight_copies, model.weights)
    layers = [layer if layer.name not in (first_inputs or {}) else
              _first_inputs_only(layer, (first_inputs or {})[layer.name], spec, weight_copies) for layer in layers]
    plan, layers, delay_violations = plan_and_check_delays(model, layers, spec, delays)
    available = None if circuit_ok is None else int(np.sum(circuit_ok))
    violations, warnings = check_all(layers, spec, model.dt_s, available)
    return layers, plan, delay_violations + violations, warnings


def _first_inputs_only(layer: LoweredLayer, count: int, spec: BSS2Spec, weight_copies: int) -> LoweredLayer:
    """``layer`` listening to only the first ``count`` channels of its one input population (on a chip of a
    partitioned network whose FPGA inputs also carry another layer's sources, partition.py): its fan-in, circuits
    and drivers are those of ``count`` inputs; the other channels get no synapse (their weights are zero)."""
    (_, size), = layer.inputs
    per_circuit = spec["synapse"]["signed_inputs_per_circuit"]
    circuits = circuits_per_neuron(count, per_circuit)
    joined = np.zeros((layer.size, size), bool)
    joined[:, :count] = True
    return replace(layer, fan_in=count, circuits_per_neuron=circuits, connected=joined,
                   slots=np.minimum(np.arange(size), count - 1),  # the ignored channels' slots are never used
                   weight_copies=copies_that_fit(count, circuits, per_circuit, weight_copies))


def _strategy(model: ModelFile, delays: Optional[str]) -> Optional[str]:
    """The delay realisation asked for, else the one in-the-loop training used (a model is mapped as trained)."""
    return model.mapping.get("delays") if delays is None else delays


def _copies(model: ModelFile, weight_copies: Optional[int]) -> int:
    """The weight copies asked for, else those in-the-loop training used (a model is mapped as trained), else 1."""
    return int(model.mapping.get("weight_copies", 1)) if weight_copies is None else int(weight_copies)


class SoftwareProbe(NamedTuple):
    """What the quantised network does on training samples: the mapper's diagnostics."""

    rates: dict  # spiking layer → (float Hz, quantised Hz), model time
    readout_peak: Optional[float]  # 99th percentile of the readout's maximum above rest (model units)
    spikes: dict  # spiking layer → [T, B, N] spikes of the quantised network (bus_load.py)


def _probe(model: ModelFile, layers: list[LoweredLayer], quantised: dict[str, QuantisedLayer],
           spikes: Optional[torch.Tensor]) -> SoftwareProbe:
    """Firing rates with float and quantised weights, and how far the readout rises, on ``spikes``
    (encoded training samples ``[T, B, C]``, never the test set; None: not measured)."""
    if spikes is None or spikes.shape[1] == 0:
        return SoftwareProbe({}, None, {})
    net = SpikingNetwork(model.graph, model.dt_s, weights=model.weights, delays=model.delays or None,
                         delay_sigma_steps=model.delay_sigma_steps)
    deq = {k: v for q in quantised.values() for k, v in q.dequantised().items()}
    deq.update({name: model.weights[name] for name in net.delay_names})  # delayed: float weights, as trained
    with torch.no_grad():
        before, after = net(spikes), net(spikes, weights=deq)
    duration = spikes.shape[0] * model.dt_s
    rate = lambda z: float(z.sum(0).mean()) / duration  # noqa: E731
    rates = {layer.name: (rate(before.spikes[layer.name]), rate(after.spikes[layer.name]))
             for layer in layers if layer.kind == "lif"}
    quantised_spikes = {layer.name: after.spikes[layer.name] for layer in layers if layer.kind == "lif"}
    if after.readout_v is None:  # all spiking (one chip of a partitioned network): no readout range to fit
        return SoftwareProbe(rates, None, quantised_spikes)
    rise = after.readout_v.amax(0) - model.graph.readout.parameters.v_leak
    return SoftwareProbe(rates, float(torch.quantile(rise.flatten(), 0.99)), quantised_spikes)


def _fit_readout(layer: LoweredLayer, peak: Optional[float], spec: BSS2Spec) -> LoweredLayer:
    """Scale a readout's potentials so that its typical peak stays inside the CADC's reliable range.

    Decoding takes the maximum over time, so the top of the range is what must not clip; the
    scale is the same for all readout neurons, so the decision is unchanged by it.
    """
    if layer.kind != "li" or peak is None or peak <= 0:
        return layer
    room = spec["readout"]["cadc"]["reliable_range"][1] - layer.hw.v_leak_cadc
    per_unit = min(layer.hw.cadc_per_model_unit, room / peak)
    return replace(layer, hw=replace(layer.hw, cadc_per_model_unit=per_unit))


def _pinned_potential_scale(layer: LoweredLayer, mapping: dict) -> LoweredLayer:
    """The CADC-per-model-unit a model was trained in the loop with (its readout's gain), if any."""
    pinned = mapping.get("cadc_per_model_unit", {}).get(layer.name)
    return layer if pinned is None else replace(layer, hw=replace(layer.hw, cadc_per_model_unit=float(pinned)))


def _circuit_settings(layers: list[LoweredLayer], placement: Placement, quantised: dict, spec: BSS2Spec) -> dict:
    """Per-circuit analog settings (physical units): what calibration later turns into codes."""
    n = spec.total_circuits
    settings = {name: np.zeros(n, np.float64) for name in
                ("tau_mem_s", "tau_syn_s", "t_ref_s", "v_leak_cadc", "v_th_cadc", "v_reset_cadc",
                 "synaptic_gain_cadc_per_lsb")}
    enabled = np.zeros(n, bool)
    for neuron, layer_index in enumerate(placement.neuron_layer):
        layer = layers[layer_index]
        circuits = placement.circuits_of(neuron)
        enabled[circuits] = True
        scale = quantised[layer.name].scale[neuron - placement.layer_start[layer.name]]
        gain = float(scale) * layer.hw.cadc_per_model_unit
        for name in settings:
            value = gain if name == "synaptic_gain_cadc_per_lsb" else getattr(layer.hw, name)
            settings[name][circuits] = value
    return {**{f"circuit_{k}": v for k, v in settings.items()}, "circuit_enabled": enabled}


def _codes(settings: dict, layers: list[LoweredLayer], placement: Placement, spec: BSS2Spec,
           calibration: Optional[Calibration]) -> tuple[ChipCodes, list[DesignRuleViolation]]:
    """CapMem codes for the requested settings (nominal curves, or the chip's calibration).

    BSS2-GAIN: a circuit whose requested synaptic gain lies beyond its code range.
    """
    physical = {k.split("_", 1)[1]: v for k, v in settings.items() if k != "circuit_enabled"}
    if calibration is None:
        codes = nominal_codes(physical, spec)
        gain_code = physical["synaptic_gain_cadc_per_lsb"] / nominal_gain(1.0, codes.synapse_dac_bias[0], spec)
        reach = nominal_gain(spec["capmem"]["code_max"], codes.synapse_dac_bias[0], spec) * np.ones(len(gain_code))
    else:
        codes, gain_code = calibrated_codes(physical, calibration, spec)
        reach = calibration.gain_slope * (spec["capmem"]["code_max"] - calibration.gain_offset_code)
    violations = []
    for index, layer in enumerate(layers):
        circuits = np.flatnonzero(np.isin(np.arange(len(gain_code)),
                                          placement.neuron_circuits[placement.neuron_layer == index]))
        out = circuits[~((gain_code[circuits] >= 0) & (gain_code[circuits] <= spec["capmem"]["code_max"]))]
        if len(out):
            worst = out[np.argmax(physical["synaptic_gain_cadc_per_lsb"][out])]
            violations.append(DesignRuleViolation(
                "BSS2-GAIN", layer.name, "synaptic gain (CADC per weight LSB) of a circuit",
                f"{physical['synaptic_gain_cadc_per_lsb'][worst]:.3g}", f"{max(reach[worst], 0):.3g}",
                f"{len(out)} circuits are out of range: lower --clip-quantile (e.g. 0.99) so weights use more "
                "of the 6 bits, or train the layer with smaller weights (training.weight_decay)"))
    return codes, violations


def map_to_bss2(model: ModelFile, spec: BSS2Spec, *, clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
                circuit_ok: Optional[np.ndarray] = None, probe_inputs: Optional[torch.Tensor] = None,
                calibration: Optional[Calibration] = None, delays: Optional[str] = None,
                weight_copies: Optional[int] = None, first_inputs: Optional[dict[str, int]] = None
                ) -> tuple[Optional[Deployment], dict, list[DesignRuleViolation]]:
    """Return ``(deployment or None, report, violations)``; violations are every rule broken.

    Firing rates before and after quantisation, and the readout's range, are measured in software on
    ``probe_inputs`` (encoded training samples ``[T, B, C]``; None: not measured, and the readout
    keeps its nominal range). ``weight_copies`` None: what in-the-loop training used, else 1. ``first_inputs``
    (layer → n): layers that listen to only the first n channels of their input population (one chip of a
    partitioned network, partition.py).
    """
    weight_copies = _copies(model, weight_copies)
    if calibration is not None:
        calibrated_ok = calibration.success if circuit_ok is None else calibration.success & circuit_ok
        circuit_ok = calibrated_ok  # circuits that failed calibration are never placed
    layers, plan, violations, warnings = lower_and_check(model, spec, circuit_ok, _strategy(model, delays),
                                                         weight_copies, first_inputs)
    if violations:
        return None, {"warnings": warnings}, violations
    if calibration is not None:
        check_targets(layers, calibration)
    placement, violations = place(layers, spec, circuit_ok)
    if placement is None or violations:  # place() gives no placement exactly when it reports violations
        return None, {"warnings": warnings}, violations
    pinned = model.mapping.get("weight_scale", {})  # scales in-the-loop training kept fixed (`itl`)
    delayed = quantise_delayed(plan, spec.weight_max, clip_quantile, weight_scale, pinned)  # slot by slot
    quantised = {layer.name: delayed[layer.name] if layer.name in delayed else
                 quantise_layer({f"{pre}->{layer.name}": model.weights[f"{pre}->{layer.name}"]
                                 for pre, _ in layer.inputs}, spec.weight_max, clip_quantile,
                                weight_scale, pinned.get(layer.name))
                 for layer in layers}
    routing, violations = route_delayed(plan, layers, placement, quantised, spec, model.graph.input.name)
    if violations:
        return None, {"warnings": warnings}, violations
    probe = _probe(model, layers, quantised, probe_inputs)
    layers = [_fit_readout(layer, probe.readout_peak, spec) for layer in layers]
    layers = [_pinned_potential_scale(layer, model.mapping) for layer in layers]
    peak = peak_bus_load(routing.neuron_routes, probe.spikes, placement, spec)
    capacity = bus_capacity(model.dt_s / spec.speedup, spec)
    warnings += [w for w in [bus_load_warning(peak, capacity)] if w]
    report = _report(layers, placement, quantised, routing, probe.rates, spec, warnings)
    report["bus_load"] = {"peak_events_per_step": None if peak is None else peak[0], "capacity_per_step": capacity}
    extra_arrays, extra_meta = delay_arrays(plan, model, routing, report)
    settings = _circuit_settings(layers, placement, quantised, spec)
    codes, violations = _codes(settings, layers, placement, spec, calibration)
    if violations:
        return None, {"warnings": warnings}, violations
    arrays = {
        "neuron_circuits": placement.neuron_circuits.astype(np.int32),
        "neuron_layer": placement.neuron_layer.astype(np.int32),
        "synapse_weight": routing.synapse_weight, "synapse_label": routing.synapse_label,
        "row_mode": routing.row_mode, "input_routes": routing.input_routes,
        "neuron_routes": routing.neuron_routes,
        **settings, **codes.to_arrays(),
        **{f"float_weight:{k}": v.numpy() for k, v in model.weights.items()},
        **{f"quantised_weight:{k}": v.numpy() for q in quantised.values() for k, v in q.weights.items()},
        **{f"weight_scale:{name}": q.scale.numpy() for name, q in quantised.items()},
        **extra_arrays,
    }
    meta = {
        "target": spec.name, "speedup": spec.speedup, "clock_period_s": spec["time"]["clock_period_s"],
        "graph": model.graph.to_dict(), "dt_s": model.dt_s, "encoding": model.encoding,
        "dataset": model.dataset, "layers": [layer.name for layer in layers],
        "layer_kinds": [layer.kind for layer in layers],
        "readout_layer": layers[-1].name, "readout_neurons": [placement.layer_start[layers[-1].name],
                                                              layers[-1].size],
        "training": training_meta(model),
        "weight_scale": weight_scale, "clip_quantile": clip_quantile, "weight_copies": weight_copies,
        "chip": None if calibration is None else calibration.chip,
        "calibration": None if calibration is None else {"chip": calibration.chip, "checksum": calibration.checksum,
                                                         "created": calibration.created,
                                                         "madc": dict(calibration.madc)},  # for recordings
        "report": report,
        **extra_meta,
        **({"shared_sources": shared} if (shared := {layer.name: list(layer.shared) for layer in layers
                                                      if layer.shared}) else {}),
        "trained_on": model.mapping.get("trained_on"),  # the chip `itl` trained the model on, if any
    }
    deployment = Deployment(meta=meta, arrays=arrays)
    moved = model.mapping.get("threshold_offsets", {})  # written by a plasticity program's homeostasis (`learn`)
    if moved:
        deployment = with_threshold_offsets(deployment, deployment,
                                            {k: np.asarray(v, np.float64) for k, v in moved.items()}, spec)
    return deployment, report, []


def _report(layers: list[LoweredLayer], placement: Placement, quantised: dict, routing: Routing, rates: dict,
            spec: BSS2Spec, warnings: list[str]) -> dict:
    layer_rows = []
    for layer in layers:
        q = quantised[layer.name]
        before, after = rates.get(layer.name, (None, None))
        silent = before is not None and after is not None and before > 0 and after < 0.01 * before
        if silent:
            warnings.append(f"layer '{layer.name}' falls silent after quantisation "
                            f"({before:.1f} Hz → {after:.1f} Hz): try --clip-quantile 0.99")
        layer_rows.append({
            "name": layer.name, "kind": layer.kind, "neurons": layer.size, "fan_in": layer.fan_in,
            "circuits_per_neuron": layer.circuits_per_neuron, "circuits": layer.circuits,
            "weight_copies": layer.weight_copies,
            "cadc_per_model_unit": layer.hw.cadc_per_model_unit, "scale": float(q.scale.median()),
            "scale_min": float(q.scale.min()),
            "scale_max": float(q.scale.max()), "clipped_fraction": q.clipped_fraction,
            "rate_float_hz": before, "rate_quantised_hz": after, "silent": bool(silent),
            "detail": f"{layer.circuits_per_neuron} circuit(s)/neuron, {layer.weight_copies} weight copies, "
                      f"scale {float(q.scale.median()):.4f}"
                      + "".join(f", '{pre}' on one shared label" for pre in layer.shared)})
    hemispheres = spec["geometry"]["hemispheres"]
    per_bus = spec["geometry"]["drivers_per_bus"]
    drivers_used = [sorted(d for (h, d) in routing.labels_per_driver if h == hemi) for hemi in range(hemispheres)]
    events: dict = {}
    for kind, routes in (("input", routing.input_routes), ("neuron", routing.neuron_routes)):
        for source in routes[:, 0]:
            events[(kind, int(source))] = events.get((kind, int(source)), 0) + 1
    return {
        "target": spec.name,
        "circuits_used": int((placement.neuron_circuits >= 0).sum()), "circuits_available": spec.total_circuits,
        "rows_used": routing.rows_used, "rows_available": spec.total_rows,
        "synapses_used": routing.synapses_used, "synapses_available": spec.total_synapses,
        "max_labels_per_driver": max(routing.labels_per_driver.values(), default=0),
        "bus_rows_used": [[2 * sum(1 for d in drivers_used[h] if d // per_bus == b)
                           for b in range(spec["geometry"]["buses_per_hemisphere"])] for h in range(hemispheres)],
        "max_events_per_spike": max(events.values(), default=0),
        "layers": layer_rows, "warnings": warnings,
    }
