"""Faults of an emulated chip and what the tools do about them: the table of docs/reliability.md.

For one model (``models/yinyang_hw.yaml`` as the README's demo) and one mock chip:

1. ``calibrate`` the chip without faults, and with each fault switched on (what it reports:
   circuits calibrated, the failed ones against the circuits the fault broke, or its error);
2. ``map --weight-copies 25 --calibration ...`` with the fault-free calibration ("without the
   work-around": a calibration that does not know the fault) and, for dead and stuck circuits, with
   the calibration made on the faulty chip ("with": its failed circuits are never placed);
3. ``run`` each deployment on the faulty backend (test split, 1000 samples): accuracy and the
   fault counters, or the one-line error it stopped with (``run`` does not retry);
4. ``itl`` (1 epoch over 2000 training samples, the fault-free calibration) on the faulty backend:
   the runs it retried and its test accuracy before and after, or its error.

    python benchmarks/faults.py /tmp/f/hw.pt --chip 0 --keep /tmp/f/faults
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurodeploy.api import for_backend
from neurodeploy.backends.base import readout_scores
from neurodeploy.backends.mock.chip import MockChip, parse_chip
from neurodeploy.backends.registry import get_backend
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import NeurodeployError
from neurodeploy.itl.checkpoint import checkpoint_path
from neurodeploy.scoring import accuracy
from neurodeploy.workflows.calibrate import calibrate_chip
from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import BATCH, run

WEIGHT_COPIES = 25
# (fault spec, whether calibrating on the faulty chip is the work-around)
FAULTS = [("dead:0.02", True), ("dead:0.05", True), ("stuck:0.01", True), ("drop:0.001", False),
          ("drop:0.01", False), ("delay:0.001", False), ("delay:0.01", False), ("disconnect:0.05", False),
          ("disconnect:0.5", False)]
FAULT_COUNTERS = ("dead_neurons", "stuck_neurons", "events_dropped_fault", "events_delayed", "events_dropped")


def _name(chip: int, fault: str) -> str:
    return f"mock:{chip}" + (f":faults={fault}" if fault else "")


def _file(fault: str) -> str:
    return fault.replace(":", "_") or "none"


def calibrated(chip: int, fault: str, folder: Path, reuse: bool) -> dict:
    """``calibrate`` on the (faulty) chip: its summary, or the one-line error it stopped with."""
    path = folder / f"cal-{_file(fault)}.yaml"
    summary_path = path.with_suffix(".json")
    if reuse and summary_path.exists():
        return json.loads(summary_path.read_text())
    started = time.perf_counter()
    try:
        summary = calibrate_chip(_name(chip, fault), output=path, progress=False)
        row = {"file": str(path), "calibrated": summary["calibrated"], "failed": summary["failed"]}
    except NeurodeployError as error:
        row = {"file": None, "error": error.one_line()}
    row["seconds"] = round(time.perf_counter() - started, 1)
    broken = get_backend(_name(chip, fault))._chip
    row["broken_circuits"] = sorted({*broken.dead.tolist(), *broken.stuck.circuit.tolist()})
    summary_path.write_text(json.dumps(row))
    return row


def deployed(model: str, calibration: str, folder: Path, tag: str) -> Path:
    out = folder / f"{Path(model).stem}.{tag}.npz"
    map_model(model, "bss2", out, calibration=calibration, weight_copies=WEIGHT_COPIES)
    return out


def trial(deployment: Path, backend: str, seed: int) -> float:
    """Accuracy on the test split on a fresh ``backend`` with noise seed ``seed``, batch by batch as ``run``."""
    chip, _, effects = parse_chip(backend)
    engine = MockChip(chip, effects, seed=seed)
    dep = for_backend(load_deployment(deployment), engine)
    x, y = load_split(dep.meta["dataset"], "test")
    times = encode(x, dep.meta["encoding"])
    scores = [readout_scores(dep, engine.run(dep, times[s:s + BATCH])) for s in range(0, len(y), BATCH)]
    return accuracy(torch.cat(scores), y)


def ran(deployment: Path, backend: str, repeats: int) -> dict:
    """``run`` on the test split: accuracy and the fault counters, or the one-line error it stopped with; and
    the accuracy over ``repeats`` trials (noise seeds 0, 1, ...: other noise and other event faults)."""
    try:
        result = run(deployment, backend)
    except NeurodeployError as error:
        return {"accuracy": None, "error": error.one_line()}
    trials = [result["accuracy"]]
    for seed in range(1, repeats):
        try:
            trials.append(trial(deployment, backend, seed))
        except NeurodeployError:
            break  # a disconnecting backend: the trials so far
    return {"accuracy": result["accuracy"], "trials": trials,
            "counters": {k: v for k, v in result["counters"].items() if k in FAULT_COUNTERS}}


def tuned(model: str, backend: str, calibration: str, folder: Path, samples: int) -> dict:
    """``itl`` on the (faulty) backend: runs retried, test accuracy before and after, or its error."""
    out = folder / f"itl.{_file(backend.partition('faults=')[2])}.pt"
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        summary = itl(model, out, backend=backend, calibration=calibration, epochs=1, train_samples=samples,
                      weight_copies=WEIGHT_COPIES, progress=False)
    except NeurodeployError as error:
        return {"error": error.one_line(), "seconds": round(time.perf_counter() - started)}
    finally:
        checkpoint_path(out).unlink(missing_ok=True)
    return {"runs_retried": summary["runs_retried"], "test_accuracy_before": summary["test_accuracy_before"],
            "test_accuracy_after": summary["test_accuracy_after"], "seconds": round(time.perf_counter() - started)}


def measure(model: str, chip: int, folder: Path, reuse: bool, itl_samples: int, repeats: int) -> dict:
    clean = calibrated(chip, "", folder, reuse)
    base = deployed(model, clean["file"], folder, "none")
    rows = []
    for fault, recalibrate in [("", False), *FAULTS]:
        row = {"fault": fault or "none", "calibrate": clean if not fault else calibrated(chip, fault, folder, reuse),
               "without": ran(base, _name(chip, fault), repeats)}
        if recalibrate and row["calibrate"]["file"]:
            row["with"] = ran(deployed(model, row["calibrate"]["file"], folder, _file(fault)), _name(chip, fault),
                              repeats)
        row["itl"] = tuned(model, _name(chip, fault), clean["file"], folder, itl_samples)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"model": model, "chip": chip, "weight_copies": WEIGHT_COPIES, "rows": rows, "itl_samples": itl_samples,
            "repeats": repeats}


def percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def accuracies(ran_row: dict) -> str:
    """``run``'s accuracy, and mean ± std over the trials."""
    trials = ran_row.get("trials") or []
    if len(trials) < 2:
        return percent(ran_row.get("accuracy"))
    return (f"{percent(ran_row['accuracy'])} ({100 * np.mean(trials):.1f} ± {100 * np.std(trials, ddof=1):.1f}, "
            f"n={len(trials)})")


def _error(text: str) -> str:
    return "error: " + text.split(" (fix:")[0]


def table(result: dict) -> str:
    """One row per fault: what calibrate, run and itl reported, and the accuracies (markdown)."""
    lines = ["| fault:rate | calibrate on the faulty chip | run: counters | run: accuracy, fault-free calibration "
             "| run: accuracy, calibration of the faulty chip | itl: runs retried, test before → after |",
             "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        cal = row["calibrate"]
        if cal.get("error"):
            said = _error(cal["error"])
        else:
            failed, broken = set(cal["failed"]), set(cal["broken_circuits"])
            said = f"{cal['calibrated']}/512 calibrated" + (
                f"; failed: {len(failed & broken)} of the {len(broken)} broken circuits, {len(failed - broken)} others"
                if broken or failed else "")
        without = row["without"]
        if without.get("error"):
            shown = _error(without["error"])
        else:
            counters = without.get("counters") or {}
            shown = ", ".join(f"{k} {v}" for k, v in counters.items() if k != "events_dropped" or v) or "–"
        with_text = "–"
        if "with" in row:
            counted = row["with"].get("counters") or {}
            extra = ", ".join(f"{k} {v}" for k, v in counted.items() if k.endswith("neurons"))
            with_text = f"{accuracies(row['with'])}; {extra}"
        loop = row["itl"]
        itl_text = _error(loop["error"]) if loop.get("error") else (
            f"{loop['runs_retried']}; {percent(loop['test_accuracy_before'])} → {percent(loop['test_accuracy_after'])}")
        lines.append(f"| {row['fault']} | {said} | {shown} | {accuracies(without)} | {with_text} "
                     f"| {itl_text} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model file (.pt), e.g. trained from models/yinyang_hw.yaml")
    parser.add_argument("--chip", type=int, default=0)
    parser.add_argument("--keep", help="folder to keep calibrations and deployments in")
    parser.add_argument("--reuse", action="store_true", help="reuse the calibrations in --keep")
    parser.add_argument("--itl-samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5, help="trials of each run (noise seeds 0, 1, ...)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = measure(args.model, args.chip, folder, args.reuse, args.itl_samples, args.repeats)
    print(json.dumps(result) if args.json else table(result))


if __name__ == "__main__":
    main()
