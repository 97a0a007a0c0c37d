"""Calibrating several emulated chips: one at a time against ``--workers N`` processes, in one run.

    python benchmarks/fleet_calibration.py --chips 0-3 --workers 2

Prints the wall time of each and their ratio; the machine's cores bound the speed-up (each worker computes
with one thread, the serial run with torch's default threads).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from neurodeploy.workflows.calibrate import calibrate_chips


def timed(chips: str, workers: int, folder: str) -> float:
    started = time.perf_counter()
    calibrate_chips(f"mock:{chips}", output=os.path.join(folder, f"w{workers}-mock-{{chip}}.yaml"), workers=workers,
                    progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chips", default="0-3")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        serial = timed(args.chips, 1, folder)
        parallel = timed(args.chips, args.workers, folder)
    print(f"mock:{args.chips}: one at a time {serial:.1f} s, {args.workers} workers {parallel:.1f} s, "
          f"speed-up {serial / parallel:.2f}x on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
