r"""One epoch of in-the-loop training with several chips in the loop at once, sharing one set of float weights.

Each global mini-batch ``idx`` of :math:`b` samples (drawn as on one chip) is split over the :math:`K` chips:
chip :math:`k` runs ``idx[k::K]`` (:math:`b_k` samples) through its own deployment (its own calibration,
alignment and :class:`~neurodeploy.targets.base.ItlSession`), its observations are injected into the model's
forward pass (:func:`.loop.chip_loss`), and one AdamW step of the shared weights takes

.. math:: g = \sum_k \frac{b_k}{b}\, g_k ,

:math:`g_k` the gradient of chip :math:`k`'s mean loss over its shard: the gradient of the whole batch's mean
loss, each sample on the chip that ran it. Then every chip's deployment is rewritten with the new weights.
Averaging over chips is the point: a change that fits one chip's residual mismatch and hurts another's
cancels, so the weights learn what the chips share (robustness to mismatch), not one chip's errors.

Over processes (``itl --nproc N``) the chips are dealt round-robin (rank :math:`r`: chips :math:`r, r+N, \dots`);
rank :math:`r` takes the gradient of its samples' mean loss, :math:`g_r = \sum_{k \in r} (b_k / b_r)\, g_k`,
and :class:`~neurodeploy.training.distributed.Shard` sums :math:`(b_r / b)\, g_r` over ranks: the same
:math:`g` up to the order of floating-point sums, so every rank takes the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..backends.base import Backend
from ..core.surrogate import surrogate_of
from ..deployment import Deployment
from ..modelfile import ModelFile
from ..targets.base import ItlSession
from ..training.distributed import Shard
from .alignment import Alignment
from .loop import ItlData, chip_loss, project_all


@dataclass
class Chip:
    """One chip in the loop: its place ``index`` among all chips, its backend and session, the deployment that
    holds the current weights, its neurons per layer and its measured alignment."""

    index: int
    engine: Backend
    session: ItlSession
    deployment: Deployment
    neurons: dict[str, np.ndarray]
    alignment: Alignment


@dataclass
class Ranks:
    """This process's share of the chips. ``shard`` None: one process runs every chip."""

    shard: Optional[Shard] = None

    @property
    def rank(self) -> int:
        return 0 if self.shard is None else self.shard.rank

    @property
    def world(self) -> int:
        return 1 if self.shard is None else self.shard.world

    def mine(self, index: int) -> bool:
        """Whether chip ``index`` runs in this process (round-robin over ranks)."""
        return index % self.world == self.rank

    def totals(self, values: list[float]) -> list[float]:
        """Sums over ranks of per-rank values (each rank the same answer)."""
        return list(values) if self.shard is None else self.shard.total(*values)

    def per_chip(self, mine: dict[int, Any]) -> dict[int, Any]:
        """Every rank's ``{chip index: record}`` merged, on every rank (records are small: accuracies,
        alignments)."""
        if self.shard is None:
            return dict(mine)
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, mine)
        return {k: v for part in gathered for k, v in part.items()}

    def combine(self, weights: dict[str, torch.nn.Parameter], local: int, total: int) -> None:
        """Each gradient (this rank's samples' mean-loss gradient) → the whole batch's (module docstring)."""
        if self.shard is not None:
            self.shard.average_gradients(weights.values(), local, total)

    def after_step(self, weights: dict[str, torch.nn.Parameter]) -> None:
        if self.shard is not None:
            self.shard.after_step(weights.values())


def chips_epoch(chips: list[Chip], n_chips: int, sessions: list[ItlSession], weights: dict[str, torch.nn.Parameter],
                optimiser: torch.optim.Optimizer, data: ItlData, model: ModelFile, order: torch.Tensor, ranks: Ranks,
                progress: bool = False) -> dict:
    """One pass over the training samples in ``order`` with ``chips`` (this rank's of ``n_chips``) in the loop;
    updates each chip's deployment and returns the epoch's loss, accuracy on the chips, synapses rewritten and
    bytes read, summed over every rank's chips (the loss: the mean over batches of the batch's mean loss, as on
    one chip).

    ``sessions``: every chip's session, on every rank, so that all ranks clamp the weights alike after a step.
    """
    settings = model.training
    surrogate = surrogate_of(settings)
    loss_sum, correct, rewritten, read = 0.0, 0, 0, 0
    for start in tqdm(range(0, len(order), settings["batch_size"]), desc="  batches on the chips", unit="batch",
                      leave=False, disable=not progress):
        idx = order[start:start + settings["batch_size"]]
        shards = {chip.index: idx[chip.index::n_chips] for chip in chips}
        local = sum(len(s) for s in shards.values())
        optimiser.zero_grad()
        for chip in chips:
            shard = shards[chip.index]
            if len(shard) == 0:  # a last batch smaller than the number of chips
                continue
            loss, scores, nbytes = chip_loss(chip.engine, chip.session, chip.deployment, weights, data, model,
                                             chip.alignment, chip.neurons, shard, surrogate)
            (loss * (len(shard) / local)).backward()  # accumulates g_r = Σ_k (b_k / b_r) g_k
            loss_sum += loss.item() * len(shard) / len(idx)  # Σ over batches of the batch's mean loss
            correct += int((scores.argmax(1) == data.labels[shard]).sum())
            read += nbytes
        ranks.combine(weights, local, len(idx))
        optimiser.step()
        for session in sessions:  # every chip's range, in the same order on every rank
            session.clamp(weights)
        project_all(weights, model)
        for chip in chips:
            chip.deployment, changed = chip.session.reconfigured(chip.deployment, weights)
            rewritten += changed
        ranks.after_step(weights)
    total_loss, total_correct, total_rewritten, total_read = ranks.totals([loss_sum, correct, rewritten, read])
    batches = -(-len(order) // settings["batch_size"])
    return {"loss": total_loss / batches, "train_accuracy_on_chip": total_correct / len(order),
            "synapses_rewritten": int(total_rewritten), "bytes_read": int(total_read)}
