"""``fit``: recipe → trained :class:`~neurodeploy.modelfile.ModelFile` (surrogate-gradient BPTT, AdamW,
cosine learning rate). Reads and writes no files; the ``train`` verb wraps it."""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ..data.datasets import SPLITS, load_split
from ..data.encoding import encode_dataset
from ..errors import NeurodeployError
from ..modelfile import ModelFile
from ..models.network import SpikingNetwork, decode
from ..recipe import Recipe
from ..core.conv import dense
from ..core.recurrent import project_
from ..core.surrogate import surrogate_of
from ..scoring import accuracy, batched_scores
from ..validation.arguments import check_training_arguments
from . import asf
from .distributed import Shard
from .delays import SigmaSchedule, Schedules, cosine_per_group, hardened, initial_delays, parameter_groups
from .loss import spikes_per_sample, task_loss


def initial_weights(recipe: Recipe, generator: torch.Generator,
                    shared: Optional[dict[str, torch.Tensor]] = None) -> dict[str, torch.Tensor]:
    r"""Gaussian initialisation :math:`W = (\mu + \sigma \xi) / \sqrt{n_{in}}`, with the recipe's μ, σ; a
    recurrent matrix is then projected onto its constraints (hollow: no diagonal; inhibitory: positive entries 0).

    A projection with a geometry draws its shared parameter instead (a kernel, :math:`n_{in} = C_{in} k^2`; or a
    matrix on the pooled image), stored into ``shared`` when given; its dense weights are built from it.
    """
    weights = {}
    for proj in recipe.graph.projections:
        n_post, n_pre = recipe.graph.population(proj.post).size, recipe.graph.population(proj.pre).size
        spec = recipe.init[proj.name]
        shape = (n_post, n_pre) if proj.geometry is None else proj.geometry.parameter_shape(n_post)
        fan_in = n_pre if proj.geometry is None else proj.geometry.fan_in()
        xi = torch.randn(*shape, generator=generator)
        drawn = (spec["mean"] + spec["std"] * xi) / math.sqrt(fan_in)
        if proj.geometry is not None:
            if shared is not None:
                shared[proj.name] = drawn
            drawn = dense(drawn, proj.geometry)
        weights[proj.name] = drawn
        if proj.name in recipe.recurrent:
            project_(weights[proj.name], recipe.recurrent[proj.name])
    return weights


def _train_epoch(net: SpikingNetwork, spikes: torch.Tensor, labels: torch.Tensor, settings: dict,
                 optimiser: torch.optim.Optimizer, schedule, generator: torch.Generator,
                 progress: bool = False, shard: Optional[Shard] = None) -> dict:
    """One pass over the training set in shuffled mini-batches (``progress``: a bar over them, cleared after);
    with ``shard``, this process's part of each batch, the gradients averaged over processes (:mod:`.distributed`)."""
    order = torch.randperm(len(labels), generator=generator)
    losses, correct = [], 0
    for start in tqdm(range(0, len(order), settings["batch_size"]), desc="  batches", unit="batch", leave=False,
                      disable=not progress):
        batch = order[start:start + settings["batch_size"]]
        idx = batch if shard is None else shard.of(batch)
        weights = _perturbed(net, settings["weight_noise"], generator)  # the same draws on every rank
        optimiser.zero_grad()
        if len(idx):
            out = net(spikes[:, idx], weights=weights)
            scores = decode(out.readout_v, settings["loss"])
            loss = task_loss(scores, labels[idx], out.spikes, net.graph.input.name, settings)
            loss.backward()
            losses.append(loss.item() * len(idx))
            correct += int((scores.argmax(1) == labels[idx]).sum())
        if shard is not None:
            shard.average_gradients(net.parameters(), len(idx), len(batch))
        optimiser.step()
        net.project_constraints()
        schedule.step()
        if shard is not None:
            shard.after_step(net.parameters())
    loss_sum, right = float(sum(losses)), float(correct)
    if shard is not None:
        loss_sum, right = shard.total(loss_sum, right)
    return {"loss": loss_sum / len(labels), "train_accuracy": right / len(labels)}


def _perturbed(net: SpikingNetwork, relative_std: float, generator: torch.Generator) -> Optional[dict]:
    r"""Weights with fresh multiplicative noise, :math:`w (1 + \sigma \xi)`, or None (no noise).

    Training through such noise makes a model tolerate a chip's synapse-to-synapse and
    neuron-to-neuron gain variation that calibration cannot remove (hardware-aware training).
    """
    if relative_std <= 0:
        return None
    return {name: w * (1 + relative_std * torch.randn(w.shape, generator=generator))
            for name, w in net.effective_weights().items()}


def _spike_counts(net: SpikingNetwork, spikes: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """Per spiking layer, the mean spike count of one neuron in one sample (float weights; sparse spiking)."""
    totals: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, spikes.shape[1], batch_size):
            batch = spikes[:, start:start + batch_size]
            for name, count in spikes_per_sample(net(batch).spikes, net.graph.input.name).items():
                totals[name] = totals.get(name, 0.0) + count * batch.shape[1]
    return {name: total / max(spikes.shape[1], 1) for name, total in totals.items()}


def _score(net: SpikingNetwork, spikes: torch.Tensor, labels: np.ndarray, how: str,
           quantised_levels: Optional[int] = None) -> float:
    net.quantise_levels = quantised_levels
    try:
        return accuracy(batched_scores(lambda s: net(s).readout_v, spikes, how), labels)
    finally:
        net.quantise_levels = None


def fit(recipe: Recipe, *, epochs: Optional[int] = None, seed: Optional[int] = None, progress: bool = True,
        recipe_file: str = "", shard: Optional[Shard] = None) -> ModelFile:
    """Train the recipe's network; returns the model file (``.metrics``: test accuracies, timings, ...).

    ``epochs`` (1..10000) and ``seed`` (0..2^32-1) override the recipe's (out of range: ``NeurodeployError``);
    ``recipe_file`` is recorded in the provenance; ``shard``: this process's rank of a data-parallel run
    (:mod:`.distributed`). ``training.method: asf`` trains with Accumulated Spiking Flow
    (:mod:`.asf`; same optimiser, schedule and batches) instead of BPTT.
    Where the dataset has a validation split (Yin-Yang), the weights of the epoch with the best
    validation accuracy are kept (``training.select_on_validation``); the test set is only scored.
    """
    check_training_arguments(epochs, seed)  # before any data is loaded
    settings = dict(recipe.training)
    if epochs is not None:
        settings["epochs"] = int(epochs)
    if seed is not None:
        settings["seed"] = int(seed)
    if settings["method"] == "asf":  # before any data is loaded
        asf.check_supported(recipe.graph, settings, recipe.recurrent)
        if shard is not None:
            raise NeurodeployError("training.method: asf trains in one process", "leave out --nproc")
    train_epoch = asf.train_epoch if settings["method"] == "asf" else partial(_train_epoch, shard=shard)
    generator = torch.Generator().manual_seed(settings["seed"])
    torch.manual_seed(settings["seed"])

    encoded = {split: (encode_dataset(x, recipe.encoding, recipe.dt_s), y)
               for split in SPLITS[recipe.dataset] for x, y in [load_split(recipe.dataset, split)]}
    train_spikes, y_train = encoded["train"]
    labels = torch.as_tensor(y_train)
    validate = settings["select_on_validation"] and "validation" in encoded

    surrogate = surrogate_of(settings)  # training.surrogate (or the older surrogate_steepness)
    shared: dict[str, torch.Tensor] = {}  # convolutions' kernels: trained, shared by their unrolled copies
    net = SpikingNetwork(recipe.graph, recipe.dt_s, surrogate=surrogate,
                         detach_reset=settings["detach_reset"], weights=initial_weights(recipe, generator, shared),
                         delays=initial_delays(recipe, generator) or None, recurrent=recipe.recurrent,
                         shared=shared)
    optimiser = torch.optim.AdamW(parameter_groups(net, recipe, settings["learning_rate"]),
                                  lr=settings["learning_rate"], weight_decay=float(settings["weight_decay"]))
    total_steps = settings["epochs"] * math.ceil(len(labels) / settings["batch_size"])
    schedule: torch.optim.lr_scheduler.CosineAnnealingLR | Schedules = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=max(total_steps, 1), eta_min=settings["learning_rate"] * settings["lr_final_fraction"])
    if net.delay_names:  # each group (weights, delays) anneals from its own learning rate; σ shrinks
        schedule = Schedules(cosine_per_group(optimiser, total_steps, settings["lr_final_fraction"]),
                             SigmaSchedule(net, recipe, total_steps, settings["epochs"]))

    started = time.perf_counter()
    history: list[dict] = []
    # (validation accuracy, epoch, weights, delays) of the best epoch; epochs >= 1, so it is replaced
    best: tuple[float, int, Optional[dict[str, torch.Tensor]], Optional[dict[str, torch.Tensor]]] = (
        -1.0, -1, None, None)
    qat_from = settings["epochs"] - settings["quantisation_aware_epochs"]
    bar = tqdm(range(settings["epochs"]), desc=f"train {recipe.name}", unit="epoch", disable=not progress)
    for epoch in bar:
        # The last epochs see the weights the chip will hold (straight-through fake quantisation).
        quantise = epoch >= qat_from
        net.quantise_levels = settings["weight_levels"] if quantise else None
        history.append(train_epoch(net, train_spikes, labels, settings, optimiser, schedule, generator, progress))
        if validate:
            levels = settings["weight_levels"] if quantise else None
            history[-1]["validation_accuracy"] = _score(net, *encoded["validation"], settings["loss"], levels)
            if history[-1]["validation_accuracy"] >= best[0]:
                best = (history[-1]["validation_accuracy"], epoch, net.weight_dict(), net.delay_dict())
        bar.set_postfix({k[:9]: f"{v:.3f}" for k, v in history[-1].items()})
    seconds = time.perf_counter() - started
    net.quantise_levels = None  # the model file keeps float weights; `map` quantises them
    if validate:
        net = SpikingNetwork(recipe.graph, recipe.dt_s, surrogate=surrogate,
                             detach_reset=settings["detach_reset"], weights=best[2], delays=best[3] or None,
                             delay_sigma_steps=net.delay_sigma_steps)

    test_spikes, y_test = encoded["test"]
    metrics = {"test_accuracy": _score(net, test_spikes, y_test, settings["loss"]),
               "test_accuracy_quantised": _score(net, test_spikes, y_test, settings["loss"],
                                                 settings["weight_levels"]),
               "train_accuracy": history[-1]["train_accuracy"], "final_loss": history[-1]["loss"],
               "epochs": settings["epochs"], "selected_epoch": best[1] + 1 if validate else settings["epochs"],
               "validation_accuracy": best[0] if validate else None,
               "training_seconds": seconds, "seconds_per_epoch": seconds / max(settings["epochs"], 1),
               "n_test": int(len(y_test)),
               "spikes_per_neuron_per_sample": _spike_counts(net, test_spikes)}
    if settings["method"] == "asf":  # what ASF trained: the accumulator readout (test_accuracy: the li readout)
        metrics["test_accuracy_accumulator"] = asf.accumulator_accuracy(net, test_spikes, y_test)
    if net.delay_names:  # the chip realises integer delays: accuracy before and after hardening
        with hardened(net):
            metrics["test_accuracy_hardened"] = _score(net, test_spikes, y_test, settings["loss"])
            metrics["test_accuracy_hardened_quantised"] = _score(net, test_spikes, y_test, settings["loss"],
                                                                 settings["weight_levels"])
    return ModelFile(graph=recipe.graph, weights=net.weight_dict(), dt_s=recipe.dt_s, encoding=recipe.encoding,
                     dataset=recipe.dataset, seed=settings["seed"], training=settings, metrics=metrics,
                     provenance={"recipe": recipe.name, "recipe_file": recipe_file, "history": history},
                     delays=net.delay_dict(), delay_sigma_steps=dict(net.delay_sigma_steps),
                     recurrent={name: c.to_dict() for name, c in recipe.recurrent.items()})
