r"""NIR neuron nodes → neurodeploy neuron parameters at a time step, and the peers' known slips.

Each node becomes a population whose ``nir-euler`` step (:mod:`neurodeploy.core.euler`) is the
forward-Euler step of the node's equations at :math:`\Delta t`:

============  ======  ============  ====================================  ==========================
NIR node      kind    model         time constants stored                 input gain folded, g
============  ======  ============  ====================================  ==========================
CubaLIF       lif     cuba          :math:`\tau_{syn}`, :math:`\tau_{mem}`  :math:`r\,w_{in}\,\Delta t/\tau_{syn}`
CubaLI        li      cuba          :math:`\tau_{syn}`, :math:`\tau_{mem}`  :math:`r\,w_{in}\,\Delta t/\tau_{syn}`
LIF           lif     leaky         :math:`\tau`                            :math:`r`
LI            li      leaky         :math:`\tau`                            :math:`r`
IF            lif     integrator    none                                  :math:`\Delta t\, r`
I             li      integrator    none                                  :math:`\Delta t\, r`
============  ======  ============  ====================================  ==========================

A time constant is stored as :math:`\tau' = -\Delta t / \ln(1 - \Delta t/\tau)`, the exact
exponential one with Euler's decay per step; Euler needs :math:`\tau > \Delta t` for a decay in
(0, 1). The gain multiplies the node's weights and bias. ``tau_scale`` multiplies every time
constant first (``reset="subtract"`` replaces the reset to ``v_reset`` by a subtraction), for
graphs whose writer is known to have slipped (:func:`peer_warnings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import nir
import numpy as np

from ..errors import InterchangeError
from ..neuron import NeuronParameters, with_per_neuron

KINDS: dict[type, tuple[str, str]] = {  # node type → (population kind, neuron model)
    nir.CubaLIF: ("lif", "cuba"), nir.CubaLI: ("li", "cuba"), nir.LIF: ("lif", "leaky"), nir.LI: ("li", "leaky"),
    nir.IF: ("lif", "integrator"), nir.I: ("li", "integrator")}
TAUS = {"cuba": ("tau_syn", "tau_mem"), "leaky": ("tau",), "integrator": ()}
SNNTORCH_DT_S = 1e-4  # snnTorch 1.0's exporter writes tau = dt / (1 - beta) and r = tau / dt with this dt
NORSE_DT_S = 1e-3  # Norse 1.1's exporter writes tau = dt * tau (its default dt), i.e. 1000x too small
SHORT_TAU_S = 1e-4


@dataclass
class ImportedNeuron:
    """One neuron node at a time step: its population kind, parameters (without bias) and input gain ``[N]``."""

    kind: str
    params: NeuronParameters
    gain: np.ndarray


def is_neuron(node: Any) -> bool:
    return type(node) in KINDS


def _raw(node: Any, name: str) -> Optional[np.ndarray]:
    value = getattr(node, name, None)
    return None if value is None else np.asarray(value, dtype=np.float64).reshape(-1)


def size_of(name: str, node: Any) -> Optional[int]:
    """The node's size from its parameter arrays (None: all scalar, the size comes from its input)."""
    fields = [f for f in ("tau", "tau_mem", "tau_syn", "r", "w_in", "v_leak", "v_threshold", "v_reset")
              if _raw(node, f) is not None]
    sizes = {_raw(node, f).size for f in fields} - {1}  # type: ignore[union-attr]
    if len(sizes) > 1:
        raise InterchangeError(f"node '{name}' ({type(node).__name__}) has parameters of sizes {sorted(sizes)}",
                               "give every parameter one value per neuron, or one value for all")
    return sizes.pop() if sizes else None


def _array(name: str, node: Any, field: str, size: int, default: float = 0.0) -> np.ndarray:
    raw = _raw(node, field)
    values = np.full(size, default) if raw is None else (np.full(size, raw[0]) if raw.size == 1 else raw)
    if values.size != size or not np.all(np.isfinite(values)):
        raise InterchangeError(f"node '{name}' ({type(node).__name__}) has {field} {raw} (not {size} finite values)",
                               f"give {field} finite values, one per neuron or one for all")
    return values


def _decay(name: str, node: Any, field: str, size: int, dt_s: float, tau_scale: float) -> np.ndarray:
    """The stored time constants ``[N]`` for Euler's decay of ``field`` at ``dt_s``."""
    tau = _array(name, node, field, size) * tau_scale
    where = f"node '{name}' ({type(node).__name__}) {field}"
    if not np.all(tau > 0):
        raise InterchangeError(f"{where} = {tau[tau <= 0][0]:g} s is not a positive time", "give positive times")
    if not np.all(tau > dt_s):
        hint = (f"; if Norse 1.1 wrote this graph, its time constants are {NORSE_DT_S:g} x too small: "
                "pass tau_scale=1000" if tau_scale == 1 and tau.min() < SHORT_TAU_S else "")
        raise InterchangeError(f"{where} = {tau.min():g} s is not longer than dt = {dt_s:g} s: forward Euler "
                               "has no decay in (0, 1) at this step",
                               f"import with a dt_s below {tau.min():g} s (snnTorch graphs: {SNNTORCH_DT_S:g}){hint}")
    return -dt_s / np.log1p(-dt_s / tau)


def convert(name: str, node: Any, size: int, dt_s: float, tau_scale: float = 1.0,
            reset: str = "graph") -> ImportedNeuron:
    """The node as a population at ``dt_s`` (module docstring); errors name the node."""
    kind, model = KINDS[type(node)]
    values: dict[str, np.ndarray] = {}
    r = _array(name, node, "r", size, 1.0)
    if model == "cuba":
        values["tau_syn_s"] = _decay(name, node, "tau_syn", size, dt_s, tau_scale)
        values["tau_mem_s"] = _decay(name, node, "tau_mem", size, dt_s, tau_scale)
        tau_syn = _array(name, node, "tau_syn", size) * tau_scale
        gain = r * _array(name, node, "w_in", size, 1.0) * dt_s / tau_syn
    elif model == "leaky":
        values["tau_mem_s"] = _decay(name, node, "tau", size, dt_s, tau_scale)
        gain = r
    else:
        gain = dt_s * r
    values["v_leak"] = _array(name, node, "v_leak", size) if model != "integrator" else np.zeros(size)
    if kind == "lif":
        values["v_th"] = _array(name, node, "v_threshold", size)
        values["v_reset"] = _array(name, node, "v_reset", size)
    else:  # no threshold: one unit of potential above rest, as a readout has
        values["v_th"], values["v_reset"] = values["v_leak"] + 1.0, values["v_leak"].copy()
    subtract = reset == "subtract" and kind == "lif"
    scalars = {"model": model, "t_ref_s": 0.0, "reset": "subtract" if subtract else "value"}
    params = with_per_neuron(values, **scalars)
    params.check(f"node '{name}' ({type(node).__name__})", InterchangeError, size)
    return ImportedNeuron(kind=kind, params=params, gain=gain)


def peer_warnings(nodes: dict[str, Any], dt_s: float, tau_scale: float, reset: str) -> list[str]:
    """Known slips of the peers' exporters that this graph shows signs of; each names the values and the option.

    Never acted on: the graph is imported as written unless the caller passes the option.
    """
    short, snntorch = {}, []
    for name, node in nodes.items():
        if not is_neuron(node):
            continue
        taus = [t for f in TAUS[KINDS[type(node)][1]] if (t := _raw(node, f)) is not None]
        shortest = min((float(t.min()) for t in taus), default=np.inf) * tau_scale
        if tau_scale == 1 and shortest < SHORT_TAU_S:
            short[name] = shortest
        tau, r = _raw(node, "tau_mem" if hasattr(node, "tau_mem") else "tau"), _raw(node, "r")
        if (KINDS[type(node)][0] == "lif" and tau is not None and r is not None and reset == "graph"
                and np.allclose(r * SNNTORCH_DT_S, tau, rtol=1e-3)):
            snntorch.append(name)
    found = []
    if short:
        listed = ", ".join(f"'{n}' {t:g} s" for n, t in short.items())
        found.append(f"time constants below {SHORT_TAU_S:g} s ({listed}): Norse 1.1's exporter writes dt*tau "
                     f"(1000 x too small at its dt = {NORSE_DT_S:g} s); if Norse wrote this graph, import with "
                     "tau_scale=1000 (imported as written)")
    if snntorch:
        found.append(f"nodes {snntorch} look written by snnTorch (r = tau / {SNNTORCH_DT_S:g} s): snnTorch 1.0's "
                     "exporter writes v_reset = 0 whatever the neuron's reset mechanism (its default subtracts the "
                     "threshold); imported as written (reset to v_reset); pass reset='subtract' if the network "
                     f"subtracted; its time constants assume dt = {SNNTORCH_DT_S:g} s (this import: {dt_s:g} s)")
    return found
