"""What a Xylo deployment holds beyond what every deployment holds: checked on load, before xylo-sim runs it.

Called through :meth:`neurodeploy.targets.base.Target.validate_deployment` after the common checks
(:mod:`neurodeploy.validation.deployment`); raises :class:`~neurodeploy.validation.rules.Invalid`.
Against ``targets/xylo.yaml``:

* the arrays present are exactly the mapper's: the SNN core's configuration (weights ``[inputs, hidden,
  2]``, ``[hidden, hidden, 2]``, ``[hidden, outputs]`` within the weight bits; decay shifts within
  ``0..dash_max``; thresholds within the threshold bits; biases within the state bits), the placement
  (``neuron_layer``, ``neuron_bank``, ``neuron_index``), the state scales and the quantised weights;
* sizes: as many input channels as the graph's inputs, hidden and output neurons within the chip's,
  one placement entry per logical neuron, each bank index used once and within its bank, a layer on
  one bank, the readout where the report says;
* state scales finite > 0; quantised weights within ``±(2^(bits-1) - 1)``, ``[post, pre]``;
* meta: its keys (no unknown one), the readout layer, the weight shifts (``in``, ``rec``, ``out``,
  each ``0..shift_max``), the weight-scale mode and clip quantile; no chip (Xylo has no calibration).
"""

from __future__ import annotations

import numpy as np

from ...deployment import Deployment
from ...graph import Graph
from ...validation.arguments import CLIP_QUANTILE, WEIGHT_SCALE
from ...validation.deployment import generic_keys
from ...validation.rules import Anything, Array, Fields, Invalid, Nullable, Number, Text
from ..base import Target
from .spec import XyloSpec

CONFIG = ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn", "threshold", "bias", "dash_mem_out",
          "dash_syn_out", "threshold_out", "bias_out")
PLACEMENT = ("neuron_layer", "neuron_bank", "neuron_index", "state_scale")


def validate_deployment(target: Target, deployment: Deployment) -> None:
    """Raise :class:`Invalid` naming the first Xylo array or meta key the chip could not take as it is."""
    spec = target.spec if isinstance(target.spec, XyloSpec) else XyloSpec.from_spec(target.spec)
    meta, arrays = deployment.meta, deployment.arrays
    graph = Graph.from_dict(meta["graph"])  # checked by the common part
    _check_meta(meta, graph, spec)
    required = [*CONFIG, *PLACEMENT, *(f"quantised_weight:{p.name}" for p in graph.projections)]
    for name in required:
        if name not in arrays:
            raise Invalid(f"array '{name}'", "is missing")
    for name in arrays:
        if name not in required and not name.startswith("float_weight:"):
            raise Invalid(f"array '{name}'", "is not part of a Xylo deployment")
    hidden, outputs = _check_config(arrays, graph, spec)
    _check_placement(arrays, meta, graph, hidden, outputs)
    w_max = spec.weight_max
    for proj in graph.projections:
        key = f"quantised_weight:{proj.name}"
        shape = (graph.population(proj.post).size, graph.population(proj.pre).size)
        Array("int", shape, lo=-w_max, hi=w_max).check(arrays[key], f"array '{key}'")


def _check_meta(meta: dict, graph: Graph, spec: XyloSpec) -> None:
    shift = Number(lo=0, hi=int(spec["weights"]["shift_max"]), integer=True)
    version = int(meta["version"])
    own = {"readout_layer": Text(), "weight_scale": WEIGHT_SCALE, "clip_quantile": CLIP_QUANTILE,
           "weight_shift": Fields(required={"in": shift, "rec": shift, "out": shift}),
           "trained_on": Nullable(Fields(strict=False)), "chip": Nullable(Text())}
    Fields(required={**{k: Anything() for k in generic_keys(version)}, **own}).check(meta, "meta")
    if meta["readout_layer"] != graph.readout.name:
        raise Invalid("meta.readout_layer", f"= {meta['readout_layer']!r} is not the graph's readout "
                      f"{graph.readout.name!r}")
    if meta["chip"] is not None:
        raise Invalid("meta.chip", f"= {meta['chip']!r}: a Xylo deployment is bound to no chip (nothing is calibrated)")


def _check_config(arrays: dict, graph: Graph, spec: XyloSpec) -> tuple[int, int]:
    """The SNN core's configuration; returns the hidden and output neurons it configures."""
    geometry = spec["geometry"]
    w_lo, w_hi = -(2 ** (spec["weights"]["bits"] - 1)), 2 ** (spec["weights"]["bits"] - 1) - 1
    state = 2 ** (spec["state"]["bits"] - 1)
    threshold_max = 2 ** (spec["state"]["threshold_bits"] - 1) - 1
    dash = spec.dash_max
    inputs = graph.input.size
    Array("int", (inputs, None, 2), lo=w_lo, hi=w_hi).check(arrays["weights_in"], "array 'weights_in'")
    hidden = arrays["weights_in"].shape[1]
    Array("int", (None, None), lo=w_lo, hi=w_hi).check(arrays["weights_out"], "array 'weights_out'")
    outputs = arrays["weights_out"].shape[1]
    for name, size, limit in (("inputs", inputs, geometry["input_channels"]),
                              ("hidden neurons", hidden, geometry["hidden_neurons"]),
                              ("output neurons", outputs, geometry["output_neurons"])):
        if size > limit:
            raise Invalid("configuration", f"has {size} {name}, Xylo has {limit}")
    checks = {
        "weights_rec": Array("int", (hidden, hidden, 2), lo=w_lo, hi=w_hi),
        "weights_out": Array("int", (hidden, outputs), lo=w_lo, hi=w_hi),
        "dash_mem": Array("int", (hidden,), lo=0, hi=dash), "dash_syn": Array("int", (hidden, 2), lo=0, hi=dash),
        "threshold": Array("int", (hidden,), lo=0, hi=threshold_max),
        "bias": Array("int", (hidden,), lo=-state, hi=state - 1),
        "dash_mem_out": Array("int", (outputs,), lo=0, hi=dash),
        "dash_syn_out": Array("int", (outputs,), lo=0, hi=dash),
        "threshold_out": Array("int", (outputs,), lo=0, hi=threshold_max),
        "bias_out": Array("int", (outputs,), lo=-state, hi=state - 1),
    }
    for name, rule in checks.items():
        rule.check(arrays[name], f"array '{name}'")
    return hidden, outputs


def _check_placement(arrays: dict, meta: dict, graph: Graph, hidden: int, outputs: int) -> None:
    sizes = [graph.population(name).size for name in meta["layers"]]
    neurons = sum(sizes)
    Array("int", (neurons,)).check(arrays["neuron_layer"], "array 'neuron_layer'")
    if not np.array_equal(arrays["neuron_layer"], np.repeat(np.arange(len(sizes)), sizes)):
        raise Invalid("array 'neuron_layer'", f"is not the layers' neurons in order (sizes {sizes})")
    bank = arrays["neuron_bank"]
    Array("int", (neurons,), lo=0, hi=1).check(bank, "array 'neuron_bank'")
    index = arrays["neuron_index"]
    Array("int", (neurons,), lo=0).check(index, "array 'neuron_index'")
    Array("float", (neurons,), lo=0, lo_open=True, dtype="float64").check(arrays["state_scale"], "array 'state_scale'")
    starts = np.cumsum([0, *sizes])
    for number, name in enumerate(meta["layers"]):
        banks = np.unique(bank[starts[number]:starts[number + 1]])
        if len(banks) > 1:
            raise Invalid("array 'neuron_bank'", f"splits layer '{name}' over the hidden and output neurons")
        if graph.population(name).kind == "lif" and banks[0] != 0:
            raise Invalid("array 'neuron_bank'", f"puts spiking layer '{name}' on output neurons, which hear "
                          "hidden neurons only")
    for value, name, size in ((0, "hidden", hidden), (1, "output", outputs)):
        mine = index[bank == value]
        if len(mine) and mine.max() >= size:
            raise Invalid("array 'neuron_index'", f"places a neuron at {name} neuron {int(mine.max())}, the "
                          f"configuration has {size}")
        if len(np.unique(mine)) != len(mine):
            raise Invalid("array 'neuron_index'", f"places two neurons on one {name} neuron")
        if len(mine) != size:
            raise Invalid("array 'neuron_index'", f"places {len(mine)} neurons on the {size} {name} neurons the "
                          "configuration has")
