"""Faults of an emulated chip, switched on in the backend name like the effects: ``mock:0:faults=dead:0.02``.

Syntax: the effect settings after the chip number are ``KEY=VALUE`` items joined by ``,``; ``faults`` is
one such key, and its value joins ``KIND:RATE`` items with ``+`` (``,`` already separates settings and
``:`` separates kind and rate, so every name parses one way)::

    mock:0:faults=dead:0.02                         2 % of the neuron circuits dead
    mock:0:faults=dead:0.02+stuck:0.01,noise=off    and 1 % of their CapMem cells stuck; no noise
    mock:0:faults=drop:0.001,faults=delay:0.001     faults= may also repeat (a kind at most once)

``RATE`` is a number in [0, 1]. Kinds:

=============  ==========================================================================================
``dead``       ``round(rate * 512)`` neuron circuits do not work: their membrane sits at the bottom of
               the range (reset and leak at 5 CADC LSB), no synaptic input arrives, they never spike
               (the mechanism of ``MockChip(dead_circuits=...)``). Calibration cannot move them.
``stuck``      ``round(rate * 3072)`` of the 6 neuron CapMem cells of each circuit (the three potentials
               and the three bias currents) hold a fixed code whatever is written, so those parameters do
               not follow calibration. Global and per-quadrant cells are never stuck.
``drop``       each event on each route (FPGA→chip and chip→chip) is lost with probability ``rate``, in
               addition to the bus-congestion drops (``event_drops``), after bus arbitration.
``delay``      each event on each route arrives ``k >= 1`` steps late with probability ``rate``
               (``P(k) = 2^-k``, one step of routing latency on top); one due after the run is lost.
``disconnect`` each run fails with :class:`ChipDisconnected` (a :class:`~neurodeploy.errors.BackendError`)
               with probability ``rate``, before it simulates anything, and the chip forgets its
               configuration (the next run configures it again). Retrying the same run may succeed.
=============  ==========================================================================================

Every fault is seeded: which circuits and cells are broken (and the stuck codes) by the chip id
alone, so the same chip always has the same faults, and a larger rate breaks a superset; whether a
run disconnects by the chip id and the backend's run counter (runs since it was created, failed
ones included); the per-event draws by these and the backend's noise seed (``MockChip(seed=...)``,
0 from a name), so that repeated trials differ as the noise does. The fault draws use their own
generators: the chip's noise is the same with and without faults. Default: no faults.

What ``run`` reports (``Observations.counters``, each present when its fault is on):
``dead_neurons`` / ``stuck_neurons`` (the deployment's logical neurons with a dead circuit / a stuck
cell, reported by the run that configures a deployment and 0 by the runs after it, so that adding
runs up counts them once), ``events_dropped_fault`` and ``events_delayed`` (route events, as
``events_dropped`` counts congestion losses). A real chip reports only event counters (bss2.md
§1.4, grenade's ``ExecutionHealthInfo``); dead circuits show there only through calibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np
import torch

from ...errors import BackendError
from ...targets.bss2.analog import ChipCodes

KINDS = ("dead", "stuck", "drop", "delay", "disconnect")
# The neuron CapMem cells a stuck fault can hit: the searched codes of calibration (bss2.md §1.5, §3.2).
STUCK_FIELDS = ("v_leak", "v_reset", "v_threshold", "i_bias_leak", "i_bias_syn_tau", "i_bias_synin_gm")
DEAD_POTENTIAL_CADC = 5.0  # where a dead circuit's membrane sits (the bottom of the CADC range)
_TAG = 0x6E64  # as variation.draw_variation
_STREAM = {"dead": 1, "stuck": 2, "transport": 3, "disconnect": 4}
FIX = ("use faults=KIND:RATE[+KIND:RATE...] with KIND one of " + ", ".join(KINDS)
       + " and RATE in [0, 1], e.g. mock:0:faults=dead:0.02+drop:0.001")


@dataclass(frozen=True)
class Faults:
    """The rate of each fault kind (0: off)."""

    dead: float = 0.0
    stuck: float = 0.0
    drop: float = 0.0
    delay: float = 0.0
    disconnect: float = 0.0

    @classmethod
    def parse(cls, text: str, given: Faults | None = None) -> Faults:
        """``"dead:0.02+drop:0.001"`` → faults (added to ``given``, where each kind may be set once)."""
        faults = given or cls()
        seen = {k for k in KINDS if getattr(faults, k) > 0}
        if not text:
            raise BackendError("mock fault setting 'faults=' names no fault", FIX)
        for item in text.split("+"):
            kind, colon, rate_text = item.partition(":")
            if kind not in KINDS:
                raise BackendError(f"unknown mock fault '{kind}' in 'faults={text}'", FIX)
            try:
                rate = float(rate_text) if colon else math.nan
            except ValueError:
                rate = math.nan
            if not 0.0 <= rate <= 1.0:  # NaN fails too
                raise BackendError(f"mock fault '{item}' needs a rate in [0, 1]", FIX)
            if kind in seen:
                raise BackendError(f"mock fault '{kind}' is given twice", FIX)
            seen.add(kind)
            faults = replace(faults, **{kind: rate})
        return faults

    def __bool__(self) -> bool:
        return any(getattr(self, k) > 0 for k in KINDS)

    def text(self) -> str:
        """The canonical ``faults=`` value (``""``: none), as a backend name carries it."""
        return "+".join(f"{k}:{getattr(self, k):g}" for k in KINDS if getattr(self, k) > 0)

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


NO_FAULTS = Faults()


class StuckCells(NamedTuple):
    """CapMem cells that hold a fixed code: which code field, which circuit, and the code."""

    field: np.ndarray  # index into STUCK_FIELDS
    circuit: np.ndarray
    code: np.ndarray


NO_STUCK_CELLS = StuckCells(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))


class ChipFaults(NamedTuple):
    """One chip's permanent faults, drawn from its id."""

    dead: np.ndarray  # circuits
    stuck: StuckCells


def draw_faults(chip: int, n_circuits: int, code_max: int, faults: Faults) -> ChipFaults:
    """Chip ``chip``'s dead circuits and stuck cells at these rates (the first of one fixed order per chip)."""
    order = np.random.default_rng(np.random.SeedSequence([_TAG, chip, _STREAM["dead"]])).permutation(n_circuits)
    dead = np.sort(order[:int(round(faults.dead * n_circuits))])
    rng = np.random.default_rng(np.random.SeedSequence([_TAG, chip, _STREAM["stuck"]]))
    cells = len(STUCK_FIELDS) * n_circuits
    order, codes = rng.permutation(cells), rng.integers(0, code_max + 1, cells)
    pick = order[:int(round(faults.stuck * cells))]
    stuck = StuckCells(field=pick // n_circuits, circuit=pick % n_circuits, code=codes[pick])
    return ChipFaults(dead=dead.astype(np.int64), stuck=stuck)


def stick(codes: ChipCodes, stuck: StuckCells) -> ChipCodes:
    """``codes`` as the chip holds them: stuck cells keep their own code whatever was written."""
    if len(stuck.circuit) == 0:
        return codes
    changed = {}
    for index, name in enumerate(STUCK_FIELDS):
        mine = stuck.field == index
        if mine.any():
            value = np.array(getattr(codes, name), copy=True)
            value[stuck.circuit[mine]] = stuck.code[mine].astype(value.dtype)
            changed[name] = value
    return codes._replace(**changed)


def neurons_hit(neuron_circuits: np.ndarray, circuits: np.ndarray) -> int:
    """How many logical neurons (rows of ``neuron_circuits``, -1 padded) use one of ``circuits``."""
    if len(circuits) == 0 or len(neuron_circuits) == 0:
        return 0
    return int((np.isin(neuron_circuits, circuits) & (neuron_circuits >= 0)).any(axis=1).sum())


def run_generator(chip: int, seed: int, run: int, stream: str) -> torch.Generator:
    """The fault draws of run ``run`` of chip ``chip`` with noise seed ``seed`` (not the noise's generator)."""
    state = int(np.random.SeedSequence([_TAG, chip, _STREAM[stream], seed, run]).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(state & 0x7FFF_FFFF_FFFF_FFFF)


def disconnects(chip: int, run: int, rate: float) -> bool:
    """Whether run ``run`` of chip ``chip`` loses its connection."""
    if rate <= 0:
        return False
    draw = np.random.default_rng(np.random.SeedSequence([_TAG, chip, _STREAM["disconnect"], run])).random()
    return bool(draw < rate)


def event_fate(u: torch.Tensor, faults: Faults) -> tuple[torch.Tensor, torch.Tensor]:
    """Per event with draw ``u``: whether the drop fault loses it, and how many steps the delay fault adds.

    Lost: ``u < drop``; late by ``k = 1 + floor(-log2(1 - v))`` steps, ``v = (u - drop) / delay``
    (so ``P(k) = 2^-k``): ``drop <= u < drop + delay``; else on time (0).
    """
    dropped = u < faults.drop
    delayed = ~dropped & (u < faults.drop + faults.delay)
    v = ((u - faults.drop) / max(faults.delay, 1e-30)).clamp(0.0, 1.0 - 1e-7)
    late = torch.where(delayed, 1 + torch.floor(-torch.log2(1.0 - v)).long(), torch.zeros_like(u, dtype=torch.long))
    return dropped, late


Draw = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def faulty_transport(route_events: torch.Tensor, draw: Draw, faults: Faults, counters: dict) -> torch.Tensor:
    """Route events ``[T, B, R]`` after the drop and delay faults (:func:`event_fate`).

    ``draw(t, b, r)`` gives one uniform per event present at ``(t, b, r)``; draws fixed per
    position make re-evaluating the same traffic treat the same events alike. Only the events
    present are touched.
    """
    t, b, r = route_events.nonzero(as_tuple=True)
    value = route_events[t, b, r]
    dropped, late = event_fate(draw(t, b, r), faults)
    delayed = late > 0
    counters["events_dropped_fault"] += int(value[dropped].sum())
    counters["events_delayed"] += int(value[delayed].sum())
    gone = dropped | delayed
    if not gone.any():
        return route_events
    out = route_events.clone()
    out[t[gone], b[gone], r[gone]] = 0.0
    arrive = t[delayed] + late[delayed]
    keep = arrive < route_events.shape[0]
    out.index_put_((arrive[keep], b[delayed][keep], r[delayed][keep]), value[delayed][keep], accumulate=True)
    return out


def route_pairs(channel: np.ndarray, source: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (event, route) pair: event ``i`` of ``channel[i]`` travels each route whose ``source`` is that channel."""
    order = np.argsort(source, kind="stable")
    count = np.bincount(source, minlength=channels)
    start = np.cumsum(count) - count
    per_event = count[channel]
    event = np.repeat(np.arange(len(channel)), per_event)
    rank = np.arange(len(event)) - np.repeat(np.cumsum(per_event) - per_event, per_event)
    return event, order[start[channel[event]] + rank]


class ChipDisconnected(BackendError):
    """A run lost the connection to the chip (or timed out) and returned nothing; running it again may work.

    ``retryable`` tells callers (``itl``) that the same run may be retried.
    """

    retryable = True
