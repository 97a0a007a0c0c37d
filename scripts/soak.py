#!/usr/bin/env python
"""kill -9 soak: kill verbs that write files at random moments and check what they leave behind (issue 15).

    scripts/soak.py --k 50 [--seed 0] [--ops train calibrate itl map export] [--json]

Each trial starts one verb as a real process of the console script in a fresh folder, sends SIGKILL to its
process group at a random moment of its expected run time, and checks the folder:

* the output is absent, or complete: it loads with the loader the verbs use (model, deployment,
  calibration, NIR graph);
* no temporary file (``.NAME.*.tmp``) and no other stray file is left;
* ``itl``: a checkpoint left behind loads, and every checkpoint seen while the run was alive survived the
  kill (so at most the epoch in progress is lost); ``itl --resume`` then finishes the run from that epoch
  (``resumed_from_epoch``), writes a model that loads and removes the checkpoint.

Expected run times are measured once per verb by a run that is not killed (which must succeed). Base files
come from ``scripts/fuzz.py``'s cache (``build/fuzz-cache``). Half the kills fall anywhere in the expected run
time, half in its last third, where outputs and checkpoints are written.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz  # noqa: E402 - the sibling script: base files, console script

OPS: dict[str, list[str]] = {
    "train": ["train", "recipe.yaml", "-o", "out/model.pt", "--epochs", "2"],
    "calibrate": ["calibrate", "--backend", "mock:0", "--target", "bss2", "-o", "out/cal.yaml"],
    "itl": ["itl", "model.pt", "--backend", "mock:ideal", "--train-samples", "1000", "--epochs", "5", "-o",
            "out/itl.pt", "--json"],
    "map": ["map", "model.pt", "--target", "bss2", "-o", "out/dep.npz"],
    "map-xylo": ["map", "model.pt", "--target", "xylo", "-o", "out/xylo.npz"],
    "export": ["export", "model.pt", "-o", "out/graph.nir", "--lossy"],
}
INPUTS = ("recipe.yaml", "model.pt")


def output_of(argv: list[str]) -> str:
    return argv[argv.index("-o") + 1]


def load_output(path: Path) -> None:
    """Raise unless ``path`` is a complete file of its kind."""
    from neurodeploy.interchange import read_nir
    from neurodeploy.modelfile import load_model
    from neurodeploy.targets.bss2.calibration_file import load_calibration
    from neurodeploy.validation.loading import load_checked_deployment

    {".pt": load_model, ".npz": load_checked_deployment, ".yaml": load_calibration, ".nir": read_nir}[path.suffix](path)


def checkpoint_epoch(path: Path) -> Optional[int]:
    """The epoch a checkpoint holds, or None if there is none (it must load if it exists)."""
    import torch

    if not path.exists():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


def start(argv: list[str], folder: Path) -> subprocess.Popen:
    """The console script in its own process group (killed as a whole), output appended to files."""
    with open(folder / "stdout", "ab") as stdout, open(folder / "stderr", "ab") as stderr:
        return subprocess.Popen([str(fuzz.CONSOLE), *argv], cwd=folder, stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=stderr, start_new_session=True)


def stray_files(folder: Path, allowed: set[str]) -> tuple[list[str], list[str]]:
    """(temporary files, other unexpected files) below ``folder``."""
    temps, others = [], []
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_dir() or rel in allowed or rel in ("stdout", "stderr"):
            continue
        (temps if re.search(r"(^|/)\.[^/]+\.tmp$", rel) else others).append(rel)
    return temps, others


def prepare(folder: Path, bases: Any) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in INPUTS:
        (folder / name).write_bytes(bases[name])


def measure(op: str, work: Path, bases: Any) -> float:
    """Seconds one uninterrupted run takes (it must succeed and leave a loadable output, nothing else)."""
    folder = work / f"measure-{op}"
    prepare(folder, bases)
    started = time.monotonic()
    process = start(OPS[op], folder)
    if process.wait(timeout=1800) != 0:
        raise SystemExit(f"soak: {op} fails without a kill: {(folder / 'stderr').read_text()[-2000:]}")
    seconds = time.monotonic() - started
    load_output(folder / output_of(OPS[op]))
    temps, others = stray_files(folder, set(INPUTS) | {output_of(OPS[op])})
    if temps or others:
        raise SystemExit(f"soak: {op} leaves {temps + others} after success")
    return seconds


def trial(index: int, op: str, kill_at: float, work: Path, bases: Any) -> dict:
    folder = work / f"trial-{index:03d}-{op}"
    prepare(folder, bases)
    argv = OPS[op]
    output = folder / output_of(argv)
    checkpoint = output.with_name(output.name + ".checkpoint")
    process = start(argv, folder)
    started = time.monotonic()
    seen_epoch = 0  # the newest checkpoint epoch seen while the run was alive
    while time.monotonic() - started < kill_at and process.poll() is None:
        if op == "itl":
            try:
                seen_epoch = max(seen_epoch, checkpoint_epoch(checkpoint) or 0)
            except Exception:  # noqa: BLE001 - replaced while being read; the next poll sees it
                pass
        time.sleep(0.02)
    finished_first = process.poll() is not None
    if not finished_first:
        os.killpg(process.pid, signal.SIGKILL)
    rc = process.wait()
    record: dict[str, Any] = {"trial": index, "op": op, "kill_at_s": round(kill_at, 2), "killed": not finished_first,
                              "rc": rc, "problems": []}
    problems = record["problems"]
    if finished_first and rc != 0:
        problems.append(f"exit {rc} before the kill: {(folder / 'stderr').read_text()[-500:]}")
    if output.exists():
        try:
            load_output(output)
            record["output"] = "complete"
        except Exception as exc:  # noqa: BLE001 - what the check is for
            record["output"] = "DAMAGED"
            problems.append(f"output does not load: {type(exc).__name__}: {exc}")
    else:
        record["output"] = "absent"
        if finished_first and rc == 0:
            problems.append("exit 0 without an output")
    allowed = set(INPUTS) | {output_of(argv), str(checkpoint.relative_to(folder))}
    temps, others = stray_files(folder, allowed)
    if temps:
        problems.append(f"temporary files left: {temps}")
    if others:
        problems.append(f"stray files left: {others}")
    if op == "itl":
        resume_check(record, folder, checkpoint, output, seen_epoch)
    if not problems:
        shutil.rmtree(folder, ignore_errors=True)
    return record


def resume_check(record: dict, folder: Path, checkpoint: Path, output: Path, seen_epoch: int) -> None:
    """After a kill: the checkpoint loads and kept every epoch seen; ``--resume`` finishes the run from it."""
    problems = record["problems"]
    try:
        kept = checkpoint_epoch(checkpoint)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"checkpoint does not load: {type(exc).__name__}: {exc}")
        return
    record.update(checkpoint_seen=seen_epoch, checkpoint_kept=kept)
    if record["output"] == "complete":
        if kept is not None:
            problems.append("a checkpoint is left beside the finished output")
        return
    if (kept or 0) < seen_epoch:
        problems.append(f"the kill lost checkpointed epochs: epoch {seen_epoch} was saved, {kept} is left")
    argv = OPS["itl"] + (["--resume"] if kept is not None else [])
    (folder / "stdout").write_bytes(b"")
    process = start(argv, folder)
    rc = process.wait(timeout=1800)
    record["resume_rc"] = rc
    if rc != 0:
        problems.append(f"resume failed (exit {rc}): {(folder / 'stderr').read_text()[-500:]}")
        return
    summary = json.loads((folder / "stdout").read_text().strip().splitlines()[-1])
    record["resumed_from_epoch"] = summary.get("resumed_from_epoch")
    if kept is not None and summary.get("resumed_from_epoch") != kept:
        problems.append(f"resumed from epoch {summary.get('resumed_from_epoch')}, the checkpoint holds {kept}")
    # Checkpoints seen before the kill that are gone, plus the epoch in progress (none once all 5 were done).
    record["epochs_lost"] = max(0, seen_epoch - (kept or 0)) + (1 if (kept or 0) < 5 else 0)
    try:
        load_output(output)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"resumed output does not load: {type(exc).__name__}: {exc}")
    temps, others = stray_files(folder, set(INPUTS) | {output_of(OPS["itl"])})
    if temps or others:
        problems.append(f"left after the resumed run: {temps + others}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=50, help="number of kills (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ops", nargs="+", choices=sorted(OPS), default=sorted(OPS))
    parser.add_argument("--cache", type=Path, default=fuzz.ROOT / "build" / "fuzz-cache")
    parser.add_argument("--out", type=Path, default=fuzz.ROOT / "build" / "soak")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args()

    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    bases = fuzz.make_bases(args.cache, log=log)
    sys.path.insert(0, str(fuzz.ROOT))
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    durations = {}
    for op in args.ops:
        durations[op] = measure(op, args.out, bases)
        log(f"soak: {op} takes {durations[op]:.1f} s uninterrupted")
    rng = random.Random(args.seed)
    records = []
    for index in range(args.k):
        op = args.ops[index % len(args.ops)]
        # Half the kills anywhere, half in the last third of the run, where the outputs are written.
        kill_at = durations[op] * (rng.uniform(0.0, 1.05) if index % 2 else rng.uniform(0.7, 1.05))
        record = trial(index, op, kill_at, args.out, bases)
        records.append(record)
        log(f"[{index + 1}/{args.k}] {op:<10} kill at {kill_at:6.2f} s: output {record['output']:<8} "
            + (f"checkpoint {record.get('checkpoint_kept')} resumed from {record.get('resumed_from_epoch')} "
               if op == "itl" else "") + ("; ".join(record["problems"]) or "ok"))
    table: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        row = table[r["op"]]
        row["trials"] += 1
        row["killed"] += r["killed"]
        row[f"output {r['output']}"] += 1
        row["problems"] += bool(r["problems"])
        if r["op"] == "itl" and r.get("resume_rc") == 0:
            row["resumed ok"] += 1
    report = {"k": args.k, "seed": args.seed, "durations_s": durations, "table": table, "trials": records,
              "problems": sum(bool(r["problems"]) for r in records)}
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    if args.json:
        print(json.dumps(report, default=str))
        return
    columns = ["trials", "killed", "output complete", "output absent", "output DAMAGED", "resumed ok", "problems"]
    print(f"{'verb':<11}" + "".join(f"{c:>17}" for c in columns))
    for op in args.ops:
        print(f"{op:<11}" + "".join(f"{table[op].get(c, 0):>17}" for c in columns))
    lost = [r.get("epochs_lost") for r in records if r["op"] == "itl" and r.get("epochs_lost") is not None]
    print(f"\n{args.k} kills; {report['problems']} with problems; itl epochs lost per kill: max "
          f"{max(lost) if lost else '-'} (the epoch in progress); report: {args.out / 'report.json'}")
    for r in records:
        if r["problems"]:
            print(f"trial {r['trial']} {r['op']} (kill at {r['kill_at_s']} s): {'; '.join(r['problems'])}")


if __name__ == "__main__":
    main()
