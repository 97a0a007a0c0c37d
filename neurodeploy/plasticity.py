r"""Plasticity programs: what runs on a chip between time slices and rewrites its weights (the PPU's role).

BSS-2 learns on chip through its plasticity processors (PPUs, bss2.md §1.7): after each time slice a
program reads the synapses' correlation sensors (causal and acausal accumulators, 8 bit, through the
CADC), the neurons' spike counters and the 6-bit weights, computes new weights with a SIMD unit that
works on a whole synapse row at once, and writes them back. Here a program is a Python object with the
same inputs and output, written with numpy operations over whole rows (a row: one postsynaptic neuron's
synapses of one projection):

.. math::
    W' = \mathrm{program}(W, C^+, C^-, n_\text{post}, n_\text{pre}) \in \{0, \dots, 63\}^{\text{post} \times
    \text{pre}}

Programs: :class:`Unchanged` (writes back what it read), :class:`CorrelationStdp` (pair STDP from the
sensors), :class:`EventStdp` (seed 003's rule with normalisation and adaptive thresholds, which also rewrites
the neurons' threshold settings). A program file (YAML, ``format: neurodeploy.plasticity``) names one and its
parameters; see :func:`load_program`. What a real PPU program differs in: it is C++ compiled for the PPU (Power ISA with
the vector extension), computes in 8- or 16-bit saturating fixed point on 128 lanes, draws random numbers
from libnux, must fit 16 KiB of code and data, and runs concurrently with the network within a timer's
period, so its reads and writes are spread over the slice instead of happening between slices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional, Protocol
from collections.abc import Mapping

import numpy as np

from .errors import FileKindError, NeurodeployError
from .fileformat import Envelope, read_envelope
from .safe_yaml import load_yaml
from .training.stdp_rules import normalise_columns
from .validation.rules import Fields, Invalid, ListOf, Number, OneOf, Text, refusal

FORMAT = "neurodeploy.plasticity"
VERSION = 1
WEIGHT_MAX = 63  # 6-bit synapse weights
COUNTER_MAX = 255  # 8-bit spike counters
ENVELOPE = Envelope("plasticity program", FORMAT, (VERSION,),
                    "write one as docs/plasticity.md shows (format: neurodeploy.plasticity, version: 1, rule: ...)")


class SliceObservables(NamedTuple):
    """What a program reads after a time slice, for one plastic projection (rows: postsynaptic neurons)."""

    projection: str
    weights: np.ndarray  # int [post, pre] in 0..63: the synapses' magnitudes
    causal: np.ndarray  # int [post, pre] in 0..255: causal accumulators (pre before post)
    acausal: np.ndarray  # int [post, pre] in 0..255: acausal accumulators (post before pre)
    post_counts: np.ndarray  # int [post] in 0..255: spike counters of the slice
    pre_counts: np.ndarray  # int [pre]: the presynaptic spikes of the slice
    slice_index: int  # 0, 1, ...: which slice just ended
    theta: Optional[np.ndarray] = None  # float [post]: threshold offsets (model units) written so far; None: 0


class PlasticityProgram(Protocol):
    """A program: the projections it rewrites, and the new weights of one after a slice."""

    projections: tuple[str, ...]

    def update(self, seen: SliceObservables, rng: np.random.Generator) -> np.ndarray:
        """New weights ``[post, pre]``, integers in 0..63 (:func:`on_chip` rounds and clips what is not)."""
        ...

    def homeostasis(self, seen: SliceObservables) -> Optional[np.ndarray]:
        """New threshold offsets ``[post]`` in model units (the PPU rewrites threshold settings), or None: unchanged."""
        ...


def on_chip(weights: np.ndarray) -> np.ndarray:
    """What a synapse can hold: integers 0..63."""
    return np.clip(np.rint(weights), 0, WEIGHT_MAX).astype(np.int64)


@dataclass(frozen=True)
class Unchanged:
    """Writes back the weights it read: a run with it is the run without a program."""

    projections: tuple[str, ...]

    def update(self, seen: SliceObservables, rng: np.random.Generator) -> np.ndarray:
        return seen.weights

    def homeostasis(self, seen: SliceObservables) -> Optional[np.ndarray]:
        return None


@dataclass(frozen=True)
class CorrelationStdp:
    r"""Pair STDP from the correlation sensors, with stochastic rounding (the PPU has integers only):

    .. math::
        \Delta W = \eta_+ C^+ - \eta_- C^- - \lambda\,(W - w_0), \qquad
        W' = \mathrm{clip}(\lfloor W + \Delta W + u \rfloor, 0, 63), \quad u \sim U[0, 1)

    :math:`\eta_\pm` in weight LSB per sensor LSB; the decay :math:`\lambda` towards :math:`w_0` keeps
    weights from drifting to the bounds (0: none).
    """

    projections: tuple[str, ...]
    eta_plus: float = 0.05
    eta_minus: float = 0.05
    decay: float = 0.0
    w_rest: float = 0.0

    def update(self, seen: SliceObservables, rng: np.random.Generator) -> np.ndarray:
        w = seen.weights.astype(np.float64)
        change = self.eta_plus * seen.causal - self.eta_minus * seen.acausal - self.decay * (w - self.w_rest)
        return stochastic_round(w + change, rng)

    def homeostasis(self, seen: SliceObservables) -> Optional[np.ndarray]:
        return None


def stochastic_round(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r""":math:`\mathrm{clip}(\lfloor W + u \rfloor, 0, 63)`, :math:`u \sim U[0, 1)`: unbiased rounding in integers."""
    return np.clip(np.floor(weights + rng.random(weights.shape)), 0, WEIGHT_MAX).astype(np.int64)


@dataclass(frozen=True)
class EventStdp:
    r"""Seed 003's postsynaptic event-based rule (:mod:`neurodeploy.training.stdp_rules`) from the sensors, with the
    seed's weight normalisation and adaptive thresholds.

    On each postsynaptic spike the seed adds :math:`\eta (x^{pre}_i - x_{tar})(w_{max} - w_{ij})^\mu`. Summed over
    a slice, :math:`\sum_{post} x^{pre}_i` is the causal reading over the sensor's gain :math:`a` (LSB per pairing
    at Δt = 0), so in weight LSB (:math:`w_{max}` = 63):

    .. math::
        \Delta W_{ij} = 63\,\eta\,\big(C^+_{ij}/a - x_{tar}\,n_j\big)\,(1 - W_{ij}/63)^\mu

    for the neurons that fired in the slice (a neuron that did not cannot have paired: what its sensors read is
    read noise, whose rectified mean would otherwise creep into every weight), then each row is scaled to sum to
    ``weight_sum_lsb`` (0: not), both with stochastic rounding. The sensor's trace decays with its own time
    constant (5 µs of hardware time, 5 ms of model time on the mock), shorter than the seed's 20 ms, so ``x_tar``
    is lower than the seed's 0.4 for the same balance.

    **Homeostasis**: :math:`\theta_j \leftarrow \theta_j + \beta n_j`, minus the mean over the layer and
    clipped to :math:`\pm\theta_{max}` (model units). The seed's thresholds grow without bound and the input rate
    is raised to keep the network firing; a chip's threshold setting has a limited range, so only the
    differences between neurons, which decide who wins, are kept (docs/plasticity.md).
    """

    projections: tuple[str, ...]
    eta: float = 0.05
    x_tar: float = 0.2
    mu: float = 0.2
    pairing_lsb: float = 12.0
    weight_sum_lsb: float = 0.0
    theta_gain: float = 0.0
    theta_max: float = 0.5

    def update(self, seen: SliceObservables, rng: np.random.Generator) -> np.ndarray:
        w = seen.weights.astype(np.float64)
        fired = seen.post_counts[:, None] > 0  # a sensor pairs only at a postsynaptic spike: other readings are noise
        drive = np.where(fired, seen.causal / self.pairing_lsb - self.x_tar * seen.post_counts[:, None], 0.0)
        w = np.clip(w + WEIGHT_MAX * self.eta * drive * (1.0 - w / WEIGHT_MAX) ** self.mu, 0.0, WEIGHT_MAX)
        if self.weight_sum_lsb > 0:  # rows here: postsynaptic neurons
            w = normalise_columns(w.T, np.ones(1), np.full(len(w), self.weight_sum_lsb), WEIGHT_MAX).T
        return stochastic_round(w, rng)

    def homeostasis(self, seen: SliceObservables) -> Optional[np.ndarray]:
        if self.theta_gain == 0:
            return None
        theta = np.zeros(len(seen.post_counts)) if seen.theta is None else seen.theta
        theta = theta + self.theta_gain * seen.post_counts
        return np.clip(theta - theta.mean(), -self.theta_max, self.theta_max)


RULES = {"unchanged": Unchanged, "stdp": CorrelationStdp, "event": EventStdp}
_RATE = Number(lo=0)
_FIELDS = Fields(required={"format": Text(), "version": Number(integer=True), "rule": OneOf(tuple(RULES)),
                           "projections": ListOf(Text(), min_length=1)},
                 optional={"eta_plus": _RATE, "eta_minus": _RATE, "decay": Number(lo=0, hi=1),
                           "w_rest": Number(lo=0, hi=WEIGHT_MAX), "slice_samples": Number(lo=1, integer=True),
                           "eta": _RATE, "x_tar": Number(lo=0, hi=1), "mu": Number(lo=0, hi=1),
                           "pairing_lsb": Number(lo=0, lo_open=True), "weight_sum_lsb": _RATE,
                           "theta_gain": _RATE, "theta_max": _RATE,
                           "min_spikes": Number(lo=0, integer=True), "boost_hz": _RATE,
                           "max_boosts": Number(lo=0, hi=100, integer=True),
                           "description": Text(empty=True)})
PARAMETERS = {"stdp": ("eta_plus", "eta_minus", "decay", "w_rest"), "unchanged": (),
              "event": ("eta", "x_tar", "mu", "pairing_lsb", "weight_sum_lsb", "theta_gain", "theta_max")}
BOOST_KEYS = ("min_spikes", "boost_hz", "max_boosts")


class Boost(NamedTuple):
    """Seed 003's repetition: a slice with fewer than ``min_spikes`` postsynaptic spikes is presented again with
    the Poisson rate raised by ``boost_hz``, at most ``max_boosts`` times (0: never; Poisson-coded inputs only)."""

    min_spikes: int = 0
    boost_hz: float = 0.0
    max_boosts: int = 0

    def checked(self, encoding: Mapping[str, Any]) -> Boost:
        """This repetition for inputs coded by ``encoding``: it raises a Poisson rate, so other codes refuse it."""
        if not (self.max_boosts and self.boost_hz):
            return Boost()
        if encoding.get("kind") != "poisson":
            raise NeurodeployError(f"the program presents quiet slices again at a higher rate, the model's inputs are "
                                   f"'{encoding.get('kind')}'-coded (one spike per channel, no rate)",
                                   "remove min_spikes/boost_hz/max_boosts from the program, or use a poisson encoding")
        return self

    def presentation(self, encoding: Mapping[str, Any], attempt: int, seed: Optional[int] = None) -> dict:
        """The encoding of repetition ``attempt`` (0: the first presentation): Poisson trains drawn with ``seed``
        (None: the encoding's own), the rate raised by ``attempt`` × ``boost_hz``; other codes as they are."""
        if encoding.get("kind") != "poisson":
            return dict(encoding)
        return {**encoding, "seed": int(encoding.get("seed", 0)) if seed is None else seed,
                "max_rate_hz": float(encoding["max_rate_hz"]) + attempt * self.boost_hz}


class ProgramFile(NamedTuple):
    program: PlasticityProgram
    slice_samples: int  # samples per time slice: the program runs after each slice
    boost: Boost = Boost()


def program_from_dict(data: dict[str, Any], source: str) -> ProgramFile:
    """A checked program description → the program (unknown keys, wrong types, bad values: one-line errors)."""
    try:
        checked = _FIELDS.check(data, "")
    except Invalid as invalid:
        raise refusal(FileKindError, source, invalid, ENVELOPE.remedy) from None
    rule = checked["rule"]
    given = {k: float(v) for k, v in checked.items() if k in {p for ps in PARAMETERS.values() for p in ps}}
    foreign = sorted(set(given) - set(PARAMETERS[rule]))
    if foreign:
        raise FileKindError(f"{source}: rule '{rule}' takes no parameters named {', '.join(foreign)}",
                            f"its parameters: {', '.join(PARAMETERS[rule]) or 'none'}")
    program = RULES[rule](projections=tuple(checked["projections"]), **given)
    boost = Boost(int(checked.get("min_spikes", 0)), float(checked.get("boost_hz", 0.0)),
                  int(checked.get("max_boosts", 0)))
    return ProgramFile(program, int(checked.get("slice_samples", 1)), boost)


def load_program(path: str | Path) -> ProgramFile:
    """Read and check a plasticity program file."""
    data = read_envelope(path, ENVELOPE, load_yaml)
    return program_from_dict(data, str(path))
