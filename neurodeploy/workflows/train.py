"""``train``: recipe → trained model file (surrogate-gradient BPTT, Adam, cosine learning rate)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ..data.datasets import load_split
from ..modelfile import ModelFile, save_model
from ..models.network import SpikingNetwork, decode
from ..recipe import Recipe, load_recipe
from .common import accuracy, batched_scores, encode_dataset


def initial_weights(recipe: Recipe, generator: torch.Generator) -> dict[str, torch.Tensor]:
    r"""Gaussian initialisation :math:`W = (\mu + \sigma \xi) / \sqrt{n_{pre}}`, with the recipe's μ, σ."""
    weights = {}
    for proj in recipe.graph.projections:
        n_post, n_pre = recipe.graph.population(proj.post).size, recipe.graph.population(proj.pre).size
        spec = recipe.init[proj.name]
        xi = torch.randn(n_post, n_pre, generator=generator)
        weights[proj.name] = (spec["mean"] + spec["std"] * xi) / math.sqrt(n_pre)
    return weights


def train(recipe_path: str | Path, output: str | Path, *, epochs: Optional[int] = None,
          seed: Optional[int] = None, progress: bool = True) -> dict:
    """Train the recipe's network and write the model file; returns its metrics."""
    recipe = load_recipe(recipe_path)
    settings = dict(recipe.training)
    if epochs is not None:
        settings["epochs"] = int(epochs)
    if seed is not None:
        settings["seed"] = int(seed)
    generator = torch.Generator().manual_seed(settings["seed"])
    torch.manual_seed(settings["seed"])

    x_train, y_train = load_split(recipe.dataset, "train")
    x_test, y_test = load_split(recipe.dataset, "test")
    train_spikes = encode_dataset(x_train, recipe.encoding, recipe.dt_s)
    test_spikes = encode_dataset(x_test, recipe.encoding, recipe.dt_s)
    labels = torch.as_tensor(y_train)

    net = SpikingNetwork(recipe.graph, recipe.dt_s, surrogate_steepness=settings["surrogate_steepness"],
                         detach_reset=settings["detach_reset"], weights=initial_weights(recipe, generator))
    optimiser = torch.optim.Adam(net.parameters(), lr=settings["learning_rate"])
    total_steps = settings["epochs"] * math.ceil(len(labels) / settings["batch_size"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=max(total_steps, 1), eta_min=settings["learning_rate"] * settings["lr_final_fraction"])

    started = time.perf_counter()
    history = []
    bar = tqdm(range(settings["epochs"]), desc=f"train {recipe.name}", unit="epoch", disable=not progress)
    qat_from = settings["epochs"] - settings["quantisation_aware_epochs"]
    for epoch in bar:
        # The last epochs see the weights the chip will hold (straight-through fake quantisation).
        net.quantise_levels = settings["weight_levels"] if epoch >= qat_from else None
        order = torch.randperm(len(labels), generator=generator)
        losses, correct = [], 0
        for start in range(0, len(order), settings["batch_size"]):
            idx = order[start:start + settings["batch_size"]]
            out = net(train_spikes[:, idx])
            scores = decode(out.readout_v, settings["loss"])
            loss = torch.nn.functional.cross_entropy(settings["readout_scale"] * scores, labels[idx])
            if settings["rate_weight"] > 0:
                rates = torch.stack([z.mean() for name, z in out.spikes.items() if name != recipe.graph.input.name])
                loss = loss + settings["rate_weight"] * ((rates - settings["rate_target"]) ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            correct += int((scores.argmax(1) == labels[idx]).sum())
        history.append({"loss": float(np.mean(losses)), "train_accuracy": correct / len(labels)})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['train_accuracy']:.3f}")
    seconds = time.perf_counter() - started
    net.quantise_levels = None  # the model file keeps float weights; `map` quantises them

    test_accuracy = accuracy(batched_scores(lambda s: net(s).readout_v, test_spikes), y_test)
    net.quantise_levels = settings["weight_levels"]
    quantised_accuracy = accuracy(batched_scores(lambda s: net(s).readout_v, test_spikes), y_test)
    net.quantise_levels = None
    metrics = {"test_accuracy": test_accuracy, "test_accuracy_quantised": quantised_accuracy, "train_accuracy": history[-1]["train_accuracy"],
               "final_loss": history[-1]["loss"], "epochs": settings["epochs"],
               "training_seconds": seconds, "seconds_per_epoch": seconds / max(settings["epochs"], 1),
               "n_test": int(len(y_test))}
    model = ModelFile(graph=recipe.graph, weights=net.weight_dict(), dt_s=recipe.dt_s, encoding=recipe.encoding,
                      dataset=recipe.dataset, seed=settings["seed"], training=settings, metrics=metrics,
                      provenance={"recipe": recipe.name, "recipe_file": Path(recipe_path).name,
                                  "loss_history": [h["loss"] for h in history]})
    save_model(model, output)
    return metrics
