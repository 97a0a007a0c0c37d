"""Ablations: one training setting varied, each variant trained from scratch on each recipe over several seeds.

    python benchmarks/ablation.py surrogate models/yinyang.yaml models/digits.yaml --seeds 0 1 2 3 4 \\
        [--variants superspike arctan] [--targets bss2=mock:ideal] [--json]
    python benchmarks/ablation.py detach_reset models/yinyang.yaml --seeds 0 1 2 3 4
    python benchmarks/ablation.py activity models/yinyang.yaml --seeds 0 1 2

``surrogate``: the recipe with ``training.surrogate: {kind: KIND}`` at the kind's defaults (which match
SuperSpike's peak, and triangle's and slayer's also its area; :mod:`neurodeploy.core.surrogate`) in place of
``surrogate_steepness``. ``detach_reset``: ``training.detach_reset`` true or false (seed 004's take-home:
ignoring the reset in the backward pass learns better). ``activity``: the spike-count regularisers of
:mod:`neurodeploy.training.loss` (L1, and a per-neuron upper bound), off or at a few strengths; the table
adds the hidden layers' mean spikes per neuron and sample (test set). Everything else (learning rate,
epochs, data) stays, so a table compares the variants under the recipe's own tuning. Each model is mapped
and run on the targets' backends as :mod:`accuracy` does; cells are mean ± std (range) over the seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from accuracy import cell, measure, summary

from neurodeploy.core.surrogate import KINDS


def _surrogate(kind: str) -> Callable[[dict], dict]:
    def change(training: dict) -> dict:
        rest = {k: v for k, v in training.items() if k != "surrogate_steepness"}
        return {**rest, "surrogate": {"kind": kind}}
    return change


def _detach(flag: bool) -> Callable[[dict], dict]:
    return lambda training: {**training, "detach_reset": flag}


def _activity(**settings: float) -> Callable[[dict], dict]:
    return lambda training: {**training, **settings}


ABLATIONS: dict[str, dict[str, Callable[[dict], dict]]] = {
    "surrogate": {kind: _surrogate(kind) for kind in KINDS},
    "detach_reset": {"true": _detach(True), "false": _detach(False)},
    "activity": {"off": _activity(), "l1=0.01": _activity(activity_l1=0.01), "l1=0.05": _activity(activity_l1=0.05),
                 "upper=1": _activity(activity_upper_weight=0.1, activity_upper_spikes=1.0)},
}


def recipe_variant(recipe: str, name: str, change: Callable[[dict], dict], folder: Path) -> Path:
    """A copy of ``recipe`` whose ``training`` block is ``change(training)``."""
    data = yaml.safe_load(Path(recipe).read_text())
    path = folder / f"{Path(recipe).stem}-{name}.yaml"
    path.write_text(yaml.safe_dump({**data, "training": change(dict(data.get("training", {})))}, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ablation", choices=sorted(ABLATIONS))
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", help="default: all of the ablation's")
    parser.add_argument("--targets", nargs="+", default=["bss2=mock:ideal"], metavar="TARGET=BACKEND")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    variants = ABLATIONS[args.ablation]
    chosen = args.variants or list(variants)
    unknown = set(chosen) - set(variants)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)} of {args.ablation}: use {', '.join(variants)}")
    targets = dict(item.split("=", 1) for item in args.targets)
    columns = ["software", *targets]
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for recipe in args.recipes:
            for variant in chosen:
                path = str(recipe_variant(recipe, variant, variants[variant], folder))
                rows = [measure(path, seed, targets, folder) for seed in args.seeds]
                stats = {c: None if any(r[c] is None for r in rows) else summary([r[c] for r in rows])
                         for c in columns}
                results.append({"recipe": recipe, "variant": variant, "runs": rows, "summary": stats,
                                "training_seconds": statistics.mean(r["training_seconds"] for r in rows)})
                print(f"# {Path(recipe).stem} {variant}: " + ", ".join(f"{c} {cell(stats[c])}" for c in columns),
                      flush=True)
    if args.json:
        print(json.dumps({"ablation": args.ablation, "seeds": args.seeds, "targets": targets, "results": results}))
        return
    header = (["recipe", args.ablation, "software"] + [f"{t} ({b})" for t, b in targets.items()]
              + ["spikes / neuron / sample", "train s"])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for result in results:
        cells = [cell(result["summary"][c]) for c in columns]
        spikes = statistics.mean(r["spikes"] for r in result["runs"])
        print(f"| {Path(result['recipe']).stem} | {result['variant']} | " + " | ".join(cells)
              + f" | {spikes:.2f} | {result['training_seconds']:.0f} |")


if __name__ == "__main__":
    main()
