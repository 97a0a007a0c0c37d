"""The cases of a run: the verbs that read each kind of damaged file, bad arguments of every verb."""

from __future__ import annotations

import io
import random
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .bases import BASE_NAMES, Bases
from .file_kinds import mutate
from .formats import FORMAT_OF, SUFFIX
from .mutations import Mutant


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
