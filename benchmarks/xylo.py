"""Throughput of the Xylo emulator against SynSense's xylosim on the same deployment, in one process.

    python benchmarks/xylo.py DEPLOYMENT.npz [--samples 1000] [--repeats 3] [--json]

DEPLOYMENT is a Xylo deployment (``neurodeploy map MODEL --target xylo -o DEPLOYMENT.npz``); its
dataset's test inputs are encoded once, then both simulators run them: ours batched (numpy,
vectorised over samples), xylosim one sample at a time as its API requires (C++). Both give the
same states (tests/test_xylo_emulator.py); this measures only speed. Prints samples/s of each
and the ratio; the best of ``--repeats`` runs counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode_dataset
from neurodeploy.deployment import load_deployment
from neurodeploy.targets.xylo.emulator import evolve
from neurodeploy.targets.xylo.mapper import config_of, input_counts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def best_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("deployment")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    deployment = load_deployment(args.deployment)
    meta = deployment.meta
    x, _ = load_split(meta["dataset"], "test")
    counts = input_counts(encode_dataset(x[:args.samples], meta["encoding"], meta["dt_s"]))
    config = config_of(deployment)
    from test_xylo_emulator import xylosim_record  # the reference's driver, shared with the cross-check

    ours = best_seconds(lambda: evolve(config, counts), args.repeats)
    vendor = best_seconds(lambda: xylosim_record(config, counts), args.repeats)
    same = all(np.array_equal(a, b) for a, b in zip(evolve(config, counts), xylosim_record(config, counts)))
    n = counts.shape[1]
    result = {"samples": n, "steps": counts.shape[0], "hidden": int(config.threshold.shape[0]),
              "emulator_samples_per_s": n / ours, "xylosim_samples_per_s": n / vendor, "ratio": vendor / ours,
              "identical": same}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{n} samples x {counts.shape[0]} steps, {result['hidden']} hidden neurons; identical states: {same}")
    print(f"neurodeploy emulator: {result['emulator_samples_per_s']:8.0f} samples/s")
    print(f"xylosim (SynSense):   {result['xylosim_samples_per_s']:8.0f} samples/s")
    print(f"ratio: {result['ratio']:.1f}x")


if __name__ == "__main__":
    main()
