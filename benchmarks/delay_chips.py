"""Learned delays on calibrated emulated chips, per BSS-2 realisation, before and after in-the-loop training.

    python benchmarks/delay_chips.py yinyang_delays.pt yinyang_hw.pt --chips 0 1 2 3 4 \\
        [--itl-epochs 2] [--itl-samples 2000] [--json]

Each chip is calibrated once (``neurodeploy calibrate --backend mock:CHIP``). A model with delays is
mapped with each strategy (multi-synapse, spike-strength, gradient-only), one without delays as it
is; each deployment runs on ``mock:ideal`` and on its calibrated chip, then ``itl`` trains it on that
chip (with the same strategy) and the result is mapped and run again. Columns: mean ± std over chips
(range).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from accuracy import cell, summary
from neurodeploy.modelfile import load_model
from neurodeploy.workflows.calibrate import calibrate_chip
from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run

STRATEGIES = ("multi-synapse", "spike-strength", "gradient-only")


def one_chip(model: Path, strategy: str | None, chip: int, calibration: Path, folder: Path, itl_epochs: int,
             itl_samples: int) -> dict:
    tag = f"{model.stem}.{strategy or 'plain'}.{chip}"
    backend = f"mock:{chip}"
    map_model(model, "bss2", folder / f"{tag}.npz", calibration=calibration, delays=strategy)
    row = {"calibrated": run(folder / f"{tag}.npz", backend)["accuracy"]}
    tuned = folder / f"{tag}.itl.pt"
    summary_itl = itl(model, tuned, backend=backend, calibration=calibration, epochs=itl_epochs,
                      train_samples=itl_samples, delays=strategy, progress=False)
    map_model(tuned, "bss2", folder / f"{tag}.itl.npz", calibration=calibration)  # itl's strategy is kept
    row["after itl"] = run(folder / f"{tag}.itl.npz", backend)["accuracy"]
    row["kept_epoch"] = summary_itl["kept_epoch"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--chips", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--itl-epochs", type=int, default=2)
    parser.add_argument("--itl-samples", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        calibrations = {}
        for chip in args.chips:
            calibrations[chip] = folder / f"mock-{chip}.yaml"
            calibrate_chip(f"mock:{chip}", output=calibrations[chip], progress=False)
        for model in args.models:
            strategies = STRATEGIES if load_model(model).delays else (None,)
            for strategy in strategies:
                map_model(model, "bss2", folder / "ideal.npz", delays=strategy)
                ideal = run(folder / "ideal.npz", "mock:ideal")["accuracy"]
                rows = {chip: one_chip(model, strategy, chip, calibrations[chip], folder, args.itl_epochs,
                                       args.itl_samples) for chip in args.chips}
                results.append({"model": model.name, "strategy": strategy, "mock:ideal": ideal, "chips": rows,
                                "summary": {c: summary([r[c] for r in rows.values()])
                                            for c in ("calibrated", "after itl")}})
    if args.json:
        print(json.dumps({"chips": args.chips, "results": results}))
        return
    print("| model | strategy | mock:ideal | calibrated chips | after itl |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['strategy'] or '–'} | {100 * r['mock:ideal']:.1f} % | "
              f"{cell(r['summary']['calibrated'])} | {cell(r['summary']['after itl'])} |")


if __name__ == "__main__":
    main()
