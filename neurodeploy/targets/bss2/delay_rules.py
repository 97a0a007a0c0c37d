"""BSS-2 design rules of delay realisations: small named functions, each with an id (numbers from targets/bss2.yaml).

* BSS2-DELAY-SOURCE: delays only on projections from the input (their events pass the FPGA), and on all of them;
  no recurrent projection onto a layer whose input slots are delayed copies.
* BSS2-DELAY-RANGE: the longest delayed copy fits the FPGA's delay counter.
* BSS2-DELAY-CAPACITY: the delayed copies fit the FPGA's table.
* BSS2-DELAY-LABELS: the copies one input slot (driver) must tell apart fit its label space.
* BSS2-DELAY-ROWS: the input slots a neuron needs (taps × inputs) fit its synapse rows.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...errors import DesignRuleViolation
from ...graph import Graph
from .spec import BSS2Spec
from .delays import DelayPlan


def rule_delay_source(graph: Graph) -> Iterator[DesignRuleViolation]:
    """BSS2-DELAY-SOURCE: on-chip spikes cannot be delayed without a round trip through the FPGA (not modelled),
    and once the input's events are delayed copies every projection from the input must be delayed."""
    any_delays = any(p.max_delay_steps for p in graph.projections)
    for proj in graph.projections:
        if proj.max_delay_steps and proj.pre != graph.input.name:
            yield DesignRuleViolation(
                "BSS2-DELAY-SOURCE", proj.post, "delayed projection from", f"population '{proj.pre}'",
                f"the input '{graph.input.name}' only", "put delays only on the input projection (the first layer)")
        elif proj.recurrent and any(p.max_delay_steps for p in graph.incoming(proj.post)):
            yield DesignRuleViolation(
                "BSS2-DELAY-SOURCE", proj.post, "recurrent projection onto a layer with delayed inputs", proj.name,
                "none (its slots are the delayed copies')", f"remove the recurrent projection of '{proj.post}', or "
                "learn its input delays in a layer without one")
        elif any_delays and not proj.max_delay_steps and proj.pre == graph.input.name:
            yield DesignRuleViolation(
                "BSS2-DELAY-SOURCE", proj.post, "undelayed projection from the input beside delayed ones",
                proj.name, "all input projections delayed", f"give '{proj.post}' a delays: key (max_steps: 1 or more)")


def rule_delay_range(plan: DelayPlan, dt_s: float, spec: BSS2Spec) -> Iterator[DesignRuleViolation]:
    """BSS2-DELAY-RANGE: longest copy delay (hardware time) ≤ the FPGA's delay counter."""
    limit_s = spec["delays"]["off_chip"]["max_delay_s"]
    longest = int(plan.virtual[:, 1].max(initial=0))
    needed_s = longest * dt_s / spec.speedup
    if needed_s > limit_s:
        yield DesignRuleViolation(
            "BSS2-DELAY-RANGE", ",".join(plan.layers), "longest delay (hardware time)", f"{needed_s * 1e6:.4g} us",
            f"{limit_s * 1e6:.4g} us", f"lower delays.max_steps to {int(limit_s * spec.speedup / dt_s)} or dt_s")


def rule_delay_capacity(plan: DelayPlan, spec: BSS2Spec) -> Iterator[DesignRuleViolation]:
    """BSS2-DELAY-CAPACITY: delayed copies (channel, delay, strength) ≤ the FPGA table's entries."""
    available = spec["delays"]["off_chip"]["copies"]
    if len(plan.virtual) > available:
        yield DesignRuleViolation(
            "BSS2-DELAY-CAPACITY", ",".join(plan.layers), "delayed copies in the FPGA", len(plan.virtual), available,
            "use --delays gradient-only (one copy per distinct delay) or fewer inputs")


def rule_delay_labels(plan: DelayPlan, reserved_labels: int = 0) -> Iterator[DesignRuleViolation]:
    """BSS2-DELAY-LABELS: distinct copies (or bursts) on one input slot, plus the labels other layers
    use on that driver (``reserved_labels``), ≤ the labels the strategy leaves."""
    for layer, slots in plan.layers.items():
        columns = zip(*slots.keys)
        needed = reserved_labels + max((len({k for k in column if k is not None}) for column in columns), default=0)
        if needed > plan.labels_per_driver:
            yield DesignRuleViolation(
                "BSS2-DELAY-LABELS", layer, f"labels on one driver ({plan.strategy})", needed, plan.labels_per_driver,
                "use --delays multi-synapse or gradient-only (64 labels), or fewer neurons with distinct delays")


def rule_delay_rows(plan: DelayPlan, spec: BSS2Spec) -> Iterator[DesignRuleViolation]:
    """BSS2-DELAY-ROWS: input slots per neuron (taps × inputs, each an exc + inh row pair) fit a (merged) neuron."""
    available = spec["synapse"]["signed_inputs_per_circuit"] * spec["merging"]["max_circuits_per_neuron"]
    for layer, slots in plan.layers.items():
        needed = slots.weights.shape[1]
        if needed > available:
            yield DesignRuleViolation(
                "BSS2-DELAY-ROWS", layer, f"input slots per neuron ({plan.strategy}, {slots.taps_per_synapse} taps)",
                needed, available, "use --delays spike-strength or gradient-only (one slot per input)")


def check_delays(plan: DelayPlan, dt_s: float, spec: BSS2Spec,
                 reserved_labels: int = 0) -> list[DesignRuleViolation]:
    """All delay rules that need a plan (BSS2-DELAY-SOURCE comes first: without it no plan can be made)."""
    return [*rule_delay_range(plan, dt_s, spec), *rule_delay_capacity(plan, spec),
            *rule_delay_labels(plan, reserved_labels), *rule_delay_rows(plan, spec)]
