"""Mutations of data files (.npz of samples ``x`` and labels ``y``)."""

from __future__ import annotations

import random

from .bases import Bases
from .formats import _by_reference, _npz_arrays, _npz_bytes, foreign_mutation
from .mutations import Mutant, bytes_mutation, zip_mutation
from .structures import array_mutation


def mutate_data(base: bytes, bases: Bases, rng: random.Random) -> Mutant:
    import numpy as np

    family = rng.choices(["bytes", "array", "zip", "foreign", "identity", "values"], [3, 5, 2, 1, 0.2, 3])[0]
    if family == "identity":
        return Mutant("identity", base)
    if family == "foreign":
        return foreign_mutation("data", bases, rng)
    if family in ("bytes", "zip"):
        name, data = bytes_mutation(base, rng) if family == "bytes" else zip_mutation(base, rng)
        return _by_reference("npz", base, name, data)
    arrays = _npz_arrays(base)
    if family == "values":
        x, y = arrays["x"].copy(), arrays["y"].copy()
        op = rng.choice(["labels-high", "labels-negative", "labels-float", "no-samples", "x-width", "x-1d", "y-2d",
                         "y-short", "x-huge", "x-negative", "labels-bool", "one-sample", "many-samples"])
        if op == "labels-high":
            y[rng.randrange(len(y))] = 3
        elif op == "labels-negative":
            y[rng.randrange(len(y))] = -1
        elif op == "labels-float":
            y = y.astype(np.float64) + 0.5
        elif op == "labels-bool":
            y = y.astype(bool)
        elif op == "no-samples":
            x, y = x[:0], y[:0]
        elif op == "x-width":
            x = np.concatenate([x, x[:, :1]], axis=1)
        elif op == "x-1d":
            x = x[:, 0]
        elif op == "y-2d":
            y = y[:, None]
        elif op == "y-short":
            y = y[:-1]
        elif op == "x-huge":
            x[0, 0] = 1e30
        elif op == "x-negative":
            x[0, 0] = -5.0
        elif op == "one-sample":
            x, y = x[:1], y[:1]
        else:
            x, y = np.repeat(x, 64, axis=0), np.repeat(y, 64)
        certain = op not in ("x-huge", "x-negative", "one-sample", "many-samples")
        return Mutant(f"data-{op}", _npz_bytes({"x": x, "y": y}, compressed=False), certain)
    name, changed, key, op = array_mutation(arrays, rng)
    certain = op in ("nan", "inf", "drop", "rename", "drop-row", "add-axis", "transpose", "empty", "scalar",
                     "complex", "str") or (key == "y" and op in ("negative", "huge", "float64", "float16", "bool"))
    if key == "x" and op == "drop-row" and "y" in changed:
        certain = True
    return Mutant(name, _npz_bytes(changed, compressed=False), certain)
