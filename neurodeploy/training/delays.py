"""Training pieces for learnable delays: initial delays, their own learning rate, the σ schedule, hardening.

``fit`` uses these only when the recipe has a ``delays:`` layer; without one they change nothing.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from collections.abc import Iterator

import torch

from ..core.delays import harden, sigma_at
from ..models.network import SpikingNetwork
from ..recipe import Recipe


def initial_delays(recipe: Recipe, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Delays uniform in each delayed projection's ``init_steps`` range (steps)."""
    out = {}
    for proj in recipe.graph.projections:
        if proj.name in recipe.delays:
            low, high = recipe.delays[proj.name]["init_steps"]
            shape = (recipe.graph.population(proj.post).size, recipe.graph.population(proj.pre).size)
            out[proj.name] = low + (high - low) * torch.rand(shape, generator=generator)
    return out


def parameter_groups(net: SpikingNetwork, recipe: Recipe, learning_rate: float) -> list[dict]:
    """Weights at the recipe's learning rate; each projection's delays at its own (no weight decay on delays)."""
    groups: list[dict] = [{"params": list(net.weights) + list(net.shared), "lr": learning_rate}]
    for name, delay in zip(net.delay_names, net.delays):
        groups.append({"params": [delay], "lr": recipe.delays[name]["learning_rate"], "weight_decay": 0.0})
    return groups


def cosine_per_group(optimiser: torch.optim.Optimizer, total_steps: int, final_fraction: float):
    r"""Cosine annealing of every group from its own rate :math:`\eta_0` to :math:`f \eta_0`:
    :math:`\eta(s) = \eta_0 (f + (1 - f) \tfrac12 (1 + \cos(\pi s / S)))`."""
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: final_fraction + (1 - final_fraction) * 0.5 * (
        1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1))))


class SigmaSchedule:
    """Sets each delayed projection's σ after every optimiser step (``sigma_at``), then keeps delays in 0..D."""

    def __init__(self, net: SpikingNetwork, recipe: Recipe, total_steps: int, epochs: int = 1) -> None:
        self.net, self.recipe, self.total_steps, self.done = net, recipe, max(total_steps, 1), 0
        self.epochs = epochs  # the exponential (DCLS) schedule steps σ once per epoch
        self._apply()

    def _apply(self) -> None:
        progress = self.done / self.total_steps
        for name, delay in zip(self.net.delay_names, self.net.delays):
            spec = self.recipe.delays[name]
            self.net.delay_sigma_steps[name] = sigma_at(
                progress, spec["max_steps"], spec["sigma_final_steps"], spec["sigma_decay_fraction"],
                schedule=spec.get("sigma_schedule", "linear"), epochs=self.epochs,
                offset_steps=spec.get("sigma_offset_steps", 0.0))
            with torch.no_grad():  # a delay outside the kernel has no gradient: keep it where it can learn
                delay.clamp_(0, spec["max_steps"])

    def step(self) -> None:
        self.done += 1
        self._apply()


class Schedules:
    """Steps several schedules together (the learning rate's and σ's)."""

    def __init__(self, *schedules) -> None:
        self.schedules = schedules

    def step(self) -> None:
        for schedule in self.schedules:
            schedule.step()


@contextmanager
def hardened(net: SpikingNetwork) -> Iterator[SpikingNetwork]:
    """Temporarily integer delays (σ = 0, rounded): what the chip realises."""
    saved_sigma = dict(net.delay_sigma_steps)
    saved = [d.detach().clone() for d in net.delays]
    try:
        with torch.no_grad():
            for name, delay in zip(net.delay_names, net.delays):
                delay.copy_(harden(delay, net.max_delay_steps[name]))
                net.delay_sigma_steps[name] = 0.0
        yield net
    finally:
        with torch.no_grad():
            for delay, value in zip(net.delays, saved):
                delay.copy_(value)
        net.delay_sigma_steps.update(saved_sigma)
