"""What costs accuracy on a calibrated mock chip: the same deployment with one effect switched off at a time.

    python benchmarks/mismatch_ablation.py DEPLOYMENT --chip 0 [--json]

DEPLOYMENT is a model mapped with that chip's calibration (``neurodeploy map … --calibration``).
Each row runs the test set on ``mock:CHIP`` with every effect on except the ones named: the
per-synapse weight variation, trial-to-trial noise (membrane noise and spike jitter), the CADC
readout, event drops, and the first three together. ``mock:ideal`` is the reference.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.variation import MockEffects
from neurodeploy.data.datasets import load_data
from neurodeploy.data.encoding import encode
from neurodeploy.deployment import load_deployment
from neurodeploy.scoring import backend_accuracy
from neurodeploy.workflows.run import for_backend

ALL = MockEffects()
VARIANTS = {
    "all effects": ALL,
    "per-synapse variation off": replace(ALL, synapse_rel=0.0),
    "noise and jitter off": replace(ALL, noise=False, jitter=False),
    "CADC off (exact membrane)": replace(ALL, cadc=False),
    "event drops off": replace(ALL, event_drops=False),
    "synapse variation, noise, CADC off": replace(ALL, synapse_rel=0.0, noise=False, jitter=False, cadc=False),
}


def chip_accuracy(deployment, engine) -> float:
    x, y = load_data(deployment.meta["dataset"], None)
    return backend_accuracy(engine, deployment, encode(x, deployment.meta["encoding"]), y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("deployment", help="deployment mapped with the chip's calibration (.npz)")
    parser.add_argument("--chip", type=int, required=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    deployment = for_backend(load_deployment(args.deployment), MockChip(args.chip))  # refuses another chip's
    rows = {"mock:ideal": chip_accuracy(deployment, MockChip("ideal"))}
    rows.update({name: chip_accuracy(deployment, MockChip(args.chip, effects)) for name, effects in VARIANTS.items()})
    if args.json:
        print(json.dumps({"deployment": args.deployment, "chip": args.chip, "accuracy": rows}))
        return
    for name, value in rows.items():
        print(f"{name:<40}{100 * value:6.1f} %")


if __name__ == "__main__":
    main()
