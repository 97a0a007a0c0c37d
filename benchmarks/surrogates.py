"""Surrogate-gradient ablation: each registered kind trains each recipe from scratch over several seeds.

    python benchmarks/surrogates.py models/yinyang.yaml models/digits.yaml --seeds 0 1 2 \\
        [--kinds superspike arctan triangle slayer] [--targets bss2=mock:ideal] [--json]

The recipe is copied with ``training.surrogate: {kind: KIND}`` (the kind's defaults, which match
SuperSpike's peak, and triangle's and slayer's also its area; :mod:`neurodeploy.core.surrogate`)
in place of ``surrogate_steepness``; everything else (learning rate, epochs, data) stays, so the
table compares surrogates under the recipe's tuning, which was done with SuperSpike. Each model is
mapped and run on the targets' backends as :mod:`accuracy` does; cells are mean ± std (range).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import yaml
from accuracy import cell, measure, summary

from neurodeploy.core.surrogate import KINDS


def recipe_with(recipe: str, kind: str, folder: Path) -> Path:
    """A copy of ``recipe`` that trains with surrogate ``kind`` at its defaults."""
    data = yaml.safe_load(Path(recipe).read_text())
    training = dict(data.get("training", {}))
    training.pop("surrogate_steepness", None)
    training["surrogate"] = {"kind": kind}
    path = folder / f"{Path(recipe).stem}-{kind}.yaml"
    path.write_text(yaml.safe_dump({**data, "training": training}, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--targets", nargs="+", default=["bss2=mock:ideal"], metavar="TARGET=BACKEND")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    targets = dict(item.split("=", 1) for item in args.targets)
    columns = ["software", *targets]
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for recipe in args.recipes:
            for kind in args.kinds:
                rows = [measure(str(recipe_with(recipe, kind, folder)), seed, targets, folder) for seed in args.seeds]
                stats = {c: None if any(r[c] is None for r in rows) else summary([r[c] for r in rows])
                         for c in columns}
                results.append({"recipe": recipe, "kind": kind, "runs": rows, "summary": stats,
                                "training_seconds": statistics.mean(r["training_seconds"] for r in rows)})
                print(f"# {Path(recipe).stem} {kind}: " + ", ".join(f"{c} {cell(stats[c])}" for c in columns),
                      flush=True)
    if args.json:
        print(json.dumps({"seeds": args.seeds, "targets": targets, "results": results}))
        return
    header = ["recipe", "surrogate", "software"] + [f"{t} ({b})" for t, b in targets.items()] + ["train s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for result in results:
        cells = [cell(result["summary"][c]) for c in columns]
        print(f"| {Path(result['recipe']).stem} | {result['kind']} | " + " | ".join(cells)
              + f" | {result['training_seconds']:.0f} |")


if __name__ == "__main__":
    main()
