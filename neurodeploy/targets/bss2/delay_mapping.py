"""The mapper's delay steps: plan the strategy, adjust fan-in, quantise the input slots, route, and record.

Each function is a no-op (returns its input or nothing) for a model without delays, so the mapper
calls them unconditionally.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from ...errors import DesignRuleViolation, NeurodeployError
from ...modelfile import ModelFile
from .spec import BSS2Spec
from .delay_rules import check_delays, rule_delay_source
from .delays import STRATEGIES, DelayPlan, delay_report, expand_input_routes, plan_delays
from .lower import LoweredLayer, circuits_per_neuron
from .place import Placement
from .quantise import QuantisedLayer, quantise_layer
from .route import Routing, route

DEFAULT_STRATEGY = "gradient-only"


def _has_delays(model: ModelFile) -> bool:
    return any(p.max_delay_steps for p in model.graph.projections)


def plan_and_check_delays(model: ModelFile, layers: list[LoweredLayer], spec: BSS2Spec, strategy: Optional[str]
                          ) -> tuple[Optional[DelayPlan], list[LoweredLayer], list[DesignRuleViolation]]:
    """The plan, the layers with their on-chip fan-in (input slots), and the delay rules' violations."""
    if not _has_delays(model):
        if strategy is not None:
            raise NeurodeployError(f"--delays {strategy} was given, but the model has no delays",
                                   "leave out --delays, or train a recipe with a delays: layer")
        return None, layers, []
    strategy = strategy or DEFAULT_STRATEGY
    if strategy not in STRATEGIES:
        raise NeurodeployError(f"unknown delay strategy {strategy!r}", f"use one of {', '.join(STRATEGIES)}")
    graph = model.graph
    source_violations = list(rule_delay_source(graph))
    if source_violations:
        return None, layers, source_violations
    delayed = {p.post for p in graph.projections if p.max_delay_steps}
    # Other layers' sources share the drivers of the delayed slots: one label per merged circuit each.
    reserved = sum(layer.circuits_per_neuron for layer in layers if layer.name not in delayed)
    plan = plan_delays(model, strategy, spec["synapse"]["label_bits"], spec["delays"]["strength_bits"], reserved)
    per_circuit = spec["synapse"]["signed_inputs_per_circuit"]
    adjusted = []
    for layer in layers:
        slots = plan.layers.get(layer.name)
        if slots is not None:
            fan_in = slots.weights.shape[1]
            layer = replace(layer, fan_in=fan_in, circuits_per_neuron=circuits_per_neuron(fan_in, per_circuit),
                            weight_copies=1)  # a delayed slot is its own synapse
        adjusted.append(layer)
    return plan, adjusted, check_delays(plan, model.dt_s, spec, reserved)


def quantise_delayed(plan: Optional[DelayPlan], weight_max: int, clip_quantile: float, mode: str,
                     pinned: Optional[dict] = None) -> dict[str, QuantisedLayer]:
    """Delayed layers quantised slot by slot (a multi-synapse tap is its own 6-bit synapse); ``pinned``: layer →
    the fixed scales in-the-loop training used (its model keeps them)."""
    if plan is None:
        return {}
    return {layer: quantise_layer({plan.projections[layer]: slots.weights}, weight_max, clip_quantile, mode,
                                  (pinned or {}).get(layer))
            for layer, slots in plan.layers.items()}


def route_delayed(plan: Optional[DelayPlan], layers: list[LoweredLayer], placement: Placement, quantised: dict,
                  spec: BSS2Spec, input_name: str) -> tuple[Routing, list[DesignRuleViolation]]:
    """``route()``, with delayed layers' slots and the strategy's label space; input routes per FPGA copy."""
    if plan is None:
        return route(layers, placement, quantised, spec, input_name)
    routing, violations = route(layers, placement, quantised, spec, input_name,
                               slot_inputs=plan.slot_inputs(input_name, quantised),
                               labels_per_driver=plan.labels_per_driver)
    routing.input_routes = expand_input_routes(plan, routing.input_routes)
    return routing, violations


def delay_arrays(plan: Optional[DelayPlan], model: ModelFile, routing: Routing, report: dict) -> tuple[dict, dict]:
    """Deployment arrays and meta of the delays; adds ``delays`` (the strategy's cost) to ``report``."""
    if plan is None:
        return {}, {}
    channels = model.graph.input.size
    cost = delay_report(plan, routing.input_routes, routing.rows_used,
                        max(routing.labels_per_driver.values(), default=0), channels)
    report["delays"] = {plan.strategy: cost}
    report["max_events_per_spike"] = max(report["max_events_per_spike"], cost["events_per_spike"])
    arrays = {"delay_copies": plan.virtual.astype(np.int32),
              **{f"float_delay:{name}": model.delays[name].numpy() for name in model.delays}}
    meta = {"input_channels": int(len(plan.virtual)),
            "delays": {"strategy": plan.strategy, "channels": int(channels),
                       "address_bits": int(np.log2(plan.labels_per_driver)),
                       "strength_bits": int(plan.strength_bits),
                       "sigma_steps": {k: float(v) for k, v in model.delay_sigma_steps.items()},
                       "max_delay_steps": {p.name: p.max_delay_steps for p in model.graph.projections
                                           if p.max_delay_steps}}}
    return arrays, meta
