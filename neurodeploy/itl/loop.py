r"""In-the-loop training as steps over objects: the data, one epoch, the record of the run.

Each mini-batch runs on the backend through the deployment; its spikes and membrane samples
(aligned to the model by :mod:`.alignment`) are injected into the model's forward pass
(:mod:`.forward`), so the loss is the chip's and the gradient is the model's surrogate gradient
on the chip's trajectory. AdamW updates float shadow weights; the target's
:class:`~neurodeploy.targets.base.ItlSession` re-quantises them with the first mapping's fixed
scales and rewrites only the synapses that changed.

A run that fails with a retryable backend error (a lost connection, a time-out) is run again with
the same batch (:class:`~neurodeploy.backends.retry.Retrying`, which :mod:`.run` wraps the backend in).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from ..backends.base import Backend, Observations
from ..core.conv import connected
from ..core.recurrent import RecurrentConstraints, project_
from ..core.surrogate import Surrogate, surrogate_of
from ..data.datasets import SPLITS, load_split
from ..data.encoding import encode, encode_dataset
from ..deployment import Deployment
from ..errors import BackendError, GraphError, NeurodeployError
from ..modelfile import ModelFile
from ..models.network import decode
from ..targets.base import ItlSession
from ..training.loss import task_loss
from .alignment import Alignment
from .forward import injected_forward, measured_per_layer


class ItlData(NamedTuple):
    """The samples of one run: encoded for the chip (times) and for the model (spikes)."""

    train_times: np.ndarray  # [N, channels] spike times, model seconds
    train_spikes: torch.Tensor  # [T, N, channels]
    labels: torch.Tensor  # [N]
    val_times: np.ndarray
    val_labels: np.ndarray
    test_times: np.ndarray
    test_labels: np.ndarray


def itl_data(model: ModelFile, train_samples: int | None) -> ItlData:
    """The first ``train_samples`` training samples (None: all), the validation split, the test split.

    A dataset without a validation split validates on the training samples itl does not use.
    """
    train_x, train_y = load_split(model.dataset, "train")
    used = len(train_y) if train_samples is None else int(train_samples)
    if not 0 < used <= len(train_y):
        raise NeurodeployError(f"--train-samples {train_samples} is outside 1..{len(train_y)}",
                               f"the '{model.dataset}' training set has {len(train_y)} samples")
    if "validation" in SPLITS[model.dataset]:
        val_x, val_y = load_split(model.dataset, "validation")
    elif used >= len(train_y):
        raise NeurodeployError(f"dataset '{model.dataset}' has no validation split and all {len(train_y)} training "
                               "samples are used for training", f"use --train-samples below {len(train_y)}")
    else:
        val_x, val_y = train_x[used:], train_y[used:]
    test_x, test_y = load_split(model.dataset, "test")
    return ItlData(encode(train_x[:used], model.encoding), encode_dataset(train_x[:used], model.encoding, model.dt_s),
                   torch.as_tensor(train_y[:used]), encode(val_x, model.encoding), val_y,
                   encode(test_x, model.encoding), test_y)


def chip_loss(engine: Backend, session: ItlSession, deployment: Deployment, weights: dict[str, torch.nn.Parameter],
              data: ItlData, model: ModelFile, alignment: Alignment, neurons: dict[str, np.ndarray], idx: torch.Tensor,
              surrogate: Surrogate) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The samples ``idx`` run on the chip, its observations injected into the model's forward pass: the mean
    loss over ``idx`` (differentiable in ``weights``), the scores ``[len(idx), classes]`` and the bytes read."""
    settings = model.training
    obs = engine.run(deployment, data.train_times[idx.numpy()])
    if obs.spikes.shape[0] not in (0, data.train_spikes.shape[0]):
        raise BackendError(f"backend {engine.name} returned {obs.spikes.shape[0]} steps, the model has "
                           f"{data.train_spikes.shape[0]}", "use a backend on the model's time grid")
    measured = measured_per_layer(obs, model.graph, neurons, alignment)
    out = injected_forward(model.graph, session.chip_weights(weights), data.train_spikes[:, idx], model.dt_s,
                           measured, surrogate=surrogate, projection_input=session.projection_input)
    if out.readout_v is None:
        raise GraphError(f"population '{model.graph.readout.name}' is not an li readout",
                         "end the model's graph with a non-spiking readout (kind: li)")
    scores = decode(out.readout_v, settings["loss"])
    loss = task_loss(scores, data.labels[idx], out.spikes, model.graph.input.name, settings)
    return loss, scores, bytes_read(obs)


def train_epoch(engine: Backend, session: ItlSession, deployment: Deployment, weights: dict[str, torch.nn.Parameter],
                optimiser: torch.optim.Optimizer, data: ItlData, model: ModelFile, alignment: Alignment,
                neurons: dict[str, np.ndarray], order: torch.Tensor, progress: bool = False) -> tuple[Deployment, dict]:
    """One pass over the training samples in ``order``; returns the deployment holding the new weights and
    the epoch's loss, accuracy on the chip and synapses rewritten (``progress``: a bar over the batches)."""
    settings = model.training
    surrogate = surrogate_of(settings)  # the surrogate the model was trained with
    losses, correct, rewritten, read = [], 0, 0, 0
    for start in tqdm(range(0, len(order), settings["batch_size"]), desc="  batches on the chip", unit="batch",
                      leave=False, disable=not progress):
        idx = order[start:start + settings["batch_size"]]
        loss, scores, nbytes = chip_loss(engine, session, deployment, weights, data, model, alignment, neurons, idx,
                                         surrogate)
        read += nbytes
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        session.clamp(weights)
        project_all(weights, model)
        deployment, changed = session.reconfigured(deployment, weights)
        losses.append(loss.item())
        correct += int((scores.argmax(1) == data.labels[idx]).sum())
        rewritten += changed
    return deployment, {"loss": float(np.mean(losses)), "train_accuracy_on_chip": correct / len(order),
                        "synapses_rewritten": rewritten, "bytes_read": read}


SPIKE_EVENT_BYTES = 8  # a spike event from the chip: a 64-bit word (time stamp and neuron label)


def bytes_read(obs: Observations) -> int:
    """What a run's readouts cost to read back: 8 bytes per spike event, one per membrane sample as the backend
    returned it (the mock interpolates its CADC's 2 µs samples onto each 1 µs step: twice the chip's count)."""
    return int(obs.spikes.sum()) * SPIKE_EVENT_BYTES + int(obs.membrane.numel())


def recurrent_constraints(model: ModelFile) -> dict[str, RecurrentConstraints]:
    """The model's recurrent projections' constraints (mask, sign, learnable), which itl keeps as training did."""
    return {name: RecurrentConstraints.from_dict(spec) for name, spec in model.recurrent.items()}


def project_all(weights: dict[str, torch.nn.Parameter], model: ModelFile) -> None:
    """Bring each constrained recurrent matrix back onto its constraints, and keep each convolution's unrolled
    copies within its structure (the chip has synapses only there), after a step and the clamp.

    The copies of a kernel are trained each on its own: on the chip each is its own synapse with its own error.
    """
    for name, spec in recurrent_constraints(model).items():
        project_(weights[name].data, spec)
    for proj in model.graph.projections:
        if proj.geometry is not None:
            structure = connected(proj.geometry, weights[proj.name].shape[0])
            weights[proj.name].data.mul_(structure)


def shadow_weights(model: ModelFile) -> dict[str, torch.nn.Parameter]:
    """The float weights itl trains: the model's, as parameters; a recurrent matrix that is not learnable gets no
    gradient."""
    constraints = recurrent_constraints(model)
    return {k: torch.nn.Parameter(v.clone(), requires_grad=k not in constraints or constraints[k].learnable)
            for k, v in model.weights.items()}


def snapshot(weights: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    """Detached copies of the shadow weights (for the best epoch and the checkpoint)."""
    return {k: w.detach().clone() for k, w in weights.items()}
