"""Networks from model files, with their delays: as trained (final σ) or hardened (integer delays)."""

from __future__ import annotations

from dataclasses import replace

from ..core.delays import harden_delays
from ..core.surrogate import surrogate_of
from ..modelfile import ModelFile
from .network import SpikingNetwork


def hardened_model(model: ModelFile) -> ModelFile:
    """Pure: the same model with integer delays and σ = 0 (what a chip realises)."""
    max_delay = {p.name: p.max_delay_steps for p in model.graph.projections if p.max_delay_steps}
    return replace(model, delays=harden_delays(model.delays, max_delay),
                   delay_sigma_steps={name: 0.0 for name in model.delays})


def network_from_model(model: ModelFile, hardened: bool = False, **options) -> SpikingNetwork:
    """The model's network, with the model's surrogate gradient; ``hardened``: with integer delays (σ = 0)."""
    model = hardened_model(model) if hardened else model
    options.setdefault("surrogate", surrogate_of(model.training))
    return SpikingNetwork(model.graph, model.dt_s, weights=model.weights, delays=model.delays or None,
                          delay_sigma_steps=model.delay_sigma_steps, **options)
