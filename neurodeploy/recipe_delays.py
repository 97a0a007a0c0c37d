"""The ``delays:`` key of a recipe layer: learnable synaptic delays on the layer's incoming projection.

.. code-block:: yaml

    delays:
      max_steps: 30              # kernel taps 0..30 (delays of 0..30 steps on top of the routing latency)
      learning_rate: 0.1         # steps per update (Adam), the delays' own learning rate
      init_steps: [0, 30]        # initial delays uniform in this range (steps)
      sigma_final_steps: 0.23    # σ of the Gaussian kernel at the end of its decay (DCLS)
      sigma_decay_fraction: 0.25 # σ falls from max_steps/2 over this fraction of training
      sigma_schedule: linear     # per optimiser step; exponential: per epoch, as DCLS does
      sigma_offset_steps: 0.0    # added to σ throughout (DCLS's Gaussian is |SIG| + 0.27 wide)

DCLS's own schedule is ``sigma_schedule: exponential`` with ``sigma_offset_steps: 0.27`` (it ends at
0.23 + 0.27 = 0.5 steps); :func:`neurodeploy.core.delays.sigma_at` has the equations.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

from .core.delays import SIGMA_DECAY_FRACTION, SIGMA_FINAL_STEPS, SIGMA_SCHEDULES
from .errors import RecipeError

DELAY_DEFAULTS: dict[str, Any] = {"learning_rate": 0.1, "sigma_final_steps": SIGMA_FINAL_STEPS,
                                  "sigma_decay_fraction": SIGMA_DECAY_FRACTION, "sigma_schedule": "linear",
                                  "sigma_offset_steps": 0.0}
DELAY_KEYS = {"max_steps", "init_steps", *DELAY_DEFAULTS}


def parse_delays(spec: Any, where: str) -> dict:
    """Validate a layer's ``delays:`` mapping; returns it with defaults filled in."""
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{where} is not a mapping", "give e.g. {max_steps: 30}")
    unknown = set(spec) - DELAY_KEYS
    if unknown:
        raise RecipeError(f"unknown key(s) {sorted(unknown)} in {where}", f"allowed keys: {sorted(DELAY_KEYS)}")
    max_steps = spec.get("max_steps")
    if not (isinstance(max_steps, int) and not isinstance(max_steps, bool) and max_steps >= 1):
        raise RecipeError(f"{where}.max_steps = {max_steps!r} must be a positive integer", "e.g. max_steps: 30")
    out = {**DELAY_DEFAULTS, "init_steps": [0, max_steps], **spec}
    try:
        low, high = (float(v) for v in out["init_steps"])
    except (TypeError, ValueError):
        raise RecipeError(f"{where}.init_steps must be two numbers [low, high]", "e.g. init_steps: [0, 30]") from None
    if not 0 <= low <= high <= max_steps:
        raise RecipeError(f"{where}.init_steps [{low}, {high}] must lie inside 0..max_steps ({max_steps})",
                          f"e.g. init_steps: [0, {max_steps}]")
    for key in ("learning_rate", "sigma_final_steps"):
        if not (isinstance(out[key], (int, float)) and out[key] > 0):
            raise RecipeError(f"{where}.{key} = {out[key]!r} must be a positive number", f"e.g. {DELAY_DEFAULTS[key]}")
    if not (isinstance(out["sigma_decay_fraction"], (int, float)) and 0 <= out["sigma_decay_fraction"] <= 1):
        raise RecipeError(f"{where}.sigma_decay_fraction must lie in [0, 1]", "e.g. 0.25")
    if out["sigma_schedule"] not in SIGMA_SCHEDULES:
        raise RecipeError(f"{where}.sigma_schedule = {out['sigma_schedule']!r} is unknown",
                          f"use one of {', '.join(SIGMA_SCHEDULES)}")
    offset = out["sigma_offset_steps"]
    if not (isinstance(offset, (int, float)) and not isinstance(offset, bool) and 0 <= offset <= max_steps):
        raise RecipeError(f"{where}.sigma_offset_steps = {offset!r} must lie in 0..max_steps ({max_steps})",
                          "e.g. 0.27 (DCLS)")
    return {"max_steps": max_steps, "init_steps": [low, high], "learning_rate": float(out["learning_rate"]),
            "sigma_final_steps": float(out["sigma_final_steps"]),
            "sigma_decay_fraction": float(out["sigma_decay_fraction"]), "sigma_schedule": out["sigma_schedule"],
            "sigma_offset_steps": float(offset)}
