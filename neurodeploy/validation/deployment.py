"""What every deployment holds, whatever its target: the common ``meta`` and the float reference arrays.

:func:`check_common` runs on a loaded deployment (``meta`` after its JSON, the named arrays) before
anything uses it. The target's own arrays and meta keys are its target's to check
(:meth:`neurodeploy.targets.base.Target.validate_deployment`; :mod:`.loading` runs both). Checked here:

* meta keys of the file's version (``chip`` from version 2, ``checksum`` from version 3) with their
  types: ``target``, ``software_version``, ``chip`` (null or a text);
* ``graph`` (layout and consistency), ``dt_s`` finite > 0, ``dataset`` and ``encoding`` as in a model file;
* ``layers``/``layer_kinds``: the graph's non-input populations, each once, with their kinds;
* ``readout_neurons``: ``[first, count]``, the readout layer's logical ids;
* ``training``: the three settings a backend decodes with, and (written since the surrogate registry) the
  model's ``surrogate``; ``report``: a mapping with its ``layers``;
* ``float_weight:P``: one finite float32 ``[post, pre]`` array per projection of the graph and no other;
  ``float_delay:P`` one per delayed projection, within its range; ``delays.sigma_steps`` finite >= 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..graph import Graph
from .checksum import FIELD, is_digest
from .common import LOSSES, SurrogateRule, check_dataset, check_graph, check_time_step
from .rules import Anything, Array, Fields, Flag, Invalid, ListOf, MapOf, Nullable, Number, OneOf, Text

GENERIC_KEYS = ("format", "version", "software_version", "target", "graph", "dt_s", "encoding", "dataset", "layers",
                "layer_kinds", "readout_neurons", "training", "report")
TRAINING = Fields(required={"surrogate_steepness": Nullable(Number(lo=0, lo_open=True)),
                            "detach_reset": Nullable(Flag()), "loss": Nullable(OneOf(LOSSES))},
                  optional={"surrogate": SurrogateRule(stored=True)})  # deployments since the surrogate registry
REPORT = Fields(required={"layers": ListOf(Fields(required={"name": Text()}, strict=False))},
                optional={"warnings": ListOf(Text(empty=True))}, strict=False)
WEIGHT, DELAY = "float_weight:", "float_delay:"


def generic_keys(version: int) -> tuple[str, ...]:
    """The meta keys every deployment of ``version`` has, whatever its target."""
    return GENERIC_KEYS + (("chip",) if version >= 2 else ()) + ((FIELD,) if version >= 3 else ())


def check_common(meta: Mapping[str, Any], arrays: Mapping[str, Any]) -> Graph:
    """Raise :class:`Invalid` naming the first common field a deployment must not hold; returns its graph."""
    version = meta["version"]
    Fields(required={k: Anything() for k in generic_keys(version)}, strict=False).check(meta, "meta")
    for key, rule in (("software_version", Text()), ("target", Text()), ("chip", Nullable(Text()))):
        if key in meta:
            rule.check(meta[key], f"meta.{key}")
    if FIELD in meta and not is_digest(meta[FIELD]):
        raise Invalid(f"meta.{FIELD}", "is not a SHA-256 digest (64 hexadecimal digits)")
    graph = check_graph(meta["graph"], "meta.graph")
    dt_s = check_time_step(meta["dt_s"], "meta.dt_s")
    try:
        check_dataset(meta["dataset"], meta["encoding"], dt_s, graph)
    except Invalid as invalid:
        raise invalid.within("meta") from None
    _check_layers(meta, graph)
    TRAINING.check(meta["training"], "meta.training")
    REPORT.check(meta["report"], "meta.report")
    _check_float_arrays(meta, arrays, graph)
    return graph


def _check_layers(meta: Mapping[str, Any], graph: Graph) -> None:
    populations = [p.name for p in graph.populations[1:]]
    ListOf(Text(), length=len(populations)).check(meta["layers"], "meta.layers")
    if sorted(meta["layers"]) != sorted(populations):
        raise Invalid("meta.layers", f"= {meta['layers']} are not the graph's layers {populations}")
    ListOf(Text(), length=len(populations)).check(meta["layer_kinds"], "meta.layer_kinds")
    kinds = [graph.population(name).kind for name in meta["layers"]]
    if list(meta["layer_kinds"]) != kinds:
        raise Invalid("meta.layer_kinds", f"= {meta['layer_kinds']} differ from the graph's {kinds}")
    ListOf(Number(lo=0, integer=True), length=2).check(meta["readout_neurons"], "meta.readout_neurons")
    first, count = meta["readout_neurons"]
    sizes = [graph.population(name).size for name in meta["layers"]]
    readout = meta["layers"].index(graph.readout.name)
    expected = [sum(sizes[:readout]), graph.readout.size]
    if [first, count] != expected:
        raise Invalid("meta.readout_neurons", f"= {[first, count]} are not the readout's logical neurons {expected}")


def _check_float_arrays(meta: Mapping[str, Any], arrays: Mapping[str, Any], graph: Graph) -> None:
    shapes = {p.name: (graph.population(p.post).size, graph.population(p.pre).size) for p in graph.projections}
    for name, shape in shapes.items():
        if WEIGHT + name not in arrays:
            raise Invalid(f"array '{WEIGHT}{name}'", "is missing (the graph has that projection)")
        Array("float", shape, dtype="float32").check(arrays[WEIGHT + name], f"array '{WEIGHT}{name}'")
    delayed = {p.name: p.max_delay_steps for p in graph.projections if p.max_delay_steps}
    for name in delayed:
        if DELAY + name not in arrays:
            raise Invalid(f"array '{DELAY}{name}'", f"is missing (projection {name} has delays)")
        Array("float", shapes[name], lo=0, hi=delayed[name], dtype="float32").check(
            arrays[DELAY + name], f"array '{DELAY}{name}'")
    for key in arrays:
        prefix, _, name = key.partition(":")
        if prefix + ":" == WEIGHT and name not in shapes or prefix + ":" == DELAY and name not in delayed:
            raise Invalid(f"array '{key}'", f"names no {'delayed ' if prefix + ':' == DELAY else ''}projection "
                          "of the graph")
    if "delays" in meta:
        Fields(optional={"sigma_steps": MapOf(Number(lo=0), keys=tuple(delayed))}, strict=False).check(
            meta["delays"], "meta.delays")
