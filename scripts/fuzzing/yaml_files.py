"""Mutations of the YAML kinds: recipes, target specs and calibrations, with each one's rule of which damage
certainly makes it invalid."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

from .bases import Bases
from .formats import _by_reference, _yaml_dump, foreign_mutation
from .mutations import Mutant, _Skip, bytes_mutation, yaml_text_mutation
from .reference import reference_verdict
from .structures import _is_num, tree_mutation, value_certain

RECIPE_REQUIRED = {"format", "version", "dataset", "dt_s", "encoding", "layers"}


def _recipe_rule(path: tuple, op: str, old: Any, new: Any) -> bool:
    top = path[0]
    if top in ("description",) or (top == "name" and len(path) == 1):
        return op in ("wrap-list", "wrap-dict", "deep") and False
    if op in ("rename", "add-key"):
        return True  # every key of a recipe is checked: an unknown one is an error
    if op == "drop":
        if len(path) == 1:
            return top in RECIPE_REQUIRED
        if top == "layers" and isinstance(path[-1], int):
            return True  # the last layer must be the readout of the dataset's classes
        if top == "layers" and path[-1] == "size":
            return True
        return top == "encoding" and path[-1] in ("kind", "duration_s")
    if top == "training" and path[-1] in ("quantisation_aware_epochs",):
        return not (isinstance(new, int) and not isinstance(new, bool) and 0 <= new <= 1)
    if top == "training" and path[-1] in ("weight_noise", "lr_final_fraction", "weight_decay", "rate_target",
                                          "rate_weight"):
        return value_certain("x", old, new) or (_is_num(new) and new < 0)
    if path[-1] in ("mean", "std") or path[-1] in ("v_leak", "v_reset", "v_th"):
        return value_certain("x", old, new) or (path[-1] == "std" and _is_num(new) and new < 0)
    if path[-1] in ("learning_rate", "surrogate_steepness", "readout_scale"):
        return value_certain("x", old, new) or (_is_num(new) and new <= 0)
    if top == "layers" and path[-1] == "size" and len(path) == 3 and path[1] == 1:
        return new != old  # the readout's size is the dataset's classes
    return value_certain(path[-1], old, new)


def _spec_rule(path: tuple, op: str, old: Any, new: Any) -> bool:
    top = path[0]
    if top == "description":
        return False
    if op == "drop":
        return len(path) <= 2 and top not in ("description",)
    if op in ("rename",):
        return len(path) <= 2
    if op == "add-key":
        return False
    if top == "name":
        return new != old
    if _is_num(old) and _is_num(new) and new < 0 and not str(path[-1]).startswith(("v_", "min")):
        return True
    return value_certain(path[-1], old, new)


def _calibration_rule(resealed: bool) -> Callable[[tuple, str, Any, Any], bool]:
    def rule(path: tuple, op: str, old: Any, new: Any) -> bool:
        if not resealed:
            return True  # the checksum covers every field
        top = path[0]
        if top in ("created", "software_version", "seconds", "measurement_rounds", "spread", "madc", "residuals",
                   "targets", "backend", "chip", "target", "checksum"):
            return top in ("format", "version") or (op == "drop" and top in ("chip",))
        if op in ("drop", "rename"):
            return top in ("codes", "gain_line", "success") or len(path) == 1 and top in ("format", "version")
        if op == "add-key":
            return len(path) == 1 and top == "codes"
        if top == "codes" and len(path) == 3:
            return not (_is_num(new) and 0 <= new <= 1023 and new == int(new)) or isinstance(new, bool)
        if top == "success" and len(path) == 2:
            return not isinstance(new, bool)  # a circuit's success flag: true or false
        if top in ("codes", "gain_line") and len(path) == 2:
            return True  # a list replaced by something else
        return value_certain(path[-1], old, new)
    return rule


_PARSED: dict[bytes, Any] = {}


def _parsed_yaml(data: bytes) -> Any:
    """A base file's YAML, parsed once (with libyaml where available)."""
    import yaml

    key = hashlib.sha256(data).digest()
    if key not in _PARSED:
        _PARSED[key] = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _PARSED[key]


def _reseal(data: dict) -> dict:
    data = {k: v for k, v in data.items() if k != "checksum"}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return {**data, "checksum": digest}


def mutate_yaml(base: bytes, bases: Bases, rng: random.Random, kind: str) -> Mutant:

    family = rng.choices(["bytes", "tree", "text", "foreign", "identity"], [2, 6, 3, 1, 0.2])[0]
    if family == "identity":
        return Mutant("identity", base)
    if family == "foreign":
        return foreign_mutation(kind, bases, rng)
    if family == "bytes":
        name, data = bytes_mutation(base, rng)
        return _by_reference("yaml", base, name, data, changed_certain=kind == "calibration")
    if family == "text":
        name, data, certain = yaml_text_mutation(base.decode(), rng)
        if not certain and kind == "calibration":
            certain = reference_verdict("yaml", base, data) != "same"
        return Mutant(name, data, certain)
    tree = copy.deepcopy(_parsed_yaml(base))
    if kind == "recipe":
        name, tree, certain = tree_mutation(tree, rng, _recipe_rule)
    elif kind == "spec":
        name, tree, certain = tree_mutation(tree, rng, _spec_rule)
    else:
        resealed = rng.random() < 0.6
        name, tree, certain = tree_mutation(tree, rng, _calibration_rule(resealed),
                                            skip=lambda p: p[0] == "checksum")
        if resealed:
            try:
                tree = _reseal(tree) if isinstance(tree, dict) else tree
            except (ValueError, TypeError):
                raise _Skip("not JSON-serialisable") from None
            name += "+resealed"
    try:
        data = _yaml_dump(tree)
    except (ValueError, RecursionError):
        raise _Skip("not YAML-serialisable") from None
    return Mutant(name, data, certain)
