"""The BSS-2 spec (``targets/bss2.yaml``): its sections, their consistency, and derived sizes.

Every key of every section is checked on load (:data:`SCHEMA`: type and range; no unknown key, since
a misspelt limit would otherwise be silently missing), then the cross-section invariants
(:func:`check_consistency`): drivers per hemisphere = buses x drivers per bus, CapMem quadrants that
divide the circuits, recommended ranges within the limits, default and calibration values within
the chip's ranges, the CADC's reliable range within its bits, strength bits within the label bits.
A refusal is a ``TargetSpecError`` naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...validation.rules import Anything, Fields, Flag, Interval, Invalid, Number, OneOf, within
from ..spec import ENVELOPE_KEYS, TargetSpec, load_spec, refuse_spec, spec_path

SECTIONS = ("geometry", "synapse", "merging", "time", "neuron", "readout", "delays", "capmem", "refractory",
            "calibration", "links")
_COUNT = Number(lo=1, integer=True)
_POSITIVE = Number(lo=0, lo_open=True)
_BITS = Number(lo=1, hi=16, integer=True)
_TIME_RANGE = Interval(_POSITIVE)
_CADC = Interval(Number(lo=0))
SCHEMA = Fields(required={
    **{key: Anything() for key in ENVELOPE_KEYS},
    "geometry": Fields(required={
        "hemispheres": _COUNT, "circuits_per_hemisphere": _COUNT, "synapse_drivers_per_hemisphere": _COUNT,
        "rows_per_driver": OneOf((2,)), "buses_per_hemisphere": _COUNT, "drivers_per_bus": _COUNT,
        "max_rows_per_neuron_per_bus": _COUNT, "fill_order": OneOf(("column_major",))}),
    "synapse": Fields(required={"weight_bits": _BITS, "label_bits": _BITS, "signed_inputs_per_circuit": _COUNT}),
    "merging": Fields(required={"max_circuits_per_neuron": _COUNT}),
    "time": Fields(required={"speedup": _POSITIVE, "clock_period_s": _POSITIVE,
                             "routing_latency_steps": Number(lo=0, integer=True)}),
    "neuron": Fields(required={
        "tau_mem_s": Fields(required={"recommended": _TIME_RANGE, "limits": _TIME_RANGE}),
        "tau_syn_s": Fields(required={"recommended": _TIME_RANGE, "limits": _TIME_RANGE}),
        "t_ref_s": Fields(required={"limits": _TIME_RANGE}),
        "potentials_cadc": Fields(required={"leak": _CADC, "reset": _CADC, "threshold": _CADC}),
        "default_potentials_cadc": Fields(required={"leak": Number(lo=0), "threshold": Number(lo=0)}),
        "readout_leak_cadc": Number(lo=0)}),
    "capmem": Fields(required={
        "code_max": Number(lo=1, hi=1023, integer=True), "quadrants": _COUNT,
        "potential_cadc": Fields(required={"offset": Number(), "per_code": _POSITIVE}),
        "tau_mem_s_times_code": _POSITIVE, "tau_syn_s_times_code": _POSITIVE, "synaptic_gain_per_code": _POSITIVE,
        "synapse_dac_bias": Number(lo=1, integer=True)}),
    "refractory": Fields(required={"clock_hz": _POSITIVE, "counter_max": _COUNT,
                                   "scaler_max": Number(lo=0, integer=True)}),
    "calibration": Fields(required={
        "v_leak_cadc": Number(lo=0), "v_reset_cadc": Number(lo=0), "v_threshold_cadc": Number(lo=0),
        "tau_mem_s": _POSITIVE, "tau_syn_s": _POSITIVE, "t_ref_s": Number(lo=0),
        "synaptic_gain_cadc_per_lsb": _POSITIVE}),
    "readout": Fields(required={
        "cadc": Fields(required={"bits": _BITS, "reliable_range": _CADC, "period_s": _POSITIVE}),
        "madc": Fields(required={"bits": _BITS, "sample_rate_hz": _POSITIVE, "neurons_per_run": _COUNT}),
        "bus_events_per_clock": _COUNT}),
    "delays": Fields(required={
        "on_chip": Flag(),
        "off_chip": Fields(required={"resolution_s": _POSITIVE, "max_delay_s": _POSITIVE, "copies": _COUNT}),
        "strength_bits": Number(lo=0, hi=15, integer=True)}),
    "links": Fields(required={"crossbar_channels": _COUNT, "events_per_clock": _COUNT, "latency_s": Number(lo=0)}),
})


def check_consistency(raw: dict) -> None:
    """The invariants between sections (module docstring); raises :class:`Invalid` naming the key."""
    g, neuron, cal = raw["geometry"], raw["neuron"], raw["calibration"]
    if g["synapse_drivers_per_hemisphere"] != g["buses_per_hemisphere"] * g["drivers_per_bus"]:
        raise Invalid("geometry.synapse_drivers_per_hemisphere", "!= buses x drivers per bus "
                      f"({g['buses_per_hemisphere']} x {g['drivers_per_bus']})", "make the geometry consistent")
    quadrants = raw["capmem"]["quadrants"]
    if quadrants % g["hemispheres"] or g["circuits_per_hemisphere"] % (quadrants // g["hemispheres"] or 1):
        raise Invalid("capmem.quadrants", f"= {quadrants} does not divide {g['hemispheres']} hemispheres of "
                      f"{g['circuits_per_hemisphere']} circuits evenly",
                      "give one quadrant per equal block of circuits")
    for name in ("tau_mem_s", "tau_syn_s"):
        for end in neuron[name]["recommended"]:
            within(end, neuron[name]["limits"], f"neuron.{name}.recommended", f"neuron.{name}.limits")
    potentials = neuron["potentials_cadc"]
    within(neuron["default_potentials_cadc"]["leak"], potentials["leak"], "neuron.default_potentials_cadc.leak",
           "neuron.potentials_cadc.leak")
    within(neuron["default_potentials_cadc"]["threshold"], potentials["threshold"],
           "neuron.default_potentials_cadc.threshold", "neuron.potentials_cadc.threshold")
    within(neuron["readout_leak_cadc"], potentials["leak"], "neuron.readout_leak_cadc", "neuron.potentials_cadc.leak")
    for name, interval in (("tau_mem_s", neuron["tau_mem_s"]["limits"]), ("tau_syn_s", neuron["tau_syn_s"]["limits"]),
                           ("t_ref_s", neuron["t_ref_s"]["limits"]), ("v_leak_cadc", potentials["leak"]),
                           ("v_reset_cadc", potentials["reset"]), ("v_threshold_cadc", potentials["threshold"])):
        within(cal[name], interval, f"calibration.{name}", "the chip's range")
    cadc = raw["readout"]["cadc"]
    within(cadc["reliable_range"][1], [0, 2 ** cadc["bits"] - 1], "readout.cadc.reliable_range",
           f"the {cadc['bits']}-bit CADC's range")
    if raw["capmem"]["synapse_dac_bias"] > raw["capmem"]["code_max"]:
        raise Invalid("capmem.synapse_dac_bias", f"= {raw['capmem']['synapse_dac_bias']} exceeds code_max",
                      "set it within 0..code_max")
    if raw["delays"]["strength_bits"] >= raw["synapse"]["label_bits"]:
        raise Invalid("delays.strength_bits", f"= {raw['delays']['strength_bits']} leaves no address bits of the "
                      f"{raw['synapse']['label_bits']} label bits", "use fewer strength bits")


@dataclass(frozen=True)
class BSS2Spec(TargetSpec):
    """BSS-2's limits: geometry, synapse format, merging, time, neuron ranges, CapMem, readouts, delays."""

    @classmethod
    def from_spec(cls, spec: TargetSpec) -> BSS2Spec:
        """The spec's BSS-2 sections, checked (module docstring); ``TargetSpecError`` naming the key otherwise."""
        spec.require(SECTIONS)
        try:
            SCHEMA.check(spec.raw, "")
            check_consistency(dict(spec.raw))
        except Invalid as invalid:
            raise refuse_spec(spec, invalid) from None
        return cls(name=spec.name, description=spec.description, raw=spec.raw, path=spec.path)

    @property
    def total_circuits(self) -> int:
        g = self.raw["geometry"]
        return g["hemispheres"] * g["circuits_per_hemisphere"]

    @property
    def total_rows(self) -> int:
        g = self.raw["geometry"]
        return g["hemispheres"] * g["synapse_drivers_per_hemisphere"] * g["rows_per_driver"]

    @property
    def total_synapses(self) -> int:
        return self.total_rows * self.raw["geometry"]["circuits_per_hemisphere"]

    @property
    def weight_max(self) -> int:
        return 2 ** self.raw["synapse"]["weight_bits"] - 1

    @property
    def labels_per_driver(self) -> int:
        return 2 ** self.raw["synapse"]["label_bits"]

    @property
    def speedup(self) -> float:
        return float(self.raw["time"]["speedup"])


def load_bss2_spec(name_or_path: str | Path = "bss2") -> BSS2Spec:
    """The BSS-2 spec by name or path, validated."""
    return BSS2Spec.from_spec(load_spec(spec_path(name_or_path)))
