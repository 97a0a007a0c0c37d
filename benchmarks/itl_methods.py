"""In-the-loop training from the chip's spike counters only (``itl --method asf``) against surrogate itl
(spikes and membranes), on the same chips, in one process: accuracy before and after (the deployed LI
readout, and for asf also the readout computed on the host from the chip's counters), bytes read back by the
training passes, wall time.

    python benchmarks/itl_methods.py MODEL --chips 0 1 2 3 4 [--calibrations DIR] --epochs 2 --train-samples 1100

Without ``--calibrations`` the chips run uncalibrated (``--uncalibrated``). One JSON line per run, then a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from neurodeploy.workflows.itl import itl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--chips", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--calibrations", help="folder with mock-N.yaml; omit for uncalibrated chips")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-samples", type=int, default=1100)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for chip in args.chips:
            calibration = None if args.calibrations is None else Path(args.calibrations) / f"mock-{chip}.yaml"
            for method in ("surrogate", "asf"):
                started = time.perf_counter()
                summary = itl(args.model, Path(folder) / f"{method}-{chip}.pt", backend=f"mock:{chip}",
                              calibration=calibration, uncalibrated=calibration is None, epochs=args.epochs,
                              train_samples=args.train_samples, method=method, progress=False)
                row = {"chip": chip, "method": method, "seconds": time.perf_counter() - started,
                       **{k: summary.get(k) for k in ("test_accuracy_before", "test_accuracy_after",
                                                      "test_accuracy_counters_before", "test_accuracy_counters_after",
                                                      "bytes_read_by_training", "kept_epoch")}}
                print(json.dumps(row), flush=True)
                rows.append(row)
    pct = lambda v: "–" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    print("\n| chip | method | LI readout before → after | host readout from counters before → after | "
          "bytes read by training | s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        counters = "–" if r["method"] != "asf" else \
            f"{pct(r['test_accuracy_counters_before'])} → {pct(r['test_accuracy_counters_after'])}"
        print(f"| mock:{r['chip']} | {r['method']} | {pct(r['test_accuracy_before'])} → {pct(r['test_accuracy_after'])}"
              f" | {counters} | {r['bytes_read_by_training'] / 1e6:.2f} MB | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
