r"""Data-parallel training over processes (``train --nproc N``): each rank its shard of every mini-batch, the
gradients averaged over ranks before each step, so that every rank holds the same weights after every step.

A global mini-batch of ``b`` samples (the recipe's ``batch_size``, drawn in the same order on every rank) is
split ``idx[rank::world]``; rank ``r`` computes the gradient :math:`g_r` of its shard's mean loss, and

.. math::
    g = \sum_r \frac{b_r}{b}\, g_r

(one ``all_reduce`` of the weighted gradients, gloo on CPU) is the gradient of the whole batch's mean loss:
the same step one process takes, up to the order of floating-point sums. This is what
``DistributedDataParallel`` does; the loop here averages by hand because the network is called with
perturbed weights (hardware-aware training) that DDP's module wrapper would not see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class Shard:
    """This process's rank among ``world``; ``checksums`` records the weights after each step when asked."""

    rank: int
    world: int
    record_checksums: bool = False
    checksums: list[str] = field(default_factory=list)

    def of(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's samples of a global mini-batch (indices)."""
        return batch[self.rank::self.world]

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter], local: int, total: int) -> None:
        """Replace each gradient by the whole batch's: :math:`\\sum_r (b_r/b)\\, g_r` over ranks."""
        for parameter in parameters:
            if not parameter.requires_grad:
                continue
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            parameter.grad.mul_(local / total)
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)

    def total(self, *values: float) -> list[float]:
        """Sums over ranks (losses, correct counts) of per-rank values."""
        summed = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        return summed.tolist()

    def after_step(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        if self.record_checksums:
            digest = hashlib.sha256()
            for parameter in parameters:
                digest.update(parameter.detach().contiguous().numpy().tobytes())
            self.checksums.append(digest.hexdigest())
