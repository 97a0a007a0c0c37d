"""The network graph: small typed dataclasses, validated on construction, plain dicts on disk.

A graph is a list of populations (one ``input``, then ``lif`` hidden layers, then an ``li``
readout) and projections between them. Weights live beside the graph (model file), keyed by
projection name, with shape ``[post.size, pre.size]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional
from collections.abc import Mapping

from .core.lif import LIFParameters
from .errors import GraphError

POPULATION_KINDS = ("input", "lif", "li")


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

    def check(self, where: str, error: type = GraphError) -> None:
        """Raise ``error`` naming the first impossible value."""
        for name in ("tau_mem_s", "tau_syn_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise error(f"{where}.{name} = {value} is not a positive time",
                            f"set {name} to a positive number of seconds, e.g. 10e-3")
        if not self.t_ref_s >= 0:
            raise error(f"{where}.t_ref_s = {self.t_ref_s} is negative", "set t_ref_s >= 0")
        if not self.v_th > self.v_leak:
            raise error(f"{where}: v_th ({self.v_th}) must lie above v_leak ({self.v_leak})",
                        "raise v_th or lower v_leak")
        if not self.v_reset < self.v_th:
            raise error(f"{where}: v_reset ({self.v_reset}) must lie below v_th ({self.v_th})",
                        "lower v_reset")

    def to_lif(self) -> LIFParameters:
        return LIFParameters(**asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str, error: type = GraphError
                  ) -> NeuronParameters:
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise error(f"unknown key(s) {sorted(unknown)} in {where}", f"allowed keys: {sorted(allowed)}")
        try:
            params = cls(**{k: float(v) for k, v in data.items()})
        except (TypeError, ValueError):
            raise error(f"{where} holds a non-numeric value", "give numbers, e.g. tau_mem_s: 10e-3") from None
        params.check(where, error)
        return params


@dataclass(frozen=True)
class Population:
    name: str
    size: int
    kind: str
    neuron: Optional[NeuronParameters] = None

    def check(self) -> None:
        if self.kind not in POPULATION_KINDS:
            raise GraphError(f"population '{self.name}' has unknown kind {self.kind!r}",
                             f"use one of {POPULATION_KINDS}")
        if not (isinstance(self.size, int) and self.size > 0):
            raise GraphError(f"population '{self.name}' has size {self.size}", "give a positive integer")
        if self.kind != "input":
            if self.neuron is None:
                raise GraphError(f"population '{self.name}' lacks neuron parameters", "add them")
            self.neuron.check(f"population '{self.name}'")

    @property
    def parameters(self) -> NeuronParameters:
        """``neuron`` of a lif or li population (which :meth:`check` requires to have one)."""
        if self.neuron is None:  # check() already refuses this for lif and li; stated for the type checker
            raise GraphError(f"population '{self.name}' lacks neuron parameters", "add them")
        return self.neuron


@dataclass(frozen=True)
class Projection:
    """All-to-all synapses from ``pre`` to ``post`` with one step of transmission latency.

    ``max_delay_steps`` > 0: each synapse also has a learnable delay of 0..max_delay_steps steps
    on top of that latency (core/delays.py).
    """

    pre: str
    post: str
    max_delay_steps: int = 0

    @property
    def name(self) -> str:
        return f"{self.pre}->{self.post}"


@dataclass(frozen=True)
class Graph:
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...] = field(default=())

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise GraphError(f"duplicate population names in {names}", "give each population its own name")
        for pop in self.populations:
            pop.check()
        inputs = [p for p in self.populations if p.kind == "input"]
        if len(inputs) != 1 or self.populations[0].kind != "input":
            raise GraphError("a graph needs exactly one input population, listed first",
                             "put the input population first")
        for proj in self.projections:
            for end in (proj.pre, proj.post):
                if end not in names:
                    raise GraphError(f"projection {proj.name} names unknown population '{end}'",
                                     f"use one of {names}")
            if not (isinstance(proj.max_delay_steps, int) and proj.max_delay_steps >= 0):
                raise GraphError(f"projection {proj.name} has max_delay_steps {proj.max_delay_steps!r}",
                                 "give a non-negative integer number of steps")
            if self.population(proj.post).kind == "input":
                raise GraphError(f"projection {proj.name} targets the input population",
                                 "projections must end on lif or li populations")
            if names.index(proj.pre) >= names.index(proj.post):
                raise GraphError(f"projection {proj.name} runs backwards or onto itself",
                                 "list populations in feed-forward order")
        for pop in self.populations[1:]:
            if not self.incoming(pop.name):
                raise GraphError(f"population '{pop.name}' receives no projection", "connect it")

    def population(self, name: str) -> Population:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise GraphError(f"no population named '{name}'", "check the graph")

    def incoming(self, name: str) -> list[Projection]:
        return [p for p in self.projections if p.post == name]

    @property
    def input(self) -> Population:
        return self.populations[0]

    @property
    def readout(self) -> Population:
        return self.populations[-1]

    def to_dict(self) -> dict:
        return {
            "populations": [
                {"name": p.name, "size": p.size, "kind": p.kind,
                 "neuron": asdict(p.neuron) if p.neuron else None} for p in self.populations],
            # max_delay_steps only where there are delays: graphs without them read as before.
            "projections": [{"pre": p.pre, "post": p.post,
                             **({"max_delay_steps": p.max_delay_steps} if p.max_delay_steps else {})}
                            for p in self.projections],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        try:
            pops = tuple(
                Population(name=str(p["name"]), size=int(p["size"]), kind=str(p["kind"]),
                           neuron=NeuronParameters(**p["neuron"]) if p.get("neuron") else None)
                for p in data["populations"])
            projs = tuple(Projection(pre=str(p["pre"]), post=str(p["post"]),
                                     max_delay_steps=int(p.get("max_delay_steps", 0)))
                          for p in data["projections"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphError(f"malformed graph ({type(exc).__name__}: {exc})",
                             "re-create the file with neurodeploy") from None
        return cls(populations=pops, projections=projs)
