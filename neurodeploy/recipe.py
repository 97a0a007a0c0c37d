"""Training recipes (``models/*.yaml``): loaded, validated, turned into a graph.

Every key is checked: an unknown or misspelt key, a missing one, a value of the wrong type, not
finite or out of its range (:mod:`neurodeploy.validation`: the same ranges as the verbs' arguments,
e.g. ``training.epochs`` 1..10000, ``training.seed`` 0..2^32-1) raises a ``RecipeError`` that names
it (and the file, when read from one). See ``models/yinyang.yaml`` for an annotated example.

``training.surrogate: {kind: ..., <params>}`` chooses the surrogate gradient (:mod:`neurodeploy.core.surrogate`:
``superspike``, ``arctan``, ``triangle``, ``slayer``, ``superspike_truncated``; missing parameters take their
defaults, and ``slayer``'s ``theta`` the spiking layers' ``v_th - v_leak``). Without it,
``training.surrogate_steepness`` (default 10) means ``{kind: superspike, steepness: ...}``, as it always has;
giving both is refused. The training settings keep the surrogate with every parameter (``surrogate``), and
``surrogate_steepness`` only for SuperSpike. A shipped recipe can be given by name (``yinyang``): it is found
in the checkout's ``models/`` or, when installed, in the package's copy (``neurodeploy.shipped``).

``training.method``: ``bptt`` (the default: surrogate-gradient BPTT) or ``asf`` (Accumulated Spiking Flow,
:mod:`neurodeploy.training.asf`, whose ``training.asf_ratio``, ``gated`` or ``shared``, BPTT ignores); another
value is a one-line ``RecipeError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import yaml

from .data.datasets import IMAGE_SHAPES, N_CLASSES, N_FEATURES, check_dataset_name
from .data.encoding import n_channels, validate_encoding
from .errors import FileKindError, RecipeError
from .fileformat import Envelope, check_envelope
from .core.delays import SIGMA_SCHEDULES
from .core.conv import Geometry
from .core.recurrent import MASKS, SIGNS, RecurrentConstraints
from .core.surrogate import SUPERSPIKE, Surrogate
from .graph import Graph, NeuronParameters, Population, Projection
from .recipe_delays import parse_delays
from .safe_yaml import LimitError, load_yaml
from .shipped import is_bare_name, resolve, shipped_names
from .validation.common import LOSSES, MAX_STEPS, check_encoding, training_rules, yaml_numbers
from .validation.rules import Fields, Flag, Invalid, ListOf, Number, OneOf, Rule, Text

FORMAT = "neurodeploy.recipe"
VERSION = 1
ENVELOPE = Envelope("recipe", FORMAT, (VERSION,),
                    "start from a shipped recipe, e.g. models/yinyang.yaml")
TOP_KEYS = {"format", "version", "name", "description", "dataset", "dt_s", "encoding", "layers",
            "training"}
LAYER_KEYS = {"name", "size", "kind", "neuron", "init", "delays", "recurrent", "pool"}
CONV_KEYS = {"channels", "kernel", "stride", "padding"}  # of a kind: conv layer, which has no size
INIT_KEYS = {"mean", "std"}
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 20, "batch_size": 64, "learning_rate": 2e-3, "lr_final_fraction": 0.05, "seed": 0,
    "surrogate_steepness": 10.0, "detach_reset": True, "loss": "max_over_time",
    "readout_scale": 5.0, "rate_target": 0.0, "rate_weight": 0.0,
    "activity_l1": 0.0, "activity_upper_weight": 0.0, "activity_upper_spikes": 0.0,
    "quantisation_aware_epochs": 0, "weight_levels": 63, "select_on_validation": True,
    "weight_decay": 0.0, "weight_noise": 0.0, "method": "bptt",
    "asf_ratio": "gated",
}
TRAINING_RULES = training_rules(stored=False)
POSITIVE = Number(lo=0, lo_open=True)
INIT = Fields(optional={"mean": Number(), "std": Number(lo=0)})
DELAYS = Fields(optional={"max_steps": Number(lo=1, hi=MAX_STEPS, integer=True), "learning_rate": POSITIVE,
                          "init_steps": ListOf(Number(lo=0), length=2), "sigma_final_steps": POSITIVE,
                          "sigma_decay_fraction": Number(lo=0, hi=1), "sigma_schedule": OneOf(SIGMA_SCHEDULES),
                          "sigma_offset_steps": Number(lo=0)}, strict=False)  # keys: parse_delays
RECURRENT = Fields(optional={"init": INIT, "mask": OneOf(MASKS), "sign": OneOf(SIGNS), "learnable": Flag()})
__all__ = ["LOSSES", "Recipe", "load_recipe", "recipe_from_dict", "recipe_names"]


@dataclass(frozen=True)
class Recipe:
    name: str
    dataset: str
    dt_s: float
    encoding: dict
    graph: Graph
    init: dict  # projection name → {"mean": float, "std": float}
    training: dict
    delays: dict = field(default_factory=dict)  # projection name → parsed ``delays:`` (recipe_delays.py)
    recurrent: dict = field(default_factory=dict)  # recurrent projection name → RecurrentConstraints


def _require(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise RecipeError(f"unknown key(s) {sorted(unknown)} in {where}",
                          f"check the spelling; allowed keys: {sorted(allowed)}")


def _checked(rule: Rule, value: Any, where: str) -> Any:
    """``value`` if ``rule`` accepts it, else a ``RecipeError`` naming ``where`` and the rule."""
    try:
        return rule.check(value, where)
    except Invalid as invalid:
        raise RecipeError(f"{invalid.field} {invalid.problem}", invalid.fix) from None


def _training(data: Any, graph: Graph) -> dict:
    """The ``training`` block with defaults filled in; every setting typed and in its range (``TRAINING_RULES``)."""
    _checked(Fields(strict=False), data, "training")
    _require(data, set(TRAINING_DEFAULTS) | {"surrogate"}, "training")
    if "surrogate" in data and "surrogate_steepness" in data:
        raise RecipeError("training.surrogate and training.surrogate_steepness are both given",
                          "remove training.surrogate_steepness (SuperSpike's steepness is "
                          "training.surrogate: {kind: superspike, steepness: ...})")
    out = {**TRAINING_DEFAULTS, **data}
    _checked(Fields(optional=TRAINING_RULES), out, "training")
    if out["quantisation_aware_epochs"] > out["epochs"]:
        raise RecipeError(f"training.quantisation_aware_epochs = {out['quantisation_aware_epochs']!r} must be an "
                          f"integer in 0..epochs ({out['epochs']})",
                          "e.g. 10 (the last 10 epochs train with quantised weights)")
    for key in ("learning_rate", "lr_final_fraction", "surrogate_steepness", "readout_scale", "rate_target",
                "rate_weight", "weight_decay", "weight_noise", "activity_l1", "activity_upper_weight",
                "activity_upper_spikes"):
        out[key] = float(out[key])
    surrogate = _surrogate(out, graph)
    out["surrogate"] = surrogate.to_dict()
    if surrogate.kind == SUPERSPIKE:  # the older key, kept for SuperSpike (readers before the registry)
        out["surrogate_steepness"] = surrogate["steepness"]
    else:  # it means SuperSpike: not written for another kind
        del out["surrogate_steepness"]
    return out


def _surrogate(training: dict, graph: Graph) -> Surrogate:
    """``training.surrogate`` (already checked) with its defaults, or SuperSpike with ``surrogate_steepness``."""
    if "surrogate" not in training:
        return Surrogate.superspike(training["surrogate_steepness"])
    spec = dict(training["surrogate"])
    if spec["kind"] == "slayer" and "theta" not in spec:  # SLAYER's ϑ: the threshold above rest
        gaps = sorted({p.parameters.v_th - p.parameters.v_leak for p in graph.populations if p.kind == "lif"})
        if len(gaps) != 1 or not 1e-6 <= gaps[0] <= 1e6:
            raise RecipeError(f"training.surrogate.theta is missing, and the spiking layers' v_th - v_leak "
                              f"({', '.join(f'{g:g}' for g in gaps) or 'none'}) give no single value in [1e-06, 1e+06]",
                              "set training.surrogate.theta (SLAYER's threshold above rest)")
        spec["theta"] = gaps[0]
    return Surrogate.from_dict(spec)


def recipe_from_dict(data: Mapping[str, Any], source: str = "recipe") -> Recipe:
    """Validate a parsed recipe and build its graph."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source} is not a YAML mapping", "see models/yinyang.yaml for the layout")
    data = yaml_numbers(data)  # 10e-3 is a number (YAML 1.2), though PyYAML reads it as text
    check_envelope(dict(data), ENVELOPE, source)
    _require(data, TOP_KEYS, "the recipe's top level")
    for key in ("dataset", "dt_s", "encoding", "layers"):
        if key not in data:
            raise RecipeError(f"the recipe lacks '{key}'", "see models/yinyang.yaml")
    for key, rule in (("name", Text()), ("description", Text(empty=True))):
        if key in data:
            _checked(rule, data[key], key)
    dataset = _checked(Text(), data["dataset"], "dataset")
    check_dataset_name(dataset)
    dt_s = float(_checked(POSITIVE, data["dt_s"], "dt_s"))
    encoding = data["encoding"]
    try:
        check_encoding(encoding, dt_s)
    except Invalid as invalid:
        raise RecipeError(f"{invalid.field} {invalid.problem}", invalid.fix) from None
    encoding = dict(encoding)
    validate_encoding(encoding)
    if encoding["duration_s"] < dt_s:
        raise RecipeError("encoding.duration_s is shorter than one step dt_s", "lengthen duration_s")

    populations = [Population("input", n_channels(encoding, N_FEATURES[dataset]), "input")]
    projections, init, delays, recurrent = [], {}, {}, {}
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise RecipeError("'layers' must be a non-empty list", "list hidden layers, then the readout")
    image = IMAGE_SHAPES.get(dataset) if populations[0].size == N_FEATURES[dataset] else None  # the input's shape
    pool = 1  # average pooling the layer before asked for
    for index, layer in enumerate(layers):
        where = f"layers[{index}]"
        if not isinstance(layer, Mapping):
            raise RecipeError(f"{where} is not a mapping", "give name, size, kind, neuron")
        kind = layer.get("kind", "lif" if index < len(layers) - 1 else "li")
        _require(layer, LAYER_KEYS | (CONV_KEYS if kind == "conv" else set()), where)
        name = _checked(Text(), layer.get("name", f"layer{index}"), f"{where}.name")
        if kind not in ("lif", "li", "conv"):
            raise RecipeError(f"{where}.kind = {kind!r} is unknown",
                              "use 'lif' (hidden), 'conv' (convolutional hidden) or 'li' (readout)")
        geometry = _geometry(layer, kind, image, pool, dataset, where)
        if geometry is not None and geometry.channels:
            image = geometry.out_shape
            size = image[0] * image[1] * image[2]  # type: ignore[index]
            if "size" in layer and layer["size"] != size:
                raise RecipeError(f"{where}.size = {layer['size']!r}, but its convolution gives {size} neurons",
                                  f"leave out size (it is {image[0]} channels x {image[1]} x {image[2]})")  # type: ignore[index]
        else:
            size = int(_checked(Number(lo=1, integer=True), layer.get("size"), f"{where}.size"))
            image = None
        pool = int(_checked(Number(lo=1, hi=64, integer=True), layer.get("pool", 1), f"{where}.pool"))
        if pool > 1 and image is None:
            raise RecipeError(f"{where}.pool is given on a layer that is not an image",
                              "pool a convolutional layer's spikes (kind: conv)")
        _checked(Fields(strict=False), layer.get("neuron", {}), f"{where}.neuron")
        neuron = NeuronParameters.from_dict(layer.get("neuron", {}), f"{where}.neuron", RecipeError)
        populations.append(Population(name, size, "lif" if kind == "conv" else kind, neuron))
        if "delays" in layer:
            if geometry is not None:
                raise RecipeError(f"{where} has delays and a convolution or pooling", "learn delays on a dense layer")
            _checked(DELAYS, layer["delays"], f"{where}.delays")
            spec = parse_delays(layer["delays"], f"{where}.delays")
            projection = Projection(populations[-2].name, name, max_delay_steps=spec["max_steps"])
            delays[projection.name] = spec
        else:
            projection = Projection(populations[-2].name, name, geometry=geometry)
        projections.append(projection)
        init[projection.name] = _init(layer.get("init", {}), f"{where}.init")
        if "recurrent" in layer:
            loop = _recurrent(layer["recurrent"], kind, name, f"{where}.recurrent")
            projections.append(loop)
            init[loop.name] = _init(layer["recurrent"].get("init", {}), f"{where}.recurrent.init")
            recurrent[loop.name] = RecurrentConstraints.from_dict(layer["recurrent"])
    if populations[-1].kind != "li":
        raise RecipeError("the last layer must be the non-spiking readout (kind: li)", "add a readout layer")
    if any(p.kind == "li" for p in populations[1:-1]):
        raise RecipeError("only the last layer may be a readout (kind: li)", "make hidden layers kind: lif")
    if len({p.name for p in populations}) != len(populations):
        raise RecipeError(f"two layers share a name (or one is called 'input'): {[p.name for p in populations[1:]]}",
                          "give each layer its own name")
    if populations[-1].size != N_CLASSES[dataset]:
        raise RecipeError(f"readout has {populations[-1].size} neurons, dataset '{dataset}' has "
                          f"{N_CLASSES[dataset]} classes", f"set the readout size to {N_CLASSES[dataset]}")
    graph = Graph(tuple(populations), tuple(projections))
    return Recipe(name=str(data.get("name", source)), dataset=dataset, dt_s=dt_s, encoding=encoding,
                  graph=graph, init=init, training=_training(data.get("training", {}), graph), delays=delays,
                  recurrent=recurrent)


def _init(spec: Any, where: str) -> dict[str, float]:
    """An ``init: {mean, std}`` block with its defaults (0, 1)."""
    _checked(Fields(strict=False), spec, where)
    _require(spec, INIT_KEYS, where)
    _checked(INIT, spec, where)
    return {"mean": float(spec.get("mean", 0.0)), "std": float(spec.get("std", 1.0))}


def _geometry(layer: Mapping[str, Any], kind: str, image: Any, pool: int, dataset: str,
              where: str) -> Geometry | None:
    """The geometry of the projection into ``layer``: its convolution (kind: conv) on the pooled image before."""
    if kind != "conv" and pool == 1:
        return None
    if image is None:
        raise RecipeError(f"{where} is a convolution, but its input is not an image (dataset '{dataset}' without "
                          "its pixels as the input channels, or a dense layer before)",
                          f"use an image dataset ({', '.join(IMAGE_SHAPES)}) with an encoding without a bias spike, "
                          "or put the convolution first")
    if kind != "conv":
        return _fits(Geometry(tuple(image), pool=pool), where)
    for key in ("channels", "kernel"):
        if key not in layer:
            raise RecipeError(f"{where} (kind: conv) lacks '{key}'", "give channels and kernel (stride, padding "
                              "default to 1 and 0)")
    numbers = {key: int(_checked(Number(lo=0 if key == "padding" else 1, hi=4096, integer=True), layer[key],
                                 f"{where}.{key}")) for key in CONV_KEYS if key in layer}
    return _fits(Geometry(tuple(image), pool=pool, **numbers), where)


def _fits(geometry: Geometry, where: str) -> Geometry:
    """``geometry`` if it fits its input image (the output size is the layer's own, set from it)."""
    c, h, w = geometry.in_shape
    problem = geometry.problem(c * h * w)
    if problem:
        raise RecipeError(f"the input of {where} {problem}", "change kernel, stride, padding or the pooling before")
    return geometry


def _recurrent(spec: Any, kind: str, name: str, where: str) -> Projection:
    """A layer's ``recurrent:`` block (checked) → its projection onto itself."""
    _checked(Fields(strict=False), spec, where)
    _require(spec, set(RECURRENT.optional), where)
    _checked(RECURRENT, spec, where)
    if kind == "li":
        raise RecipeError(f"{where} is given on a readout layer (kind: li)",
                          "give recurrent: to a spiking hidden layer (kind: lif or conv)")
    return Projection(name, name, recurrent=True)


def recipe_names() -> list[str]:
    """The shipped recipes, by name (``yinyang`` is ``models/yinyang.yaml``)."""
    return shipped_names("models")


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file, or a shipped recipe by name (``yinyang``; see :func:`recipe_names`).

    A file that exists wins over a shipped recipe of the same name.
    """
    name = path
    path = resolve("models", path)
    if not path.is_file():
        if is_bare_name(name):
            raise FileKindError(f"recipe {name} does not exist: no such file, and no shipped recipe of that name",
                                f"give a recipe file or one of {', '.join(recipe_names()) or '(none shipped)'}")
        raise FileKindError(f"recipe {path} does not exist",
                            "give a path such as models/yinyang.yaml, or a shipped recipe's name such as yinyang")
    try:
        data = load_yaml(path)
    except LimitError as exc:
        raise RecipeError(f"{path} is refused: {exc}", "write a plain recipe (see models/yinyang.yaml)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path} is not valid YAML ({type(exc).__name__})", "fix the YAML syntax") from None
    except ValueError as exc:  # a value YAML cannot convert: an integer of more than 4300 digits
        raise RecipeError(f"{path} holds a value YAML cannot convert ({type(exc).__name__}, e.g. an integer of "
                          "thousands of digits)", "write plain numbers") from None
    try:
        return recipe_from_dict(data, str(path))
    except RecipeError as exc:  # name the file, once
        if exc.message.startswith(str(path)):
            raise
        raise RecipeError(f"{path}: {exc.message}", exc.fix) from None
