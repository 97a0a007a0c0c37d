"""Mutations of model files (.pt) and of BSS-2 and Xylo deployments (.npz), with the rules of which damage
certainly makes them invalid, resealing the checksum (so that the content checks behind it are fuzzed)."""

from __future__ import annotations

import io
import json
import random
from typing import Any

from .bases import Bases
from .formats import _by_reference, _npz_arrays, _npz_bytes, _torch_bytes, foreign_mutation
from .mutations import Mutant, _Skip, bytes_mutation, zip_mutation
from .structures import INF, NAN, array_mutation, tree_mutation, value_certain


def _model_rule(path: tuple, op: str, old: Any, new: Any) -> bool:
    top = path[0]
    if top in ("metrics", "provenance", "software_version", "delay_sigma_steps"):
        return False
    if top == "training":
        return path[-1] == "loss" and op not in ("drop",) and new != old
    if top == "discretisation" and path[-1] != "kind":
        return False
    if op == "drop":
        return top in ("format", "version", "graph", "weights", "dt_s", "encoding", "dataset") and (
            len(path) == 1 or path[-1] in ("populations", "projections", "name", "size", "kind", "pre", "post",
                                           "duration_s") or top == "weights" or isinstance(path[-1], int))
    if op == "rename":
        return _model_rule(path, "drop", old, None)
    if op == "add-key":
        return False
    if top == "graph" and path[-1] in ("name", "pre", "post"):
        return new != old  # weights and projections name populations
    if top == "graph" and path[-1] == "size":
        return new != old
    return value_certain(path[-1], old, new)


def _reseal_model(obj: Any) -> bool:
    """Store the checksum of the (damaged) contents, as the writer would: the damage then has to be found by the
    content checks behind the checksum. False where the project has no checksum or cannot compute one."""
    try:
        from neurodeploy.validation.checksum import FIELD, digest
    except ImportError:
        return False
    if not isinstance(obj, dict):
        return False
    try:
        obj[FIELD] = digest({k: v for k, v in obj.items() if k != FIELD})
    except Exception:  # noqa: BLE001 - contents the checksum cannot encode stay unsealed
        return False
    return True


def _reseal_deployment(meta: dict, arrays: dict) -> bool:
    try:
        from neurodeploy.deployment import checksum_of
    except ImportError:
        return False
    try:
        meta["checksum"] = checksum_of(meta, arrays)
    except Exception:  # noqa: BLE001 - contents the checksum cannot encode stay unsealed
        return False
    return True


def _sealed(obj: Any) -> bool:
    return isinstance(obj, dict) and "checksum" in obj


def mutate_model(base: bytes, bases: Bases, rng: random.Random) -> Mutant:
    import numpy as np
    import torch

    family = rng.choices(["bytes", "tree", "tensor", "zip", "foreign", "identity"], [3, 5, 5, 2, 1.5, 0.2])[0]
    if family == "identity":
        return Mutant("identity", base)
    if family == "foreign":
        return foreign_mutation("model", bases, rng)
    obj = torch.load(io.BytesIO(base), map_location="cpu", weights_only=True)
    sealed = _sealed(obj)
    if family in ("bytes", "zip"):
        name, data = bytes_mutation(base, rng) if family == "bytes" else zip_mutation(base, rng)
        return _by_reference("pt", base, name, data, changed_certain=sealed)
    reseal = sealed and rng.random() < 0.7
    if family == "tree":
        plain = {k: v for k, v in obj.items() if k not in ("weights", "delays")}
        name, tree, certain = tree_mutation(plain, rng, _model_rule, skip=lambda p: reseal and p[0] == "checksum")
        if isinstance(tree, dict):
            tree.update({k: obj[k] for k in ("weights", "delays") if k in obj})
        if reseal and _reseal_model(tree):
            name += "+resealed"
        elif sealed:
            certain = True  # its checksum no longer matches
        return Mutant(name, _torch_bytes(tree), certain)
    weights = {k: v.numpy() for k, v in obj["weights"].items()}
    op = rng.choice(["array", "array", "array", "meta-device", "list", "requires-grad", "sparse"])
    key = rng.choice(sorted(weights))

    def sealed_mutant(name: str, certain: bool, same_values: bool = False) -> Mutant:
        if reseal and _reseal_model(obj):
            name += "+resealed"
        elif sealed and not same_values:
            certain = True  # its checksum no longer matches
        return Mutant(name, _torch_bytes(obj), certain)

    if op == "meta-device":
        obj["weights"][key] = torch.empty_like(obj["weights"][key], device="meta")
        return sealed_mutant(f"tensor-meta-device:{key}", True)
    if op == "list":
        obj["weights"][key] = obj["weights"][key].tolist()
        return sealed_mutant(f"tensor-as-list:{key}", True)
    if op == "requires-grad":
        obj["weights"][key] = obj["weights"][key].clone().requires_grad_(True)
        return sealed_mutant(f"tensor-requires-grad:{key}", False, same_values=True)
    if op == "sparse":
        obj["weights"][key] = obj["weights"][key].to_sparse()
        return sealed_mutant(f"tensor-sparse:{key}", False, same_values=True)
    name, arrays, key, aop = array_mutation(weights, rng)
    if aop == "str":
        raise _Skip("torch has no string tensors")
    certain = aop in ("nan", "inf", "drop-row", "add-axis", "transpose", "empty", "scalar", "complex", "drop",
                      "rename")
    obj["weights"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    return sealed_mutant(name, certain)


DEPLOYMENT_REQUIRED_META = {"format", "version", "target", "graph", "dt_s", "encoding", "dataset", "readout_layer"}
BSS2_ARRAY_LIMITS = {  # array name prefix → (min, max) of a valid value; beyond is certainly invalid
    "neuron_circuits": (0, 511), "neuron_layer": (0, 64), "synapse_weight": (0, 63), "synapse_label": (0, 63),
    "row_mode": (0, 3), "input_routes": (0, 2**16), "neuron_routes": (0, 2**16), "code:": (0, 1023),
    "circuit_tau": (0, 1.0), "circuit_t_ref_s": (0, 1.0), "circuit_v_": (0, 1023),
    "circuit_synaptic_gain": (0, 1e6), "quantised_weight:": (-63, 63), "weight_scale:": (0, 1e9),
    "float_weight:": (-INF, INF)}
XYLO_ARRAY_LIMITS = {
    "weights_": (-128, 127), "dash_": (0, 15), "threshold": (0, 2**15 - 1), "bias": (-(2**15), 2**15 - 1),
    "neuron_layer": (0, 64), "neuron_bank": (0, 3), "neuron_index": (0, 1000), "state_scale": (0, INF),
    "quantised_weight:": (-128, 127), "float_weight:": (-INF, INF)}


def _meta_rule(path: tuple, op: str, old: Any, new: Any) -> bool:
    top = path[0]
    if top in ("report", "software_version", "trained_on", "calibration", "chip", "layers", "training", "warnings"):
        return False
    if op in ("drop", "rename"):
        return (len(path) == 1 and top in DEPLOYMENT_REQUIRED_META) or (
            top in ("graph", "encoding") and path[-1] in ("populations", "projections", "name", "size", "kind",
                                                         "pre", "post", "duration_s"))
    if op == "add-key":
        return False
    if top == "graph" and path[-1] in ("name", "pre", "post", "size"):
        return new != old
    return value_certain(path[-1], old, new)


def mutate_deployment(base: bytes, bases: Bases, rng: random.Random, target: str) -> Mutant:
    import numpy as np

    family = rng.choices(["bytes", "meta", "array", "zip", "foreign", "identity"], [3, 5, 6, 3, 1.5, 0.2])[0]
    kind = "dep-bss2" if target == "bss2" else "dep-xylo"
    if family == "identity":
        return Mutant("identity", base)
    if family == "foreign":
        return foreign_mutation(kind, bases, rng)
    arrays = _npz_arrays(base)
    meta = json.loads(arrays["meta"].tobytes())
    sealed = _sealed(meta)
    if family in ("bytes", "zip"):
        name, data = bytes_mutation(base, rng) if family == "bytes" else zip_mutation(base, rng)
        return _by_reference("npz", base, name, data, changed_certain=sealed)
    reseal = sealed and rng.random() < 0.7

    def sealed_mutant(name: str, meta: Any, arrays: dict, certain: bool) -> Mutant:
        plain = {k: v for k, v in arrays.items() if k != "meta"}
        if reseal and isinstance(meta, dict) and _reseal_deployment(meta, plain):
            name += "+resealed"
        elif sealed:
            certain = True  # its checksum no longer matches
        try:
            text = json.dumps(meta)
        except (ValueError, RecursionError):
            raise _Skip("not JSON-serialisable") from None
        return Mutant(name, _npz_bytes({"meta": np.frombuffer(text.encode(), np.uint8), **plain}), certain)

    if family == "meta":
        op = rng.choice(["tree", "tree", "tree", "json-garbage", "json-deep", "json-not-utf8", "json-nan"])
        if op == "tree":
            name, meta, certain = tree_mutation(meta, rng, _meta_rule, depth=rng.choice([60, 5000]),
                                                skip=lambda p: reseal and p[0] == "checksum")
            return sealed_mutant(name, meta, arrays, certain)
        if op == "json-garbage":
            text, name, certain = json.dumps(meta)[:-1] + ",,}", "meta-json-garbage", True
        elif op == "json-deep":
            text, name, certain = "[" * 100000 + "]" * 100000, "meta-json-deep", True
        elif op == "json-nan":
            meta["dt_s"] = NAN
            return sealed_mutant("meta-json-nan:dt_s", meta, arrays, True)
        else:
            arrays["meta"] = np.frombuffer(b"\xff\xfe" + json.dumps(meta).encode(), np.uint8)
            return Mutant("meta-not-utf8", _npz_bytes(arrays), True)
        arrays["meta"] = np.frombuffer(text.encode(), np.uint8)
        return Mutant(name, _npz_bytes(arrays), certain)
    limits = BSS2_ARRAY_LIMITS if target == "bss2" else XYLO_ARRAY_LIMITS
    names = [k for k in arrays if k != "meta"]
    name, changed, key, op = array_mutation(arrays, rng, names)
    certain = op in ("nan", "drop", "rename", "drop-row", "add-axis", "transpose", "empty", "scalar", "complex", "str")
    if op in ("inf", "negative", "huge", "int8", "float16") and key in changed:  # values beyond the array's range
        low, high = next((v for prefix, v in limits.items() if key.startswith(prefix)), (-INF, INF))
        values = np.asarray(changed[key], dtype=np.float64)
        certain = bool(np.any(values < low) or np.any(values > high)) and not (op == "inf" and "v_th" in key)
    if op == "bool" and key in changed:
        certain = arrays[key].dtype != bool  # an array of numbers stored as true/false
    return sealed_mutant(name, meta, changed, certain)
