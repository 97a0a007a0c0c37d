"""Checks that several file kinds share: the stored graph, the input encoding, the dataset.

A model file and a deployment both carry the graph (:meth:`neurodeploy.graph.Graph.to_dict`), the
encoding, the dataset and the time step; a recipe carries an encoding and a time step. These
functions raise :class:`~.rules.Invalid` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.surrogate import KINDS as SURROGATE_KINDS, Surrogate
from ..data.datasets import N_CLASSES, N_FEATURES
from ..data.encoding import n_channels
from ..errors import GraphError
from ..graph import DISCRETISATIONS, POPULATION_KINDS, Graph
from ..neuron import MODELS, PER_NEURON_FIELDS, RECIPE_FIELDS, RESETS
from .arguments import EPOCHS, SEED
from .rules import Anything, Fields, Flag, Invalid, ListOf, MapOf, Nullable, Number, OneOf, Rule, Text, join, show

NO_DATASET = "none"  # an imported model without a dataset (neurodeploy.interchange.NO_DATASET)
MAX_STEPS = 100_000  # time steps of one sample (duration / dt): 40 for Yin-Yang; more exhausts memory
MAX_NEURONS = 2**31 - 1  # a population's size (deployments index neurons with int32)
MAX_BATCH = 1_000_000  # training.batch_size
MAX_WEIGHT_LEVELS = 2**16  # training.weight_levels (the chips have 63 and 127)

NEURON = Fields(optional={
    **{name: Number() for name in RECIPE_FIELDS},
    "model": OneOf(MODELS), "i_bias": Number(), "reset": OneOf(RESETS),
    "per_neuron": MapOf(ListOf(Number(), min_length=1), keys=PER_NEURON_FIELDS),
})
POPULATION = Fields(required={"name": Text(), "size": Number(lo=1, hi=MAX_NEURONS, integer=True),
                              "kind": OneOf(POPULATION_KINDS)},
                    optional={"neuron": Nullable(NEURON)})
SIDE = Number(lo=1, hi=MAX_NEURONS, integer=True)
GEOMETRY = Fields(required={"in_shape": ListOf(SIDE, length=3)},
                  optional={"pool": SIDE, "channels": Number(lo=0, hi=MAX_NEURONS, integer=True), "kernel": SIDE,
                            "stride": SIDE, "padding": Number(lo=0, hi=MAX_NEURONS, integer=True)})
PROJECTION = Fields(required={"pre": Text(), "post": Text()},
                    optional={"max_delay_steps": Number(lo=0, hi=MAX_STEPS, integer=True), "recurrent": Flag(),
                              "geometry": GEOMETRY})
GRAPH = Fields(required={"populations": ListOf(POPULATION, min_length=2), "projections": ListOf(PROJECTION)},
               optional={"discretisation": OneOf(DISCRETISATIONS)})

ENCODINGS = {
    "time_to_spike": Fields(required={"kind": Text(), "t_early_s": Number(lo=0), "t_late_s": Number(lo=0),
                                      "duration_s": Number(lo=0, lo_open=True)},
                            optional={"t_bias_s": Nullable(Number(lo=0))}),
    "latency": Fields(required={"kind": Text(), "t_min_s": Number(lo=0), "t_max_s": Number(lo=0),
                                "threshold": Number(), "duration_s": Number(lo=0, lo_open=True)}),
    "log_latency": Fields(required={"kind": Text(), "tau_s": Number(lo=0, lo_open=True),
                                    "threshold": Number(lo=0, hi=1, hi_open=True),
                                    "duration_s": Number(lo=0, lo_open=True)}),
    "poisson": Fields(required={"kind": Text(), "max_rate_hz": Number(lo=0, lo_open=True),
                                "dt_s": Number(lo=0, lo_open=True), "duration_s": Number(lo=0, lo_open=True)},
                      optional={"seed": Number(lo=0, integer=True)}),
}


YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+\Z")


def yaml_numbers(tree: Any) -> Any:
    """``tree`` with texts that YAML 1.2 reads as numbers turned into them: PyYAML follows YAML 1.1, which
    reads ``10e-3`` (no dot) as text. Hand-written files (recipes, target specs) mean the number."""
    if isinstance(tree, str) and YAML12_FLOAT.match(tree):
        return float(tree)
    if isinstance(tree, Mapping):
        return {key: yaml_numbers(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [yaml_numbers(value) for value in tree]
    return tree


def check_graph(data: Any, name: str = "graph") -> Graph:
    """The stored graph's layout, then the graph's own consistency (:meth:`Graph.check`)."""
    GRAPH.check(data, name)
    try:
        return Graph.from_dict(data)
    except GraphError as exc:
        raise Invalid(name, f"is inconsistent: {exc.message}", exc.fix) from None


def check_encoding(encoding: Any, dt_s: float, name: str = "encoding") -> None:
    """An encoding block: a known kind, its keys and no other, finite non-negative times, and a duration of
    1..MAX_STEPS steps of ``dt_s``."""
    if not isinstance(encoding, Mapping):
        raise Invalid(name, "must be a mapping", "give the encoding block of a recipe")
    kind = encoding.get("kind")
    if not isinstance(kind, str) or kind not in ENCODINGS:  # a list or mapping there is unhashable
        raise Invalid(name, f"has unknown encoding kind {show(kind)}", f"use one of {sorted(ENCODINGS)}")
    ENCODINGS[kind].check(encoding, name)
    steps = encoding["duration_s"] / dt_s
    if not 0.5 <= steps < MAX_STEPS + 0.5:  # round(steps) in 1..MAX_STEPS; steps may be inf
        raise Invalid(join(name, "duration_s"), f"= {encoding['duration_s']!r} is {steps:.3g} steps of dt_s "
                      f"{dt_s!r}, it must be 1..{MAX_STEPS} steps", "lengthen duration_s, or change dt_s")


def check_dataset(dataset: Any, encoding: Any, dt_s: float, graph: Graph, allow_none: bool = True) -> None:
    """A known dataset (or ``none``: no dataset, with an empty or valid encoding) whose features, after the
    encoding, are the graph's input channels and whose classes are its readout's neurons."""
    known = tuple(N_FEATURES) + ((NO_DATASET,) if allow_none else ())
    OneOf(known).check(dataset, "dataset")
    if dataset == NO_DATASET and encoding == {}:
        return
    check_encoding(encoding, dt_s)
    if dataset == NO_DATASET:
        return
    channels = n_channels(encoding, N_FEATURES[dataset])
    if graph.input.size != channels:
        raise Invalid("graph", f"has {graph.input.size} input channels, dataset '{dataset}' with its encoding gives "
                      f"{channels}", "use the dataset and encoding the model was made for")
    if graph.readout.kind == "li" and graph.readout.size != N_CLASSES[dataset]:
        raise Invalid("graph", f"has a readout of {graph.readout.size} neurons, dataset '{dataset}' has "
                      f"{N_CLASSES[dataset]} classes", "use the dataset the model was made for")


def check_time_step(dt_s: Any, name: str = "dt_s") -> float:
    """The model's time step: a finite number of seconds > 0."""
    Number(lo=0, lo_open=True).check(dt_s, name)
    return float(dt_s)


LOSSES = ("max_over_time", "mean_over_time")
METHODS = ("bptt", "asf")  # training.method: surrogate-gradient BPTT, Accumulated Spiking Flow (training/asf.py)
ASF_RATIOS = ("gated", "shared")  # training.asf_ratio: the ratio's domain in ASF's backward (training/asf.py)
SURROGATE_PARAMETER = Number(lo=1e-6, hi=1e6)  # a recipe's: no peak or width over- or underflows in float32


@dataclass(frozen=True)
class SurrogateRule(Rule):
    """``{kind: K, <K's parameters>}`` (:mod:`neurodeploy.core.surrogate`): a registered kind, only its
    parameters, each a number in [1e-6, 1e6] (``stored``: any finite number > 0, as model files record it)."""

    stored: bool = False

    def describe(self) -> str:
        return "a mapping {kind: " + " | ".join(SURROGATE_KINDS) + ", <its parameters>}"

    def check(self, value: Any, name: str) -> Any:
        kinds = ", ".join(SURROGATE_KINDS)
        if not isinstance(value, Mapping):
            raise Invalid(name, f"= {show(value)} must be {self.describe()}", f"e.g. {name}: {{kind: arctan}}")
        if "kind" not in value:
            raise Invalid(join(name, "kind"), "is missing", f"add {join(name, 'kind')}: one of {kinds}")
        kind = OneOf(tuple(SURROGATE_KINDS)).check(value["kind"], join(name, "kind"))
        number = Number(lo=0, lo_open=True) if self.stored else SURROGATE_PARAMETER
        Fields(required={"kind": Anything()}, optional={p: number for p in SURROGATE_KINDS[kind].params}).check(
            value, name)
        try:
            Surrogate.from_dict(value)
        except ValueError as exc:
            raise Invalid(name, f"is unusable: {exc}", f"change the parameters of {name}") from None
        return value



def training_rules(stored: bool) -> dict[str, Rule]:
    """The rules of a recipe's ``training`` settings. ``stored``: as a model file records them, which may come
    from a version that accepted any integer epochs and any seed torch takes; a recipe has the documented
    ranges (:mod:`.arguments`)."""
    positive = Number(lo=0, lo_open=True)
    return {
        "epochs": Number(lo=1, integer=True) if stored else EPOCHS,
        "batch_size": Number(lo=1, hi=MAX_BATCH, integer=True), "learning_rate": positive,
        "lr_final_fraction": Number(lo=0, hi=1, lo_open=True),
        "seed": Number(lo=-(2**63), hi=2**64 - 1, integer=True) if stored else SEED,
        "surrogate_steepness": positive, "surrogate": SurrogateRule(stored=stored),
        "detach_reset": Flag(), "loss": OneOf(LOSSES), "readout_scale": positive,
        "rate_target": Number(lo=0), "rate_weight": Number(lo=0),
        "activity_l1": Number(lo=0), "activity_upper_weight": Number(lo=0), "activity_upper_spikes": Number(lo=0),
        "quantisation_aware_epochs": Number(lo=0, integer=True),
        "weight_levels": Number(lo=1, hi=MAX_WEIGHT_LEVELS, integer=True), "select_on_validation": Flag(),
        "weight_decay": Number(lo=0), "weight_noise": Number(lo=0, hi=1, hi_open=True), "method": OneOf(METHODS),
        "asf_ratio": OneOf(ASF_RATIOS),
    }
