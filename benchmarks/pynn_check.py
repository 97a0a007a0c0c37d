"""Cross-check: the same deployments on ``pynn:brian2`` and on ``mock:ideal`` (docs/pynn.md).

For each deployment, the first ``--samples`` test samples run on both backends; reported: accuracy of each,
hidden spikes per sample, the fraction of spikes matched within ±1 and ±0 model steps (each spike of one run
paired with at most one of the other, same sample and neuron), the samples whose decision agrees, and the
wall-clock time of each backend.

    python benchmarks/pynn_check.py /tmp/pynn/yy.npz /tmp/pynn/dg.npz --samples 200
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from neurodeploy.backends.base import readout_scores
from neurodeploy.backends.registry import get_backend
from neurodeploy.data.datasets import load_data
from neurodeploy.data.encoding import encode
from neurodeploy.validation.loading import load_checked_deployment


def matched(a: np.ndarray, b: np.ndarray, tolerance: int) -> int:
    """Spikes of ``a`` paired with one of ``b`` at most ``tolerance`` steps away (``[T, B, N]`` counts), greedily
    in time order, per sample and neuron."""
    pairs = 0
    for bi, n in zip(*np.nonzero(a.sum(0) + b.sum(0))):
        ta = np.repeat(np.arange(a.shape[0]), a[:, bi, n].astype(np.int64))
        tb = list(np.repeat(np.arange(b.shape[0]), b[:, bi, n].astype(np.int64)))
        for t in ta:
            close = [j for j, u in enumerate(tb) if abs(u - t) <= tolerance]
            if close:
                tb.pop(min(close, key=lambda j: abs(tb[j] - t)))
                pairs += 1
    return pairs


def check(path: str, samples: int) -> dict:
    deployment = load_checked_deployment(path)
    x, y = load_data(deployment.meta["dataset"], None)
    x, y = x[:samples], y[:samples]
    times = encode(x, deployment.meta["encoding"])
    out: dict = {"deployment": path, "samples": int(len(y))}
    spikes, decisions = {}, {}
    for name in ("mock:ideal", "pynn:brian2"):
        engine = get_backend(name)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs = engine.run(deployment, times)
        seconds = time.perf_counter() - start
        decisions[name] = readout_scores(deployment, obs).argmax(1).numpy()
        first, count = deployment.meta["readout_neurons"]
        spikes[name] = obs.spikes[..., :first].numpy()  # the hidden layers' (the readout does not spike)
        out[name] = {"accuracy": float((decisions[name] == y).mean()), "seconds": round(seconds, 1),
                     "hidden_spikes_per_sample": float(spikes[name].sum() / len(y))}
    a, b = spikes["mock:ideal"], spikes["pynn:brian2"]
    total = max(float(a.sum()), 1.0)
    out["spikes_matched_within_1_step"] = matched(a, b, 1) / total
    out["spikes_matched_same_step"] = matched(a, b, 0) / total
    out["pynn_spikes_matched_within_1_step"] = matched(b, a, 1) / max(float(b.sum()), 1.0)
    out["same_decision"] = float((decisions["mock:ideal"] == decisions["pynn:brian2"]).mean())
    out["accuracy_difference_points"] = 100 * (out["pynn:brian2"]["accuracy"] - out["mock:ideal"]["accuracy"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("deployments", nargs="+", help="deployment files (.npz), mapped with --target bss2")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    for path in args.deployments:
        print(json.dumps(check(path, args.samples), indent=1))


if __name__ == "__main__":
    main()
