"""``run``: execute a deployment on a backend and score its readout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..backends.base import readout_scores
from ..backends.registry import get_backend
from ..data.datasets import load_data
from ..data.encoding import encode
from ..deployment import load_deployment
from .common import accuracy

BATCH = 500


def run(deployment_path: str | Path, backend: str = "mock:ideal", data: Optional[str] = None,
        progress: bool = False) -> dict:
    """Accuracy and event counters of a deployment on a backend."""
    deployment = load_deployment(deployment_path)
    engine = get_backend(backend)
    x, y = load_data(deployment.meta["dataset"], data)
    times = encode(x, deployment.meta["encoding"])
    scores, counters = [], {}
    for start in tqdm(range(0, len(y), BATCH), desc=f"run on {backend}", disable=not progress):
        obs = engine.run(deployment, times[start:start + BATCH])
        scores.append(readout_scores(deployment, obs))
        for key, value in obs.counters.items():
            counters[key] = counters.get(key, 0) + value
    return {"accuracy": accuracy(torch.cat(scores), y), "n_samples": int(len(y)), "backend": engine.name,
            "target": deployment.target, "dataset": deployment.meta["dataset"], "data": data or "test",
            "counters": counters}
