"""What a model file may hold, version by version: every key, type, shape, range and cross-field invariant.

:func:`check_model_dict` runs on the loaded dict (``torch.load(weights_only=True)``) after the
envelope (format, version) and before anything uses it; :func:`neurodeploy.modelfile.load_model`
then verifies the checksum. Checked:

* keys: exactly those of the file's version (1: no delays; 2: delays; 3: the discretisation's kind;
  4: the checksum; 5: ``recurrent``), ``mapping`` optional from version 2;
* ``graph``: its layout and consistency (:func:`~.common.check_graph`); ``discretisation.kind`` its graph's;
* ``weights``: one float tensor per projection of the graph, ``[post, pre]``, finite, and no other; zero
  outside a convolution's or pooling's structure;
* ``delays``: one per delayed projection, shaped as its weights, finite, within ``0..max_delay_steps``;
  ``delay_sigma_steps`` finite and >= 0, only for delayed projections;
* ``dt_s`` finite > 0; ``dataset`` known (or ``none``); ``encoding`` valid for it, with the graph's input
  channels and readout size; ``seed`` an integer torch accepts;
* ``training``: the settings downstream code reads, typed and in range; ``surrogate`` a registered kind with
  its parameters, and ``surrogate_steepness`` beside it only for SuperSpike, equal to its steepness;
  ``metrics``, ``provenance`` mappings;
* ``recurrent`` (version 5): constraints (mask, sign, learnable) of recurrent projections only, and their
  weights within them (a hollow matrix has a zero diagonal, an inhibitory one no positive entry);
* ``mapping`` (in-the-loop training): pinned weight scales per layer (finite > 0, one per neuron),
  potential scales, weight copies, the chip trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.conv import connected
from ..core.recurrent import MASKS, SIGNS, RecurrentConstraints, violation
from ..graph import Graph
from .checksum import FIELD, is_digest
from .common import check_dataset, check_graph, check_time_step, training_rules
from .rules import Anything, Array, Fields, Flag, Invalid, MapOf, Nullable, Number, OneOf, Text

BASE_KEYS = ("format", "version", "software_version", "graph", "weights", "dt_s", "discretisation", "encoding",
             "dataset", "seed", "training", "metrics", "provenance")
DELAY_KEYS = ("delays", "delay_sigma_steps")
TORCH_SEED = Number(lo=-(2**63), hi=2**64 - 1, integer=True)  # what torch.manual_seed accepts
STORED_TRAINING = Fields(optional=training_rules(stored=True), strict=False)
MAPPING = Fields(optional={
    "weight_scale": MapOf(Array("float", lo=0, lo_open=True)), "cadc_per_model_unit": MapOf(Number(lo=0, lo_open=True)),
    "weight_copies": Number(lo=1, integer=True), "trained_on": Nullable(Fields(strict=False)),
    "alignment": Fields(strict=False), "threshold_offsets": MapOf(Array("float"))}, strict=False)
RECURRENT = Fields(required={"mask": OneOf(MASKS), "sign": OneOf(SIGNS), "learnable": Flag()})


def keys_of(version: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) top-level keys of a model file of ``version``."""
    required = (BASE_KEYS + (DELAY_KEYS if version >= 2 else ()) + ((FIELD,) if version >= 4 else ())
                + (("recurrent",) if version >= 5 else ()))
    optional = (("mapping",) if version >= 2 else ()) + ((FIELD,) if version < 4 else ())
    return required, optional


def check_model_dict(data: Mapping[str, Any]) -> Graph:
    """Raise :class:`Invalid` naming the first field a model file of its version must not hold; returns its graph."""
    version = data["version"]
    required, optional = keys_of(version)
    Fields(required={k: Anything() for k in required}, optional={k: Anything() for k in optional}).check(data, "")
    Text().check(data["software_version"], "software_version")
    graph = check_graph(data["graph"])
    discretisation = data["discretisation"]
    if not isinstance(discretisation, Mapping):
        raise Invalid("discretisation", "must be a mapping")
    kind = discretisation.get("kind") if version >= 3 else "native"
    if kind != graph.discretisation:
        raise Invalid("discretisation", f"{kind!r} differs from its graph's {graph.discretisation!r}")
    dt_s = check_time_step(data["dt_s"])
    check_dataset(data["dataset"], data["encoding"], dt_s, graph)
    TORCH_SEED.check(data["seed"], "seed")
    STORED_TRAINING.check(data["training"], "training")
    check_surrogate_settings(data["training"])
    if data["training"].get("quantisation_aware_epochs", 0) > data["training"].get("epochs", float("inf")):
        raise Invalid("training.quantisation_aware_epochs", "exceeds training.epochs")
    Fields(strict=False).check(data["metrics"], "metrics")
    Fields(strict=False).check(data["provenance"], "provenance")
    check_weights(data["weights"], graph)
    if version >= 2:
        check_delays(data["delays"], data["delay_sigma_steps"], graph)
    if "mapping" in data:
        check_mapping(data["mapping"], graph)
    if version >= 5:
        check_recurrent(data["recurrent"], data["weights"], graph)
    if FIELD in data and not is_digest(data[FIELD]):
        raise Invalid(FIELD, "is not a SHA-256 digest (64 hexadecimal digits)")
    return graph


def check_surrogate_settings(training: Mapping[str, Any]) -> None:
    """``surrogate_steepness`` beside a recorded ``surrogate`` only for SuperSpike, and then its steepness."""
    surrogate, steepness = training.get("surrogate"), training.get("surrogate_steepness")
    if surrogate is None or steepness is None:
        return
    if surrogate["kind"] != "superspike":
        raise Invalid("training.surrogate_steepness", f"is given with a {surrogate['kind']!r} surrogate "
                      "(it is SuperSpike's steepness)")
    if surrogate.get("steepness", 10.0) != steepness:
        raise Invalid("training.surrogate_steepness", f"= {steepness!r} differs from training.surrogate.steepness "
                      f"= {surrogate.get('steepness', 10.0)!r}")


def check_weights(weights: Any, graph: Graph, name: str = "weights") -> None:
    """One finite float ``[post, pre]`` tensor per projection of ``graph``, and no other."""
    MapOf(Anything()).check(weights, name)
    for proj in graph.projections:
        if proj.name not in weights:
            raise Invalid(f"{name}[{proj.name!r}]", "is missing (the graph has that projection)")
        shape = (graph.population(proj.post).size, graph.population(proj.pre).size)
        Array("float", shape).check(weights[proj.name], f"{name}[{proj.name!r}]")
        if proj.geometry is not None and bool(weights[proj.name][~connected(proj.geometry, shape[0])].ne(0).any()):
            raise Invalid(f"{name}[{proj.name!r}]", "joins pairs its convolution or pooling does not (non-zero "
                          "outside the structure)")
    extra = sorted(set(weights) - {p.name for p in graph.projections})
    if extra:
        raise Invalid(f"{name}[{extra[0]!r}]", "names no projection of the graph")


def check_delays(delays: Any, sigma: Any, graph: Graph) -> None:
    """Delays of each delayed projection (``[post, pre]`` steps within its range) and their kernels' σ."""
    MapOf(Anything()).check(delays, "delays")
    delayed = {p.name: p for p in graph.projections if p.max_delay_steps}
    for name, proj in delayed.items():
        if name not in delays:
            raise Invalid(f"delays[{name!r}]", f"is missing (projection {name} has delays up to "
                          f"{proj.max_delay_steps} steps)")
        shape = (graph.population(proj.post).size, graph.population(proj.pre).size)
        Array("float", shape, lo=0, hi=proj.max_delay_steps).check(delays[name], f"delays[{name!r}]")
    extra = sorted(set(delays) - set(delayed))
    if extra:
        raise Invalid(f"delays[{extra[0]!r}]", "names no projection of the graph with delays")
    MapOf(Number(lo=0)).check(sigma, "delay_sigma_steps")
    extra = sorted(set(sigma) - set(delayed))
    if extra:
        raise Invalid(f"delay_sigma_steps[{extra[0]!r}]", "names no projection of the graph with delays")


def check_recurrent(constraints: Any, weights: Mapping[str, Any], graph: Graph) -> None:
    """Constraints only of recurrent projections, each mask/sign/learnable, and weights that keep them."""
    MapOf(RECURRENT).check(constraints, "recurrent")
    loops = {p.name for p in graph.projections if p.recurrent}
    for name, spec in constraints.items():
        if name not in loops:
            raise Invalid(f"recurrent[{name!r}]", "names no recurrent projection of the graph")
        broken = violation(weights[name], RecurrentConstraints.from_dict(spec))
        if broken:
            raise Invalid(f"weights[{name!r}]", broken)


def check_mapping(mapping: Any, graph: Graph) -> None:
    """What in-the-loop training pinned: per layer one weight scale per neuron, a potential scale; and the threshold
    offsets a plasticity program wrote (one per neuron, model units)."""
    MAPPING.check(mapping, "mapping")
    layers = {p.name: p.size for p in graph.populations[1:]}
    for key in ("weight_scale", "cadc_per_model_unit", "threshold_offsets"):
        extra = sorted(set(mapping.get(key, {})) - set(layers))
        if extra:
            raise Invalid(f"mapping.{key}[{extra[0]!r}]", "names no layer of the graph")
    for layer, scale in mapping.get("weight_scale", {}).items():
        Array("float", (layers[layer],), lo=0, lo_open=True).check(scale, f"mapping.weight_scale[{layer!r}]")
    for layer, theta in mapping.get("threshold_offsets", {}).items():
        Array("float", (layers[layer],), lo=-1e3, hi=1e3).check(theta, f"mapping.threshold_offsets[{layer!r}]")
