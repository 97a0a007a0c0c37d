"""Damage to parsed contents: nested dicts and lists (parsed YAML, model dicts, deployment meta), which new
values are certainly invalid, and numpy arrays (npz members, model tensors)."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterator
from typing import Any, Optional

from .mutations import _Skip

NAN, INF = float("nan"), float("inf")
GARBAGE_STRINGS = ("", " ", "\x00", "ünïcødé ☃ 𝕏", "\u202e\u200b", "a" * 5000, "../../../../etc/passwd", "%s%n{0}",
                   "null", "1e999", "-0", "\r\n", "中文")
HUGE_INT = 10**30
GIANT_INT = 10**5000  # beyond Python's 4300-digit int() limit when written as text


# --- generic trees (parsed YAML, model dicts, deployment meta) ---------------------------------------


def _walk(tree: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield path + (key,), value
        yield from _walk(value, path + (key,))


def _parent(tree: Any, path: tuple) -> Any:
    node = tree
    for key in path[:-1]:
        node = node[key]
    return node


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"x": value}
    return value


TREE_OPS = ("drop", "rename", "add-key", "nan", "inf", "-inf", "negative", "zero", "huge-int", "giant-int",
            "huge-float", "tiny", "garbage-str", "num-str", "none", "bool", "wrap-list", "wrap-dict", "deep",
            "empty-list", "empty-dict", "float-of-int", "swap-type")


def tree_mutation(tree: Any, rng: random.Random, rule: Callable[[tuple, str, Any, Any], bool],
                  skip: Callable[[tuple], bool] = lambda p: False, depth: int = 60) -> tuple[str, Any, bool]:
    """Change one node of a nested dict/list: returns (name, new tree, certainly invalid per ``rule``)."""
    tree = copy.deepcopy(tree)
    nodes = [(p, v) for p, v in _walk(tree) if not skip(p)]
    if not nodes:
        raise _Skip("empty tree")
    path, old = rng.choice(nodes)
    parent, key = _parent(tree, path), path[-1]
    op = rng.choice(TREE_OPS)
    label = ".".join(map(str, path))
    if op == "drop":
        del parent[key]
        return f"tree-drop:{label}", tree, rule(path, op, old, None)
    if op == "rename":
        if not isinstance(parent, dict):
            raise _Skip("rename in a list")
        new_key = f"{key}_" if rng.random() < 0.5 else str(key)[:-1] or "x"
        if new_key in parent:
            raise _Skip("rename collides")
        parent[new_key] = parent.pop(key)
        return f"tree-rename:{label}", tree, rule(path, op, old, new_key)
    if op == "add-key":
        if not isinstance(old, dict):
            raise _Skip("add-key to a non-mapping")
        old["zz_unknown_key"] = 1
        return f"tree-add-key:{label}", tree, rule(path, op, old, None)
    new = {
        "nan": NAN, "inf": INF, "-inf": -INF, "zero": 0,
        "negative": (-abs(old) - 1) if _is_num(old) else -1,
        "huge-int": HUGE_INT, "giant-int": GIANT_INT, "huge-float": 1e308, "tiny": 5e-324,
        "garbage-str": rng.choice(GARBAGE_STRINGS), "num-str": str(old) if _is_num(old) else "1.0",
        "none": None, "bool": not old if isinstance(old, bool) else True, "wrap-list": [old],
        "wrap-dict": {"value": old}, "deep": _nested(depth), "empty-list": [], "empty-dict": {},
        "float-of-int": float(old) if isinstance(old, int) and not isinstance(old, bool) else 2.5,
        "swap-type": {str: 7, int: "7", float: "7.5", bool: "yes", list: "list", dict: "dict"}.get(type(old), 0),
    }[op]
    if type(new) is type(old) and new == old:
        raise _Skip("no change")
    parent[key] = new
    return f"tree-{op}:{label}", tree, rule(path, op, old, new)


POSITIVE_TIMES = {"dt_s", "tau_mem_s", "tau_syn_s", "duration_s", "tau_mem", "tau_syn"}
NONNEGATIVE_TIMES = {"t_ref_s", "t_early_s", "t_late_s", "t_bias_s"}
POSITIVE_INTS = {"size", "epochs", "batch_size", "weight_levels"}
ENUMS = {"kind", "dataset", "loss", "target", "format"}
LIMITS = {"epochs": 10000, "size": 10**7, "batch_size": 10**9, "weight_levels": 2**16}


def _isinf(v: Any) -> bool:
    return isinstance(v, float) and math.isinf(v)


def _numeric_text(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def value_certain(key: Any, old: Any, new: Any) -> bool:
    """Whether replacing ``old`` by ``new`` under ``key`` certainly makes a file invalid (field meaning only)."""
    if isinstance(new, float) and math.isnan(new):
        return True
    if key in ("format", "version"):
        return new != old
    if isinstance(old, (dict, list)) and not isinstance(new, type(old)):
        return True  # a section replaced by a scalar
    if _is_num(old) and (new is None or isinstance(new, (dict, list))):
        return True
    if isinstance(old, bool) and not isinstance(new, bool):
        return True
    if isinstance(new, float) and not math.isfinite(new) and key in POSITIVE_INTS | {"seed"}:
        return True
    if key in POSITIVE_TIMES | NONNEGATIVE_TIMES:
        if not _is_num(new):
            return not (isinstance(new, str) and _numeric_text(new) and float(new) > 0)
        if _isinf(new) or new < 0:
            return True
        return key in POSITIVE_TIMES and new == 0
    if key in POSITIVE_INTS:
        if not _is_num(new) or _isinf(new):
            return True
        return new != int(new) or new <= 0 or new > LIMITS[key]
    if key == "seed":
        if not _is_num(new):
            return True
        return new != int(new) or not 0 <= new <= 2**32 - 1
    if key in ENUMS:
        return new != old
    if _is_num(old) and isinstance(new, str) and not _numeric_text(new):
        return True
    if _is_num(new) and _isinf(new) and "th" not in str(key):
        return True
    return isinstance(new, int) and abs(new) >= GIANT_INT


# --- arrays (npz members, model tensors) ---------------------------------------------------------------

ARRAY_OPS = ("nan", "inf", "negative", "huge", "zero-all", "drop-row", "add-axis", "transpose", "empty", "scalar",
             "float64", "float16", "int64", "int8", "bool", "complex", "str", "drop", "rename", "extra")


def array_mutation(arrays: dict, rng: random.Random, names: Optional[list[str]] = None) -> tuple[str, dict, str, str]:
    """Change one numpy array of ``arrays`` (a copy): returns (name, arrays, array name, op)."""
    import numpy as np

    arrays = dict(arrays)
    name = rng.choice(names or sorted(arrays))
    a = np.array(arrays[name])
    op = rng.choice(ARRAY_OPS)
    if op in ("nan", "inf", "negative", "huge"):
        flat = a.astype(np.float64 if op in ("nan", "inf") and a.dtype.kind != "f" else a.dtype).reshape(-1).copy()
        if flat.size == 0:
            raise _Skip("empty array")
        nonzero = np.flatnonzero(flat) if op == "negative" else np.arange(flat.size)
        i = int(rng.choice(nonzero)) if nonzero.size else rng.randrange(flat.size)
        if op == "nan":
            flat[i] = np.nan
        elif op == "inf":
            flat[i] = np.inf
        elif op == "negative":
            if flat.dtype.kind == "u" or flat.dtype.kind == "b":
                flat = flat.astype(np.int64)
            flat[i] = -abs(flat[i]) - 1
        else:
            if flat.dtype.kind in "iub":
                flat = flat.astype(np.int64)
                flat[i] = 2**40
            else:
                flat[i] = 1e30
        arrays[name] = flat.reshape(a.shape)
    elif op == "zero-all":
        arrays[name] = np.zeros_like(a)
    elif op == "drop-row":
        if a.ndim == 0 or a.shape[0] == 0:
            raise _Skip("no rows")
        arrays[name] = a[:-1]
    elif op == "add-axis":
        arrays[name] = a[None]
    elif op == "transpose":
        if a.ndim < 2 or a.shape[0] == a.shape[-1]:
            raise _Skip("transpose keeps the shape")
        arrays[name] = a.T
    elif op == "empty":
        arrays[name] = a.reshape(-1)[:0]
    elif op == "scalar":
        arrays[name] = np.array(a.reshape(-1)[0] if a.size else 0)
    elif op in ("float64", "float16", "int64", "int8", "bool", "complex"):
        dtype = {"complex": np.complex64}.get(op, op)
        if np.dtype(dtype) == a.dtype:
            raise _Skip("same dtype")
        with np.errstate(all="ignore"):
            arrays[name] = a.astype(dtype)
    elif op == "str":
        arrays[name] = a.astype(str)
    elif op == "drop":
        del arrays[name]
    elif op == "rename":
        arrays[name + "_renamed"] = arrays.pop(name)
    else:
        arrays["zz_extra"] = np.arange(3)
    return f"array-{op}:{name}", arrays, name, op
