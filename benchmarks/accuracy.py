"""Accuracy of a recipe across seeds: software (float), quantised in software, and the ideal mock.

    python benchmarks/accuracy.py models/yinyang.yaml --seeds 0 1 2 [--json]

Each seed trains the recipe from scratch, maps it onto BSS-2 and runs it on ``mock:ideal``; the
table gives every run and the mean, so a claim about a recipe is never a lucky seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run
from neurodeploy.workflows.train import train


def measure(recipe: str, seed: int, folder: Path) -> dict:
    model, deployment = folder / f"seed{seed}.pt", folder / f"seed{seed}.npz"
    metrics = train(recipe, model, seed=seed, progress=False)
    map_model(model, "bss2", deployment)
    mock = run(deployment, "mock:ideal")
    return {"seed": seed, "software": metrics["test_accuracy"], "mock_ideal": mock["accuracy"],
            "training_seconds": metrics["training_seconds"], "epochs": metrics["epochs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(args.recipe, seed, Path(folder)) for seed in args.seeds]
    summary = {key: statistics.mean(r[key] for r in rows) for key in ("software", "mock_ideal", "training_seconds")}
    summary["min_software"] = min(r["software"] for r in rows)
    summary["min_mock_ideal"] = min(r["mock_ideal"] for r in rows)
    result = {"recipe": args.recipe, "runs": rows, "mean": summary}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'seed':>5}{'software':>10}{'mock:ideal':>12}{'train s':>9}")
    for r in rows:
        print(f"{r['seed']:>5}{100 * r['software']:>9.1f}%{100 * r['mock_ideal']:>11.1f}%{r['training_seconds']:>9.0f}")
    print(f"{'mean':>5}{100 * summary['software']:>9.1f}%{100 * summary['mock_ideal']:>11.1f}%"
          f"{summary['training_seconds']:>9.0f}")


if __name__ == "__main__":
    main()
