"""Calibration of mock chips and what it buys: spreads before/after, and accuracy uncalibrated vs calibrated.

For each chip: ``neurodeploy calibrate --backend mock:CHIP`` (spread of every parameter with all
circuits at the median code vs calibrated, seconds, measurement rounds), then each model mapped
without a calibration (nominal codes) and with it, run on that chip, against the ideal mock.

    python benchmarks/calibration.py out/yinyang.pt --chips 0 1 2 3 4 --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from neurodeploy.workflows.calibrate import calibrate_chip
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run


def measure(models: list[str], chips: list[int], folder: Path, weight_copies: int = 1) -> dict:
    rows = []
    ideal = {}
    for model in models:
        plain = folder / f"{Path(model).stem}.npz"
        map_model(model, "bss2", plain, weight_copies=weight_copies)
        ideal[model] = run(plain, "mock:ideal")["accuracy"]
    for chip in chips:
        calibration = folder / f"{chip}.yaml"
        summary = calibrate_chip(f"mock:{chip}", output=calibration, progress=False)
        row = {"chip": chip, "seconds": summary["seconds"], "measurement_rounds": summary["measurement_rounds"],
               "calibrated_neurons": summary["calibrated"], "parameters": summary["parameters"], "accuracy": {}}
        for model in models:
            plain = folder / f"{Path(model).stem}.npz"
            calibrated = folder / f"{Path(model).stem}.{chip}.npz"
            map_model(model, "bss2", calibrated, calibration=calibration, weight_copies=weight_copies)
            row["accuracy"][model] = {"ideal": ideal[model],
                                      "uncalibrated": run(plain, f"mock:{chip}")["accuracy"],
                                      "calibrated": run(calibrated, f"mock:{chip}")["accuracy"]}
        row["weight_copies"] = weight_copies
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"chips": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model files (.pt)")
    parser.add_argument("--chips", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--keep", help="folder to keep calibrations and deployments in")
    parser.add_argument("--weight-copies", type=int, default=1, help="map with up to K synapses per weight")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = measure(args.models, args.chips, folder, args.weight_copies)
    if args.json:
        print(json.dumps(result))
        return
    for row in result["chips"]:
        print(f"chip {row['chip']} (weight copies {row['weight_copies']}): "
              f"{row['calibrated_neurons']}/512 calibrated, {row['seconds']:.0f} s, "
              f"{row['measurement_rounds']} rounds")
        for name, p in row["parameters"].items():
            print(f"  {name:28s} before {p['spread_before']:.4g}  after {p['spread_after']:.4g}  "
                  f"ratio {p['ratio']:.3f}")
        for model, acc in row["accuracy"].items():
            print(f"  {model}: ideal {100 * acc['ideal']:.1f}%  uncalibrated {100 * acc['uncalibrated']:.1f}%  "
                  f"calibrated {100 * acc['calibrated']:.1f}%")


if __name__ == "__main__":
    main()
