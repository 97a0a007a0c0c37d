r"""NIR's linear nodes between neurons → projections with weights, delays and a bias.

Between the Input or a spiking neuron and the next neuron, a graph may chain Affine
(:math:`y = W x + b`), Linear (:math:`y = W x`), Scale (:math:`y = s \odot x`), Delay
(:math:`y(t) = x(t - \tau)`) and identity nodes (inlined subgraph Input/Output, Flatten); the
edges into a node sum. Every node's output is a sum of *terms* plus a constant,

.. math:: y(t) = \sum_{terms} M\, z_{source}(t - \delta) + c,

composed node by node: Affine :math:`M \leftarrow W M`, :math:`c \leftarrow W c + b`; Scale scales
rows; Delay splits a term by the distinct delays of its rows (the constant passes a Delay as a
constant from step 0). At a neuron, one source's terms become one projection: the summed matrix,
and per synapse the delay of the one term that reaches it (two delays on one synapse: error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from ..errors import InterchangeError
from .nir_neurons import KINDS, is_neuron, size_of
from .nir_read import FlatGraph

IDENTITY = (nir.Input, nir.Output, nir.Flatten)
UNSUPPORTED = {
    "Conv1d": ("convolutions are not supported: projections are all-to-all matrices",
               "export the convolution as an Affine or Linear node with its unrolled weight matrix"),
    "Conv2d": ("convolutions are not supported: projections are all-to-all matrices",
               "export the convolution as an Affine or Linear node with its unrolled weight matrix"),
    "SumPool2d": ("pooling is not supported", "fold the pooling into the next Affine node's weights"),
    "AvgPool2d": ("pooling is not supported", "fold the pooling into the next Affine node's weights"),
    "Threshold": ("a Threshold node without a neuron is not supported", "use an IF, LIF or CubaLIF node"),
}


@dataclass
class Term:
    source: str
    delay: int  # steps
    matrix: np.ndarray  # [out, source size]


@dataclass
class Signal:
    terms: list[Term]
    bias: np.ndarray  # [out]

    @property
    def size(self) -> int:
        return int(self.bias.size)


def check_supported(flat: FlatGraph) -> None:
    """Refuse the first node no neurodeploy graph can express, naming it, why, and a fix."""
    for name, node in flat.nodes.items():
        kind = type(node).__name__
        if kind in UNSUPPORTED:
            why, fix = UNSUPPORTED[kind]
            raise InterchangeError(f"node '{name}' ({kind}): {why}", fix)
        if not (is_neuron(node) or isinstance(node, (*IDENTITY, nir.Affine, nir.Linear, nir.Scale, nir.Delay))):
            raise InterchangeError(f"node '{name}' has type {kind}, which neurodeploy does not support",
                                   f"use {', '.join(t.__name__ for t in KINDS)}, Affine, Linear, Scale or Delay")


class Composer:
    """Sizes of nodes and the signals between them, memoised (module docstring)."""

    def __init__(self, flat: FlatGraph, dt_s: float) -> None:
        self.flat, self.dt_s = flat, dt_s
        self._sizes: dict[str, int] = {}
        self._outputs: dict[str, Signal] = {}
        self._visiting: set[str] = set()

    def size(self, name: str) -> int:
        """The length of ``name``'s output vector."""
        if name not in self._sizes:
            if name in self._visiting:
                raise InterchangeError(f"the size of node '{name}' cannot be told (a loop without a sized node)",
                                       "give its parameters one value per neuron")
            self._visiting.add(name)
            self._sizes[name] = self._size(name, self.flat.nodes[name])
            self._visiting.discard(name)
        return self._sizes[name]

    def _size(self, name: str, node: Any) -> int:
        if name == self.flat.input:
            shape = [int(d) for d in np.asarray(node.input_type["input"]).reshape(-1)]
            if sum(d > 1 for d in shape) > 1:
                raise InterchangeError(f"Input '{name}' has shape {shape}: only one-dimensional inputs are supported",
                                       "flatten the input before exporting the graph")
            return int(np.prod(shape))
        if isinstance(node, (nir.Affine, nir.Linear)):
            return int(np.asarray(node.weight).shape[0])
        own = size_of(name, node) if is_neuron(node) else None
        if isinstance(node, (nir.Scale, nir.Delay)):
            values = np.asarray(node.scale if isinstance(node, nir.Scale) else node.delay).reshape(-1)
            own = values.size if values.size > 1 else None
        if own is not None:
            return own
        before = self.flat.predecessors(name)
        if not before:
            raise InterchangeError(f"node '{name}' receives no edge", "connect it, or remove it")
        return self.size(before[0])

    def input_of(self, name: str) -> Signal:
        """The sum of what the edges into ``name`` carry."""
        before = self.flat.predecessors(name)
        if not before:
            raise InterchangeError(f"node '{name}' receives no edge", "connect it, or remove it")
        signals = [self.output_of(b, consumer=name) for b in before]
        if len({s.size for s in signals}) > 1:
            raise InterchangeError(f"node '{name}' receives vectors of sizes {[s.size for s in signals]} from "
                                   f"{before}", "make the edges into a node carry vectors of one size")
        return Signal([t for s in signals for t in s.terms], np.sum([s.bias for s in signals], axis=0))

    def output_of(self, name: str, consumer: str) -> Signal:
        node = self.flat.nodes[name]
        spiking = is_neuron(node) and KINDS[type(node)][0] == "lif"
        if name == self.flat.input or spiking or (is_neuron(node) and consumer == self.flat.output):
            n = self.size(name)
            return Signal([Term(name, 0, np.eye(n))], np.zeros(n))
        if is_neuron(node):
            raise InterchangeError(f"node '{name}' ({type(node).__name__}) does not spike: its output, a membrane "
                                   f"potential, can only go to the Output, not to '{consumer}'",
                                   "end the graph with it, or use a spiking node (LIF, CubaLIF, IF)")
        if isinstance(node, nir.Output) and name not in self.flat.identities:
            raise InterchangeError(f"Output '{name}' has an outgoing edge to '{consumer}'", "remove that edge")
        if name not in self._outputs:
            if name in self._visiting:
                raise InterchangeError(f"the linear nodes around '{name}' form a loop without a neuron",
                                       "close every loop through a spiking neuron")
            self._visiting.add(name)
            self._outputs[name] = self._apply(name, node, self.input_of(name))
            self._visiting.discard(name)
        return self._outputs[name]

    def _apply(self, name: str, node: Any, x: Signal) -> Signal:
        if isinstance(node, (nir.Affine, nir.Linear)):
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2 or w.shape[1] != x.size:
                raise InterchangeError(f"node '{name}' ({type(node).__name__}) has a weight of shape {w.shape} "
                                       f"for an input of size {x.size}", "give a [out, in] weight matrix")
            bias = np.asarray(node.bias, dtype=np.float64).reshape(-1) if isinstance(node, nir.Affine) else 0.0
            return Signal([Term(t.source, t.delay, w @ t.matrix) for t in x.terms], w @ x.bias + bias)
        if isinstance(node, nir.Scale):
            s = self._per_element(name, node, "scale", x.size)
            return Signal([Term(t.source, t.delay, s[:, None] * t.matrix) for t in x.terms], s * x.bias)
        if isinstance(node, nir.Delay):
            steps = self._steps(name, self._per_element(name, node, "delay", x.size))
            terms = [Term(t.source, t.delay + int(d), np.where((steps == d)[:, None], t.matrix, 0.0))
                     for t in x.terms for d in np.unique(steps)]
            return Signal(terms, x.bias)
        return x  # identity: inlined Input/Output, Flatten of a vector

    @staticmethod
    def _per_element(name: str, node: Any, field: str, size: int) -> np.ndarray:
        """``node.field`` as ``size`` values: one per element of the input, or one for all."""
        values = np.asarray(getattr(node, field), dtype=np.float64).reshape(-1)
        if values.size not in (1, size):
            raise InterchangeError(f"node '{name}' ({type(node).__name__}) has {values.size} {field} values for an "
                                   f"input of size {size}", f"give one {field} per element, or one for all")
        return np.broadcast_to(values, (size,))

    def _steps(self, name: str, delay_s: np.ndarray) -> np.ndarray:
        steps = delay_s / self.dt_s
        whole = np.round(steps)
        if not (np.all(np.isfinite(steps)) and np.all(steps >= 0) and np.allclose(steps, whole, rtol=0, atol=1e-6)):
            raise InterchangeError(f"Delay '{name}' has delays {delay_s.min():g}..{delay_s.max():g} s, not whole "
                                   f"non-negative multiples of dt = {self.dt_s:g} s",
                                   "import with a dt_s that divides every delay")
        return whole.astype(int)


def projections(target: str, signal: Signal) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per source: the summed weight ``[out, in]`` and per-synapse delays in steps.

    Two different delays on one synapse cannot be expressed: an error."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for source in dict.fromkeys(t.source for t in signal.terms):
        terms = [t for t in signal.terms if t.source == source]
        weight = np.sum([t.matrix for t in terms], axis=0)
        delays = np.zeros_like(weight)
        reached = np.zeros(weight.shape, dtype=int)
        for delay in sorted({t.delay for t in terms}):
            used = np.sum([t.matrix for t in terms if t.delay == delay], axis=0) != 0
            delays[used], reached = delay, reached + used
        if np.any(reached > 1):
            raise InterchangeError(f"some synapses from '{source}' to '{target}' have two different delays",
                                   "give each synapse one delay (one path through Delay nodes)")
        out[source] = (weight, delays)
    return out
