"""What a BSS-2 deployment holds beyond what every deployment holds: checked on load, before a backend runs it.

Called through :meth:`neurodeploy.targets.base.Target.validate_deployment` after the common checks
(:mod:`neurodeploy.validation.deployment`); raises :class:`~neurodeploy.validation.rules.Invalid`.
Against the chip's geometry and formats in ``targets/bss2.yaml``:

* the arrays present are exactly the mapper's (``code:*`` and ``weight_scale:*`` from version 3;
  ``delay_copies`` with meta ``delays``), each with its dtype kind and shape;
* placement: ``neuron_circuits`` ``[neurons, k]`` (k <= the merging limit) of circuit ids, -1 only as
  trailing padding, no circuit twice; ``neuron_layer`` the layers' neurons in order; ``circuit_enabled``
  exactly the placed circuits;
* synapses: weights ``0..2^weight_bits-1``, labels ``0..2^label_bits-1``, row modes 0/1/2, weights only
  on enabled rows and in placed columns;
* routes ``(source, hemisphere, driver, label)``: sources within the inputs (or the FPGA's delayed
  copies) and the spiking neurons, hemispheres, drivers and labels within the geometry, each on an
  enabled row pair, no two on one driver with one label, and one for every label a weighted synapse
  listens to;
* per-circuit settings finite float64 (the threshold may be +inf: comparator off), 0 where no neuron is
  placed; on placed circuits time
  constants, refractory periods (or 0) and potentials within the chip's ranges, as the design rules
  require of a mapping; CapMem codes ``0..code_max``, refractory counters and scalers within theirs, the threshold
  switch on exactly where the threshold is finite;
* quantised weights within ``±weight_max`` (``[post, pre]``, or ``[post, slots]`` for a delayed
  projection); weight scales finite > 0, one per neuron; delayed copies within channels, delays and
  strengths;
* meta: its keys (no unknown one), speed-up and clock > 0, the readout layer, the weight-scale mode,
  clip quantile, weight copies, the calibration's chip and the deployment's, the delay realisation.
"""

from __future__ import annotations

import numpy as np

from ...deployment import Deployment
from ...graph import Graph
from ...validation.arguments import CLIP_QUANTILE, WEIGHT_SCALE
from ...validation.deployment import generic_keys
from ...validation.rules import Anything, Array, Fields, Invalid, ListOf, MapOf, Nullable, Number, OneOf, Text
from ..base import Target
from .analog import NEURON_CODES, QUADRANT_CODES, nominal_potential_cadc
from .delays import STRATEGIES
from .spec import BSS2Spec
from .thresholds import unmoved_thresholds

SETTINGS = ("tau_mem_s", "tau_syn_s", "t_ref_s", "v_leak_cadc", "v_th_cadc", "v_reset_cadc",
            "synaptic_gain_cadc_per_lsb")
CORE = ("neuron_circuits", "neuron_layer", "synapse_weight", "synapse_label", "row_mode", "input_routes",
        "neuron_routes", "circuit_enabled", *(f"circuit_{name}" for name in SETTINGS))
CODES = (*(f"code:{n}" for n in NEURON_CODES), "code:refractory_counter", "code:threshold_enabled",
         *(f"code:{n}" for n in QUADRANT_CODES))
POSITIVE = Number(lo=0, lo_open=True)


def validate_deployment(target: Target, deployment: Deployment) -> None:
    """Raise :class:`Invalid` naming the first BSS-2 array or meta key that the chip could not take as it is."""
    spec = target.spec
    if not isinstance(spec, BSS2Spec):
        spec = BSS2Spec.from_spec(spec)
    meta, arrays = deployment.meta, deployment.arrays
    graph = Graph.from_dict(meta["graph"])  # checked by the common part
    version = int(meta["version"])
    _check_meta(meta, graph, spec, version)
    _check_array_names(arrays, meta, graph, version)
    sizes = [graph.population(name).size for name in meta["layers"]]
    placed = _check_placement(arrays, meta, sizes, spec)
    _check_synapses(arrays, placed, spec)
    inputs = int(meta["input_channels"]) if "delays" in meta else graph.input.size
    _check_routes(arrays, meta, sizes, inputs, spec)
    _check_settings(arrays, placed, spec, unmoved_thresholds(deployment) if "threshold_offsets" in meta else None)
    _check_weights(arrays, meta, graph, spec)
    if "delays" in meta:
        _check_delay_copies(arrays, meta, graph, spec)


def _check_meta(meta: dict, graph: Graph, spec: BSS2Spec, version: int) -> None:
    keys = {"speedup": POSITIVE, "clock_period_s": POSITIVE, "readout_layer": Text()}
    calibrated = Fields(required={"chip": Text(), "checksum": Text(), "created": Text(empty=True)},
                        optional={"madc": Fields(required={"gain": Number(lo=0, lo_open=True), "offset": Number()})})
    later = {"weight_scale": WEIGHT_SCALE, "clip_quantile": CLIP_QUANTILE, "weight_copies": Number(lo=1, integer=True),
             "calibration": Nullable(calibrated), "trained_on": Nullable(Fields(strict=False))}
    label_bits = int(spec["synapse"]["label_bits"])
    delays = Fields(required={
        "strategy": OneOf(STRATEGIES), "channels": Number(lo=1, integer=True),
        "address_bits": Number(lo=0, hi=label_bits, integer=True),
        "strength_bits": Number(lo=0, hi=label_bits, integer=True), "sigma_steps": MapOf(Number(lo=0)),
        "max_delay_steps": MapOf(Number(lo=1, integer=True))})
    # The generic keys are the common part's to check; here only that no other key is there.
    required = {**{k: Anything() for k in generic_keys(version)}, **keys, **(later if version >= 3 else {})}
    optional = {**({} if version >= 3 else later), "delays": delays, "input_channels": Number(lo=1, integer=True),
                "chip": Nullable(Text()), "shared_sources": MapOf(ListOf(Text())),
                "threshold_offsets": MapOf(ListOf(Number(lo=-1e3, hi=1e3)))}
    Fields(required=required, optional=optional).check(meta, "meta")
    if meta["readout_layer"] != graph.readout.name:
        raise Invalid("meta.readout_layer", f"= {meta['readout_layer']!r} is not the graph's readout "
                      f"{graph.readout.name!r}")
    calibration = meta.get("calibration")
    if calibration is not None and calibration["chip"] != meta.get("chip"):
        raise Invalid("meta.chip", f"= {meta.get('chip')!r} is not the chip of its calibration {calibration['chip']!r}")
    if ("delays" in meta) != ("input_channels" in meta):
        raise Invalid("meta.input_channels", "and meta.delays come together (a deployment with delays has both)")
    if "delays" in meta:
        d = meta["delays"]
        wanted = {p.name: p.max_delay_steps for p in graph.projections if p.max_delay_steps}
        if d["max_delay_steps"] != wanted:
            raise Invalid("meta.delays.max_delay_steps", f"= {d['max_delay_steps']} differ from the graph's {wanted}")
        if d["channels"] != graph.input.size:
            raise Invalid("meta.delays.channels", f"= {d['channels']} is not the graph's {graph.input.size} inputs")
        if d["address_bits"] + d["strength_bits"] > label_bits:
            raise Invalid("meta.delays", f"uses {d['address_bits']} address and {d['strength_bits']} strength bits, "
                          f"a label has {label_bits}")
    elif any(p.max_delay_steps for p in graph.projections):
        raise Invalid("meta.delays", "is missing (the graph has delayed projections)")
    report = meta["report"] if isinstance(meta.get("report"), dict) else {}
    scales: dict = {row.get("name"): row.get("cadc_per_model_unit")
                    for row in report.get("layers", []) if isinstance(row, dict)}
    for layer, theta in meta.get("threshold_offsets", {}).items():
        if layer not in meta["layers"] or len(theta) != graph.population(layer).size:
            raise Invalid(f"meta.threshold_offsets.{layer}", "must name a layer and hold one offset per neuron")
        scale = scales.get(layer)
        if not isinstance(scale, (int, float)) or not scale > 0:
            raise Invalid(f"meta.threshold_offsets.{layer}", "needs the layer's cadc_per_model_unit in meta.report "
                          "(offsets are in model units)")
    for layer, pres in meta.get("shared_sources", {}).items():
        feeding = {p.pre for p in graph.projections if p.post == layer}
        if not set(pres) <= feeding:
            raise Invalid(f"meta.shared_sources.{layer}", f"= {pres} names populations that do not feed '{layer}' "
                          f"(its inputs: {sorted(feeding)})")


def _check_array_names(arrays: dict, meta: dict, graph: Graph, version: int) -> None:
    layers = list(meta["layers"])
    required = [*CORE, *(f"quantised_weight:{p.name}" for p in graph.projections)]
    optional = [*CODES, *(f"weight_scale:{name}" for name in layers)]
    if version >= 3:
        required, optional = required + optional, []
    if "delays" in meta:
        required.append("delay_copies")
    for name in required:
        if name not in arrays:
            raise Invalid(f"array '{name}'", "is missing")
    known = {*required, *optional}
    for name in arrays:
        generic = name.startswith("float_weight:") or name.startswith("float_delay:")
        if name not in known and not generic:
            raise Invalid(f"array '{name}'", "is not part of a BSS-2 deployment")
    if version < 3:
        present = [name for name in CODES if name in arrays]
        if present and len(present) != len(CODES):
            missing = next(n for n in CODES if n not in arrays)
            raise Invalid(f"array '{missing}'", "is missing (the other codes are there)")


def _check_placement(arrays: dict, meta: dict, sizes: list[int], spec: BSS2Spec) -> np.ndarray:
    """The placement's arrays; returns the placed circuits (bool per circuit)."""
    total = spec.total_circuits
    neurons = sum(sizes)
    k_max = int(spec["merging"]["max_circuits_per_neuron"])
    circuits = arrays["neuron_circuits"]
    Array("int", (neurons, None), lo=-1, hi=total - 1).check(circuits, "array 'neuron_circuits'")
    if not 1 <= circuits.shape[1] <= k_max:
        raise Invalid("array 'neuron_circuits'",
                      f"has {circuits.shape[1]} circuits per neuron, BSS-2 merges 1..{k_max}")
    unused = circuits < 0
    if unused[:, 0].any() or (unused[:, :-1] & ~unused[:, 1:]).any():
        row = int(np.flatnonzero(unused[:, 0] | (unused[:, :-1] & ~unused[:, 1:]).any(1))[0])
        raise Invalid("array 'neuron_circuits'", f"row {row} = {circuits[row].tolist()} has a gap: -1 may only pad "
                      "the end of a row")
    used = circuits[~unused]
    values, counts = np.unique(used, return_counts=True)
    if (counts > 1).any():
        raise Invalid("array 'neuron_circuits'", f"places circuit {int(values[counts > 1][0])} twice")
    expected = np.repeat(np.arange(len(sizes)), sizes)
    Array("int", (neurons,)).check(arrays["neuron_layer"], "array 'neuron_layer'")
    if not np.array_equal(arrays["neuron_layer"], expected):
        raise Invalid("array 'neuron_layer'", f"is not the layers' neurons in order (sizes {sizes})")
    placed = np.zeros(total, bool)
    placed[used] = True
    Array("bool", (total,)).check(arrays["circuit_enabled"], "array 'circuit_enabled'")
    if not np.array_equal(arrays["circuit_enabled"], placed):
        circuit = int(np.flatnonzero(arrays["circuit_enabled"] != placed)[0])
        raise Invalid("array 'circuit_enabled'", f"differs from the placement at circuit {circuit}")
    return placed


def _check_synapses(arrays: dict, placed: np.ndarray, spec: BSS2Spec) -> None:
    g = spec["geometry"]
    hemispheres, columns = g["hemispheres"], g["circuits_per_hemisphere"]
    rows = g["synapse_drivers_per_hemisphere"] * g["rows_per_driver"]
    shape = (hemispheres, rows, columns)
    Array("int", shape, lo=0, hi=spec.weight_max).check(arrays["synapse_weight"], "array 'synapse_weight'")
    Array("int", shape, lo=0, hi=spec.labels_per_driver - 1).check(arrays["synapse_label"], "array 'synapse_label'")
    Array("int", (hemispheres, rows), lo=0, hi=2).check(arrays["row_mode"], "array 'row_mode'")
    weight = arrays["synapse_weight"] > 0
    stray = weight & ~placed.reshape(hemispheres, 1, columns)
    if stray.any():
        h, r, c = (int(i) for i in np.argwhere(stray)[0])
        raise Invalid("array 'synapse_weight'", f"has a weight at hemisphere {h}, row {r}, column {c}, whose circuit "
                      "is not placed")
    stray = weight & (arrays["row_mode"] == 0)[:, :, None]
    if stray.any():
        h, r, c = (int(i) for i in np.argwhere(stray)[0])
        raise Invalid("array 'synapse_weight'", f"has a weight on disabled row {r} of hemisphere {h}")


def _check_shared_labels(arrays: dict, meta: dict, sizes: list[int], both: np.ndarray) -> None:
    """Sources on one driver with one label are told apart by nothing: allowed only for the sources of one
    population the mapping declared shared (``shared_sources``: identical weights, lower.py)."""
    unique, which, counts = np.unique(both, axis=0, return_inverse=True, return_counts=True)
    if not (counts > 1).any():
        return
    shared = {pre for pres in meta.get("shared_sources", {}).values() for pre in pres}
    names = [meta["graph"]["populations"][0]["name"]] * len(arrays["input_routes"])
    layer_of = np.repeat(np.arange(len(sizes)), sizes)
    names += [meta["layers"][int(layer_of[n])] for n in arrays["neuron_routes"][:, 0]]
    for group in np.flatnonzero(counts > 1):
        populations = {names[int(i)] for i in np.flatnonzero(which.ravel() == group)}
        if len(populations) > 1 or not populations <= shared:
            h, d, label = (int(i) for i in unique[group])
            raise Invalid("routes", f"put two sources on driver {d} of hemisphere {h} with label {label}: its "
                          "synapses could not tell them apart")


def _check_routes(arrays: dict, meta: dict, sizes: list[int], inputs: int, spec: BSS2Spec) -> None:
    g = spec["geometry"]
    hemispheres, drivers = g["hemispheres"], g["synapse_drivers_per_hemisphere"]
    spiking = np.repeat([kind == "lif" for kind in meta["layer_kinds"]], sizes)
    for name, sources in (("input_routes", inputs), ("neuron_routes", sum(sizes))):
        routes = arrays[name]
        Array("int", (None, 4)).check(routes, f"array '{name}'")
        for column, (what, high) in enumerate((("source", sources - 1), ("hemisphere", hemispheres - 1),
                                               ("driver", drivers - 1), ("label", spec.labels_per_driver - 1))):
            bad = (routes[:, column] < 0) | (routes[:, column] > high)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise Invalid(f"array '{name}'", f"row {row} has {what} {int(routes[row, column])}, outside 0..{high}")
        if len(routes):
            enabled = arrays["row_mode"][routes[:, 1], 2 * routes[:, 2]] != 0
            enabled |= arrays["row_mode"][routes[:, 1], 2 * routes[:, 2] + 1] != 0
            if not enabled.all():
                row = int(np.flatnonzero(~enabled)[0])
                raise Invalid(f"array '{name}'", f"row {row} routes to driver {int(routes[row, 2])} of hemisphere "
                              f"{int(routes[row, 1])}, whose rows are disabled")
        if name == "neuron_routes" and len(routes) and not spiking[routes[:, 0]].all():
            row = int(np.flatnonzero(~spiking[routes[:, 0]])[0])
            raise Invalid(f"array '{name}'", f"row {row} routes neuron {int(routes[row, 0])}, which does not spike")
    both = np.concatenate([arrays["input_routes"][:, 1:], arrays["neuron_routes"][:, 1:]])
    _check_shared_labels(arrays, meta, sizes, both)
    # Every synapse that holds a weight listens to a routed source: its driver carries its label.
    address = 2 ** int(meta["delays"]["address_bits"]) - 1 if "delays" in meta else spec.labels_per_driver - 1
    routed = {(h, d, label & address) for h, d, label in both.tolist()}
    hemi, rows, cols = np.nonzero(arrays["synapse_weight"])
    used = np.unique(np.stack([hemi, rows // 2, arrays["synapse_label"][hemi, rows, cols]], axis=1), axis=0)
    for where in used.tolist():
        if tuple(where) not in routed:
            raise Invalid("array 'synapse_weight'", f"has weights on driver {where[1]} of hemisphere {where[0]} "
                          f"listening to label {where[2]}, which no route carries there")


def _check_settings(arrays: dict, placed: np.ndarray, spec: BSS2Spec, unmoved: np.ndarray | None) -> None:
    """The per-circuit settings; ``unmoved``: the thresholds before a plasticity program moved them (those are held
    to the mapping's range; the moved ones only to what a CapMem cell can hold)."""
    total, quadrants = spec.total_circuits, spec["capmem"]["quadrants"]
    for name in SETTINGS:
        key = f"circuit_{name}"
        Array("float", (total,), allow_inf=name == "v_th_cadc", dtype="float64").check(arrays[key], f"array '{key}'")
        if (arrays[key][~placed] != 0).any():
            circuit = int(np.flatnonzero(~placed & (arrays[key] != 0))[0])
            raise Invalid(f"array '{key}'", f"holds {float(arrays[key][circuit])!r} at circuit {circuit}, which is not "
                          "placed (the mapper leaves those at 0)")
        if name == "v_th_cadc" and (arrays[key] == -np.inf).any():
            raise Invalid(f"array '{key}'", "holds -inf (only +inf, a switched-off comparator, is allowed)")
    # Placed circuits: what the design rules (BSS2-TAU-MEM, -TAU-SYN, -REFRAC, -POTENTIAL) let a mapping ask for.
    neuron = spec["neuron"]
    ranges = {"tau_mem_s": neuron["tau_mem_s"]["limits"], "tau_syn_s": neuron["tau_syn_s"]["limits"],
              "t_ref_s": neuron["t_ref_s"]["limits"], "v_leak_cadc": neuron["potentials_cadc"]["leak"],
              "v_reset_cadc": neuron["potentials_cadc"]["reset"], "v_th_cadc": neuron["potentials_cadc"]["threshold"]}
    for name, (lo, hi) in ranges.items():
        values = unmoved if name == "v_th_cadc" and unmoved is not None else arrays[f"circuit_{name}"]
        exempt = (values == 0) if name == "t_ref_s" else (values == np.inf) if name == "v_th_cadc" else False
        bad = placed & ~exempt & ((values < lo) | (values > hi))
        if bad.any():
            circuit = int(np.flatnonzero(bad)[0])
            raise Invalid(f"array 'circuit_{name}'", f"holds {float(values[circuit])!r} at placed circuit {circuit}, "
                          f"outside the chip's range {lo:g}..{hi:g}")
    if unmoved is not None:
        reach = nominal_potential_cadc(np.array([0, spec["capmem"]["code_max"]]), spec)
        moved = arrays["circuit_v_th_cadc"]
        bad = placed & np.isfinite(moved) & ((moved < reach[0]) | (moved > reach[1]))
        if bad.any():
            circuit = int(np.flatnonzero(bad)[0])
            raise Invalid("meta.threshold_offsets", f"move circuit {circuit}'s threshold to {float(moved[circuit]):g} "
                          f"CADC, beyond what a CapMem cell sets ({reach[0]:g}..{reach[1]:g})")
    if (arrays["circuit_synaptic_gain_cadc_per_lsb"] < 0).any():
        raise Invalid("array 'circuit_synaptic_gain_cadc_per_lsb'", "holds a negative value, it must be >= 0")
    if "code:v_leak" not in arrays:  # a version-1 or 2 deployment made before codes existed
        return
    code_max = spec["capmem"]["code_max"]
    refractory = spec["refractory"]
    for name in NEURON_CODES:
        Array("int", (total,), lo=0, hi=code_max).check(arrays[f"code:{name}"], f"array 'code:{name}'")
    Array("int", (total,), lo=0, hi=refractory["counter_max"]).check(
        arrays["code:refractory_counter"], "array 'code:refractory_counter'")
    Array("bool", (total,)).check(arrays["code:threshold_enabled"], "array 'code:threshold_enabled'")
    Array("int", (quadrants,), lo=0, hi=code_max).check(
        arrays["code:synapse_dac_bias"], "array 'code:synapse_dac_bias'")
    Array("int", (quadrants,), lo=0, hi=refractory["scaler_max"]).check(
        arrays["code:refractory_scaler"], "array 'code:refractory_scaler'")
    finite = np.isfinite(arrays["circuit_v_th_cadc"])
    if not np.array_equal(arrays["code:threshold_enabled"], finite):
        circuit = int(np.flatnonzero(arrays["code:threshold_enabled"] != finite)[0])
        raise Invalid("array 'code:threshold_enabled'", f"differs at circuit {circuit} from where the threshold "
                      "(circuit_v_th_cadc) is finite")


def _check_weights(arrays: dict, meta: dict, graph: Graph, spec: BSS2Spec) -> None:
    w_max = spec.weight_max
    for proj in graph.projections:
        key = f"quantised_weight:{proj.name}"
        post, pre = graph.population(proj.post).size, graph.population(proj.pre).size
        shape = (post, None) if proj.max_delay_steps else (post, pre)
        Array("int", shape, lo=-w_max, hi=w_max).check(arrays[key], f"array '{key}'")
    for name in meta["layers"]:
        key = f"weight_scale:{name}"
        if key in arrays:
            Array("float", (graph.population(name).size,), lo=0, lo_open=True).check(arrays[key], f"array '{key}'")


def _check_delay_copies(arrays: dict, meta: dict, graph: Graph, spec: BSS2Spec) -> None:
    d = meta["delays"]
    longest = max(d["max_delay_steps"].values(), default=0)
    copies = arrays["delay_copies"]
    Array("int", (int(meta["input_channels"]), 3), lo=0).check(copies, "array 'delay_copies'")
    for column, (what, high) in enumerate((("channel", graph.input.size - 1), ("delay", longest),
                                           ("strength", 2 ** int(spec["delays"]["strength_bits"]) - 1))):
        bad = copies[:, column] > high
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise Invalid("array 'delay_copies'", f"row {row} has {what} {int(copies[row, column])}, outside 0..{high}")

