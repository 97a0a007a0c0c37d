r"""Realising trained delays on BSS-2: events are delayed off-chip (FPGA), the chip has no delays (bss2.md §1.8).

A trained synapse has weight :math:`w` and a Gaussian kernel :math:`k[n]` (σ = its final value,
core/delays.py). The FPGA holds *delayed copies*: a copy (channel ``j``, delay ``d`` steps,
strength level ``s``) re-emits each event of input channel ``j`` ``d`` steps later. Each copy that
reaches a synapse driver is one event on the chip per input spike. Three strategies (design.md):

* ``multi-synapse``: the kernel's taps :math:`n` with :math:`k[n] \ge k_{max}/16` become separate
  synapses (input slots, hence rows) of the neuron, each fed by the copy at delay :math:`n` with
  the weight :math:`w\,k[n]`; cost: taps × rows, one event per tap.
* ``spike-strength``: one synapse of weight :math:`w\,k_{max}` receives a burst, one event per tap,
  each carrying a strength level :math:`s = \mathrm{round}(8 k[n]/k_{max})` in 3 of its 6 label
  bits; the synapse driver scales the pulse width (hence the charge) by :math:`s/8`. Only 3 label
  bits remain for addresses: 8 sources per driver instead of 64.
* ``gradient-only``: one event at the rounded delay (the Gaussian existed only for training).

Synapses of one source that need different copies share an input slot (driver) and are told
apart by labels, so labels per driver grow with the number of distinct delays of a source.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from ...core.delays import delay_kernel, harden
from ...modelfile import ModelFile

STRATEGIES = ("multi-synapse", "spike-strength", "gradient-only")
STRENGTH_LEVELS = 8  # 3 bits
MIN_TAP_FRACTION = 1.0 / 16  # taps below this share of the largest round to strength 0: dropped
FULL_STRENGTH = STRENGTH_LEVELS - 1  # level code 7 = factor 8/8


class Tap(NamedTuple):
    delay_steps: int
    weight_fraction: float  # of the synapse's trained weight
    level: int  # strength code 0..7 (factor (code + 1) / 8); 7 unless spike-strength


class DelayedSlots(NamedTuple):
    """One delayed layer as route() consumes it: per neuron and input slot, a route key and a float weight."""

    keys: list  # [post][slots] route-key id (into DelayPlan.route_keys) or None
    weights: torch.Tensor  # [post, slots] float weights (quantised later like any weights)
    taps_per_synapse: int
    source: torch.Tensor  # [post, slots] the pre neuron j whose trained weight the slot carries (-1: unused)
    fraction: torch.Tensor  # [post, slots] the slot's share of that weight: weights = w[i, source] * fraction


class DelayPlan(NamedTuple):
    strategy: str
    layers: dict  # layer name → DelayedSlots
    projections: dict  # layer name → delayed projection name
    route_keys: list  # key id → tuple of virtual-source ids (one event each per input spike)
    virtual: np.ndarray  # [V, 3] int32: (input channel, delay steps, strength code)
    labels_per_driver: int  # label space the strategy leaves
    strength_bits: int  # label bits that carry the strength (0 unless spike-strength)
    kernel_l1_error: float = 0.0  # fidelity: mean over synapses of sum_n |realised[n] - k[n]| (before 6-bit weights)

    def slot_inputs(self, input_name: str, quantised: dict) -> dict:
        """``route()``'s ``slot_inputs``: keys as ``(input_name, key id)``, integer weights from ``quantised``."""
        out = {}
        for layer, slots in self.layers.items():
            q = quantised[layer].weights[self.projections[layer]].numpy()
            keys = [[None if k is None else (input_name, k) for k in row] for row in slots.keys]
            out[layer] = (keys, q)
        return out


def synapse_taps(delay_steps: float, sigma_steps: float, max_delay_steps: int, strategy: str) -> list[Tap]:
    """The events one synapse needs under ``strategy`` (module docstring)."""
    if strategy == "gradient-only" or sigma_steps <= 0:
        return [Tap(int(harden(torch.tensor(delay_steps), max_delay_steps)), 1.0, FULL_STRENGTH)]
    k = delay_kernel(torch.tensor([delay_steps], dtype=torch.float64), sigma_steps, max_delay_steps)[0]
    k_max = float(k.max())
    taps = []
    for n in torch.nonzero(k >= MIN_TAP_FRACTION * k_max).flatten().tolist():
        if strategy == "multi-synapse":
            taps.append(Tap(n, float(k[n]), FULL_STRENGTH))
        else:  # spike-strength: the synapse holds w k_max, the event carries k[n] / k_max in 8 levels
            level = max(1, round(STRENGTH_LEVELS * float(k[n]) / k_max))
            taps.append(Tap(n, k_max, level - 1))
    return taps


def strength_factor(code: np.ndarray | int) -> np.ndarray:
    """Charge scale of a strength code 0..7: (code + 1) / 8 of the full pulse width."""
    return (np.asarray(code) + 1.0) / STRENGTH_LEVELS


def realised_kernel(taps: list[Tap], strategy: str, length: int) -> torch.Tensor:
    """The kernel (share of the weight per tap) the events of one synapse deliver, before weight quantisation."""
    r = torch.zeros(length, dtype=torch.float64)
    for tap in taps:
        scale = float(strength_factor(tap.level)) if strategy == "spike-strength" else 1.0
        r[tap.delay_steps] += tap.weight_fraction * scale
    return r


def slot_weights(w: torch.Tensor, source: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """``[post, slots]``: each slot's share of its trained weight, :math:`w_{i, j(s)} f_{is}` (0 where unused);
    differentiable in ``w`` (in-the-loop training updates the trained weights through it)."""
    return torch.gather(w, 1, source.clamp_min(0)) * fraction * (source >= 0)


def split_slots(keys: list, capacity: int, *matrices: torch.Tensor) -> tuple[list, list[torch.Tensor]]:
    """Give an input slot whose neurons need more than ``capacity`` distinct sources (labels) more slots;
    ``matrices`` (``[post, slots]``: weights, sources, fractions) follow their slots, with the value of an unused
    slot (0, or -1 for integer ones) where a neuron's source went to another slot.

    Each extra slot costs a synapse driver (two rows); the neurons of a slot share its labels.
    """
    post, slots = matrices[0].shape
    columns_keys: list = []
    columns: list[list[torch.Tensor]] = [[] for _ in matrices]
    for c in range(slots):
        column = [keys[i][c] for i in range(post)]
        distinct = list(dict.fromkeys(k for k in column if k is not None))
        for g in range(max(1, math.ceil(len(distinct) / capacity))):
            members = set(distinct[g * capacity:(g + 1) * capacity])
            columns_keys.append([k if k in members else None for k in column])
            kept = torch.tensor([k in members for k in column])
            for out, matrix in zip(columns, matrices):
                unused = -1 if not matrix.is_floating_point() else 0.0
                out.append(torch.where(kept, matrix[:, c], torch.tensor(unused, dtype=matrix.dtype)))
    return [list(row) for row in zip(*columns_keys)], [torch.stack(out, dim=1) for out in columns]


def plan_delays(model: ModelFile, strategy: str, label_bits: int, strength_bits: int,
                reserved_labels: int = 0) -> DelayPlan:
    """Taps, input slots, route keys and FPGA copies of every delayed projection (all start at the input).

    ``reserved_labels``: labels other layers may use on the same drivers; a slot keeps the rest.
    """
    virtual: dict[tuple[int, int, int], int] = {}
    errors: list[float] = []
    route_keys: dict[tuple[int, ...], int] = {}
    layers, projections = {}, {}
    labels = 2 ** (label_bits - strength_bits) if strategy == "spike-strength" else 2 ** label_bits
    for proj in model.graph.projections:
        if not proj.max_delay_steps:
            continue
        sigma = float(model.delay_sigma_steps.get(proj.name, 0.0))
        w, d = model.weights[proj.name], model.delays[proj.name]
        post, pre = w.shape
        taps = [[synapse_taps(float(d[i, j]), sigma, proj.max_delay_steps, strategy) for j in range(pre)]
                for i in range(post)]
        per_synapse = max(len(t) for row in taps for t in row) if strategy == "multi-synapse" else 1
        trained = delay_kernel(d.to(torch.float64), sigma, proj.max_delay_steps)  # what training used
        errors += [float((realised_kernel(taps[i][j], strategy, proj.max_delay_steps + 1) - trained[i, j]).abs().sum())
                   for i in range(post) for j in range(pre)]
        keys: list = [[None] * (pre * per_synapse) for _ in range(post)]
        source = torch.full((post, pre * per_synapse), -1, dtype=torch.long)
        fraction = torch.zeros(post, pre * per_synapse)
        for i in range(post):
            for j in range(pre):
                events = [virtual.setdefault((j, t.delay_steps, t.level), len(virtual)) for t in taps[i][j]]
                if strategy == "multi-synapse":
                    for k, (tap, v) in enumerate(zip(taps[i][j], events)):
                        slot = j * per_synapse + k
                        keys[i][slot] = route_keys.setdefault((v,), len(route_keys))
                        source[i, slot], fraction[i, slot] = j, tap.weight_fraction
                else:  # one synapse: a single event, or a burst sharing one label
                    keys[i][j] = route_keys.setdefault(tuple(events), len(route_keys))
                    source[i, j], fraction[i, j] = j, taps[i][j][0].weight_fraction
        keys, (source, fraction) = split_slots(keys, max(labels - reserved_labels, 1), source, fraction)
        layers[proj.post] = DelayedSlots(keys, slot_weights(w, source, fraction), per_synapse, source, fraction)
        projections[proj.post] = proj.name
    table = np.array([key for key, _ in sorted(virtual.items(), key=lambda kv: kv[1])], np.int32).reshape(-1, 3)
    ordered_keys = [key for key, _ in sorted(route_keys.items(), key=lambda kv: kv[1])]
    return DelayPlan(strategy, layers, projections, ordered_keys, table, labels,
                     strength_bits if strategy == "spike-strength" else 0, float(np.mean(errors)) if errors else 0.0)


def expand_input_routes(plan: DelayPlan, routes: np.ndarray) -> np.ndarray:
    """Routes by route key → routes by FPGA copy ``(copy, hemisphere, driver, label)``.

    A spike-strength burst becomes one route per event, all with the synapse's address in the low
    label bits and the event's strength code in the bits above them.
    """
    shift = int(math.log2(plan.labels_per_driver))  # the address bits below the strength bits
    out = []
    for key, h, driver, label in routes:
        for v in plan.route_keys[key]:
            code = int(plan.virtual[v, 2])
            full = label | (code << shift) if plan.strategy == "spike-strength" else label
            out.append((v, h, driver, full))
    return np.array(out, np.int32).reshape(-1, 4)


def delay_report(plan: DelayPlan, input_routes: np.ndarray, rows_used: int, labels_used: int,
                 n_channels: int) -> dict:
    """The strategy's cost: rows, labels per driver (used / available), events per input spike, FPGA copies."""
    per_channel = np.bincount(plan.virtual[input_routes[:, 0], 0], minlength=n_channels) if len(input_routes) else \
        np.zeros(n_channels, int)
    return {"strategy": plan.strategy, "rows": int(rows_used), "labels": int(labels_used),
            "labels_available": int(plan.labels_per_driver),
            "events_per_spike": int(per_channel.max(initial=0)),
            "events_per_spike_mean": float(per_channel.mean()) if n_channels else 0.0,
            "fpga_copies": int(len(plan.virtual)),
            "kernel_l1_error": plan.kernel_l1_error,
            "max_delay_steps": int(plan.virtual[:, 1].max(initial=0)),
            "taps_per_synapse": {name: slots.taps_per_synapse for name, slots in plan.layers.items()},
            # each input slot of a delayed neuron is a synapse driver: an excitatory and an inhibitory row
            "rows_per_neuron": {name: 2 * slots.weights.shape[1] for name, slots in plan.layers.items()}}


def input_copy_times(times_s: np.ndarray, virtual: np.ndarray, dt_s: float) -> np.ndarray:
    """What the FPGA sends: each copy's event times ``[B, V]`` = its channel's times + its delay (model seconds)."""
    return times_s[:, virtual[:, 0]] + virtual[:, 1] * dt_s

