"""Map a model onto Xylo: lower, check, quantise, build the chip configuration, and report.

The deployment holds the configuration of the SNN core as named integer arrays (the fields of
:class:`~.emulator.XyloConfig`, weight shifts in ``meta``), where each logical neuron sits
(``neuron_bank``: 0 hidden, 1 output; ``neuron_index`` in its bank), each neuron's state scale
(``state_scale``, LSB per model unit) to read membranes back in model units, and the float and
stored weights per projection.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ...deployment import Deployment
from ...errors import DesignRuleViolation
from ...modelfile import ModelFile
from ..base import training_meta
from ...models.network import SpikingNetwork
from .emulator import XyloConfig, evolve
from .lower import XyloLayer, lower
from .quantise import XyloQuantised, quantise
from .rules import check_all
from .spec import XyloSpec

BANKS = ("hidden", "output")


def lower_and_check(model: ModelFile, spec: XyloSpec) -> tuple[list[XyloLayer], list[DesignRuleViolation], list[str]]:
    """The lowered layers and every rule's findings (nothing is written)."""
    layers = lower(model.graph, model.dt_s, spec)
    violations, warnings = check_all(layers, model, spec)
    return layers, violations, warnings


def _readout_peak(model: ModelFile, spikes: Optional[torch.Tensor]) -> Optional[float]:
    """99th percentile over training samples of the float readout's maximum above rest (model units)."""
    if spikes is None or spikes.shape[1] == 0:
        return None
    net = SpikingNetwork(model.graph, model.dt_s, weights=model.weights)
    with torch.no_grad():
        rise = net(spikes).readout_v.amax(0) - model.graph.readout.parameters.v_leak
    return float(torch.quantile(rise.flatten(), 0.99))


def build_config(layers: list[XyloLayer], q: XyloQuantised, n_inputs: int) -> XyloConfig:
    """The integer configuration of the SNN core for the placed, quantised layers."""
    size = {bank: max([layer.first + layer.size for layer in layers if layer.bank == bank], default=0)
            for bank in BANKS}
    n_h, n_o = size["hidden"], size["output"]
    w_in, w_rec, w_out = (np.zeros((n_inputs, n_h, 2), np.int8), np.zeros((n_h, n_h, 2), np.int8),
                          np.zeros((n_h, n_o), np.int8))
    per_bank = {bank: {"dash_mem": np.zeros(size[bank], np.int64), "dash_syn": np.zeros(size[bank], np.int64),
                       "threshold": np.zeros(size[bank], np.int64)} for bank in BANKS}
    by_name = {layer.name: layer for layer in layers}
    for post in layers:
        cols = slice(post.first, post.first + post.size)
        arrays = per_bank[post.bank]
        arrays["dash_mem"][cols], arrays["dash_syn"][cols] = post.dash_mem, post.dash_syn
        arrays["threshold"][cols] = q.threshold[post.name]
        for pre_name in post.inputs:
            stored = q.weights[f"{pre_name}->{post.name}"].T.astype(np.int8)  # [pre, post]
            pre = by_name.get(pre_name)
            rows = slice(0, n_inputs) if pre is None else slice(pre.first, pre.first + pre.size)
            if pre is None:
                w_in[rows, cols, 0] = stored
            elif post.bank == "output":
                w_out[rows, cols] = stored
            else:
                w_rec[rows, cols, 0] = stored
    hidden, output = per_bank["hidden"], per_bank["output"]
    return XyloConfig(
        weights_in=w_in, weights_rec=w_rec, weights_out=w_out, dash_mem=hidden["dash_mem"],
        dash_syn=np.stack([hidden["dash_syn"], hidden["dash_syn"]], axis=1), threshold=hidden["threshold"],
        bias=np.zeros(n_h, np.int64), dash_mem_out=output["dash_mem"], dash_syn_out=output["dash_syn"],
        threshold_out=output["threshold"], bias_out=np.zeros(n_o, np.int64),
        weight_shift_in=q.shift["in"], weight_shift_rec=q.shift["rec"], weight_shift_out=q.shift["out"])


CONFIG_ARRAYS = tuple(f for f in XyloConfig._fields if not f.startswith("weight_shift"))


def config_of(deployment: Deployment) -> XyloConfig:
    """The configuration a Xylo deployment holds."""
    shifts = deployment.meta["weight_shift"]
    return XyloConfig(**{f: deployment[f] for f in CONFIG_ARRAYS}, weight_shift_in=int(shifts["in"]),
                      weight_shift_rec=int(shifts["rec"]), weight_shift_out=int(shifts["out"]))


def input_counts(spikes: torch.Tensor) -> np.ndarray:
    """Model input spikes ``[T, B, C]`` → the chip's input counts, one step later.

    The model delivers a spike of step k to its targets at step k+1 (one step of transmission
    latency everywhere); the chip delivers input events in the step they arrive, so they are fed
    one step later. An event of the last step reaches nothing, in the model as on the chip.
    """
    counts = np.zeros(tuple(spikes.shape), np.int64)
    counts[1:] = spikes[:-1].round().numpy().astype(np.int64)
    return counts


def _rates(model: ModelFile, layers: list[XyloLayer], config: XyloConfig, spikes: Optional[torch.Tensor]) -> dict:
    """Firing rates (Hz, model time) of each spiking layer in software and on the emulated chip."""
    if spikes is None or spikes.shape[1] == 0:
        return {}
    net = SpikingNetwork(model.graph, model.dt_s, weights=model.weights)
    with torch.no_grad():
        float_spikes = net(spikes).spikes
    chip = evolve(config, input_counts(spikes)).spikes.astype(np.float64)
    duration = spikes.shape[0] * model.dt_s
    return {layer.name: (float(float_spikes[layer.name].sum(0).mean()) / duration,
                         float(chip[..., layer.first:layer.first + layer.size].sum(0).mean()) / duration)
            for layer in layers if layer.kind == "lif"}


def map_to_xylo(model: ModelFile, spec: XyloSpec, *, clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
                probe_inputs: Optional[torch.Tensor] = None
                ) -> tuple[Optional[Deployment], dict, list[DesignRuleViolation]]:
    """Return ``(deployment or None, report, violations)``; violations are every rule broken.

    ``probe_inputs`` (encoded training samples ``[T, B, C]``): the readout's range is measured on
    them, and the report compares firing rates in software and on the emulated chip.
    """
    layers, violations, warnings = lower_and_check(model, spec)
    if violations:
        return None, {"warnings": warnings}, violations
    q = quantise(layers, model.weights, spec, clip_quantile=clip_quantile, mode=weight_scale,
                 readout_peak=_readout_peak(model, probe_inputs))
    config = build_config(layers, q, model.graph.input.size)
    rates = _rates(model, layers, config, probe_inputs)
    bank = np.concatenate([np.full(layer.size, BANKS.index(layer.bank)) for layer in layers])
    arrays = {
        **{f: np.asarray(getattr(config, f)) for f in CONFIG_ARRAYS},
        "neuron_layer": np.concatenate([np.full(layer.size, i) for i, layer in enumerate(layers)]).astype(np.int32),
        "neuron_bank": bank.astype(np.int32),
        "neuron_index": np.concatenate([np.arange(layer.first, layer.first + layer.size)
                                        for layer in layers]).astype(np.int32),
        "state_scale": np.concatenate([q.scale[layer.name] for layer in layers]),
        **{f"float_weight:{k}": v.numpy() for k, v in model.weights.items()},
        **{f"quantised_weight:{k}": v.astype(np.int16) for k, v in q.weights.items()},
    }
    report = _report(layers, q, rates, config, spec, warnings)
    meta = {
        "target": spec.name, "graph": model.graph.to_dict(), "dt_s": model.dt_s, "encoding": model.encoding,
        "dataset": model.dataset, "layers": [layer.name for layer in layers],
        "layer_kinds": [layer.kind for layer in layers], "readout_layer": layers[-1].name,
        "readout_neurons": [int(sum(layer.size for layer in layers[:-1])), layers[-1].size],
        "training": training_meta(model),
        "weight_scale": weight_scale, "clip_quantile": clip_quantile, "weight_shift": q.shift,
        "chip": None, "report": report, "trained_on": model.mapping.get("trained_on"),
    }
    return Deployment(meta=meta, arrays=arrays), report, []


def _report(layers: list[XyloLayer], q: XyloQuantised, rates: dict, config: XyloConfig, spec: XyloSpec,
            warnings: list[str]) -> dict:
    geometry = spec["geometry"]
    rows = []
    for layer in layers:
        before, after = rates.get(layer.name, (None, None))
        rows.append({
            "name": layer.name, "kind": layer.kind, "neurons": layer.size, "fan_in": sum(
                q.weights[f"{pre}->{layer.name}"].shape[1] for pre in layer.inputs),
            "bank": layer.bank, "first": layer.first, "dash_syn": layer.dash_syn, "dash_mem": layer.dash_mem,
            "tau_syn_realised_s": layer.tau_syn_realised_s, "tau_mem_realised_s": layer.tau_mem_realised_s,
            "scale": float(np.median(q.scale[layer.name])), "threshold_median": int(np.median(q.threshold[layer.name])),
            "clipped_fraction": q.clipped_fraction[layer.name], "rate_float_hz": before, "rate_quantised_hz": after,
            "detail": f"{layer.bank} {layer.first}..{layer.first + layer.size - 1}, dash syn/mem "
                      f"{layer.dash_syn}/{layer.dash_mem}, threshold {int(np.median(q.threshold[layer.name]))}"})
    return {
        "target": spec.name,
        "inputs_used": int(config.weights_in.shape[0]), "inputs_available": geometry["input_channels"],
        "hidden_used": int(config.threshold.shape[0]), "hidden_available": geometry["hidden_neurons"],
        "outputs_used": int(config.threshold_out.shape[0]), "outputs_available": geometry["output_neurons"],
        "synapses_used": int(np.count_nonzero(config.weights_in) + np.count_nonzero(config.weights_rec)
                             + np.count_nonzero(config.weights_out)),
        "weight_shift_in": q.shift["in"], "weight_shift_rec": q.shift["rec"], "weight_shift_out": q.shift["out"],
        "layers": rows, "warnings": warnings,
    }
