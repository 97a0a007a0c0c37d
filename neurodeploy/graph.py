"""The network graph: small typed dataclasses, validated on construction, plain dicts on disk.

A graph is a list of populations (one ``input``, then ``lif`` hidden layers, then an ``li``
readout) and projections between them, in feed-forward order; a projection may skip layers, and a
``recurrent`` one feeds a population's spikes of the previous step back to itself. Weights live
beside the graph (model file), keyed by projection name, with shape ``[post.size, pre.size]``.

The graph also says how its equations are discretised, since its parameters mean nothing
without that (``discretisation``):

* ``native``: exact exponential decay per step, one step of transmission latency per projection,
  reset to ``v_reset`` with a refractory period (:mod:`neurodeploy.core.lif`);
* ``nir-euler``: NIR's neurons integrated with forward Euler, no latency, no refractory period,
  plus NIR's neuron models, biases, subtractive reset and per-neuron values
  (:mod:`neurodeploy.core.euler`; graphs imported by :mod:`neurodeploy.interchange`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional
from collections.abc import Mapping

from .core.conv import Geometry
from .errors import GraphError
from .neuron import NeuronParameters

__all__ = ["DISCRETISATIONS", "POPULATION_KINDS", "Graph", "NeuronParameters", "Population", "Projection"]

POPULATION_KINDS = ("input", "lif", "li")
DISCRETISATIONS = ("native", "nir-euler")


@dataclass(frozen=True)
class Population:
    name: str
    size: int
    kind: str
    neuron: Optional[NeuronParameters] = None

    def check(self, discretisation: str = "native") -> None:
        if self.kind not in POPULATION_KINDS:
            raise GraphError(f"population '{self.name}' has unknown kind {self.kind!r}",
                             f"use one of {POPULATION_KINDS}")
        if not (isinstance(self.size, int) and self.size > 0):
            raise GraphError(f"population '{self.name}' has size {self.size}", "give a positive integer")
        if self.kind == "input":
            return
        if self.neuron is None:
            raise GraphError(f"population '{self.name}' lacks neuron parameters", "add them")
        self.neuron.check(f"population '{self.name}'", size=self.size)
        if discretisation == "native" and self.neuron.extended:
            raise GraphError(f"population '{self.name}' uses {', '.join(self.neuron.extended)}, which only the "
                             "nir-euler discretisation simulates", "use the native neuron's six parameters")
        if discretisation == "nir-euler" and self.neuron.t_ref_s != 0:
            raise GraphError(f"population '{self.name}' has t_ref_s {self.neuron.t_ref_s}: the nir-euler "
                             "discretisation has no refractory period", "set t_ref_s to 0")

    @property
    def parameters(self) -> NeuronParameters:
        """``neuron`` of a lif or li population (which :meth:`check` requires to have one)."""
        if self.neuron is None:  # check() already refuses this for lif and li; stated for the type checker
            raise GraphError(f"population '{self.name}' lacks neuron parameters", "add them")
        return self.neuron


@dataclass(frozen=True)
class Projection:
    r"""All-to-all synapses from ``pre`` to ``post``; natively with one step of transmission latency.

    ``max_delay_steps`` > 0: each synapse also has a learnable delay of 0..max_delay_steps steps
    on top of that latency (core/delays.py). ``recurrent`` (then ``pre == post``): the
    population's own spikes of the previous step, :math:`x_k \mathrel{+}= W z_{k-1}`, in either
    discretisation. ``geometry``: the pre population is an image and the matrix a convolution and/or
    average pooling of it (:mod:`neurodeploy.core.conv`); entries outside the structure are zero.
    """

    pre: str
    post: str
    max_delay_steps: int = 0
    recurrent: bool = False
    geometry: Optional[Geometry] = None  # a convolution or pooling: a structured matrix (core/conv.py)

    @property
    def name(self) -> str:
        return f"{self.pre}->{self.post}"


@dataclass(frozen=True)
class Graph:
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...] = field(default=())
    discretisation: str = "native"

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.discretisation not in DISCRETISATIONS:
            raise GraphError(f"unknown discretisation {self.discretisation!r}", f"use one of {DISCRETISATIONS}")
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise GraphError(f"duplicate population names in {names}", "give each population its own name")
        for pop in self.populations:
            pop.check(self.discretisation)
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
            if proj.geometry is not None:
                self._check_geometry(proj)
            if proj.recurrent:
                self._check_recurrent(proj)
            elif names.index(proj.pre) >= names.index(proj.post):
                raise GraphError(f"projection {proj.name} runs backwards or onto itself",
                                 "list populations in feed-forward order; mark a population's own feedback recurrent")
        if len({p.name for p in self.projections}) != len(self.projections):
            raise GraphError("two projections join the same populations", "merge them into one")
        for pop in self.populations[1:]:
            if not self.feedforward(pop.name):
                raise GraphError(f"population '{pop.name}' receives no projection", "connect it")

    def _check_recurrent(self, proj: Projection) -> None:
        if proj.pre != proj.post or self.population(proj.post).kind != "lif" or proj.max_delay_steps:
            raise GraphError(f"recurrent projection {proj.name} must join a lif population to itself, without delays",
                             "make it pre == post on a spiking population, with max_delay_steps 0")

    def _check_geometry(self, proj: Projection) -> None:
        if proj.recurrent or proj.max_delay_steps:
            raise GraphError(f"projection {proj.name} has a geometry and is recurrent or delayed",
                             "give convolutions and pooling to feed-forward projections without delays")
        problem = proj.geometry.problem(self.population(proj.pre).size, self.population(proj.post).size)  # type: ignore[union-attr]
        if problem:
            raise GraphError(f"projection {proj.name}'s geometry {problem}", "make the layer sizes match the geometry")

    def population(self, name: str) -> Population:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise GraphError(f"no population named '{name}'", "check the graph")

    def incoming(self, name: str) -> list[Projection]:
        """All projections onto ``name``, the recurrent one included."""
        return [p for p in self.projections if p.post == name]

    def feedforward(self, name: str) -> list[Projection]:
        """The projections onto ``name`` from other populations."""
        return [p for p in self.incoming(name) if not p.recurrent]

    def recurrent(self, name: str) -> Optional[Projection]:
        """``name``'s recurrent projection, if it has one."""
        return next((p for p in self.incoming(name) if p.recurrent), None)

    @property
    def input(self) -> Population:
        return self.populations[0]

    @property
    def readout(self) -> Population:
        return self.populations[-1]

    def to_dict(self) -> dict:
        # Keys beyond the first version's only where used: native graphs without delays read as before.
        return {
            "populations": [
                {"name": p.name, "size": p.size, "kind": p.kind,
                 "neuron": p.neuron.to_dict() if p.neuron else None} for p in self.populations],
            "projections": [{"pre": p.pre, "post": p.post,
                             **({"max_delay_steps": p.max_delay_steps} if p.max_delay_steps else {}),
                             **({"recurrent": True} if p.recurrent else {}),
                             **({"geometry": p.geometry.to_dict()} if p.geometry is not None else {})}
                            for p in self.projections],
            **({"discretisation": self.discretisation} if self.discretisation != "native" else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        try:
            pops = tuple(
                Population(name=str(p["name"]), size=int(p["size"]), kind=str(p["kind"]),
                           neuron=NeuronParameters.from_stored(p["neuron"]) if p.get("neuron") else None)
                for p in data["populations"])
            projs = tuple(Projection(pre=str(p["pre"]), post=str(p["post"]),
                                     max_delay_steps=int(p.get("max_delay_steps", 0)),
                                     recurrent=bool(p.get("recurrent", False)),
                                     geometry=Geometry.from_dict(p["geometry"]) if p.get("geometry") else None)
                          for p in data["projections"])
            discretisation = str(data.get("discretisation", "native"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GraphError(f"malformed graph ({type(exc).__name__}: {exc})",
                             "re-create the file with neurodeploy") from None
        return cls(populations=pops, projections=projs, discretisation=discretisation)
