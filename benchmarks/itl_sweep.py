"""Yin-Yang on mock chips: accuracy after mapping vs after in-the-loop training, and transfer.

For each chip: ``itl`` the model on it (with its calibration, or none), map the result (with the
same calibration) and run it on the chip; the model trained on the first chip is also mapped and
run on every other chip (transfer). One JSON line per measurement, then a markdown table.

    python benchmarks/itl_sweep.py MODEL --chips 0 1 2 3 4 --calibrations DIR --epochs 3 \
        --train-samples 2000 --keep OUTDIR [--transfer-to 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--chips", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--calibrations", help="folder with mock-N.yaml; omit for uncalibrated chips")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--keep", required=True)
    parser.add_argument("--transfer-to", type=int, nargs="*", help="chips to run the first chip's model on "
                        "(default: the other --chips)")
    args = parser.parse_args()
    keep = Path(args.keep)
    keep.mkdir(parents=True, exist_ok=True)
    stem = Path(args.model).stem
    cal = lambda chip: None if args.calibrations is None else Path(args.calibrations) / f"mock-{chip}.yaml"  # noqa: E731
    rows = []
    for chip in args.chips:
        trained = keep / f"{stem}.itl-chip{chip}.pt"
        summary = itl(args.model, trained, backend=f"mock:{chip}", calibration=cal(chip), epochs=args.epochs,
                      train_samples=args.train_samples, learning_rate=args.learning_rate, progress=False,
                      uncalibrated=args.calibrations is None)
        deployment = keep / f"{stem}.itl-chip{chip}.npz"
        map_model(trained, "bss2", deployment, calibration=cal(chip))
        after = run(deployment, f"mock:{chip}")["accuracy"]
        row = {"chip": chip, "calibrated": args.calibrations is not None, "mapped": summary["test_accuracy_before"],
               "itl_in_loop": summary["test_accuracy_after"], "itl_map_run": after, "kept_epoch": summary["kept_epoch"],
               "validation_before": summary["validation_accuracy_before"],
               "validation_after": summary["validation_accuracy_after"], "alignment": summary["alignment"]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    # Transfer: the model trained in the loop on the first chip, mapped and run on other chips.
    source = keep / f"{stem}.itl-chip{args.chips[0]}.pt"
    for chip in args.chips[1:] if args.transfer_to is None else args.transfer_to:
        deployment = keep / f"{stem}.itl-chip{args.chips[0]}-on-chip{chip}.npz"
        map_model(source, "bss2", deployment, calibration=cal(chip))
        result = run(deployment, f"mock:{chip}")
        print(json.dumps({"transfer_from": args.chips[0], "chip": chip, "accuracy": result["accuracy"],
                          "warnings": result["warnings"]}), flush=True)
    print("| chip | after mapping | after itl (in the loop) | after itl (map + run) | kept epoch |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['chip']} | {100 * r['mapped']:.1f} % | {100 * r['itl_in_loop']:.1f} % | "
              f"{100 * r['itl_map_run']:.1f} % | {r['kept_epoch']} |")


if __name__ == "__main__":
    main()
