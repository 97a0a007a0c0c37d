"""Several chips in the loop vs one: accuracy of the trained model on the training chips and on a held-out one.

Trains ``MODEL`` in the loop (a) on one chip (``--single``, default mock:0) and (b) on several at once
(``--chips``, default mock:0-3, one set of weights, gradients averaged over the chips), with the same epochs and
training samples; maps the model as given and both results (``map --target bss2``, no calibration: ``run``
applies each chip's own) and runs each on every chip of ``--evaluate`` (default mock:0-4, chip 4 held out) with
its calibration, ``--repeat`` times. Prints one JSON line per model, then a markdown table: accuracy per chip
(mean over the repeats), the mean over the several-chip run's chips and over the held-out ones, the mean and
spread (sample std) over all evaluated chips, and the itl wall time.

    python benchmarks/itl_chips.py MODEL --calibration '/tmp/cal/mock-{chip}.yaml' --epochs 2 \
        --train-samples 1000 --keep OUTDIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

from neurodeploy.backends.registry import expand_backends
from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--calibration", required=True, help="per-chip pattern, e.g. cal/mock-{chip}.yaml")
    parser.add_argument("--single", default="mock:0")
    parser.add_argument("--chips", default="mock:0-3")
    parser.add_argument("--evaluate", default="mock:0-4")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nproc", type=int, default=1, help="processes for the several-chip run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", required=True)
    args = parser.parse_args()
    keep = Path(args.keep)
    keep.mkdir(parents=True, exist_ok=True)
    settings = {"epochs": args.epochs, "train_samples": args.train_samples, "learning_rate": args.learning_rate,
                "seed": args.seed, "progress": False}
    single_cal = args.calibration.replace("{chip}", args.single.split(":")[1])
    models: dict[str, tuple[Path, Optional[dict]]] = {"as given": (Path(args.model), None)}
    for label, backend, calibration, nproc in (("itl " + args.single, args.single, single_cal, 1),
                                               ("itl " + args.chips, args.chips, args.calibration, args.nproc)):
        out = keep / f"{label.replace(' ', '_').replace(':', '')}.pt"
        started = time.perf_counter()
        summary = itl(args.model, out, backend=backend, calibration=calibration, nproc=nproc, **settings)
        models[label] = (out, {"itl_seconds": time.perf_counter() - started, "kept_epoch": summary["kept_epoch"],
                               "itl_test_before": summary["test_accuracy_before"],
                               "itl_test_after": summary["test_accuracy_after"]})
    names = expand_backends(args.evaluate)
    rows = []
    for label, (path, trained) in models.items():
        deployment = keep / f"{path.stem}.npz"
        map_model(path, "bss2", deployment)
        result = run(deployment, args.evaluate, calibration=args.calibration, repeat=args.repeat)
        per_chip = {name: result["per_backend"][name]["mean"] for name in names}
        row = {"model": label, "per_chip": per_chip, "mean": result["across_chips"]["mean"],
               "spread": result["across_chips"]["std"], **(trained or {})}
        rows.append(row)
        print(json.dumps(row), flush=True)
    trained_on = set(expand_backends(args.chips))
    held_out = [n for n in names if n not in trained_on]
    head = " | ".join(n.split(":")[1] for n in names)
    print(f"\n| model | chip {head} | mean over {args.chips} | held out ({', '.join(held_out) or '-'}) "
          f"| mean over {args.evaluate} | spread (std over chips) | itl time |")
    print("|---|" + "---|" * len(names) + "---|---|---|---|---|")
    for row in rows:
        cells = " | ".join(f"{100 * row['per_chip'][n]:.1f} %" for n in names)
        seconds = f"{row['itl_seconds']:.0f} s" if "itl_seconds" in row else "-"
        on = sum(row["per_chip"][n] for n in names if n in trained_on) / max(1, len(trained_on & set(names)))
        away = "-" if not held_out else f"{100 * sum(row['per_chip'][n] for n in held_out) / len(held_out):.1f} %"
        print(f"| {row['model']} | {cells} | {100 * on:.1f} % | {away} | {100 * row['mean']:.1f} % | "
              f"{100 * row['spread']:.1f} pt | {seconds} |")

if __name__ == "__main__":
    main()
