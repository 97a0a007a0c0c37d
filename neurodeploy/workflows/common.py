"""Pieces several workflows share: scoring a readout."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..models.network import decode


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
