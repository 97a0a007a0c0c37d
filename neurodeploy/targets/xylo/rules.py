"""Xylo design rules: small named functions with ids, run on the lowered layers; all are reported.

A rule yields :class:`~neurodeploy.errors.DesignRuleViolation` (the model cannot run: needed vs
available, and a fix) or :class:`Warning` (it runs, but not exactly as trained). The numbers come
from ``targets/xylo.yaml``.
"""

from __future__ import annotations

from typing import NamedTuple, Union
from collections.abc import Callable, Iterable

from ...errors import DesignRuleViolation
from ...modelfile import ModelFile
from .lower import XyloLayer, tau_bounds_s
from .spec import XyloSpec


class Warning(NamedTuple):  # noqa: A001 - a rule's warning, not Python's
    rule_id: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.text}"


Finding = Union[DesignRuleViolation, Warning]
Rule = Callable[[list[XyloLayer], ModelFile, XyloSpec], Iterable[Finding]]


def rule_inputs(layers, model, spec):
    """XYLO-INPUTS: input channels ≤ 16."""
    available, needed = spec["geometry"]["input_channels"], model.graph.input.size
    if needed > available:
        yield DesignRuleViolation("XYLO-INPUTS", model.graph.input.name, "input channels", needed, available,
                                  f"reduce the input to {available} channels (e.g. pool or select features)")


def rule_hidden(layers, model, spec):
    """XYLO-HIDDEN: all neurons placed on hidden neurons ≤ 1000 (named at the layer where they run out)."""
    available = spec["geometry"]["hidden_neurons"]
    hidden = [layer for layer in layers if layer.bank == "hidden"]
    needed = sum(layer.size for layer in hidden)
    for layer in hidden:
        if layer.first + layer.size > available:
            yield DesignRuleViolation("XYLO-HIDDEN", layer.name, "hidden neurons (whole network)", needed, available,
                                      f"remove {needed - available} neurons, e.g. shrink '{layer.name}'")
            return


def rule_outputs(layers, model, spec):
    """XYLO-OUTPUTS: a readout wider than the output neurons goes on hidden neurons (a warning)."""
    readout = layers[-1]
    if readout.bank == "hidden":
        yield Warning("XYLO-OUTPUTS", f"readout '{readout.name}' has {readout.size} neurons, the chip "
                      f"{spec['geometry']['output_neurons']} output neurons: it is placed on hidden neurons "
                      f"{readout.first}..{readout.first + readout.size - 1} and read by state recording "
                      "(on a real Xylo HDK: recording mode, slower than real time)")


def rule_output_sources(layers, model, spec):
    """XYLO-OUTPUT-SOURCE: output neurons hear hidden neurons only, never the input channels."""
    by_name = {layer.name: layer for layer in layers}
    for layer in layers:
        if layer.bank == "output" and any(pre not in by_name for pre in layer.inputs):
            yield DesignRuleViolation("XYLO-OUTPUT-SOURCE", layer.name, "projections from the input channels", 1, 0,
                                      f"route the input to '{layer.name}' through a hidden layer")


def _used(model, layer, what: str) -> bool:
    """Whether the population has the time constant ``what`` (NIR LIF/LI have no synaptic one, IF/I none)."""
    unused = {"leaky": ("tau_syn_s",), "integrator": ("tau_syn_s", "tau_mem_s")}
    return what not in unused.get(model.graph.population(layer.name).parameters.model, ())


def rule_dashes(layers, model, spec):
    """XYLO-DASH: each time constant needs a decay shift in 1..15 (synapse) or 0..15 (membrane)."""
    dt, d_max = model.dt_s, spec.dash_max
    for layer in layers:
        for what, dash, tau, low in (("tau_syn_s", layer.dash_syn, layer.tau_syn_s, 1),
                                     ("tau_mem_s", layer.dash_mem, layer.tau_mem_s, 0)):
            if _used(model, layer, what) and not low <= dash <= d_max:
                shortest, longest = tau_bounds_s(low, d_max, dt)
                yield DesignRuleViolation(
                    "XYLO-DASH", layer.name, f"decay shift for {what} = {tau:g} s", dash, f"{low}..{d_max}",
                    f"choose {what} between {shortest:.3g} s and {longest:.3g} s (dt = {dt:g} s)")


def rule_tau_fidelity(layers, model, spec):
    """XYLO-TAU: a time constant the bit-shift decay realises only approximately (a warning)."""
    tolerance = spec["quantisation"]["tau_warn_relative_error"]
    for layer in layers:
        for what, tau, real in (("tau_syn_s", layer.tau_syn_s, layer.tau_syn_realised_s),
                                ("tau_mem_s", layer.tau_mem_s, layer.tau_mem_realised_s)):
            if _used(model, layer, what) and real > 0 and abs(real - tau) > tolerance * tau:
                yield Warning("XYLO-TAU", f"layer '{layer.name}' {what} {tau:g} s is realised as {real:.4g} s; "
                              f"train with {what} = {real:.4g} s for an exact match")


def rule_refractory(layers, model, spec):
    """XYLO-REFRAC: the chip has no refractory period (a warning)."""
    for layer in layers:
        if layer.kind == "lif" and layer.t_ref_s > 0:
            yield Warning("XYLO-REFRAC", f"layer '{layer.name}' has t_ref_s {layer.t_ref_s:g} s; Xylo has no "
                          "refractory period (train with t_ref_s 0 for an exact match)")


def rule_reset(layers, model, spec):
    """XYLO-RESET: the chip subtracts the threshold at a spike; the model resets to v_reset (a warning).

    A population that itself subtracts ``v_th - v_reset`` with ``v_reset = v_leak`` (imported with
    ``reset="subtract"``) resets exactly as the chip does."""
    for layer in layers:
        n = model.graph.population(layer.name).parameters
        if layer.kind == "lif" and not (n.reset == "subtract" and n.value("v_reset") == n.value("v_leak")):
            yield Warning("XYLO-RESET", f"layer '{layer.name}' resets to v_reset; Xylo subtracts the threshold "
                          "(the overshoot stays, and a neuron may spike up to 31 times in one step)")


def rule_delays(layers, model, spec):
    """XYLO-DELAYS: Xylo has no synaptic delays."""
    for name in model.delays:
        yield DesignRuleViolation("XYLO-DELAYS", name.split("->")[1], f"learned delays on {name}", "delays", "none",
                                  "train without delays for Xylo, or map to a target that realises them (bss2)")


def rule_imported(layers, model, spec):
    """XYLO-NEURON-MODEL, XYLO-BIAS, XYLO-PER-NEURON: what imported (NIR) graphs may use and the mapper does
    not realise (yet): neurons without synaptic current or leak, constant inputs, per-neuron parameters."""
    for layer in layers:
        n = model.graph.population(layer.name).parameters
        if n.model != "cuba":
            what = "synaptic current (NIR LIF/LI)" if n.model == "leaky" else "leak (NIR IF/I)"
            yield DesignRuleViolation("XYLO-NEURON-MODEL", layer.name, f"neurons without {what}", "1",
                                      "0 (every neuron has a decaying synaptic current and membrane)",
                                      "use CubaLIF (and CubaLI) nodes")
        if n.i_bias != 0 or "i_bias" in dict(n.per_neuron):
            yield DesignRuleViolation("XYLO-BIAS", layer.name, "constant input current (a NIR Affine bias)", "1",
                                      "0 (the chip's biases are not used by the mapper yet)",
                                      "export the network without biases (bias=False)")
        varied = [name for name, _ in n.per_neuron if name != "i_bias"]  # a bias is XYLO-BIAS already
        if varied:
            yield DesignRuleViolation("XYLO-PER-NEURON", layer.name, f"values of {', '.join(varied)} (one per neuron)",
                                      f"{layer.size} different", "1 per layer (not supported yet)",
                                      "give the layer's neurons equal parameters")


def rule_discretisation(layers, model, spec):
    """XYLO-DISCRETISATION: how the chip's steps differ from an imported model's forward-Euler ones (a warning)."""
    if model.graph.discretisation == "nir-euler":
        yield Warning("XYLO-DISCRETISATION", "the model simulates its NIR graph with forward Euler; the chip decays "
                      "by bit shifts (each time constant's realised value: XYLO-TAU), input events act in the same "
                      "step as in the graph, but a hidden neuron's spikes reach the next layer (or itself) one step "
                      "later, where the graph has no delay")


RULES: tuple[Rule, ...] = (rule_inputs, rule_hidden, rule_outputs, rule_output_sources, rule_dashes,
                           rule_tau_fidelity, rule_refractory, rule_reset, rule_delays, rule_imported,
                           rule_discretisation)


def check_all(layers: list[XyloLayer], model: ModelFile, spec: XyloSpec) -> tuple[list[DesignRuleViolation], list[str]]:
    """Run every rule; return all violations and all warnings (as text)."""
    findings = [finding for rule in RULES for finding in rule(layers, model, spec)]
    return ([f for f in findings if isinstance(f, DesignRuleViolation)],
            [str(f) for f in findings if isinstance(f, Warning)])
