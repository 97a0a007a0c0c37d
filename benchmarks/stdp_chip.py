"""Seed 003's unsupervised STDP as an on-chip plasticity program: the network (64 Poisson-coded pixels, 400 LIF
neurons with uniform lateral inhibition) learns on a chip with ``models/programs/seed003_event.yaml``, is mapped
with what it learned (weights and threshold offsets), and is read out by label assignment on the chip's spike
counts. Digits (1437 train, 360 test), test accuracy per seed and mean ± std.

    python benchmarks/stdp_chip.py --backend mock:0 --seeds 0 1 2 [--epochs 3] [--train-samples N]
        [--calibration FILE] [--keep DIR] [--figure PNG] [--json]

Without ``--calibration`` a chip with mismatch is calibrated first for the network's time constants
(τ_mem 20 µs, τ_syn 2 µs, refractory 1 µs of hardware time). The software reference, the same seed's network in
numpy (``benchmarks/stdp.py``), is in docs/stdp.md; ``--software`` also runs it here with ``inhibit_self``, the
variant whose inhibition one chip row per hemisphere realises.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from neurodeploy.backends.registry import get_backend
from neurodeploy.data.datasets import load_split
from neurodeploy.modelfile import load_model, save_model
from neurodeploy.plasticity import load_program
from neurodeploy.shipped import shipped_dir
from neurodeploy.targets.base import MapOptions
from neurodeploy.targets.registry import get_target
from neurodeploy.training.stdp_network import LAYER, PLASTIC, StdpNetwork, stdp_network_model
from neurodeploy.workflows.calibrate import calibrate_chip
from neurodeploy.workflows.label import label_accuracy
from neurodeploy.workflows.learn import learn

PROGRAM = shipped_dir("models") / "programs" / "seed003_event.yaml"


def calibration_for(backend: str, network: StdpNetwork, folder: Path) -> str | None:
    if not get_backend(backend).uses_codes:
        return None
    path = folder / "calibration.yaml"
    sets = {"tau_mem_s": network.tau_mem_s / 1000, "tau_syn_s": network.tau_syn_s / 1000,
            "t_ref_s": network.t_ref_s / 1000}
    calibrate_chip(backend, sets=sets, output=path, progress=False)
    return str(path)


def figure(learned_path: Path, labels, network: StdpNetwork, path: str, backend: str) -> None:
    """The first seed's receptive fields as the chip learned them (tiles: incoming weights in seed units)."""
    from neurodeploy.stdp_plots import receptive_field_grid
    weights = load_model(learned_path).weights[PLASTIC].numpy() / network.per_seed_unit
    receptive_field_grid(weights.reshape(-1, 8, 8), path, labels=labels, w_max=network.w_max,
                         title=f"seed 003 learned on {backend}: incoming weights, label per neuron")


def one_seed(seed: int, args: argparse.Namespace, network: StdpNetwork, calibration: str | None,
             folder: Path) -> dict:
    save_model(stdp_network_model(network, seed), folder / f"net{seed}.pt")
    started = time.perf_counter()
    summary = learn(folder / f"net{seed}.pt", args.program, folder / f"learned{seed}.pt", backend=args.backend,
                    calibration=calibration, epochs=args.epochs, train_samples=args.train_samples, seed=seed)
    learn_s = time.perf_counter() - started
    learned = load_model(folder / f"learned{seed}.pt")
    deployment = get_target("bss2").map(learned, MapOptions(calibration=calibration)).deployment
    train, test = load_split("digits", "train"), load_split("digits", "test")
    result = label_accuracy(get_backend(args.backend), deployment, LAYER, train, test,
                            load_program(args.program).boost, seed=seed)
    if args.figure and seed == args.seeds[0]:
        figure(folder / f"learned{seed}.pt", result.labels, network, args.figure, args.backend)
    return {"seed": seed, "test": result.accuracy, "train": result.train_accuracy,
            "silent_neurons": int((result.labels < 0).sum()), "spikes_per_sample": result.spikes_per_sample,
            "learn_s": learn_s, "presented_again_learning": summary["presented_again"],
            "slices": summary["slices"]}


def software(seed: int, epochs: int) -> float:
    from neurodeploy.training.stdp import StdpSettings, evaluate, train_stdp
    x, y = load_split("digits", "train")
    result = train_stdp(StdpSettings(n_exc=400, epochs=epochs, inhibit_self=True), x, y, seed=seed)
    return evaluate(result, *load_split("digits", "test"), seed=seed + 1000)


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="mock:0")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--calibration", default=None)
    parser.add_argument("--program", default=str(PROGRAM))
    parser.add_argument("--keep", default=None, help="folder for the models (default: a temporary one)")
    parser.add_argument("--figure", default=None, help="receptive fields of the first seed's learned network")
    parser.add_argument("--software", action="store_true", help="also train the numpy network (inhibit_self)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    network = StdpNetwork()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        calibration = args.calibration or calibration_for(args.backend, network, folder)
        rows = []
        for seed in args.seeds:
            rows.append(one_seed(seed, args, network, calibration, folder))
            if args.software:
                rows[-1]["software"] = software(seed, args.epochs)
            if not args.json:
                print(json.dumps(rows[-1]), flush=True)
    out = {"backend": args.backend, "epochs": args.epochs, "network": network.__dict__, "rows": rows,
           "test": spread([r["test"] for r in rows]), "seconds": time.perf_counter() - started}
    if args.software:
        out["software"] = spread([r["software"] for r in rows])
    print(json.dumps(out) if args.json else
          f"{args.backend}: test {out['test']} %" + (f", software {out['software']} %" if args.software else "")
          + f" over seeds {args.seeds}; {out['seconds']:.0f} s")


if __name__ == "__main__":
    main()
