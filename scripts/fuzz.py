#!/usr/bin/env python
"""Fuzz the ``neurodeploy`` command line with damaged files and bad arguments (issue 15).

    scripts/fuzz.py --n 300 [--seed 0] [--kinds model recipe ...] [--jobs 2] [--json]

Each case damages one input (a file of some kind, or one argument), runs one verb of the real CLI
on it in a fresh sandbox folder with a timeout, and classifies what happened:

    clean          exit 2, exactly one visible stderr line ``error: ... (fix: ...)``, nothing written
    accepted       exit 0 on an input that may be valid
    ACCEPTED-BAD   exit 0 on an input that is certainly invalid (NaN weights, a dropped array, ...)
    INTERNAL       exit 1 ``error: internal error: ...``: a raw exception the CLI caught (a missing check)
    TRACEBACK      a Python traceback reached stderr
    CRASH          killed by a signal (segfault, out of memory)
    HANG           still running at the timeout (killed)
    PARTIAL        a file left behind after a failure (the -o file, ``.NAME.*.tmp``, a new folder), a
                   temporary file left after success, or an input changed
    UNCLEAN        any other failure: more than one line, no ``(fix: ...)``, another exit code

File kinds (``--kinds``): model, dep-bss2, dep-xylo, recipe, spec, calibration, data, nir; ``args``
damages the arguments of every verb instead. Mutations: see :data:`FAMILIES` and ``mutate_*``; each
says whether its result is *certainly* invalid (only those can be ACCEPTED-BAD).

Base files (a tiny Yin-Yang model trained for one epoch, its BSS-2 and Xylo deployments, a calibration
of mock:0, a NIR export, a small data file) are made once and cached (``--cache``, default
``build/fuzz-cache``). Cases run in forked children of a process that has imported neurodeploy
(``--runner fork``, the default: the same ``main()`` the console script calls, without paying the
import per case), or as real subprocesses of the console script (``--runner exec``). Failures are
re-run with ``exec`` to confirm them (``--confirm``). The report (``--out``, default ``build/fuzz``)
holds every failing case: its command line (to paste into a shell), the damaged file (kept in the
case's folder), stdout and stderr.

``scripts/soak.py`` kills verbs at random times (``kill -9``) and checks what they leave behind.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import io
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = Path(sys.executable).with_name("neurodeploy")
KINDS = ("model", "dep-bss2", "dep-xylo", "recipe", "spec", "calibration", "data", "nir", "args")
FILE_KINDS = KINDS[:-1]
OUTCOMES = ("clean", "accepted", "ACCEPTED-BAD", "INTERNAL", "TRACEBACK", "CRASH", "HANG", "PARTIAL", "UNCLEAN")
FAILURES = set(OUTCOMES) - {"clean", "accepted"}
SMALL_SAMPLES = 32
MEMORY_LIMIT = 12 * 2**30  # address space of one case (a zip bomb must not take the machine)

NAN, INF = float("nan"), float("inf")
GARBAGE_STRINGS = ("", " ", "\x00", "ünïcødé ☃ 𝕏", "\u202e\u200b", "a" * 5000, "../../../../etc/passwd", "%s%n{0}",
                   "null", "1e999", "-0", "\r\n", "中文")
HUGE_INT = 10**30
GIANT_INT = 10**5000  # beyond Python's 4300-digit int() limit when written as text


# ----------------------------------------------------------------------------------------------------
# Mutants


@dataclass
class Mutant:
    """One damaged input: its bytes (or a special file), whether it is certainly invalid, and what was done."""

    mutation: str
    data: bytes = b""
    certain: bool = False
    special: str = ""  # "dir", "fifo", "dangling", "loop": the path is that instead of a file
    marker: bool = False  # the payload creates PWNED in the case folder if it ever runs


class _Skip(Exception):
    """This mutation does not apply to this input; pick another."""


def _flip_bits(data: bytes, rng: random.Random, count: int) -> bytes:
    buf = bytearray(data)
    for _ in range(count):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def bytes_mutation(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A format-blind change of the bytes: bit flips, truncation, a zeroed/garbled/duplicated chunk."""
    if not data:
        return "bytes-append", b"\x00garbage"
    op = rng.choice(["flip1", "flip8", "flip-head", "truncate", "truncate-tail", "zero-chunk", "random-chunk",
                     "dup-chunk", "insert", "append", "empty", "half"])
    n = len(data)
    if op == "flip1":
        return "bytes-flip1", _flip_bits(data, rng, 1)
    if op == "flip8":
        return "bytes-flip8", _flip_bits(data, rng, 8)
    if op == "flip-head":
        head = min(n, 512)
        return "bytes-flip-head", _flip_bits(data[:head], rng, 2) + data[head:]
    if op == "truncate":
        return "bytes-truncate", data[:rng.randrange(n)]
    if op == "truncate-tail":
        return "bytes-truncate-tail", data[:max(0, n - rng.randint(1, 64))]
    if op == "half":
        return "bytes-half", data[:n // 2]
    if op == "empty":
        return "bytes-empty", b""
    start = rng.randrange(n)
    length = min(n - start, rng.choice([1, 4, 16, 256, 4096]))
    if op == "zero-chunk":
        return "bytes-zero-chunk", data[:start] + b"\x00" * length + data[start + length:]
    if op == "random-chunk":
        return "bytes-random-chunk", data[:start] + rng.randbytes(length) + data[start + length:]
    if op == "dup-chunk":
        return "bytes-dup-chunk", data[:start + length] + data[start:start + length] + data[start + length:]
    if op == "insert":
        return "bytes-insert", data[:start] + rng.randbytes(rng.choice([1, 7, 100])) + data[start:]
    return "bytes-append", data + rng.randbytes(rng.choice([1, 100, 10000]))


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


# --- zip containers (npz, torch) -----------------------------------------------------------------------


def _zip_entries(data: bytes) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.infolist()


def _data_span(data: bytes, info: zipfile.ZipInfo) -> tuple[int, int]:
    """Where a member's (compressed) bytes lie in the archive."""
    offset = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[offset + 26:offset + 30])
    start = offset + 30 + name_len + extra_len
    return start, start + info.compress_size


def _patch_crc(data: bytearray, info: zipfile.ZipInfo, crc: int) -> None:
    data[info.header_offset + 14:info.header_offset + 18] = struct.pack("<I", crc)
    name = info.filename.encode()
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            return
        name_len = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if bytes(data[pos + 46:pos + 46 + name_len]) == name:
            data[pos + 16:pos + 20] = struct.pack("<I", crc)
            return
        pos += 4


def _rezip(data: bytes, change: Callable[[str, bytes], Optional[list[tuple[str, bytes]]]]) -> bytes:
    """Rewrite a zip archive; ``change(name, content)`` returns the entries to write instead (None: keep)."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        for info in src.infolist():
            content = src.read(info)
            replacement = change(info.filename, content)
            for name, body in ([(info.filename, content)] if replacement is None else replacement):
                dst.writestr(zipfile.ZipInfo(name, date_time=info.date_time), body, compress_type=info.compress_type)
    return out.getvalue()


def zip_mutation(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Damage one member of a zip archive: corrupt its (compressed) bytes with or without a matching CRC,
    drop, rename or duplicate it, or swap in a highly compressed bomb."""
    entries = [i for i in _zip_entries(data) if i.compress_size > 0]
    info = rng.choice(entries)
    op = rng.choice(["corrupt", "corrupt-fixcrc", "drop", "rename", "duplicate", "bomb", "huge-header"])
    label = info.filename.rsplit("/", 1)[-1]
    if op in ("corrupt", "corrupt-fixcrc"):
        buf = bytearray(data)
        start, end = _data_span(data, info)
        for _ in range(rng.choice([1, 3])):
            i = rng.randrange(start, end)
            buf[i] ^= 1 << rng.randrange(8)
        if op == "corrupt-fixcrc":
            raw = bytes(buf[start:end])
            try:
                content = raw if info.compress_type == zipfile.ZIP_STORED else zlib.decompress(raw, -15)
            except zlib.error:
                return "zip-corrupt(undecodable):" + label, bytes(buf)
            _patch_crc(buf, info, zlib.crc32(content))
        return f"zip-{op}:{label}", bytes(buf)
    if op == "drop":
        return f"zip-drop:{label}", _rezip(data, lambda n, c: [] if n == info.filename else None)
    if op == "rename":
        return f"zip-rename:{label}", _rezip(data, lambda n, c: [(n + "x", c)] if n == info.filename else None)
    if op == "duplicate":
        return f"zip-duplicate:{label}", _rezip(
            data, lambda n, c: [(n, c), (n, c[: len(c) // 2])] if n == info.filename else None)
    if op == "huge-header":
        if not info.filename.endswith(".npy"):
            raise _Skip("not an npy member")
        header = b"\x93NUMPY\x01\x00" + _npy_header("<f8", (2**40,))
        return f"zip-huge-header:{label}", _rezip(data, lambda n, c: [(n, header + c[-64:])] if n == info.filename
                                                  else None)
    bomb = b"\x93NUMPY\x01\x00" + _npy_header("|u1", (256 * 2**20,)) + b"\x00" * (256 * 2**20)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, bomb if item.filename == info.filename else src.read(item))
    return f"zip-bomb:{label}", out.getvalue()


def _npy_header(descr: str, shape: tuple) -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return struct.pack("<H", len(text)) + text


# --- YAML text -------------------------------------------------------------------------------------------


def yaml_text_mutation(text: str, rng: random.Random) -> tuple[str, bytes, bool]:
    """Damage YAML as text: returns (name, bytes, certainly invalid)."""
    lines = text.splitlines()
    numeric = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_]+:\s*-?[0-9][0-9.e+-]*\s*(#.*)?$", line)]
    op = rng.choice(["alias-bomb", "deep-nest", "giant-int", "invalid-utf8", "nul", "bom", "python-tag", "multi-doc",
                     "tabs", "duplicate-key", "top-list", "top-scalar", "empty", "huge-file", "long-string", "crlf",
                     "timestamp", "binary", "set", "merge", "anchor"])
    if op == "alias-bomb":
        bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for level in range(1, 9):
            prev = chr(ord("a") + level - 1)
            name = chr(ord("a") + level)
            bomb.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        return "yaml-alias-bomb", ("\n".join(bomb) + "\n" + text).encode(), True
    if op == "deep-nest":
        depth = rng.choice([40, 1000, 100000])
        return f"yaml-deep-nest:{depth}", (text + "deep: " + "[" * depth + "]" * depth + "\n").encode(), True
    if op in ("giant-int", "timestamp", "binary", "set") and not numeric:
        raise _Skip("no numeric line")
    if op == "giant-int":
        i = rng.choice(numeric)
        key = lines[i].split(":")[0]
        lines[i] = f"{key}: {'9' * 5000}"
        return f"yaml-giant-int:{key.strip()}", "\n".join(lines).encode(), True
    if op == "timestamp":
        i = rng.choice(numeric)
        key = lines[i].split(":")[0]
        lines[i] = f"{key}: 2001-12-14t21:59:43.10-05:00"
        return f"yaml-timestamp:{key.strip()}", "\n".join(lines).encode(), True
    if op == "binary":
        i = rng.choice(numeric)
        key = lines[i].split(":")[0]
        lines[i] = f"{key}: !!binary aGVsbG8="
        return f"yaml-binary:{key.strip()}", "\n".join(lines).encode(), True
    if op == "set":
        i = rng.choice(numeric)
        key = lines[i].split(":")[0]
        lines[i] = f"{key}: !!set {{1, 2}}"
        return f"yaml-set:{key.strip()}", "\n".join(lines).encode(), True
    if op == "invalid-utf8":
        pos = rng.randrange(len(text) + 1)
        raw = text.encode()
        bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80"])
        return "yaml-invalid-utf8", raw[:pos] + bad + raw[pos:], True
    if op == "nul":
        pos = rng.randrange(len(text) + 1)
        return "yaml-nul", (text[:pos] + "\x00" + text[pos:]).encode(), True
    if op == "bom":
        return "yaml-bom", b"\xef\xbb\xbf" + text.encode(), False
    if op == "python-tag":
        return "yaml-python-tag", (text + "evil: !!python/object/apply:os.system ['touch PWNED']\n").encode(), True
    if op == "multi-doc":
        return "yaml-multi-doc", (text + "\n---\n" + text).encode(), True
    if op == "tabs":
        return "yaml-tabs", re.sub(r"^( +)", lambda m: "\t" * len(m.group(1)), text, flags=re.M).encode(), True
    if op == "duplicate-key":
        return "yaml-duplicate-key", (text + "\n" + lines[0] + "\n").encode(), False
    if op == "top-list":
        return "yaml-top-list", ("- " + "\n  ".join(lines)).encode(), True
    if op == "top-scalar":
        return "yaml-top-scalar", b"just a string\n", True
    if op == "empty":
        return "yaml-empty", rng.choice([b"", b"\n", b"# only a comment\n", b"~\n"]), True
    if op == "huge-file":
        return "yaml-huge-file", (text + "# " + "x" * (33 * 2**20) + "\n").encode(), True
    if op == "long-string":
        return "yaml-long-string", (text.rstrip("\n") + "\nzz_long: " + "x" * 2**20 + "\n").encode(), True
    if op == "crlf":
        return "yaml-crlf", text.replace("\n", "\r\n").encode(), False
    if op == "merge":
        return "yaml-merge", (text + "zz_merge:\n  <<: {a: 1}\n").encode(), True
    return "yaml-anchor", (text + "zz_anchor: &x 1\nzz_ref: *x\n").encode(), True


# ----------------------------------------------------------------------------------------------------
# Reading damaged files the way any reader of the format would (not neurodeploy's code): a file the
# reference reader refuses is certainly invalid; one it reads unchanged is a no-op (valid).


def _reference_object(fmt: str, data: bytes) -> Any:
    if fmt == "pt":
        import torch

        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return _canonical(obj)
    if fmt == "npz":
        import numpy as np

        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {k: _canonical(archive[k]) for k in archive.files}
    if fmt == "yaml":
        import yaml

        return repr(yaml.load(data.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    if fmt == "nir":
        import nir

        with tempfile.NamedTemporaryFile(suffix=".nir") as handle:
            handle.write(data)
            handle.flush()
            graph = nir.read(handle.name, type_check=False)
            return _canonical(_nir_plain(graph))
    raise ValueError(fmt)


def _nir_plain(obj: Any) -> Any:
    """A NIR graph or node as plain dicts, lists and arrays (comparable)."""
    if hasattr(obj, "__dataclass_fields__"):
        return {"type": type(obj).__name__, **{k: _nir_plain(v) for k, v in vars(obj).items()}}
    if isinstance(obj, dict):
        return {k: _nir_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nir_plain(v) for v in obj]
    return obj


def _canonical(obj: Any) -> Any:
    import numpy as np

    if hasattr(obj, "detach"):
        try:
            content = obj.detach().to_dense().contiguous().numpy().tobytes()
        except Exception:  # noqa: BLE001 - meta tensors and other exotics have no bytes to compare
            content = repr(obj).encode()
        return ("tensor", str(obj.dtype), tuple(obj.shape), obj.layout, obj.device.type, content)
    if isinstance(obj, np.ndarray):
        return ("array", str(obj.dtype), obj.shape, obj.tobytes())
    if isinstance(obj, dict):
        return {k: _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    return repr(obj)


def reference_verdict(fmt: str, original: bytes, damaged: bytes) -> str:
    """``invalid`` (the format's own reader refuses it), ``hangs`` (it does not finish), ``same`` (reads as the
    original) or ``changed``.

    Runs in a forked child: a damaged HDF5 or zip file must not crash or stall the fuzzer.
    """
    if damaged == original:
        return "same"
    status = _isolated(lambda: 0 if _reference_object(fmt, damaged) == _reference_object(fmt, original) else 3,
                       timeout=REFERENCE_TIMEOUT)
    return {0: "same", 3: "changed", -2: "hangs"}.get(status, "invalid")


REFERENCE_TIMEOUT = 20.0


def _isolated(function: Callable[[], int], timeout: float = 60.0) -> int:
    """``function()`` in a forked child; its return value, 2 if it raised, -1 if it crashed, -2 if it timed out."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            code = function()
        except BaseException:  # noqa: BLE001 - any failure of the reference reader is the verdict
            code = 2
        os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else -1
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -2
        time.sleep(0.005)


# ----------------------------------------------------------------------------------------------------
# Base files


@dataclass
class Bases:
    """The valid files every mutation starts from (bytes), made once per cache folder."""

    folder: Path
    files: dict[str, bytes] = field(default_factory=dict)

    def __getitem__(self, name: str) -> bytes:
        return self.files[name]


BASE_NAMES = {  # sandbox file name → how it is made
    "recipe.yaml": "tiny recipe: models/yinyang.yaml with 24 hidden neurons, 1 epoch",
    "model.pt": "train recipe.yaml",
    "dep.npz": "map model.pt --target bss2",
    "xylo.npz": "map model.pt --target xylo",
    "cal.yaml": "calibrate --backend mock:0 --target bss2",
    "small.npz": f"{SMALL_SAMPLES} Yin-Yang test samples",
    "graph.nir": "export model.pt --lossy",
    "bss2.yaml": "targets/bss2.yaml",
    "xylo.yaml": "targets/xylo.yaml",
}


def tiny_recipe_text() -> str:
    import yaml

    data = yaml.safe_load((ROOT / "models" / "yinyang.yaml").read_text())
    data["layers"][0]["size"] = 24
    data["training"]["epochs"] = 1
    return yaml.safe_dump(data, sort_keys=False)


def format_stamp() -> str:
    """The file format versions of this neurodeploy: base files of other versions are remade."""
    sys.path.insert(0, str(ROOT))
    from neurodeploy import __version__, deployment, modelfile
    from neurodeploy.targets.bss2 import calibration_file

    return (f"neurodeploy {__version__}, model {modelfile.VERSION}, deployment {deployment.VERSION}, "
            f"calibration {calibration_file.VERSION}")


def make_bases(folder: Path, fresh: bool = False, log: Callable[[str], None] = print) -> Bases:
    """The base files in ``folder``, made with the CLI where missing (or all, with ``fresh``); each must load."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = format_stamp()
    if fresh or not (folder / "stamp.txt").is_file() or (folder / "stamp.txt").read_text() != stamp:
        for name in BASE_NAMES:
            (folder / name).unlink(missing_ok=True)

    def nd(*args: str, timeout: float = 900) -> None:
        log(f"fuzz: making base file: neurodeploy {' '.join(args)}")
        done = subprocess.run([str(CONSOLE), *args], cwd=folder, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"fuzz: could not make a base file: {done.stderr.strip()}")

    if not (folder / "recipe.yaml").is_file():
        (folder / "recipe.yaml").write_text(tiny_recipe_text())
    for name in ("bss2.yaml", "xylo.yaml"):
        if not (folder / name).is_file():
            shutil.copy(ROOT / "targets" / name, folder / name)
    if not (folder / "small.npz").is_file():
        import numpy as np

        sys.path.insert(0, str(ROOT))
        from neurodeploy.data.datasets import load_split

        x, y = load_split("yinyang", "test")
        np.savez(folder / "small.npz", x=x[:SMALL_SAMPLES], y=y[:SMALL_SAMPLES])
    if not (folder / "model.pt").is_file():
        nd("train", "recipe.yaml", "-o", "model.pt", "--epochs", "1")
    if not (folder / "dep.npz").is_file():
        nd("map", "model.pt", "--target", "bss2", "-o", "dep.npz")
    if not (folder / "xylo.npz").is_file():
        nd("map", "model.pt", "--target", "xylo", "-o", "xylo.npz")
    if not (folder / "graph.nir").is_file():
        nd("export", "model.pt", "-o", "graph.nir", "--lossy")
    if not (folder / "cal.yaml").is_file():
        nd("calibrate", "--backend", "mock:0", "--target", "bss2", "-o", "cal.yaml")
    (folder / "stamp.txt").write_text(stamp)
    bases = Bases(folder, {name: (folder / name).read_bytes() for name in BASE_NAMES})
    for path in sorted((ROOT / "tests" / "data" / "nir").glob("*.nir")):
        bases.files[f"golden/{path.name}"] = path.read_bytes()
    return bases


# ----------------------------------------------------------------------------------------------------
# Mutations per file kind


def _torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _npz_bytes(arrays: dict, compressed: bool = True) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _npz_arrays(data: bytes) -> dict:
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _yaml_dump(obj: Any) -> bytes:
    import yaml

    return yaml.dump(obj, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True,
                     width=120).encode()


FOREIGN_JUNK = {
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "gzip": gzip.compress(b"format: neurodeploy.recipe\n" * 10),
    "random": bytes(random.Random(7).randbytes(2048)),
    "text": b"hello, I am not a neurodeploy file\n",
    "json": b'{"format": "neurodeploy.model", "version": 3}',
    "html": b"<!doctype html><html><body>404</body></html>",
}


def _pickle_payload() -> bytes:
    """A pickle that creates PWNED in the working folder when unpickled without restrictions."""
    return b"cos\nsystem\n(S'touch PWNED'\ntR."


def _torch_payload() -> bytes:
    """A torch zip whose data.pkl runs ``touch PWNED`` (torch.load without weights_only would)."""
    good = _torch_bytes({"format": "neurodeploy.model"})
    return _rezip(good, lambda n, c: [(n, _pickle_payload())] if n.endswith("data.pkl") else None)


def _npz_payload() -> bytes:
    """An npz whose member is a pickled object array that runs ``touch PWNED`` if loaded with pickle."""
    header = b"\x93NUMPY\x01\x00" + _npy_header("|O", (1,))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("meta.npy", header + _pickle_payload())
        archive.writestr("x.npy", header + _pickle_payload())
        archive.writestr("y.npy", header + _pickle_payload())
    return buf.getvalue()


FOREIGN_BASES = {  # kind → base files of other kinds it can be confused with
    "model": ["dep.npz", "xylo.npz", "recipe.yaml", "graph.nir", "small.npz", "cal.yaml"],
    "dep-bss2": ["xylo.npz", "model.pt", "small.npz", "graph.nir", "recipe.yaml"],
    "dep-xylo": ["dep.npz", "model.pt", "small.npz", "graph.nir"],
    "recipe": ["bss2.yaml", "cal.yaml", "model.pt", "xylo.yaml"],
    "spec": ["recipe.yaml", "cal.yaml", "model.pt", "dep.npz"],
    "calibration": ["recipe.yaml", "bss2.yaml", "model.pt", "dep.npz"],
    "data": ["dep.npz", "xylo.npz", "model.pt", "graph.nir"],
    "nir": ["model.pt", "dep.npz", "recipe.yaml", "small.npz"],
}
FORMAT_OF = {"model": "pt", "dep-bss2": "npz", "dep-xylo": "npz", "recipe": "yaml", "spec": "yaml",
             "calibration": "yaml", "data": "npz", "nir": "nir"}
SUFFIX = {"pt": ".pt", "npz": ".npz", "yaml": ".yaml", "nir": ".nir"}


def foreign_mutation(kind: str, bases: Bases, rng: random.Random) -> Mutant:
    """A file of another kind, junk, a malicious pickle, or a path that is no regular file."""
    op = rng.choice(["base", "base", "base", "junk", "payload", "special"])
    if op == "base":
        name = rng.choice(FOREIGN_BASES[kind])
        return Mutant(f"foreign:{name}", bases[name], certain=True)
    if op == "junk":
        name = rng.choice(sorted(FOREIGN_JUNK))
        return Mutant(f"foreign-junk:{name}", FOREIGN_JUNK[name], certain=True)
    if op == "payload":
        fmt = FORMAT_OF[kind]
        data = {"pt": _torch_payload, "npz": _npz_payload}.get(fmt, lambda: b"!!python/object/apply:os.system "
                                                               b"['touch PWNED']\n")()
        return Mutant(f"foreign-payload:{fmt}", data, certain=True, marker=True)
    special = rng.choice(["dir", "fifo", "dangling", "loop"])
    return Mutant(f"special:{special}", special=special, certain=True)


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


def _by_reference(fmt: str, base: bytes, name: str, data: bytes, changed_certain: bool = False) -> Mutant:
    verdict = reference_verdict(fmt, base, data)
    if verdict == "same":
        return Mutant(name + "(no-op)", data, False)
    if verdict == "hangs":
        name += "(reader hangs)"
    return Mutant(name, data, verdict in ("invalid", "hangs") or changed_certain)


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


def mutate_nir(base: bytes, bases: Bases, rng: random.Random) -> Mutant:
    import h5py
    import numpy as np

    family = rng.choices(["bytes", "h5", "foreign", "identity"], [3, 7, 1, 0.2])[0]
    if family == "identity":
        return Mutant("identity", base)
    if family == "foreign":
        return foreign_mutation("nir", bases, rng)
    if family == "bytes":
        name, data = bytes_mutation(base, rng)
        return _by_reference("nir", base, name, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.nir"
        path.write_bytes(base)
        with h5py.File(path, "r+") as f:
            nodes = f["node/nodes"]
            node_names = sorted(nodes)
            floats = [(n, k) for n in node_names for k in nodes[n] if isinstance(nodes[n][k], h5py.Dataset)
                      and nodes[n][k].dtype.kind == "f" and nodes[n][k].size]
            op = rng.choice(["nan", "inf", "negative-tau", "zero-tau", "huge", "shape", "drop-node", "unknown-type",
                             "conv-type", "dangling-edge", "drop-edges", "dt", "input-shape", "drop-param",
                             "string-param", "drop-metadata"])
            certain = True
            if op in ("nan", "inf", "huge", "shape", "drop-param", "string-param"):
                if not floats:
                    raise _Skip("no float parameter")
                node, key = rng.choice(floats)
                value = np.array(nodes[node][key][()])
                del nodes[node][key]
                if op == "nan":
                    value.reshape(-1)[0] = np.nan
                elif op == "inf":
                    value.reshape(-1)[0] = np.inf
                elif op == "huge":
                    value.reshape(-1)[0] = 1e30
                    certain = False
                elif op == "shape":
                    value = value.reshape(-1)[:-1] if value.ndim <= 1 else value[:-1]
                if op == "string-param":
                    nodes[node].create_dataset(key, data=np.bytes_(b"ten"))
                elif op != "drop-param":
                    nodes[node].create_dataset(key, data=value)
                name = f"nir-{op}:{node}.{key}"
                if op == "drop-param":
                    certain = key not in ("v_leak", "bias", "v_reset", "r", "w_in", "delay")
            elif op in ("negative-tau", "zero-tau"):
                taus = [(n, k) for n, k in floats if k.startswith("tau")]
                if not taus:
                    raise _Skip("no time constant")
                node, key = rng.choice(taus)
                value = np.array(nodes[node][key][()])
                value.reshape(-1)[0] = -0.01 if op == "negative-tau" else 0.0
                nodes[node][key][...] = value
                name = f"nir-{op}:{node}.{key}"
            elif op == "drop-node":
                node = rng.choice(node_names)
                del nodes[node]
                name = f"nir-drop-node:{node}"
            elif op in ("unknown-type", "conv-type"):
                node = rng.choice(node_names)
                del nodes[node]["type"]
                nodes[node].create_dataset("type", data=np.bytes_(b"FooBar" if op == "unknown-type" else b"Conv2d"))
                name = f"nir-{op}:{node}"
            elif op in ("dangling-edge", "drop-edges"):
                edges = np.array(f["node/edges"][()])
                del f["node/edges"]
                if op == "dangling-edge":
                    edges = np.concatenate([edges, np.array([[edges[0][0], b"ghost"]], dtype=edges.dtype)])
                    f["node"].create_dataset("edges", data=edges.astype("S"))
                else:
                    f["node"].create_dataset("edges", data=np.zeros((0, 2), dtype="S1"))
                name = f"nir-{op}"
            elif op == "dt":
                if "metadata" not in f["node"] or "dt_s" not in f["node/metadata"]:
                    raise _Skip("no dt metadata")
                value = rng.choice([np.nan, -1e-3, 0.0, np.inf, 1e30])
                f["node/metadata/dt_s"][...] = value
                name, certain = f"nir-dt:{value}", value != 1e30
            elif op == "input-shape":
                inputs = [n for n in node_names if "shape" in nodes[n]]
                if not inputs:
                    raise _Skip("no input node")
                node = rng.choice(inputs)
                value = rng.choice([0, -3, 10**12])
                del nodes[node]["shape"]
                nodes[node].create_dataset("shape", data=np.array([value]))
                name = f"nir-input-shape:{node}={value}"
            else:
                if "metadata" not in f["node"]:
                    raise _Skip("no metadata")
                del f["node/metadata"]
                name, certain = "nir-drop-metadata", False
        return Mutant(name, path.read_bytes(), certain)


def mutate(kind: str, bases: Bases, rng: random.Random) -> tuple[str, Mutant]:
    """One damaged file of ``kind``: (the base it came from, the mutant). Retries inapplicable mutations."""
    for _ in range(50):
        if kind == "nir":
            base_name = rng.choice(["graph.nir"] * 3 + sorted(n for n in bases.files if n.startswith("golden/")))
        else:
            base_name = {"model": "model.pt", "dep-bss2": "dep.npz", "dep-xylo": "xylo.npz", "recipe": "recipe.yaml",
                         "spec": rng.choice(["bss2.yaml", "xylo.yaml"]), "calibration": "cal.yaml",
                         "data": "small.npz"}[kind]
        base = bases[base_name]
        try:
            if kind == "model":
                return base_name, mutate_model(base, bases, rng)
            if kind in ("dep-bss2", "dep-xylo"):
                return base_name, mutate_deployment(base, bases, rng, "bss2" if kind == "dep-bss2" else "xylo")
            if kind in ("recipe", "spec", "calibration"):
                return base_name, mutate_yaml(base, bases, rng, kind)
            if kind == "data":
                return base_name, mutate_data(base, bases, rng)
            return base_name, mutate_nir(base, bases, rng)
        except _Skip:
            continue
    raise RuntimeError(f"no applicable mutation of {kind}")


# ----------------------------------------------------------------------------------------------------
# Commands: which verbs read each kind ({F}: the damaged file; other names: the sandbox's base files)

CONSUMERS: dict[str, list[tuple[float, list[str], float]]] = {  # kind → (weight, argv, timeout s)
    "model": [(3, ["evaluate", "{F}", "--data", "small.npz"], 120), (3, ["map", "{F}", "--target", "bss2", "-o",
              "out.npz"], 120), (2, ["map", "{F}", "--target", "xylo", "-o", "out.npz"], 120),
              (1, ["map", "{F}", "--check"], 120), (2, ["export", "{F}", "-o", "out.nir", "--lossy"], 120),
              (2, ["inspect", "{F}"], 60), (0.5, ["itl", "{F}", "--backend", "mock:ideal", "--train-samples", "20",
                                                  "--epochs", "1", "-o", "out.pt"], 240)],
    "dep-bss2": [(3, ["run", "{F}", "--backend", "mock:ideal", "--data", "small.npz"], 120),
                 (2, ["run", "{F}", "--backend", "software", "--data", "small.npz"], 120),
                 (1, ["run", "{F}", "--backend", "mock:0", "--data", "small.npz", "--calibration", "cal.yaml"], 120),
                 (1, ["run", "{F}", "--backend", "mock:0", "--data", "small.npz"], 120), (2, ["inspect", "{F}"], 60)],
    "dep-xylo": [(4, ["run", "{F}", "--backend", "xylo-sim", "--data", "small.npz"], 120),
                 (2, ["run", "{F}", "--backend", "software", "--data", "small.npz"], 120),
                 (2, ["inspect", "{F}"], 60)],
    "recipe": [(3, ["inspect", "{F}"], 60), (3, ["import", "graph.nir", "-o", "out.pt", "--like", "{F}"], 120),
               (0.6, ["train", "{F}", "-o", "out.pt", "--epochs", "1"], 300)],
    "spec": [(3, ["map", "model.pt", "--target", "{F}", "--check"], 120),
             (2, ["map", "model.pt", "--target", "{F}", "-o", "out.npz"], 120), (2, ["inspect", "{F}"], 60)],
    "calibration": [(3, ["map", "model.pt", "--target", "bss2", "--calibration", "{F}", "-o", "out.npz"], 120),
                    (3, ["run", "dep.npz", "--backend", "mock:0", "--calibration", "{F}", "--data", "small.npz"], 120),
                    (2, ["inspect", "{F}"], 60)],
    "data": [(3, ["evaluate", "model.pt", "--data", "{F}"], 120),
             (2, ["run", "dep.npz", "--backend", "mock:ideal", "--data", "{F}"], 120),
             (2, ["run", "xylo.npz", "--backend", "xylo-sim", "--data", "{F}"], 120)],
    "nir": [(3, ["import", "{F}", "-o", "out.pt", "--like", "yinyang"], 120),
            (2, ["import", "{F}", "-o", "out.pt"], 120),
            (1, ["import", "{F}", "-o", "out.pt", "--like", "yinyang", "--readout", "membrane"], 120)],
}
SPEC_CONSUMERS_XYLO_MODEL = "model.pt"  # the tiny Yin-Yang model fits both targets


@dataclass
class Case:
    id: int
    kind: str
    mutation: str
    certain: bool
    argv: list[str]
    timeout: float
    files: dict[str, Any] = field(default_factory=dict)  # sandbox name → bytes, or a Mutant for special files
    outputs: list[str] = field(default_factory=list)  # sandbox names the command may write
    marker: bool = False
    base: str = ""


def _accepted_kinds(argv: list[str]) -> set[str]:
    """Base files of other kinds that a command also reads correctly: ``inspect`` reads every kind, the
    ``software`` backend runs any target's deployment."""
    if argv[0] == "inspect":
        return {"model.pt", "dep.npz", "xylo.npz", "recipe.yaml", "bss2.yaml", "xylo.yaml", "cal.yaml"}
    if argv[0] == "run" and "software" in argv:
        return {"dep.npz", "xylo.npz"}
    return set()


def file_case(case_id: int, kind: str, bases: Bases, rng: random.Random) -> Case:
    base_name, mutant = mutate(kind, bases, rng)
    weights = [w for w, _, _ in CONSUMERS[kind]]
    _, argv, timeout = rng.choices(CONSUMERS[kind], weights)[0]
    fuzzed = "fuzzed" + SUFFIX[FORMAT_OF[kind]]
    argv = [fuzzed if a == "{F}" else a for a in argv]
    if mutant.mutation.split(":")[0] == "foreign" and mutant.mutation.split(":", 1)[1] in _accepted_kinds(argv):
        mutant.certain = False  # a file of another kind that this verb reads as well
    outputs = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    files = {name: bases[name] for name in BASE_NAMES}
    files[fuzzed] = mutant if mutant.special else mutant.data
    return Case(case_id, kind, mutant.mutation, mutant.certain, argv, timeout, files, outputs, mutant.marker, base_name)


# --- arguments -----------------------------------------------------------------------------------------

C, M = True, False  # certainly invalid / maybe valid
BAD_INTS = [("0", C), ("-1", C), ("nan", C), ("inf", C), ("", C), ("abc", C), ("1.5", C), (str(2**63), C),
            (str(10**30), C), ("1e3", M), (" 1", M), ("+1", M), ("0x10", M)]
BAD_FLOATS = [("nan", C), ("inf", C), ("-inf", C), ("-1", C), ("", C), ("abc", C), ("1e999", C), ("NaN", C),
              ("-nan", C), ("0x1p3", M)]
OUTPUT_PATHS = [("", C), (".", C), ("sub", C), ("model.pt/x.out", C), ("x" * 300 + ".out", C), ("sub/", C),
                ("/", C), ("newdir/deeper/x.out", M), ("ü ñ.out", M)]


def _arg_variants() -> list[tuple[str, list[str], bool, float]]:
    """(label, argv, certainly invalid, timeout) for bad values of every verb's arguments."""
    v: list[tuple[str, list[str], bool, float]] = []
    itl = ["itl", "model.pt", "--backend", "mock:ideal", "--train-samples", "20", "--epochs", "1", "-o", "out.pt"]
    train = ["train", "recipe.yaml", "-o", "out.pt", "--epochs", "1"]

    def with_option(base: list[str], option: str, value: str) -> list[str]:
        if option in base:
            i = base.index(option)
            return base[:i + 1] + [value] + base[i + 2:]
        return base + [option, value]

    for value, certain in BAD_INTS + [("10001", C), ("100000", C)]:
        v.append((f"train --epochs {value!r}", with_option(train, "--epochs", value), certain or value == "0x10", 300))
        v.append((f"itl --epochs {value!r}", with_option(itl, "--epochs", value), certain, 240))
    for value, certain in [("-1", C), (str(2**32), C), (str(2**64), C), ("nan", C), ("", C), ("abc", C), ("1.5", C),
                           (str(2**32 - 1), M)]:
        v.append((f"train --seed {value!r}", train + ["--seed", value], certain, 300))
        v.append((f"calibrate --seed {value!r}", ["calibrate", "--backend", "mock:0", "--seed", value], certain, 400))
    for value, certain in [("sub", C), ("missing.yaml", C), ("", C), ("model.pt", C), ("graph.nir", C),
                           ("bss2.yaml", C), ("YINYANG", C), ("dep.npz", C)]:
        v.append((f"train RECIPE={value!r}", ["train", value, "-o", "out.pt", "--epochs", "1"], certain, 300))
    for value, certain in OUTPUT_PATHS + [("recipe.yaml", C)]:
        v.append((f"train -o {value!r}", ["train", "recipe.yaml", "-o", value, "--epochs", "1"], certain, 300))
    for value, certain in [("", C), ("TEST", C), ("valid", C), ("sub", C), ("missing.npz", C), ("model.pt", C),
                           ("recipe.yaml", C), ("dep.npz", C), ("train", M), ("validation", M)]:
        v.append((f"evaluate --data {value!r}", ["evaluate", "model.pt", "--data", value], certain, 120))
        v.append((f"run --data {value!r}", ["run", "dep.npz", "--backend", "mock:ideal", "--data", value],
                  certain, 180))
    for value in ("sub", "missing.pt", "", "recipe.yaml", "dep.npz"):
        v.append((f"evaluate MODEL={value!r}", ["evaluate", value], C, 120))
        v.append((f"export MODEL={value!r}", ["export", value, "-o", "out.nir"], C, 120))
        v.append((f"map MODEL={value!r}", ["map", value, "-o", "out.npz"], C, 120))
        v.append((f"itl MODEL={value!r}", ["itl", value, *itl[2:]], C, 240))
    for value, certain in [("", C), ("nope", C), ("bss3", C), ("mock:-1", C), ("sub", C), ("missing.yaml", C),
                           ("recipe.yaml", C), ("cal.yaml", C), ("BSS2", C), ("xylo", M), ("xylo.yaml", M)]:
        v.append((f"map --target {value!r}", ["map", "model.pt", "--target", value, "-o", "out.npz"], certain, 120))
    for value, certain in BAD_FLOATS + [("0", C), ("1.5", C), ("1e308", C), ("-0.5", C), ("0.5", M), ("1", M)]:
        v.append((f"map --clip-quantile {value!r}", ["map", "model.pt", "--clip-quantile", value, "-o", "out.npz"],
                  certain, 120))
    for value, certain in BAD_INTS + [("5", M)]:
        v.append((f"map --weight-copies {value!r}", ["map", "model.pt", "--weight-copies", value, "-o", "out.npz"],
                  certain, 120))
        v.append((f"itl --weight-copies {value!r}", with_option(itl, "--weight-copies", value), certain, 240))
    for value, certain in [("", C), ("nope", C), ("multi-synapse", M), ("MULTI-SYNAPSE", C)]:
        v.append((f"map --delays {value!r}", ["map", "model.pt", "--delays", value, "-o", "out.npz"], certain, 120))
    v.append(("map --weight-scale 'per-x'", ["map", "model.pt", "--weight-scale", "per-x", "-o", "out.npz"], C, 120))
    for value in ("sub", "missing.yaml", "model.pt", "", "mock-0", "recipe.yaml"):
        v.append((f"map --calibration {value!r}", ["map", "model.pt", "--calibration", value, "-o", "out.npz"], C, 120))
        v.append((f"run --calibration {value!r}", ["run", "dep.npz", "--backend", "mock:0", "--calibration", value,
                                                    "--data", "small.npz"], C, 120))
    for value, certain in OUTPUT_PATHS + [("model.pt", C)]:
        v.append((f"map -o {value!r}", ["map", "model.pt", "-o", value], certain, 120))
        v.append((f"export -o {value!r}", ["export", "model.pt", "-o", value, "--lossy"], certain, 120))
        v.append((f"itl -o {value!r}", with_option(itl, "-o", value), certain, 240))
        v.append((f"import -o {value!r}", ["import", "graph.nir", "-o", value, "--like", "yinyang"], certain, 120))
    v.append(("export -o INPUT (graph.nir as model)", ["export", "graph.nir", "-o", "graph.nir"], C, 120))
    for value, certain in [("mock:-1", C), ("mock:", C), ("mock:x", C), ("mock:0:noise=maybe", C),
                           ("mock:0:bogus=1", C), ("mock:ideal:x", C), ("", C), (" ", C), ("MOCK:0", C),
                           ("mock:99999999999999999999", C), ("mock:1.5", C), ("mock:0x1", C), ("software:1", C),
                           ("xylo-sim", C), ("hxtorch", C), ("mock:0:noise=off", M), ("mock:7", M), ("mock: 0", M),
                           ("mock:+3", M), ("mock:٣", M), ("mock", M)]:
        v.append((f"run --backend {value!r}", ["run", "dep.npz", "--backend", value, "--data", "small.npz"],
                  certain, 120))
    for value, certain in [("mock:0", C), ("mock:ideal", C), ("mock:-1", C)]:
        v.append((f"run xylo --backend {value!r}", ["run", "xylo.npz", "--backend", value, "--data", "small.npz"],
                  certain, 120))
    v.append(("run xylo --calibration", ["run", "xylo.npz", "--backend", "xylo-sim", "--calibration", "cal.yaml",
                                         "--data", "small.npz"], C, 120))
    v.append(("run mock:ideal --calibration (chip 0)", ["run", "dep.npz", "--backend", "mock:ideal", "--calibration",
                                                        "cal.yaml", "--data", "small.npz"], M, 120))
    v.append(("run mock:1 --calibration (chip 0)", ["run", "dep.npz", "--backend", "mock:1", "--calibration",
                                                    "cal.yaml", "--data", "small.npz"], C, 120))
    for value, certain in [("mock:-1", C), ("mock:", C), ("software", C), ("xylo-sim", C), ("", C), ("hxtorch", C),
                           ("mock:99999999999999999999", C)]:
        v.append((f"calibrate --backend {value!r}", ["calibrate", "--backend", value, "-o", "out.yaml"], certain, 400))
    for value in ("tau_mem_s", "=1", "tau_mem_s=", "tau_mem_s=nan", "tau_mem_s=-1", "tau_mem_s=inf", "tau_mem_s=1e300",
                  "bogus=1", "tau_mem_s=abc", "tau_mem_s=0", "v_th=nan", "tau_mem_s=1e-300"):
        v.append((f"calibrate --set {value!r}", ["calibrate", "--backend", "mock:0", "--set", value, "-o", "out.yaml"],
                  C, 400))
    for value, certain in [("", C), (".", C), ("sub", C), ("model.pt/x.yaml", C), ("sub/", C), ("cal.yaml", M)]:
        v.append((f"calibrate -o {value!r}", ["calibrate", "--backend", "mock:0", "-o", value], certain, 400))
    for value in ("model.pt", "model.pt/plots"):
        v.append((f"calibrate --plot {value!r}", ["calibrate", "--backend", "mock:0", "-o", "out.yaml", "--plot",
                                                  value], C, 400))
    for value, certain in [("xylo", C), ("missing.yaml", C), ("recipe.yaml", C)]:
        v.append((f"calibrate --target {value!r}", ["calibrate", "--backend", "mock:0", "--target", value, "-o",
                                                    "out.yaml"], certain, 400))
    for value, certain in [("0", C), ("-1", C), ("nan", C), ("", C), ("abc", C), ("1.5", C)]:
        v.append((f"itl --train-samples {value!r}", with_option(itl, "--train-samples", value), certain, 240))
    for value, certain in BAD_FLOATS + [("0", C), ("1e308", C), ("1e6", C), ("0.001", M)]:
        v.append((f"itl --learning-rate {value!r}", with_option(itl, "--learning-rate", value), certain, 240))
    for value, certain in [("xylo-sim", C), ("mock:-1", C), ("", C), ("software", M), ("mock:ideal:x", C)]:
        v.append((f"itl --backend {value!r}", with_option(itl, "--backend", value), certain, 240))
    v.append(("itl --target xylo", itl + ["--target", "xylo"], C, 240))
    v.append(("itl mock:ideal --calibration (chip 0)", itl + ["--calibration", "cal.yaml"], M, 240))
    v.append(("itl mock:1 --calibration (chip 0)", with_option(itl, "--backend", "mock:1") + ["--calibration",
                                                                                             "cal.yaml"], C, 240))
    v.append(("itl --resume (garbage checkpoint)", itl + ["--resume"], C, 240))
    v.append(("itl --resume (foreign checkpoint)", itl + ["--resume"], C, 240))
    v.append(("itl --resume (no checkpoint)", itl + ["--resume"], M, 240))
    for value, certain in BAD_FLOATS + [("0", C), ("-0", C), ("1e308", C), ("1e-300", C), ("1e-4", M)]:
        v.append((f"import --dt-s {value!r}", ["import", "graph.nir", "-o", "out.pt", "--like", "yinyang", "--dt-s",
                                               value], certain, 120))
    for value, certain in BAD_FLOATS + [("0", C), ("1e308", C), ("1e-300", C), ("2", M)]:
        v.append((f"import --tau-scale {value!r}", ["import", "graph.nir", "-o", "out.pt", "--like", "yinyang",
                                                    "--tau-scale", value], certain, 120))
    for value, certain in [("", C), ("nope", C), ("model.pt", C), ("sub", C), ("digits", C), ("cal.yaml", C)]:
        v.append((f"import --like {value!r}", ["import", "graph.nir", "-o", "out.pt", "--like", value], certain, 120))
    for option in ("--reset", "--readout", "--discretisation"):
        v.append((f"import {option} 'x'", ["import", "graph.nir", "-o", "out.pt", option, "x"], C, 120))
    for value in ("sub", "missing.nir", "", "model.pt", "recipe.yaml"):
        v.append((f"import GRAPH={value!r}", ["import", value, "-o", "out.pt"], C, 120))
    for value in ("sub", "missing", "", "fifo.yaml", "empty.yaml", "sparse.yaml", "/dev/zero", "loop.pt"):
        v.append((f"inspect {value!r}", ["inspect", value], C, 60))
    v += [("unknown verb", ["frobnicate"], C, 60), ("unknown option", ["map", "model.pt", "--frob"], C, 60),
          ("missing argument", ["map"], C, 60), ("--json twice", ["inspect", "model.pt", "--json", "--json"], M, 60),
          ("--version", ["--version"], M, 60), ("-o twice", ["map", "model.pt", "-o", "a.npz", "-o", "b.npz"], M, 120),
          ("map --check -o", ["map", "model.pt", "--check", "-o", "out.npz"], M, 120),
          ("run with no data samples", ["run", "dep.npz", "--data", "empty.npz"], C, 120)]
    return v


ARG_VARIANTS = _arg_variants()


def arg_case(case_id: int, bases: Bases, rng: random.Random) -> Case:
    import numpy as np

    label, argv, certain, timeout = rng.choice(ARG_VARIANTS)
    files: dict[str, Any] = {name: bases[name] for name in BASE_NAMES}
    files["sub"] = Mutant("dir", special="dir")
    files["fifo.yaml"] = Mutant("fifo", special="fifo")
    files["loop.pt"] = Mutant("loop", special="loop")
    files["empty.yaml"] = b""
    files["sparse.yaml"] = Mutant("sparse", special="sparse")
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((0, 4), np.float32), y=np.zeros(0, np.int64))
    files["empty.npz"] = buf.getvalue()
    if "garbage checkpoint" in label:
        files["out.pt.checkpoint"] = b"\x00garbage" * 10
    if "foreign checkpoint" in label:
        files["out.pt.checkpoint"] = bases["model.pt"]
    outputs = [argv[i + 1] for i, a in enumerate(argv) if a in ("-o", "--plot") and i + 1 < len(argv)]
    return Case(case_id, "args", label, certain, list(argv), timeout, files, outputs)


def case_by_id(case_id: int, seed: int, kinds: list[str], bases: Bases) -> Case:
    return next(make_cases(case_id + 1, seed, kinds, bases, case_id))


def make_cases(n: int, seed: int, kinds: list[str], bases: Bases, start: int = 0) -> Iterator[Case]:
    """``n`` cases spread evenly over ``kinds`` (interleaved), reproducible from ``seed``."""
    for i in range(start, n):
        kind = kinds[i % len(kinds)]
        for attempt in range(10):
            rng = random.Random(f"{seed}:{i}" + (f":{attempt}" if attempt else ""))
            try:
                yield arg_case(i, bases, rng) if kind == "args" else file_case(i, kind, bases, rng)
                break
            except Exception:  # noqa: BLE001 - a bug in a mutation must not end the run; it is reported
                print(f"fuzz: making case {i} ({kind}) failed, another one is made:\n{traceback.format_exc()}",
                      file=sys.stderr)


# ----------------------------------------------------------------------------------------------------
# Running a case


def write_sandbox(case: Case, folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, Mutant):
            if content.special == "dir":
                path.mkdir()
            elif content.special == "fifo":
                os.mkfifo(path)
            elif content.special == "dangling":
                path.symlink_to(folder / "no-such-target")
            elif content.special == "loop":
                path.symlink_to(path)
            elif content.special == "sparse":
                with open(path, "wb") as handle:
                    handle.truncate(40 * 2**20)
        else:
            path.write_bytes(content)


def _snapshot(folder: Path) -> dict[str, tuple]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if rel in ("stdout", "stderr"):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                found[rel] = ("dir",)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if os.path.isfile(path) and not \
                    os.path.islink(path) and st.st_size < 2**20 else f"{st.st_size}:{st.st_mtime_ns}"
                found[rel] = ("file", digest)
    return found


def visible_lines(text: str) -> list[str]:
    """Lines as a terminal shows them: ``\\r`` returns to the line's start (progress bars), blanks dropped."""
    shown = []
    for line in text.split("\n"):
        cells: list[str] = []
        col = 0
        for part in re.split(r"(\r|\x1b\[A)", line):
            if part in ("\r", "\x1b[A"):
                col = 0
                continue
            for ch in part:
                if col < len(cells):
                    cells[col] = ch
                else:
                    cells.append(ch)
                col += 1
        rendered = "".join(cells).rstrip()
        if rendered.strip():
            shown.append(rendered)
    return shown


def classify(case: Case, rc: Optional[int], stdout: str, stderr: str, before: dict, after: dict,
             folder: Path) -> tuple[str, str]:
    """(outcome, detail) of a finished case."""
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    if rc == 0:  # a command may overwrite its own outputs
        changed = [k for k in changed if k not in case.outputs and not k.endswith(".checkpoint")]
    temps = [k for k in after if re.match(r"(.*/)?\.[^/]+\.tmp$", k)]
    if (folder / "PWNED").exists():
        return "CRASH", "a payload in the file ran (PWNED exists)"
    if rc is None:
        return "HANG", f"killed after {case.timeout:.0f} s"
    if rc < 0:
        return "CRASH", f"killed by signal {-rc} ({signal.Signals(-rc).name})"
    if "Traceback (most recent call last)" in stderr:
        return "TRACEBACK", stderr.strip().splitlines()[-1][:300]
    lines = visible_lines(stderr)
    if rc == 0:
        if temps:
            return "PARTIAL", f"temporary files left after success: {temps}"
        if changed:
            return "PARTIAL", f"inputs changed: {changed}"
        return ("ACCEPTED-BAD" if case.certain else "accepted"), ""
    if new or changed:
        return "PARTIAL", f"left after exit {rc}: new {new}, changed {changed}"
    if rc == 1 and lines and lines[-1].startswith("error: internal error:"):
        return "INTERNAL", lines[-1][:400]
    check_report = case.argv[:1] == ["map"] and "--check" in case.argv and visible_lines(stdout)[-1:] and \
        visible_lines(stdout)[-1].endswith("violation(s)")
    if rc == 2 and check_report and not lines:
        return "clean", ""
    if rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "(fix: " in lines[0]:
        return "clean", ""
    return "UNCLEAN", f"exit {rc}, {len(lines)} stderr line(s): " + " | ".join(lines)[:400]


@dataclass
class Running:
    case: Case
    folder: Path
    pid: int
    started: float
    before: dict
    popen: Optional[subprocess.Popen] = None


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _argv(case: Case) -> list[str]:
    return list(case.argv)


def launch(case: Case, folder: Path, runner: str) -> Running:
    write_sandbox(case, folder)
    before = _snapshot(folder)
    stdout = open(folder / "stdout", "wb")  # noqa: SIM115 - closed after the fork/spawn
    stderr = open(folder / "stderr", "wb")  # noqa: SIM115
    try:
        if runner == "exec":
            popen = subprocess.Popen([str(CONSOLE), *_argv(case)], cwd=folder, stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=stderr, start_new_session=True, preexec_fn=_limit_memory)
            return Running(case, folder, popen.pid, time.monotonic(), before, popen)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: the console script's main() in the sandbox
            code = 1
            try:
                os.setsid()
                _limit_memory()
                os.chdir(folder)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(stdout.fileno(), 1)
                os.dup2(stderr.fileno(), 2)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                from neurodeploy.cli import main

                try:
                    main(args=_argv(case), prog_name="neurodeploy")
                    code = 0
                except SystemExit as exit_:
                    if exit_.code is None or isinstance(exit_.code, int):
                        code = exit_.code or 0
                    else:
                        print(exit_.code, file=sys.stderr)
                        code = 1
            except BaseException:  # noqa: BLE001 - what the interpreter would print, then exit 1
                traceback.print_exc()
                code = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        return Running(case, folder, pid, time.monotonic(), before)
    finally:
        stdout.close()
        stderr.close()


def _exited(pid: int) -> Optional[int]:
    """The exit code (negative: a signal) of a child that has exited, without reaping it (its process group
    id stays reserved, so that killing the group cannot hit anyone else's processes); None while it runs."""
    found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if found is None or found.si_pid == 0:
        return None
    return found.si_status if found.si_code == os.CLD_EXITED else -found.si_status


def _reap(job: Running) -> None:
    """Kill what is left of the case's process group (its own children), then reap the case's process."""
    try:
        os.killpg(job.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if job.popen is not None:
        job.popen.wait()
    else:
        os.waitpid(job.pid, 0)


def finish(job: Running, rc: Optional[int]) -> dict:
    case, folder = job.case, job.folder
    stdout = (folder / "stdout").read_text(errors="replace")
    stderr = (folder / "stderr").read_text(errors="replace")
    after = _snapshot(folder)
    outcome, detail = classify(case, rc, stdout, stderr, job.before, after, folder)
    return {"id": case.id, "kind": case.kind, "mutation": case.mutation, "certain": case.certain,
            "outcome": outcome, "detail": detail, "rc": rc, "seconds": round(time.monotonic() - job.started, 2),
            "argv": case.argv, "folder": str(folder), "base": case.base,
            "file": next((str(folder / a) for a in case.argv if a.startswith("fuzzed.")), None),
            "command": f"cd {shlex.quote(str(folder))} && neurodeploy {shlex.join(case.argv)}",
            "stderr": stderr[-4000:], "stdout": stdout[-2000:]}


def run_cases(cases: Iterator[Case], work: Path, runner: str, jobs: int, keep: str,
              on_result: Callable[[dict, Case], None], stop: Callable[[], bool] = lambda: False) -> bool:
    """Run cases ``jobs`` at a time; a failing case's folder is kept (``keep``: failures | all | none).
    Once ``stop()`` says so, no further case starts; returns whether that happened."""
    running: list[Running] = []
    pending = iter(cases)
    exhausted = stopped = False
    while running or not exhausted:
        while not exhausted and len(running) < jobs:
            if stop():
                exhausted = stopped = True
                break
            case = next(pending, None)
            if case is None:
                exhausted = True
                break
            folder = work / f"case-{case.id:05d}"
            if folder.exists():
                shutil.rmtree(folder)
            running.append(launch(case, folder, runner))
        time.sleep(0.02)
        for job in list(running):
            rc = _exited(job.pid)
            timed_out = rc is None and time.monotonic() - job.started > job.case.timeout
            if rc is None and not timed_out:
                continue
            _reap(job)
            running.remove(job)
            result = finish(job, rc)
            if keep == "none" or (keep == "failures" and result["outcome"] not in FAILURES):
                shutil.rmtree(job.folder, ignore_errors=True)
            on_result(result, job.case)
    return stopped


def source_stamp() -> tuple:
    """When neurodeploy's sources last changed: forked cases run the code imported at the start, so the
    fuzzer restarts itself (``--state``) when someone edits it meanwhile."""
    latest, count = 0, 0
    for dirpath, _, filenames in os.walk(ROOT / "neurodeploy"):
        for name in filenames:
            if name.endswith(".py"):
                latest = max(latest, os.stat(os.path.join(dirpath, name)).st_mtime_ns)
                count += 1
    return latest, count


def preload() -> None:
    """Import what the verbs import, so that forked cases start warm (no threads are started)."""
    sys.path.insert(0, str(ROOT))
    import neurodeploy.cli  # noqa: F401
    from neurodeploy.core.fused import kernel_status
    from neurodeploy.targets.registry import all_targets
    from neurodeploy.workflows import (calibrate, doctor, evaluate, inspect, interchange, itl,  # noqa: F401
                                       map, run, targets, train)

    all_targets()
    kernel_status()


# ----------------------------------------------------------------------------------------------------
# Report


def table(results: list[dict]) -> str:
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        counts[r["kind"]][r["outcome"]] += 1
        counts["total"][r["outcome"]] += 1
    width = max(len(o) for o in OUTCOMES) + 1
    lines = [f"{'kind':<12}{'cases':>6}" + "".join(f"{o:>{width}}" for o in OUTCOMES)]
    for kind in [k for k in KINDS if k in counts] + ["total"]:
        row = counts[kind]
        lines.append(f"{kind:<12}{sum(row.values()):>6}" + "".join(f"{row.get(o, 0):>{width}}" for o in OUTCOMES))
    return "\n".join(lines)


def failure_groups(results: list[dict]) -> list[tuple[str, int, dict]]:
    """Failures grouped by (outcome, verb, kind, mutation family, message shape): one example each."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        if r["outcome"] not in FAILURES:
            continue
        family = r["mutation"].split(":")[0]
        detail = re.sub(r"[0-9]+", "N", re.sub(r"/[^ ]*", "PATH", r["detail"]))[:120]
        groups[f"{r['outcome']} | {r['argv'][0] if r['argv'] else ''} | {r['kind']} {family} | {detail}"].append(r)
    return sorted(((k, len(v), v[0]) for k, v in groups.items()), key=lambda g: -g[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="number of cases (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--jobs", type=int, default=2, help="cases run at the same time (default 2)")
    parser.add_argument("--runner", choices=["fork", "exec"], default="fork")
    parser.add_argument("--confirm", type=int, default=100,
                        help="re-run up to this many failing cases as real subprocesses (default 100)")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "fuzz-cache", help="base files")
    parser.add_argument("--fresh", action="store_true", help="remake the base files")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "fuzz", help="report and failing cases")
    parser.add_argument("--keep", choices=["failures", "all", "none"], default="failures")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)  # results so far, after a restart
    args = parser.parse_args()

    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    bases = make_bases(args.cache, args.fresh and not args.state, log)
    stamp = source_stamp()
    if args.runner == "fork":
        preload()
    work = args.out / "cases"
    results: list[dict] = []
    started = time.monotonic()
    if args.state:
        state = json.loads(args.state.read_text())
        results, started = state["results"], started - state["seconds"]
        log(f"fuzz: restarted after a change of neurodeploy's sources, at case {len(results)}")
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)

    failing_cases: dict[int, Case] = {}

    def on_result(result: dict, case: Case) -> None:
        results.append(result)
        if len(results) % 100 == 0:  # a run killed meanwhile continues with --state OUT/state.json
            (args.out / "state.json").write_text(json.dumps({"results": results,
                                                             "seconds": time.monotonic() - started}, default=str))
        if result["outcome"] in FAILURES and len(failing_cases) < args.confirm:
            failing_cases[case.id] = case
        if result["outcome"] in FAILURES:
            log(f"[{len(results)}/{args.n}] #{result['id']:<5} {result['outcome']:<12} {result['kind']:<11} "
                f"{result['mutation'][:50]:<50} "
                f"{result['detail'][:100]}")
        elif len(results) % 50 == 0:
            log(f"[{len(results)}/{args.n}] {time.monotonic() - started:.0f} s")

    start = max((r["id"] for r in results), default=-1) + 1
    restart = run_cases(make_cases(args.n, args.seed, args.kinds, bases, start), work, args.runner, args.jobs,
                        args.keep, on_result, stop=lambda: args.runner == "fork" and source_stamp() != stamp)
    if restart:
        state_file = args.out / "state.json"
        state_file.write_text(json.dumps({"results": results, "seconds": time.monotonic() - started}, default=str))
        argv: list[str] = []
        for i, arg in enumerate(sys.argv[1:]):
            if arg != "--state" and sys.argv[i] != "--state":  # sys.argv[i]: the argument before this one
                argv.append(arg)
        os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv, "--state", str(state_file)])
    results.sort(key=lambda r: r["id"])
    for result in results:
        if result["outcome"] in FAILURES and result["id"] not in failing_cases and len(failing_cases) < args.confirm:
            failing_cases[result["id"]] = case_by_id(result["id"], args.seed, args.kinds, bases)

    failing = [r for r in results if r["outcome"] in FAILURES]
    if args.runner == "fork" and args.confirm and failing:
        by_id = {r["id"]: r for r in failing if r["id"] in failing_cases}
        log(f"fuzz: confirming {len(by_id)} failing case(s) as real subprocesses")
        again = [failing_cases[i] for i in sorted(by_id)]
        confirm_dir = args.out / "confirm"
        shutil.rmtree(confirm_dir, ignore_errors=True)
        confirm_dir.mkdir(parents=True)

        def on_confirm(result: dict, case: Case) -> None:
            by_id[result["id"]]["confirmed_by_exec"] = result["outcome"]

        run_cases(iter(again), confirm_dir, "exec", args.jobs, "none", on_confirm)

    seconds = time.monotonic() - started
    summary = {kind: dict(Counter(r["outcome"] for r in results if r["kind"] == kind)) for kind in args.kinds}
    report = {"n": len(results), "seed": args.seed, "runner": args.runner, "seconds": round(seconds, 1),
              "table": summary, "total": dict(Counter(r["outcome"] for r in results)),
              "groups": [{"group": k, "count": n, "example": ex["command"], "mutation": ex["mutation"],
                          "stderr": ex["stderr"][-600:]} for k, n, ex in failure_groups(results)],
              "failures": failing,
              "cases": [{k: r[k] for k in ("id", "kind", "mutation", "certain", "outcome", "rc", "seconds")}
                        | {"verb": r["argv"][0] if r["argv"] else ""} for r in results]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    if args.json:
        print(json.dumps(report, default=str))
        return
    print(table(results))
    print(f"\n{len(results)} cases in {seconds:.0f} s ({args.runner}); report with every failing case: "
          f"{args.out / 'report.json'}")
    for key, count, example in failure_groups(results)[:60]:
        confirmed = example.get("confirmed_by_exec")
        print(f"\n{count:>4} x {key}" + (f" [exec: {confirmed}]" if confirmed else ""))
        print(f"       e.g. {example['mutation']}: {example['command']}")


if __name__ == "__main__":
    main()
