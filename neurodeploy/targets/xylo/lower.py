r"""Lowering a model onto Xylo: the neuron bank of each population, its decay shifts and its gain.

**Decays.** The chip decays a state :math:`x` by :math:`x \gg d` per step (at least 1 LSB), a
factor :math:`1 - 2^{-d}`. A population's shift is the one whose factor is closest, in
:math:`\log_2`, to the model's exact decay :math:`e^{-\Delta t/\tau}`:

.. math:: d = \mathrm{round}\left(-\log_2\left(1 - e^{-\Delta t/\tau}\right)\right), \qquad
          \tau' = -\Delta t / \ln(1 - 2^{-d})

(:math:`\tau'` is the time constant the chip realises; for :math:`\tau \gg \Delta t` this is the
vendor's rule :math:`d = \log_2(\tau/\Delta t)`).

**Gain.** The model integrates :math:`I_k = \alpha I_{k-1} + x_k` and
:math:`v_k - v_{leak} = \beta (v_{k-1} - v_{leak}) + (1-\beta) I_k`; the chip adds an event to
its current and then decays it, :math:`I'_k = \alpha' (I'_{k-1} + x'_k)`, and integrates
:math:`V_k = \beta' V_{k-1} + I'_k`. With :math:`V = S\,(v - v_{leak})` (``S`` LSB per model
unit) the two have the same integral response to an input event (the DC gain) when

.. math:: x' = S\,c\,x, \qquad c = \frac{(1-\alpha')(1-\beta')}{\alpha'\,(1-\alpha)}

which is exact in transients too when :math:`\alpha' = \alpha` and :math:`\beta' = \beta`.

**Banks.** Spiking (``lif``) populations take hidden neurons in graph order. The readout takes
the output neurons when it has at most as many neurons as the chip has outputs; otherwise it is
placed on hidden neurons after the spiking layers, read by state recording (rule XYLO-OUTPUTS).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ...errors import GraphError
from ...graph import Graph
from .spec import XyloSpec


class XyloLayer(NamedTuple):
    """One population as the chip realises it."""

    name: str
    kind: str  # "lif" or "li"
    size: int
    bank: str  # "hidden" or "output"
    first: int  # index of its first neuron in its bank
    inputs: tuple[str, ...]  # names of the populations projecting onto it
    dash_syn: int  # may exceed the chip's range: rule XYLO-DASH reports it
    dash_mem: int
    tau_syn_s: float  # the model's
    tau_mem_s: float
    tau_syn_realised_s: float  # the chip's, for the dashes above
    tau_mem_realised_s: float
    gain: float  # c above: chip input per model input, per LSB of state scale
    span: float  # model units from rest to threshold (v_th - v_leak); 0 for a readout
    t_ref_s: float


def dash_for(tau_s: float, dt_s: float) -> int:
    """The decay shift whose factor 1 - 2^-d is closest (in log2) to exp(-dt/tau)."""
    return max(0, round(-math.log2(-math.expm1(-dt_s / tau_s))))


def tau_bounds_s(dash_low: int, dash_high: int, dt_s: float) -> tuple[float, float]:
    """The range of time constants :func:`dash_for` maps into ``dash_low..dash_high``."""
    tau_at = lambda d: dt_s / -math.log1p(-(2.0 ** -d))  # noqa: E731 - dash_for's rounding boundary at d
    return (tau_at(dash_low - 0.5) if dash_low > 0 else 0.0), tau_at(dash_high + 0.5)


def realised_tau_s(dash: int, dt_s: float) -> float:
    """The time constant a decay shift realises (0 for d = 0: the state is gone after one step)."""
    return 0.0 if dash == 0 else -dt_s / math.log1p(-(2.0 ** -dash))


def gain(tau_syn_s: float, dash_syn: int, dash_mem: int, dt_s: float) -> float:
    """c in the module docstring: the chip's weight per model weight and per LSB of state scale."""
    alpha = math.exp(-dt_s / tau_syn_s)
    alpha_chip, beta_chip = 1.0 - 2.0 ** -dash_syn, 1.0 - 2.0 ** -dash_mem
    if alpha_chip == 0.0:  # d = 0: the event is decayed away before the membrane sees it
        return math.inf
    return (1.0 - alpha_chip) * (1.0 - beta_chip) / (alpha_chip * (1.0 - alpha))


def lower(graph: Graph, dt_s: float, spec: XyloSpec) -> list[XyloLayer]:
    """Every non-input population, in graph order, with its bank and decays."""
    outputs = spec["geometry"]["output_neurons"]
    layers, hidden_used = [], 0
    for pop in graph.populations[1:]:
        n = pop.neuron
        if n is None:  # Graph.check() already refuses this; stated for the type checker
            raise GraphError(f"population '{pop.name}' lacks neuron parameters", "add them")
        on_outputs = pop is graph.readout and pop.kind == "li" and pop.size <= outputs
        bank, first = ("output", 0) if on_outputs else ("hidden", hidden_used)
        if not on_outputs:
            hidden_used += pop.size
        d_syn, d_mem = dash_for(n.tau_syn_s, dt_s), dash_for(n.tau_mem_s, dt_s)
        layers.append(XyloLayer(
            name=pop.name, kind=pop.kind, size=pop.size, bank=bank, first=first,
            inputs=tuple(p.pre for p in graph.incoming(pop.name)), dash_syn=d_syn, dash_mem=d_mem,
            tau_syn_s=n.tau_syn_s, tau_mem_s=n.tau_mem_s, tau_syn_realised_s=realised_tau_s(d_syn, dt_s),
            tau_mem_realised_s=realised_tau_s(d_mem, dt_s), gain=gain(n.tau_syn_s, d_syn, d_mem, dt_s),
            span=(n.v_th - n.v_leak) if pop.kind == "lif" else 0.0, t_ref_s=n.t_ref_s))
    return layers
