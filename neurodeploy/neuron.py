"""A population's neuron parameters: one frozen dataclass of plain values, checked on construction.

Potentials are in units of ``v_th - v_leak``, times in seconds. Every graph uses the six recipe
fields (``tau_mem_s`` ... ``t_ref_s``); the other fields exist for graphs imported from NIR and
need the ``nir-euler`` discretisation (:mod:`neurodeploy.core.euler`, ``Graph.check``):

* ``model``: ``cuba`` (synaptic current and leaky membrane: the native neuron, NIR's CubaLIF and
  CubaLI), ``leaky`` (no synaptic current, the input drives the membrane: NIR's LIF and LI;
  ``tau_syn_s`` is unused) or ``integrator`` (no leak either: NIR's IF and I; ``tau_mem_s`` and
  ``tau_syn_s`` are unused and the membrane starts at ``v_leak`` = 0). Unused time constants keep
  their defaults and are not written.
* ``i_bias``: a constant input added every step (an NIR Affine's bias, input gains folded in).
* ``reset``: ``value`` (:math:`v \\leftarrow v_{reset}`) or ``subtract``
  (:math:`v \\leftarrow v - (v_{th} - v_{reset})`).
* ``per_neuron``: ``(field, values)`` pairs that give a field one value per neuron; the scalar
  field then holds their mean, which is what a target that sets one value per layer would read
  (the targets refuse such layers: rules ``BSS2-PER-NEURON``, ``XYLO-PER-NEURON``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union
from collections.abc import Mapping

import torch

from .core.lif import LIFParameters
from .errors import GraphError

MODELS = ("cuba", "leaky", "integrator")
RESETS = ("value", "subtract")
PER_NEURON_FIELDS = ("tau_mem_s", "tau_syn_s", "v_leak", "v_th", "v_reset", "i_bias")
RECIPE_FIELDS = ("tau_mem_s", "tau_syn_s", "v_leak", "v_th", "v_reset", "t_ref_s")
PerNeuron = tuple[tuple[str, tuple[float, ...]], ...]
Values = Union[float, tuple[float, ...]]


def _values(value: Values) -> tuple[float, ...]:
    return value if isinstance(value, tuple) else (value,)


def _pairs(a: tuple[float, ...], b: tuple[float, ...]) -> zip:
    """Element-wise pairs of two per-neuron (or scalar, broadcast) value tuples."""
    n = max(len(a), len(b))
    return zip(a * (n // len(a)), b * (n // len(b)))


@dataclass(frozen=True)
class NeuronParameters:
    """Model-unit neuron parameters (potentials in units of ``v_th - v_leak``; times in seconds)."""

    # The functional core's defaults, stated once (core/lif.py).
    tau_mem_s: float = LIFParameters._field_defaults["tau_mem_s"]
    tau_syn_s: float = LIFParameters._field_defaults["tau_syn_s"]
    v_leak: float = LIFParameters._field_defaults["v_leak"]
    v_th: float = LIFParameters._field_defaults["v_th"]
    v_reset: float = LIFParameters._field_defaults["v_reset"]
    t_ref_s: float = LIFParameters._field_defaults["t_ref_s"]
    model: str = "cuba"
    i_bias: float = 0.0
    reset: str = "value"
    per_neuron: PerNeuron = ()

    def value(self, name: str) -> Values:
        """A field's per-neuron values (a tuple) where it has them, else its scalar."""
        return dict(self.per_neuron).get(name, getattr(self, name))

    @property
    def extended(self) -> list[str]:
        """The features beyond the native neuron that this one uses (empty for a native neuron)."""
        used = [f"model {self.model!r}"] if self.model != "cuba" else []
        used += ["a constant input (i_bias)"] if self.i_bias != 0 or "i_bias" in dict(self.per_neuron) else []
        used += ["reset by subtraction"] if self.reset != "value" else []
        return used + ([f"per-neuron {', '.join(n for n, _ in self.per_neuron)}"] if self.per_neuron else [])

    def check(self, where: str, error: type = GraphError, size: Optional[int] = None) -> None:
        """Raise ``error`` naming the first impossible value (``size``: the population's, for per-neuron values)."""
        if self.model not in MODELS or self.reset not in RESETS:
            raise error(f"{where}: model {self.model!r} / reset {self.reset!r} is unknown",
                        f"use a model of {MODELS} and a reset of {RESETS}")
        for name, values in self.per_neuron:
            if name not in PER_NEURON_FIELDS or (size is not None and len(values) != size):
                raise error(f"{where}: per-neuron {name!r} has {len(values)} values",
                            f"give one value per neuron ({size}) for one of {PER_NEURON_FIELDS}")
        for name in (*RECIPE_FIELDS, "i_bias"):
            for value in _values(self.value(name)):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise error(f"{where}.{name} = {value!r} is not a number", f"give {name} as a number")
        for name in ("tau_mem_s", "tau_syn_s"):
            for value in _values(self.value(name)):
                if not (math.isfinite(value) and value > 0):
                    raise error(f"{where}.{name} = {value} is not a positive time",
                                f"set {name} to a positive number of seconds, e.g. 10e-3")
        if not (math.isfinite(self.t_ref_s) and self.t_ref_s >= 0):
            raise error(f"{where}.t_ref_s = {self.t_ref_s} is not a finite time >= 0", "set t_ref_s >= 0, e.g. 2e-3")
        for name in ("v_leak", "v_th", "v_reset", "i_bias"):
            bad = [v for v in _values(self.value(name)) if not math.isfinite(v)]
            if bad:
                raise error(f"{where}.{name} = {bad[0]} is not finite (a potential or bias)", "give finite numbers")
        leak, th, reset = (_values(self.value(n)) for n in ("v_leak", "v_th", "v_reset"))
        if not all(t > v for t, v in _pairs(th, leak)):
            raise error(f"{where}: v_th ({self.v_th}) must lie above v_leak ({self.v_leak})",
                        "raise v_th or lower v_leak")
        if not all(r < t for r, t in _pairs(reset, th)):
            raise error(f"{where}: v_reset ({self.v_reset}) must lie below v_th ({self.v_th})", "lower v_reset")

    def to_lif(self) -> LIFParameters:
        """The core's parameters: floats, or ``[N]`` float64 tensors for per-neuron values."""
        def get(name: str) -> Any:
            value = self.value(name)
            return torch.tensor(value, dtype=torch.float64) if isinstance(value, tuple) else value
        return LIFParameters(**{name: get(name) for name in RECIPE_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """Plain values; fields beyond the native neuron only where they differ from their defaults."""
        unused = {"leaky": ("tau_syn_s",), "integrator": ("tau_syn_s", "tau_mem_s")}.get(self.model, ())
        data: dict[str, Any] = {name: getattr(self, name) for name in RECIPE_FIELDS if name not in unused}
        for name, default in (("model", "cuba"), ("i_bias", 0.0), ("reset", "value")):
            if getattr(self, name) != default:
                data[name] = getattr(self, name)
        if self.per_neuron:
            data["per_neuron"] = {name: list(values) for name, values in self.per_neuron}
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> NeuronParameters:
        """The inverse of :meth:`to_dict` (model files, deployments); raises ``TypeError``/``ValueError``."""
        values = dict(data)
        per_neuron = values.pop("per_neuron", {}) or {}
        return cls(**values, per_neuron=tuple((str(k), tuple(float(x) for x in v)) for k, v in per_neuron.items()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str, error: type = GraphError) -> NeuronParameters:
        """A recipe's ``neuron:`` block: the six recipe fields only, as numbers."""
        allowed = set(RECIPE_FIELDS)
        unknown = set(data) - allowed
        if unknown:
            raise error(f"unknown key(s) {sorted(unknown)} in {where}", f"allowed keys: {sorted(allowed)}")
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise error(f"{where}.{key} = {value!r} is not a number", "give numbers, e.g. tau_mem_s: 10.0e-3")
        numbers: dict[str, Any] = {k: float(v) for k, v in data.items()}
        params = cls(**numbers)
        params.check(where, error)
        return params


def with_per_neuron(values: Mapping[str, Any], **scalars: Any) -> NeuronParameters:
    """Parameters from per-neuron sequences: a field whose values are all equal becomes a scalar,
    others stay per neuron with their mean as the scalar."""
    fixed: dict[str, Any] = dict(scalars)
    arrays = []
    for name, seq in values.items():
        items = tuple(float(x) for x in seq)
        fixed[name] = items[0] if len(set(items)) == 1 else math.fsum(items) / len(items)
        if len(set(items)) > 1:
            arrays.append((name, items))
    return NeuronParameters(**fixed, per_neuron=tuple(arrays))
