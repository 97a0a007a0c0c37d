"""Accuracy of recipes across seeds: software (float), and each target on one of its backends.

    python benchmarks/accuracy.py models/yinyang.yaml models/yinyang_xylo.yaml --seeds 0 1 2 \\
        [--targets bss2=mock:ideal xylo=xylo-sim] [--json]

Each seed trains the recipe from scratch, maps the same model file onto every target and runs
it on that target's backend; the table gives the mean ± standard deviation over seeds and the
range, so a claim about a recipe is never a lucky seed. A model that does not fit a target is
reported as such, with its first violation. The synapses a mapping uses are given per target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from neurodeploy.errors import DoesNotFitError
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run
from neurodeploy.workflows.train import train

DEFAULT_TARGETS = ("bss2=mock:ideal", "xylo=xylo-sim")


def measure(recipe: str, seed: int, targets: dict[str, str], folder: Path) -> dict:
    model = folder / f"{Path(recipe).stem}-seed{seed}.pt"
    metrics = train(recipe, model, seed=seed, progress=False)
    row: dict = {"seed": seed, "software": metrics["test_accuracy"], "training_seconds": metrics["training_seconds"],
                 "spikes": sum(metrics.get("spikes_per_neuron_per_sample", {}).values())}
    for target, backend in targets.items():
        deployment = folder / f"{model.stem}.{target}.npz"
        try:
            report = map_model(model, target, deployment)
        except DoesNotFitError as error:
            row[target] = None
            row[f"{target}_error"] = error.one_line()
            continue
        row[target] = run(deployment, backend)["accuracy"]
        row[f"{target}_synapses"] = report.get("synapses_used")
    return row


def summary(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def cell(stats: dict | None) -> str:
    if stats is None:
        return "does not fit"
    return (f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f} % "
            f"({100 * stats['min']:.1f}–{100 * stats['max']:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS), metavar="TARGET=BACKEND")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    targets = dict(item.split("=", 1) for item in args.targets)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for recipe in args.recipes:
            rows = [measure(recipe, seed, targets, Path(folder)) for seed in args.seeds]
            columns = ["software", *targets]
            stats = {c: None if any(r[c] is None for r in rows) else summary([r[c] for r in rows]) for c in columns}
            results.append({"recipe": recipe, "runs": rows, "summary": stats,
                            "training_seconds": statistics.mean(r["training_seconds"] for r in rows)})
    if args.json:
        print(json.dumps({"seeds": args.seeds, "targets": targets, "results": results}))
        return
    header = (["recipe", "software"] + [f"{t} ({b})" for t, b in targets.items()]
              + [f"{t} synapses" for t in targets] + ["train s"])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for result in results:
        cells = [cell(result["summary"][c]) for c in ["software", *targets]]
        cells += [str(result["runs"][0].get(f"{t}_synapses", "–")) for t in targets]  # the same for every seed
        print(f"| {Path(result['recipe']).stem} | " + " | ".join(cells) + f" | {result['training_seconds']:.0f} |")


if __name__ == "__main__":
    main()
