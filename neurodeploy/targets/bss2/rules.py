"""BSS-2 design rules: small named functions, each with an id, run on the lowered layers.

A rule returns the violations it finds (``DesignRuleViolation``: id, layer, needed vs available,
fix) and may append warnings. ``check_all`` runs every rule and reports all violations, not the
first. The rules' numbers come from ``targets/bss2.yaml``.
"""

from __future__ import annotations

import math
from typing import Optional
from collections.abc import Callable, Iterable

from ...errors import DesignRuleViolation
from .spec import BSS2Spec
from .lower import LoweredLayer

Rule = Callable[[list[LoweredLayer], BSS2Spec, list[str], Optional[int]], Iterable[DesignRuleViolation]]


def rule_fanin(layers, spec, warnings, available_circuits):
    """BSS2-FANIN: signed fan-in ≤ 128 inputs per circuit × the largest merged neuron."""
    per_circuit = spec["synapse"]["signed_inputs_per_circuit"]
    max_merge = spec["merging"]["max_circuits_per_neuron"]
    for layer in layers:
        if layer.circuits_per_neuron > max_merge:
            yield DesignRuleViolation(
                "BSS2-FANIN", layer.name, "signed inputs per neuron", layer.fan_in, per_circuit * max_merge,
                f"reduce the inputs of '{layer.name}' to {per_circuit * max_merge} or split the layer")


def rule_circuits(layers, spec, warnings, available_circuits):
    """BSS2-NEURONS: all neurons × their circuits fit the chip's (working) neuron circuits."""
    available = spec.total_circuits if available_circuits is None else available_circuits
    needed = sum(layer.circuits for layer in layers)
    used = 0
    for layer in layers:
        used += layer.circuits
        if used > available:  # name the layer where the chip runs out
            yield DesignRuleViolation(
                "BSS2-NEURONS", layer.name, "neuron circuits (whole network)", needed, available,
                f"remove {needed - available} circuits, e.g. shrink '{layer.name}', or partition the network "
                f"across chips (map --chips {math.ceil(needed / max(available, 1))} or more)")
            return


def _time_rule(rule_id: str, attr: str, label: str):
    def rule(layers, spec, warnings, available_circuits):
        ranges = spec["neuron"][attr]
        lo, hi = ranges["limits"]
        for layer in layers:
            value = getattr(layer.hw, attr)
            if attr == "t_ref_s" and value == 0:
                continue  # no refractory period asked: the chip's shortest one is used
            if not lo <= value <= hi:
                yield DesignRuleViolation(
                    rule_id, layer.name, f"{label} (hardware time)", f"{value * 1e6:.3g} us",
                    f"{lo * 1e6:.3g}..{hi * 1e6:.3g} us",
                    f"choose {attr} between {lo * spec.speedup:.3g} and {hi * spec.speedup:.3g} s of model time")
            elif "recommended" in ranges and not ranges["recommended"][0] <= value <= ranges["recommended"][1]:
                rlo, rhi = ranges["recommended"]
                warnings.append(f"{rule_id}: layer '{layer.name}' {label} {value * 1e6:.3g} us lies outside "
                                f"the calibrated range {rlo * 1e6:.3g}..{rhi * 1e6:.3g} us")
    rule.__name__ = f"rule_{attr}"
    rule.__doc__ = f"{rule_id}: {label} within the hardware's range."
    return rule


rule_tau_mem = _time_rule("BSS2-TAU-MEM", "tau_mem_s", "membrane time constant")
rule_tau_syn = _time_rule("BSS2-TAU-SYN", "tau_syn_s", "synaptic time constant")
rule_refractory = _time_rule("BSS2-REFRAC", "t_ref_s", "refractory period")


def rule_potentials(layers, spec, warnings, available_circuits):
    """BSS2-POTENTIAL: leak, reset and threshold map into the chip's CADC ranges."""
    ranges = spec["neuron"]["potentials_cadc"]
    for layer in layers:
        for name, value in (("leak", layer.hw.v_leak_cadc), ("reset", layer.hw.v_reset_cadc),
                            ("threshold", layer.hw.v_th_cadc)):
            lo, hi = ranges[name]
            if math.isfinite(value) and not lo <= value <= hi:
                yield DesignRuleViolation(
                    "BSS2-POTENTIAL", layer.name, f"{name} potential (CADC)", round(value, 1), f"{lo}..{hi}",
                    "bring v_reset closer to v_leak (relative to v_th - v_leak)")


def rule_imported(layers, spec, warnings, available_circuits):
    """BSS2-BIAS, BSS2-PER-NEURON, BSS2-RESET: what imported (NIR) graphs may use and the mapper does not
    realise yet: constant input currents, one neuron setting per neuron instead of per layer, reset by
    subtraction. (Recurrent projections are on-chip routes: their labels and fan-in are checked as
    every other source's, their bus load by :mod:`.bus_load`.)"""
    for layer in layers:
        n = layer.neuron
        if n.i_bias != 0 or "i_bias" in dict(n.per_neuron):
            yield DesignRuleViolation("BSS2-BIAS", layer.name, "constant input current (a NIR Affine bias)", "1",
                                      "0 (not supported yet)", "export the network without biases (bias=False)")
        varied = [name for name, _ in n.per_neuron if name != "i_bias"]  # a bias is BSS2-BIAS already
        if varied:
            yield DesignRuleViolation("BSS2-PER-NEURON", layer.name, f"values of {', '.join(varied)} (one per neuron)",
                                      f"{layer.size} different", "1 per layer (not supported yet)",
                                      "give the layer's neurons equal parameters")
        if n.reset != "value":
            yield DesignRuleViolation("BSS2-RESET", layer.name, "reset by subtraction", "1", "0 (the chip resets to "
                                      "v_reset)", "import the graph with its reset to v_reset (reset='graph')")


RULES: tuple[Rule, ...] = (rule_fanin, rule_circuits, rule_tau_mem, rule_tau_syn, rule_refractory,
                           rule_potentials, rule_imported)
NEGLIGIBLE_DECAY = 0.01  # a synaptic current left after one step, relative: "no synaptic current" if below


def check_discretisation(layers: list[LoweredLayer], spec: BSS2Spec, dt_s: float,
                         warnings: list[str]) -> list[DesignRuleViolation]:
    """BSS2-DISCRETISATION (a warning) for imported models, and BSS2-NEURON-MODEL for neurons the chip lacks.

    The chip is continuous-time: it realises a time constant's exact exponential decay, which is
    the per-step decay of the graph's forward-Euler step because import stored it that way; it
    adds one step of routing latency per projection; it has no leak-free membrane, and a
    synaptic current always (approximated by the shortest one for NIR LIF/LI).
    """
    violations = []
    for layer in layers:
        if layer.neuron.model == "integrator":
            violations.append(DesignRuleViolation(
                "BSS2-NEURON-MODEL", layer.name, "leak-free membrane (NIR IF/I)", "1", "0 (every membrane leaks)",
                "use LIF or CubaLIF nodes instead of IF or I"))
        elif layer.neuron.model == "leaky":
            tau_s = layer.hw.tau_syn_s * spec.speedup  # model time
            left = math.exp(-dt_s / tau_s)
            if left > NEGLIGIBLE_DECAY:
                violations.append(DesignRuleViolation(
                    "BSS2-NEURON-MODEL", layer.name, "synaptic current decaying within one step (NIR LIF/LI)",
                    "< 1 % left after a step", f"{left:.1%} (shortest tau_syn {layer.hw.tau_syn_s * 1e6:.3g} us)",
                    f"import with a dt_s of at least {-tau_s * math.log(NEGLIGIBLE_DECAY):.3g} s, or use CubaLIF "
                    "nodes"))
    if any(layer.discretisation == "nir-euler" for layer in layers):
        warnings.append("BSS2-DISCRETISATION: the model simulates its NIR graph with forward Euler; its time "
                        "constants were stored at import as the exact exponential ones with the same decay per step "
                        f"(dt = {dt_s:g} s), which the chip's continuous-time neurons realise; the chip adds one step "
                        "of routing latency per projection (the graph has none: a spike reaches the next layer one "
                        "step later), and neurons without synaptic current get its shortest one "
                        f"({spec['neuron']['tau_syn_s']['limits'][0] * 1e6:.3g} us)")
    return violations


def check_time_grid(dt_s: float, spec: BSS2Spec, warnings: list[str]) -> list[DesignRuleViolation]:
    """BSS2-DT: the hardware step (model step / speed-up) spans at least one 8 ns clock cycle.

    A step that is not a whole number of cycles only moves events by less than half a cycle when
    they are put on the FPGA's clock: a warning, not an error.
    """
    cycles = dt_s / spec.speedup / spec["time"]["clock_period_s"]
    if cycles < 1:
        return [DesignRuleViolation("BSS2-DT", "(network)", "clock cycles per step", f"{cycles:.3f}",
                                    ">= 1", f"choose dt_s >= {spec['time']['clock_period_s'] * spec.speedup:.3g} s")]
    if abs(cycles - round(cycles)) > 1e-6:
        warnings.append(f"BSS2-DT: the hardware step is {cycles:.2f} clock cycles; event times are "
                        "rounded to the 8 ns clock")
    return []


def check_all(layers: list[LoweredLayer], spec: BSS2Spec, dt_s: float,
              available_circuits: Optional[int] = None) -> tuple[list[DesignRuleViolation], list[str]]:
    """Run every rule; return all violations and all warnings."""
    warnings: list[str] = []
    violations = check_time_grid(dt_s, spec, warnings) + check_discretisation(layers, spec, dt_s, warnings)
    for rule in RULES:
        violations.extend(rule(layers, spec, warnings, available_circuits))
    return violations, warnings
