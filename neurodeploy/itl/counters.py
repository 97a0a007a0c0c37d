r"""``itl --method asf``: the chip in the loop through its spike counters only (seed 002 on a chip).

Accumulated Spiking Flow (:mod:`neurodeploy.training.asf`) needs, per neuron and sample, only the spikes it
delivered (:math:`\mathcal{FO}`) and its summed input (:math:`\mathcal{FI}`), and the second follows from
the first: :math:`\mathcal{FI}^n = W^n \mathcal{FO}^{n-1}`, with :math:`W^n` the weights the chip holds. So a
forward pass on the chip needs to return one 8-bit spike counter per neuron and sample — BSS-2 has them —
and no spike times and no membrane samples. The readout's accumulator is computed the same way,
:math:`V^N(T) = W^N \mathcal{FO}^{N-1}`; the gradients are ASF's (:func:`~neurodeploy.training.asf.asf_gradients`).

A counter saturates at 255 (``COUNTER_MAX``): a neuron that fires more in one sample is under-counted, and
``counter_saturations`` reports how often that happened (a design rule to watch: the model should fire far
less). Bytes read back: one per neuron and sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from ..backends.base import Backend, Observations, Recording
from ..data.encoding import bin_spike_times, n_steps
from ..deployment import Deployment
from ..graph import Graph
from ..modelfile import ModelFile
from ..targets.base import ItlSession
from ..training.asf import Flows, silent_ratio, asf_gradients, shared_ratio
from .loop import ItlData, project_all

COUNTER_MAX = 255  # BSS-2's spike counters are 8 bit
COUNTS_ONLY = Recording(spikes=True, membrane=False)  # the mock returns spikes; a chip would return its counters


class Counted(NamedTuple):
    flows: Flows
    saturated: int  # neuron-samples whose counter reached COUNTER_MAX
    bytes_read: int  # one byte per neuron and sample


def chip_flows(obs: Observations, graph: Graph, neurons: dict[str, np.ndarray], weights: Mapping[str, torch.Tensor],
               input_spikes: torch.Tensor) -> Counted:
    """ASF's flows from a chip run's spike counts (saturating 8-bit counters) and the chip's weights."""
    counts = obs.spikes.sum(dim=0).clamp(max=COUNTER_MAX).double()  # [B, N]
    outflow = {graph.input.name: input_spikes[:-1].sum(0).double()}  # the inputs delivered within the window
    inflow: dict[str, torch.Tensor] = {}
    ratio: dict[str, torch.Tensor] = {}
    for pop in graph.populations[1:]:
        inflow[pop.name] = torch.stack([outflow[p.pre] @ weights[p.name].detach().double().t()
                                        for p in graph.feedforward(pop.name)]).sum(0)
        if pop.kind == "lif":
            outflow[pop.name] = counts[:, torch.as_tensor(neurons[pop.name])]
            ratio[pop.name] = shared_ratio(inflow[pop.name], outflow[pop.name], silent_ratio(graph, pop.name))
    spiking = [neurons[p.name] for p in graph.populations[1:] if p.kind == "lif"]
    hidden = torch.as_tensor(np.concatenate(spiking)) if spiking else torch.zeros(0, dtype=torch.long)
    saturated = int((counts[:, hidden] >= COUNTER_MAX).sum())
    return Counted(Flows(inflow, outflow, ratio, int(input_spikes.shape[0])), saturated,
                   int(counts.shape[0] * counts.shape[1]))


def counter_epoch(engine: Backend, session: ItlSession, deployment: Deployment, weights: dict[str, torch.nn.Parameter],
                  optimiser: torch.optim.Optimizer, data: ItlData, model: ModelFile, neurons: dict[str, np.ndarray],
                  order: torch.Tensor, progress: bool = False) -> tuple[Deployment, dict]:
    """One pass over the training samples in ``order`` with ASF on the chip's counters; the same returns as
    :func:`~neurodeploy.itl.loop.train_epoch`, plus the bytes read back and the counter saturations."""
    settings = model.training
    graph = model.graph
    losses, correct, rewritten, read, saturated = [], 0, 0, 0, 0
    for start in tqdm(range(0, len(order), settings["batch_size"]), desc="  batches on the chip", unit="batch",
                      leave=False, disable=not progress):
        idx = order[start:start + settings["batch_size"]]
        obs = engine.run(deployment, data.train_times[idx.numpy()], COUNTS_ONLY)
        chip = session.chip_weights(weights)
        counted = chip_flows(obs, graph, neurons, chip, data.train_spikes[:, idx])
        grads, loss = asf_gradients(graph, {k: w.detach().double() for k, w in chip.items()}, counted.flows,
                                    data.labels[idx], settings.get("asf_ratio", "gated"))
        optimiser.zero_grad()
        for name, grad in grads.items():
            if weights[name].requires_grad:
                weights[name].grad = grad.to(weights[name].dtype)
        optimiser.step()
        session.clamp(weights)
        project_all(weights, model)
        deployment, changed = session.reconfigured(deployment, weights)
        losses.append(float(loss))
        correct += int((counted.flows.inflow[graph.readout.name].argmax(1) == data.labels[idx]).sum())
        rewritten += changed
        read += counted.bytes_read
        saturated += counted.saturated
    return deployment, {"loss": float(np.mean(losses)), "train_accuracy_on_chip": correct / len(order),
                        "synapses_rewritten": rewritten, "bytes_read": read, "counter_saturations": saturated}


def counter_accuracy(engine: Backend, session: ItlSession, deployment: Deployment, weights: Mapping[str, torch.Tensor],
                     model: ModelFile, neurons: dict[str, np.ndarray], times: np.ndarray, labels: np.ndarray,
                     batch: int) -> tuple[float, int]:
    """Accuracy of the accumulator readout computed from the chip's counters, and the bytes read back."""
    correct, read = 0, 0
    chip = session.chip_weights(weights)
    steps = n_steps(model.encoding, model.dt_s)
    for start in range(0, len(labels), batch):
        chunk = times[start:start + batch]
        obs = engine.run(deployment, chunk, COUNTS_ONLY)
        counted = chip_flows(obs, model.graph, neurons, chip, bin_spike_times(chunk, model.dt_s, steps))
        predicted = counted.flows.inflow[model.graph.readout.name].argmax(1).numpy()
        correct += int((predicted == np.asarray(labels[start:start + batch])).sum())
        read += counted.bytes_read
    return correct / max(len(labels), 1), read
