"""``run``: execute a deployment on a backend and score its readout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..api import for_backend
from ..backends.base import Backend, readout_scores
from ..backends.registry import get_backend
from ..backends.retry import Retrying
from ..data.datasets import load_data
from ..data.encoding import encode
from ..deployment import Deployment
from ..scoring import accuracy
from ..validation.loading import load_checked_deployment

BATCH = 500


def other_chip_warnings(deployment: Deployment, engine: Backend) -> list[str]:
    """A model trained in the loop on one chip has learned that chip's mismatch; on another it may lose accuracy."""
    trained = (deployment.meta.get("trained_on") or {}).get("chip")
    chip = engine.chip_id
    if trained is None or chip is None or trained == chip:
        return []
    return [f"this model was trained in the loop on chip {trained}, it runs on chip {chip}: "
            f"expect lower accuracy (fix: neurodeploy itl on chip {chip})"]


def run(deployment_path: str | Path, backend: str = "mock:ideal", data: Optional[str] = None,
        progress: bool = False, calibration: Optional[str | Path] = None) -> dict:
    """Accuracy and event counters of a deployment on a backend."""
    engine = Retrying(get_backend(backend))  # a run that loses the chip is run again with the same batch
    deployment = for_backend(load_checked_deployment(deployment_path), engine, calibration)
    x, y = load_data(deployment.meta["dataset"], data)
    times = encode(x, deployment.meta["encoding"])
    scores: list[torch.Tensor] = []
    counters: dict[str, int] = {}
    for start in tqdm(range(0, len(y), BATCH), desc=f"run on {backend}", disable=not progress, leave=False):
        obs = engine.run(deployment, times[start:start + BATCH])
        scores.append(readout_scores(deployment, obs))
        for key, value in obs.counters.items():
            counters[key] = counters.get(key, 0) + value
    return {"accuracy": accuracy(torch.cat(scores), y), "warnings": other_chip_warnings(deployment, engine),
            "n_samples": int(len(y)), "backend": engine.name,
            "target": deployment.target, "dataset": deployment.meta["dataset"], "data": data or "test",
            "chip": engine.chip_id, "counters": counters, "retried_runs": engine.retries}
