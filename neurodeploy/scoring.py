"""Scoring: a readout's accuracy, batch by batch in software or on a backend; an option check the verbs share."""

from __future__ import annotations

from typing import Optional
from collections.abc import Callable

import numpy as np
import torch

from .backends.base import Backend, readout_recording, readout_scores
from .deployment import Deployment
from .errors import NeurodeployError
from .models.network import decode


def batched_scores(run_batch: Callable[[torch.Tensor], torch.Tensor], spikes: torch.Tensor,
                   how: str = "max_over_time", batch_size: int = 500) -> torch.Tensor:
    """Apply ``run_batch`` (``[T, b, C]`` → readout ``[T, b, classes]``) batch by batch → scores ``[N, classes]``."""
    scores = []
    with torch.no_grad():
        for start in range(0, spikes.shape[1], batch_size):
            scores.append(decode(run_batch(spikes[:, start:start + batch_size]), how))
    return torch.cat(scores)


def accuracy(scores: torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    return float((scores.argmax(dim=1) == torch.as_tensor(labels)).float().mean())


def backend_accuracy(engine: Backend, deployment: Deployment, input_times_s: np.ndarray, labels: np.ndarray,
                     batch_size: int = 500) -> float:
    """Accuracy of ``deployment`` on ``engine`` for encoded inputs ``[N, channels]``, run batch by batch."""
    record = readout_recording(deployment)
    scores = [readout_scores(deployment, engine.run(deployment, input_times_s[s:s + batch_size], record))
              for s in range(0, len(labels), batch_size)]
    return accuracy(torch.cat(scores), labels)


def check_weight_copies(weight_copies: Optional[int]) -> None:
    """``--weight-copies`` must be at least 1 (None: not given)."""
    if weight_copies is not None and weight_copies < 1:
        raise NeurodeployError(f"--weight-copies {weight_copies} is below 1", "use 1 (one synapse per weight) or more")
