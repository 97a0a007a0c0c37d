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
sensors). A program file (YAML, ``format: neurodeploy.plasticity``) names one and its parameters; see
:func:`load_program`. What a real PPU program differs in: it is C++ compiled for the PPU (Power ISA with
the vector extension), computes in 8- or 16-bit saturating fixed point on 128 lanes, draws random numbers
from libnux, must fit 16 KiB of code and data, and runs concurrently with the network within a timer's
period, so its reads and writes are spread over the slice instead of happening between slices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from .errors import FileKindError
from .fileformat import Envelope, read_envelope
from .safe_yaml import load_yaml
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


class PlasticityProgram(Protocol):
    """A program: the projections it rewrites, and the new weights of one after a slice."""

    projections: tuple[str, ...]

    def update(self, seen: SliceObservables, rng: np.random.Generator) -> np.ndarray:
        """New weights ``[post, pre]``, integers in 0..63 (:func:`on_chip` rounds and clips what is not)."""
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
        return np.clip(np.floor(w + change + rng.random(w.shape)), 0, WEIGHT_MAX).astype(np.int64)


RULES = {"unchanged": Unchanged, "stdp": CorrelationStdp}
_RATE = Number(lo=0)
_FIELDS = Fields(required={"format": Text(), "version": Number(integer=True), "rule": OneOf(tuple(RULES)),
                           "projections": ListOf(Text(), min_length=1)},
                 optional={"eta_plus": _RATE, "eta_minus": _RATE, "decay": Number(lo=0, hi=1),
                           "w_rest": Number(lo=0, hi=WEIGHT_MAX), "slice_samples": Number(lo=1, integer=True),
                           "description": Text(empty=True)})


class ProgramFile(NamedTuple):
    program: PlasticityProgram
    slice_samples: int  # samples per time slice: the program runs after each slice


def program_from_dict(data: dict[str, Any], source: str) -> ProgramFile:
    """A checked program description → the program (unknown keys, wrong types, bad values: one-line errors)."""
    try:
        checked = _FIELDS.check(data, "")
    except Invalid as invalid:
        raise refusal(FileKindError, source, invalid, ENVELOPE.remedy) from None
    parameters = {k: float(v) for k, v in checked.items() if k in ("eta_plus", "eta_minus", "decay", "w_rest")}
    if checked["rule"] == "unchanged" and parameters:
        raise FileKindError(f"{source}: rule 'unchanged' takes no parameters ({', '.join(parameters)})",
                            "remove them, or use rule: stdp")
    program = RULES[checked["rule"]](projections=tuple(checked["projections"]), **parameters)
    return ProgramFile(program, int(checked.get("slice_samples", 1)))


def load_program(path: str | Path) -> ProgramFile:
    """Read and check a plasticity program file."""
    data = read_envelope(path, ENVELOPE, load_yaml)
    return program_from_dict(data, str(path))
