"""Recipes from software to a calibrated chip and through in-the-loop training, over seeds.

    python benchmarks/pipeline.py models/yinyang_hw.yaml models/yinyang_recurrent.yaml --seeds 0 1 2 \\
        [--chip 0] [--itl-epochs 2] [--itl-samples 2000] [--no-chip] [--json]

Per recipe and seed: train, then the test accuracy in software (float), on ``mock:ideal``
(quantised, spike for spike), on the calibrated ``mock:CHIP`` after mapping, and on it after
``itl``. For a recipe with a recurrent projection it also reports that matrix's share of the
gradient at the start of training, ‖∂ℒ/∂L‖ / ‖∂ℒ/∂W_in‖ (L the recurrent matrix, W_in the layer's
input weights; seed 000_611cab4eccd6835b.txt claims learnable feedback carries a significant gradient signal).
``--no-chip``: software and mock:ideal only. Columns are mean ± std over seeds (range).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from accuracy import cell, summary
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode_dataset
from neurodeploy.modelfile import load_model
from neurodeploy.models.network import SpikingNetwork, decode
from neurodeploy.recipe import load_recipe
from neurodeploy.training.fit import initial_weights
from neurodeploy.training.loss import task_loss
from neurodeploy.workflows.calibrate import calibrate_chip
from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run
from neurodeploy.workflows.train import train


def gradient_share(recipe_path: str, seed: int, samples: int = 256) -> float | None:
    """‖∂ℒ/∂L‖ / ‖∂ℒ/∂W_in‖ of the first hidden layer at initialisation, on ``samples`` training samples."""
    recipe = load_recipe(recipe_path)
    loop = next((p for p in recipe.graph.projections if p.recurrent), None)
    if loop is None:
        return None
    feed = recipe.graph.feedforward(loop.post)[0]
    x, y = load_split(recipe.dataset, "train")
    spikes = encode_dataset(x[:samples], recipe.encoding, recipe.dt_s)
    weights = initial_weights(recipe, torch.Generator().manual_seed(seed))
    net = SpikingNetwork(recipe.graph, recipe.dt_s, weights=weights, recurrent=recipe.recurrent)
    out = net(spikes)
    settings = recipe.training
    task_loss(decode(out.readout_v, settings["loss"]), torch.as_tensor(y[:samples]), out.spikes,
              recipe.graph.input.name, settings).backward()
    return float(net.weight(loop.name).grad.norm() / net.weight(feed.name).grad.norm())


def held_back(dataset: str) -> int:
    """Training samples itl may use: all but a fifth, which validate where the dataset has no validation split."""
    n = len(load_split(dataset, "train")[1])
    return n - n // 5


def measure(recipe: str, seed: int, folder: Path, chip: int | None, calibration: Path | None,
            itl_epochs: int, itl_samples: int) -> dict:
    model = folder / f"{Path(recipe).stem}-seed{seed}.pt"
    metrics = train(recipe, model, seed=seed, progress=False)
    row: dict = {"seed": seed, "software": metrics["test_accuracy"], "gradient_share": gradient_share(recipe, seed)}
    map_model(model, "bss2", folder / "ideal.npz")
    row["mock:ideal"] = run(folder / "ideal.npz", "mock:ideal")["accuracy"]
    if chip is None or calibration is None:
        return row
    backend = f"mock:{chip}"
    map_model(model, "bss2", folder / "chip.npz", calibration=calibration)
    row[f"{backend} calibrated"] = run(folder / "chip.npz", backend)["accuracy"]
    tuned = folder / f"{model.stem}.itl.pt"
    itl(model, tuned, backend=backend, calibration=calibration, epochs=itl_epochs,
        train_samples=min(itl_samples, held_back(load_model(model).dataset)), progress=False)
    map_model(tuned, "bss2", folder / "tuned.npz", calibration=calibration)
    row[f"{backend} after itl"] = run(folder / "tuned.npz", backend)["accuracy"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--chip", type=int, default=0)
    parser.add_argument("--no-chip", action="store_true", help="software and mock:ideal only")
    parser.add_argument("--itl-epochs", type=int, default=2)
    parser.add_argument("--itl-samples", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    chip = None if args.no_chip else args.chip
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        calibration = None
        if chip is not None:
            calibration = folder / f"mock-{chip}.yaml"
            calibrate_chip(f"mock:{chip}", output=calibration, progress=False)
        for recipe in args.recipes:
            rows = [measure(recipe, seed, folder, chip, calibration, args.itl_epochs, args.itl_samples)
                    for seed in args.seeds]
            columns = [c for c in rows[0] if c not in ("seed", "gradient_share")]
            shares = [r["gradient_share"] for r in rows if r["gradient_share"] is not None]
            results.append({"recipe": recipe, "runs": rows, "columns": columns,
                            "summary": {c: summary([r[c] for r in rows]) for c in columns},
                            "gradient_share": summary(shares) if shares else None})
    if args.json:
        print(json.dumps({"seeds": args.seeds, "chip": chip, "results": results}))
        return
    columns = results[0]["columns"]
    print("| recipe | " + " | ".join(columns) + " | ‖∂ℒ/∂L‖ / ‖∂ℒ/∂W_in‖ at start |")
    print("|" + "---|" * (len(columns) + 2))
    for result in results:
        share = result["gradient_share"]
        ratio = "–" if share is None else f"{share['mean']:.2f} ± {share['std']:.2f}"
        print(f"| {Path(result['recipe']).stem} | " + " | ".join(cell(result["summary"][c]) for c in columns)
              + f" | {ratio} |")


if __name__ == "__main__":
    main()
