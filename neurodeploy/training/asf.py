r"""Accumulated Spiking Flow (ASF; Wu et al., AAAI 2021; seed ``002_72acff3de0d1e882.txt``): training without a
temporal backward pass (``training.method: asf``).

**Forward** (no autograd), through the network's own layers: every hidden layer runs its neuron over time
(LIF: :mod:`neurodeploy.core.lif`, the fused kernel when built; IF: :func:`if_sequence`), and only two
numbers per neuron and sample are kept, the accumulated input flow and the output flow

.. math::
    \mathcal{FI}^n_i = \sum_k x^n_{k,i} = \sum_j W^n_{ij}\, \mathcal{FO}^{n-1}_j, \qquad
    \mathcal{FO}^{n}_j = \sum_k \tilde z^{n}_{k,j}          \qquad\text{(seed eq. (6))}

with :math:`x^n_k = W^n \tilde z^{n-1}_k` the weighted input events of step k (the seed's current
:math:`I(t)` of eq. (1)), and :math:`\tilde z` a layer's spikes as its targets receive them: one step late
(the native graph's transmission latency), so a spike of the last step is not counted; this only shifts
the window and keeps eq. (6) exact. The readout does not fire: it is the accumulator
:math:`V^N(T) = \mathcal{FI}^N = W^N \mathcal{FO}^{N-1}`, and the loss is the seed's eq. (5), averaged over
the batch, with one-hot targets :math:`Y`, :math:`T` the steps of a sample and :math:`V_{th}` the readout's
``v_th - v_leak`` (1 by default; an ``li`` readout does not use it otherwise):

.. math::
    L = \tfrac12 \big\| Y - V^N(T) / (T V_{th}) \big\|_2^2 .

**Backward** (eqs. (7)-(9), matrix products, no loop over time). A hidden layer's spike count is taken as
linear in its input flow with one ratio per layer, shared by its neurons and by the samples of the batch,

.. math::
    \mathcal{S}^n = \frac{\sum_{b,i} \mathcal{FO}^n_{b,i}}{\sum_{b,i} [\mathcal{FI}^n_{b,i}]_+}, \qquad
    \frac{\partial L}{\partial \mathcal{FI}^N_i} = \frac{1}{T V_{th}}\Big(\frac{\mathcal{FI}^N_i}{T V_{th}} - Y_i\Big),

.. math::
    \frac{\partial L}{\partial \mathcal{FO}^{n-1}_j} = \sum_i \frac{\partial L}{\partial \mathcal{FI}^{n}_i}
    W^{n}_{ij}, \qquad
    \frac{\partial L}{\partial \mathcal{FI}^{n}_i} = \mathcal{S}^n \frac{\partial L}{\partial \mathcal{FO}^{n}_i},
    \qquad \frac{\partial L}{\partial W^n_{ij}} = \frac{\partial L}{\partial \mathcal{FI}^{n}_i}\,
    \mathcal{FO}^{n-1}_j .

Errata of the seed's equations (its indices; ``../shared/reference/seeds-gaps.md``, item 2.9), written here
with :math:`W_{ij}` from pre neuron j to post neuron i as in its eq. (1): eq. (7) multiplies by
:math:`w_{ij}^N` where :math:`w^N_{ji}` (post j, pre i) is meant; eq. (8) writes :math:`w^N_{ij}` where
:math:`w^{n+1}_{ji}` is meant; eq. (9) sums over j while computing the derivative by one :math:`w_{ij}`: it
is :math:`\partial L/\partial w^n_{ij} = \partial L/\partial\mathcal{FO}^n_i\, \mathcal{S}^n\, \mathcal{FO}^{n-1}_j`,
no sum.

**The ratio's domain** (``training.asf_ratio``). ``shared``, the seed's literal eq. (8): every neuron of a
hidden layer passes its gradient with the same :math:`\mathcal{S}^n`, so the backward pass is that of a
*linear* network. ``gated`` (the default): the linear relation holds where it can, for a positive input
flow, and a neuron whose net input flow over the sample is not positive does not fire, so
:math:`\mathcal{FO}^n_i \approx \mathcal{S}^n [\mathcal{FI}^n_i]_+` and
:math:`\partial L/\partial \mathcal{FI}^n_{b,i} = \mathcal{S}^n\, [\mathcal{FI}^n_{b,i} > 0]\,
\partial L/\partial \mathcal{FO}^n_{b,i}` (the rectifier's derivative, with the layer's shared slope). This
is our reading, not the seed's text; on digits it is worth about 3 points (``docs/asf.md``).

Choices the seed leaves open, and the guard: the shared ratio also pools the batch (the seed: the per-neuron
ratio "varies too much between samples"); its denominator sums only positive input flows (a neuron whose net
input is not positive barely fires, and a sum of signed flows can be ≈ 0 or negative while spikes flow);
where that sum is below ``EPSILON`` (a silent layer), :math:`\mathcal{S}^n = 1/(v_{th} - v_{reset})`, the
ratio of an IF neuron that resets to ``v_reset``, so gradients stay finite and the layer can wake up.

**Neurons.** ``lif``: the graph's own LIF (exponential synapse, exact decay, refractory period; the
update order of :mod:`neurodeploy.core.lif`), so a model trained with ASF is an ordinary model file that
``map`` and ``run`` take. ``if`` (:func:`if_sequence`; for experiments, not reachable from a recipe): the
seed's integrate-and-fire with its input convention made explicit: the weighted events of a step enter
the membrane directly, :math:`V_k = V_{k-1} + x_k` (no synaptic filter, no leak, no ``1 - β`` factor), then
spike :math:`z_k = \Theta(V_k - v_{th})` and reset to :math:`v_{reset}`. The project's LIF tends to it as
:math:`\tau_{syn} \to 0` and :math:`\tau_{mem} \to \infty` with the weights divided by
:math:`1 - \beta \approx \Delta t/\tau_{mem}`; BSS-2 has no IF neuron (its membrane time constant has a
calibrated range, bss2.md §1.5), so on the chip an IF layer is a long-τ LIF (e.g. τ_mem of a few
hundred ms of model time, inside the 2 ms hardware limit, with weights scaled by τ_mem/Δt and a short
τ_syn). That conversion, and a ``map`` rule that flags it, are not implemented.

**Readout on deployment.** The graph's readout is an ``li`` neuron, which leaks, and a deployment decodes
its membrane (``training.loss``). Trained with the accumulator, it is deployed as that ``li``: its mean
over time (``loss: mean_over_time``) is :math:`\frac1T\sum_j H(T-j)\, x^N_j`, with :math:`H(m)` the summed
impulse response of the first m steps, :math:`H(\infty) = 1/(1-\alpha)`: the accumulator up to a constant
factor for every event earlier than a few readout time constants before the end of the window. So an ASF
recipe decodes the mean (``models/digits_asf.yaml`` keeps digits' 10 ms / 5 ms readout: 94.2 % on the li,
93.9 % on the accumulator, seed 0);
``fit`` reports the accuracy of both, the deployable ``li`` (``test_accuracy``) and the accumulator
(``test_accuracy_accumulator``).

Supported: dense feed-forward projections in the native discretisation, any number of hidden layers, the
recipe's AdamW/cosine settings, weight noise and quantisation-aware epochs (straight through). Refused
with a one-line error (:func:`check_supported`): delays, recurrent and convolutional projections, and the
activity regularisers (which act on the BPTT loss).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Optional

import torch
from tqdm import tqdm

from ..core.dispatch import lif_sequence
from ..errors import RecipeError
from ..graph import Graph
from ..models.network import SpikingNetwork
from ..validation.common import ASF_RATIOS

NEURONS = ("lif", "if")
RATIOS = ASF_RATIOS  # training.asf_ratio (module docstring)
EPSILON = 1e-6  # a layer's summed positive input flow below this counts as silent (S^n falls back)
REGULARISERS = ("rate_weight", "activity_l1", "activity_upper_weight")  # BPTT-loss terms ASF does not have


class Flows(NamedTuple):
    """One forward pass: per population, ``[B, N]`` flows; per hidden population, its shared ratio (a scalar)."""

    inflow: dict[str, torch.Tensor]  # FI^n, every non-input population (the readout's is V^N(T))
    outflow: dict[str, torch.Tensor]  # FO^n, spikes as delivered to the next layer; the input's included
    ratio: dict[str, torch.Tensor]  # S^n, every hidden population
    steps: int  # T


def check_supported(graph: Graph, settings: Mapping, recurrent: Optional[Mapping] = None) -> None:
    """Raise a one-line ``RecipeError`` naming the first part of the recipe that ASF cannot train."""
    fix = "remove it, or train with training.method: bptt"
    if graph.discretisation != "native":
        raise RecipeError(f"training.method: asf needs the native discretisation, the graph has "
                          f"{graph.discretisation!r}", "train an imported graph with training.method: bptt")
    for proj in graph.projections:
        if proj.recurrent or (recurrent and proj.name in recurrent):
            raise RecipeError(f"training.method: asf cannot train the recurrent projection {proj.name}", fix)
        if proj.max_delay_steps > 0:
            raise RecipeError(f"training.method: asf cannot train the delays of {proj.name}", fix)
        if proj.geometry is not None:
            raise RecipeError(f"training.method: asf cannot train the convolution or pooling of {proj.name}", fix)
    for key in REGULARISERS:
        if float(settings.get(key, 0.0)) > 0:
            raise RecipeError(f"training.{key} = {settings[key]!r} is a term of the BPTT loss, which "
                              "training.method: asf does not use", f"set training.{key}: 0, or use method bptt")


def if_sequence(x: torch.Tensor, v_th: float = 1.0, v_reset: float = 0.0) -> torch.Tensor:
    r"""Integrate-and-fire over time, the seed's neuron: ``x`` ``[T, B, N]`` → spikes ``[T, B, N]``.

    :math:`V_k = V_{k-1} + x_k` (from :math:`V_{-1} = v_{reset}`), :math:`z_k = \Theta(V_k - v_{th})`
    (:math:`\Theta(0) = 0`), :math:`V_k \leftarrow v_{reset}` where :math:`z_k = 1`. No leak, no synaptic filter,
    no refractory period.
    """
    v = torch.full_like(x[0], v_reset)
    spikes = []
    for x_k in x.unbind(0):
        v = v + x_k
        z = (v > v_th).to(x.dtype)
        v = torch.where(z > 0, torch.full_like(v, v_reset), v)
        spikes.append(z)
    return torch.stack(spikes)


def silent_ratio(graph: Graph, name: str) -> float:
    """:math:`1/(v_{th} - v_{reset})`: the flow ratio of an IF neuron, the fallback of a silent layer."""
    p = graph.population(name).parameters
    return 1.0 / max(float(p.v_th) - float(p.v_reset), EPSILON)


def shared_ratio(inflow: torch.Tensor, outflow: torch.Tensor, silent: float) -> torch.Tensor:
    r""":math:`\mathcal{S} = \sum \mathcal{FO} / \sum [\mathcal{FI}]_+` over batch and neurons; ``silent`` where the
    denominator is below ``EPSILON``."""
    positive = inflow.clamp_min(0).sum()
    if float(positive) < EPSILON:
        return torch.tensor(silent, dtype=inflow.dtype)
    return outflow.sum() / positive


def _delayed_input(spikes: Mapping[str, torch.Tensor], incoming, weights: Mapping[str, torch.Tensor],
                   size: int) -> torch.Tensor:
    r""":math:`x_k = \sum_{pre} W z^{pre}_{k-1}` (``x_0 = 0``: the native one-step latency), ``[T, B, size]``,
    accumulated in place (no shifted copy of the spikes, no temporary per projection)."""
    first = spikes[incoming[0].pre]
    x = first.new_zeros(first.shape[0], first.shape[1], size)
    target = x[1:].view(-1, size)
    for proj in incoming:
        source = spikes[proj.pre][:-1]
        target.addmm_(source.reshape(-1, source.shape[-1]), weights[proj.name].t())
    return x


def flows(net: SpikingNetwork, input_spikes: torch.Tensor, weights: Optional[Mapping[str, torch.Tensor]] = None,
          neuron: str = "lif") -> Flows:
    """The forward pass of ASF on ``[T, B, channels]`` input spikes, without autograd (see the module docstring).

    ``weights``: the weights to run (default: the network's, fake-quantised when it says so); ``neuron``:
    ``lif`` (the graph's neurons) or ``if`` (:func:`if_sequence` with each layer's ``v_th``, ``v_reset``).
    """
    if neuron not in NEURONS:
        raise RecipeError(f"ASF neuron {neuron!r} is unknown", f"use one of {', '.join(NEURONS)}")
    graph = net.graph
    steps = int(input_spikes.shape[0])
    with torch.no_grad():
        weights = net.effective_weights() if weights is None else weights
        spikes = {graph.input.name: input_spikes}  # as emitted; a target receives them one step later
        outflow = {graph.input.name: input_spikes[:-1].sum(0)}  # the spikes delivered within the window
        inflow: dict[str, torch.Tensor] = {}
        ratio: dict[str, torch.Tensor] = {}
        for pop in graph.populations[1:]:
            incoming = graph.feedforward(pop.name)
            if pop.kind != "lif":  # the accumulator: only its summed input is needed, FI = sum_pre W FO^pre
                inflow[pop.name] = torch.stack([outflow[p.pre] @ weights[p.name].t() for p in incoming]).sum(0)
                continue
            x = _delayed_input(spikes, incoming, weights, pop.size)
            if neuron == "lif":
                z = lif_sequence(x, pop.parameters.to_lif(), net.dt_s, surrogate=net.surrogate)[0]
            else:
                z = if_sequence(x, float(pop.parameters.v_th), float(pop.parameters.v_reset))
            inflow[pop.name], outflow[pop.name] = x.sum(0), z[:-1].sum(0)
            del x  # only its sum is kept: the forward holds each layer's spike train, nothing else over time
            spikes[pop.name] = z
            ratio[pop.name] = shared_ratio(inflow[pop.name], outflow[pop.name], silent_ratio(graph, pop.name))
    return Flows(inflow=inflow, outflow=outflow, ratio=ratio, steps=steps)


def readout_scale(graph: Graph, steps: int) -> float:
    r""":math:`T V_{th}`: the accumulator value that eq. (5) maps to 1 (``V_th``: the readout's ``v_th - v_leak``)."""
    p = graph.readout.parameters
    return steps * max(float(p.v_th) - float(p.v_leak), EPSILON)


def asf_loss(accumulator: torch.Tensor, labels: torch.Tensor, scale: float) -> torch.Tensor:
    r"""Eq. (5) averaged over the batch: :math:`\langle \tfrac12 \| Y - V^N(T)/(T V_{th}) \|^2 \rangle_b`."""
    target = torch.nn.functional.one_hot(labels, accumulator.shape[1]).to(accumulator.dtype)
    return 0.5 * ((target - accumulator / scale) ** 2).sum(1).mean()


def asf_gradients(graph: Graph, weights: Mapping[str, torch.Tensor], f: Flows, labels: torch.Tensor,
                  ratio: str = "gated") -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    r"""Eqs. (7)-(9) with the corrected indices (module docstring) → (∂L/∂W per projection, the loss).

    ``ratio``: ``gated`` (:math:`\mathcal{S}^n [\mathcal{FI}^n > 0]`) or ``shared`` (:math:`\mathcal{S}^n`, the
    seed's literal form)."""
    if ratio not in RATIOS:
        raise RecipeError(f"training.asf_ratio = {ratio!r} is unknown", f"use one of {', '.join(RATIOS)}")
    readout = graph.readout.name
    scale = readout_scale(graph, f.steps)
    accumulator = f.inflow[readout]
    batch = accumulator.shape[0]
    target = torch.nn.functional.one_hot(labels, accumulator.shape[1]).to(accumulator.dtype)
    d_inflow = {readout: (accumulator / scale - target) / scale / batch}  # eq. (7)'s first factor, ∂L/∂FI^N
    d_outflow: dict[str, torch.Tensor] = {}
    grads: dict[str, torch.Tensor] = {}
    for pop in reversed(graph.populations[1:]):
        if pop.name not in d_inflow:  # a hidden layer: ∂L/∂FI^n = S^n ∂L/∂FO^n (eq. (8)'s middle factor)
            slope = f.ratio[pop.name] * d_outflow[pop.name]
            d_inflow[pop.name] = slope * (f.inflow[pop.name] > 0).to(slope.dtype) if ratio == "gated" else slope
        delta = d_inflow[pop.name]
        for proj in graph.feedforward(pop.name):
            grads[proj.name] = delta.t() @ f.outflow[proj.pre]  # eq. (9): ∂L/∂W_ij = ∂L/∂FI_i FO_j
            if proj.pre != graph.input.name:  # eqs. (7)/(8): ∂L/∂FO^{n-1} = (∂L/∂FI^n) W^n
                d_outflow[proj.pre] = d_outflow.get(proj.pre, 0) + delta @ weights[proj.name]
    return grads, asf_loss(accumulator, labels, scale)


def _perturbed(net: SpikingNetwork, relative_std: float, generator: torch.Generator) -> Optional[dict]:
    r"""The effective weights with fresh multiplicative noise :math:`w (1 + \sigma \xi)`, or None (σ = 0)."""
    if relative_std <= 0:
        return None
    return {name: w.detach() * (1 + relative_std * torch.randn(w.shape, generator=generator))
            for name, w in net.effective_weights().items()}


def train_epoch(net: SpikingNetwork, spikes: torch.Tensor, labels: torch.Tensor, settings: dict,
                optimiser: torch.optim.Optimizer, schedule, generator: torch.Generator,
                progress: bool = False, neuron: str = "lif") -> dict:
    """One ASF pass over the training set in shuffled mini-batches (same order and steps as BPTT's epoch):
    forward :func:`flows`, gradients :func:`asf_gradients` written into the weights' ``.grad``, one optimiser
    step per batch. Returns the mean loss (eq. (5)) and the accumulator's training accuracy."""
    order = torch.randperm(len(labels), generator=generator)
    parameters = dict(zip(net.projection_names, net.weights))
    losses, correct = [], 0
    for start in tqdm(range(0, len(order), settings["batch_size"]), desc="  batches", unit="batch", leave=False,
                      disable=not progress):
        idx = order[start:start + settings["batch_size"]]
        weights = _perturbed(net, float(settings.get("weight_noise", 0.0)), generator)
        with torch.no_grad():
            weights = net.effective_weights() if weights is None else weights
            f = flows(net, spikes[:, idx], weights, neuron)
            grads, loss = asf_gradients(net.graph, weights, f, labels[idx], settings.get("asf_ratio", "gated"))
        optimiser.zero_grad()
        for name, grad in grads.items():
            if parameters[name].requires_grad:
                parameters[name].grad = grad.to(parameters[name].dtype)
        optimiser.step()
        schedule.step()
        losses.append(float(loss))
        correct += int((f.inflow[net.graph.readout.name].argmax(1) == labels[idx]).sum())
    return {"loss": float(sum(losses) / max(len(losses), 1)), "train_accuracy": correct / max(len(labels), 1)}


def accumulator_accuracy(net: SpikingNetwork, spikes: torch.Tensor, labels, batch_size: int = 500,
                         neuron: str = "lif") -> float:
    r"""The accuracy of the accumulator readout :math:`\arg\max V^N(T)` (what ASF trains)."""
    correct = 0
    for start in range(0, spikes.shape[1], batch_size):
        f = flows(net, spikes[:, start:start + batch_size], neuron=neuron)
        predicted = f.inflow[net.graph.readout.name].argmax(1)
        correct += int((predicted == torch.as_tensor(labels[start:start + batch_size])).sum())
    return correct / max(spikes.shape[1], 1)
