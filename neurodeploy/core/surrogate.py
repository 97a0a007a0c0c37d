r"""Surrogate gradients for the spike non-linearity: a registry of kinds, each with its parameters.

Forward: :math:`z = \Theta(u)` with :math:`u = v - v_{th}`; spikes stay binary whatever the kind.
Backward: :math:`\partial z/\partial u` is replaced by a surrogate :math:`\sigma'(u)` (seed
004_5fb35622c679aa12.txt: spikes in the forward pass are not affected). The kinds, with their
recipe parameters (``training.surrogate: {kind: ..., <params>}``) and defaults:

``superspike`` (the default; SuperSpike / fast sigmoid, Zenke & Ganguli 2018), ``steepness`` β = 10:
    :math:`\sigma'(u) = 1 / (\beta |u| + 1)^2` (peak 1, area 2/β = 0.2). ``training.surrogate_steepness``
    is the older spelling of ``{kind: superspike, steepness: ...}`` and means the same.
``arctan`` (Fang et al. 2021, as in SpikingJelly and snnTorch), ``alpha`` α = 2:
    :math:`\sigma'(u) = (\alpha/2) / (1 + (\pi \alpha u / 2)^2)`, the derivative of
    :math:`\arctan(\pi \alpha u / 2)/\pi` (peak α/2 = 1, SuperSpike's; area 1 for every α).
``triangle`` (piecewise linear: Esser et al. 2016; Bellec et al. 2018), ``height`` h = 1, ``width`` w = 0.2:
    :math:`\sigma'(u) = h \max(0, 1 - |u|/w)` (peak h, area h w: both SuperSpike's at the defaults;
    zero beyond ``|u| >= w``).
``slayer`` (SLAYER's spike escape-rate PDF, Shrestha & Orchard, NeurIPS 2018), ``scale_rho`` ρ = 0.1,
    ``tau_rho`` τ_ρ = 0.1, ``theta`` ϑ = 1:
    :math:`\sigma'(u) = \rho/(\tau_\rho \vartheta)\, e^{-|u|/(\tau_\rho \vartheta)}`, i.e. SLAYER's
    :math:`\rho/(\tau_\rho\vartheta)\exp(-|u_S - \vartheta|/(\tau_\rho\vartheta))` with SLAYER's membrane
    :math:`u_S` measured from rest, so :math:`u_S - \vartheta = u` and ϑ is the threshold above rest,
    ``v_th - v_leak`` (1 in every shipped recipe; a recipe fills it in from its layers when not given).
    Peak ρ/(τ_ρ ϑ) = 1 and area 2ρ = 0.2 at the defaults, SuperSpike's; SLAYER's own examples use
    τ_ρ = ρ = 1 (peak 1/ϑ, area 2).

``superspike_truncated`` (SuperSpike cut to a band, as in Perez-Nieves & Goodman, NeurIPS 2021, "Sparse
    spiking gradient descent"), ``steepness`` β = 10, ``band`` B = 0.5:
    :math:`\sigma'(u) = 1 / (\beta |u| + 1)^2` for :math:`|u| < B`, exactly 0 beyond (peak 1; area
    :math:`2/\beta \cdot \beta B/(\beta B + 1)` = 0.167 at the defaults, 83% of SuperSpike's).

A kind whose :math:`\sigma'` is exactly 0 outside a band (``triangle``: ``width``; ``superspike_truncated``:
``band``; :attr:`Surrogate.band`) trains with the *sparse backward* (:mod:`neurodeploy.core.sparse`): the
gradient reaches :math:`z` only through :math:`\sigma'(u)`, so :math:`\partial L/\partial z` is computed only
for the active neurons, :math:`|u| <` band. Truncation is a kind of its own rather than a parameter of
``superspike`` so that every existing model file and recipe keeps its meaning (``superspike``'s parameters,
and therefore its ``to_dict``, are unchanged).

Why these defaults: SuperSpike at β = 10 has peak 1 and area 0.2; the others match its peak (arctan)
or its peak and area (triangle, slayer), so a recipe's learning rate carries over. The alternatives
measured are in docs/results.md ("Surrogate gradients").

Each kind exists twice, with the same arithmetic in the same operation order: here (the twin's
backward, :meth:`Surrogate.grad`) and in the fused kernel (``csrc/lif_core.h``, ``surrogate_grad``),
which receives :meth:`Surrogate.kernel_args`: the kind's enum code and two numbers, computed here
once in double precision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import torch


@dataclass(frozen=True)
class SurrogateKind:
    """One registered surrogate: its name, its code in ``csrc/lif_core.h`` and its parameters' defaults."""

    name: str
    code: int  # enum class SurrogateKind in csrc/lif_core.h
    defaults: tuple[tuple[str, float], ...]
    formula: str
    reference: str

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.defaults)


SUPERSPIKE = "superspike"
KINDS: dict[str, SurrogateKind] = {kind.name: kind for kind in (
    SurrogateKind(SUPERSPIKE, 0, (("steepness", 10.0),), "1 / (steepness |u| + 1)^2",
                  "SuperSpike, Zenke & Ganguli 2018"),
    SurrogateKind("arctan", 1, (("alpha", 2.0),), "(alpha/2) / (1 + (pi alpha u / 2)^2)",
                  "Fang et al. 2021"),
    SurrogateKind("triangle", 2, (("height", 1.0), ("width", 0.2)), "height max(0, 1 - |u| / width)",
                  "Esser et al. 2016; Bellec et al. 2018"),
    SurrogateKind("slayer", 3, (("scale_rho", 0.1), ("tau_rho", 0.1), ("theta", 1.0)),
                  "scale_rho / (tau_rho theta) exp(-|u| / (tau_rho theta))",
                  "SLAYER, Shrestha & Orchard, NeurIPS 2018"),
    SurrogateKind("superspike_truncated", 4, (("steepness", 10.0), ("band", 0.5)),
                  "1 / (steepness |u| + 1)^2 if |u| < band else 0",
                  "Perez-Nieves & Goodman, NeurIPS 2021 (SuperSpike truncated)"),
)}
# The kinds that are exactly 0 for |u| >= their band, and the parameter that is the band.
BAND_PARAMETER = {"triangle": "width", "superspike_truncated": "band"}
DEFAULT_STEEPNESS = 10.0


@dataclass(frozen=True)
class Surrogate:
    """A surrogate kind with all its parameters (hashable, so that it can key caches and travel in autograd)."""

    kind: str = SUPERSPIKE
    params: tuple[tuple[str, float], ...] = (("steepness", DEFAULT_STEEPNESS),)

    @classmethod
    def of(cls, kind: str = SUPERSPIKE, **params: float) -> Surrogate:
        """``kind`` with ``params``, the others at their defaults; ``ValueError`` for an unknown kind or
        parameter, or a value that is not a finite number > 0 (recipes are checked before, with the key named)."""
        if kind not in KINDS:
            raise ValueError(f"unknown surrogate kind {kind!r}; known: {', '.join(KINDS)}")
        spec = KINDS[kind]
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise ValueError(f"surrogate {kind!r} has no parameter {unknown[0]!r}; it has {', '.join(spec.params)}")
        values = []
        for name, default in spec.defaults:
            value = params.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"surrogate {kind!r}: {name} = {value!r} must be a finite number > 0")
            values.append((name, float(value)))
        surrogate = cls(kind, tuple(values))
        _, p0, p1 = surrogate.kernel_args()
        if not all(math.isfinite(v) and v > 0 for v in ((p0,) if kind == SUPERSPIKE else (p0, p1))):
            raise ValueError(f"surrogate {kind!r} with {dict(values)}: its peak or width over- or underflows")
        return surrogate

    @classmethod
    def superspike(cls, steepness: float = DEFAULT_STEEPNESS) -> Surrogate:
        """SuperSpike with ``steepness`` taken as given (the meaning of ``surrogate_steepness``)."""
        return cls(SUPERSPIKE, (("steepness", float(steepness)),))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Surrogate:
        """``{"kind": ..., <params>}`` (a recipe's ``training.surrogate``, a model file's) → Surrogate."""
        params = {k: v for k, v in data.items() if k != "kind"}
        return cls.of(str(data.get("kind", SUPERSPIKE)), **params)

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., <every parameter>}``: what model files and deployments record."""
        return {"kind": self.kind, **dict(self.params)}

    def __getitem__(self, name: str) -> float:
        return dict(self.params)[name]

    def kernel_args(self) -> tuple[int, float, float]:
        """``(code, p0, p1)`` for ``csrc/lif_core.h``'s ``Surrogate``; the twin computes with the same numbers.

        superspike (steepness, 0); arctan (α/2, πα/2); triangle (height, width);
        slayer (ρ/(τ_ρ ϑ), τ_ρ ϑ); superspike_truncated (steepness, band).
        """
        p = dict(self.params)
        code = KINDS[self.kind].code
        if self.kind == SUPERSPIKE:
            return code, p["steepness"], 0.0
        if self.kind == "superspike_truncated":
            return code, p["steepness"], p["band"]
        if self.kind == "arctan":
            return code, p["alpha"] / 2.0, math.pi * p["alpha"] / 2.0
        if self.kind == "triangle":
            return code, p["height"], p["width"]
        width = p["tau_rho"] * p["theta"]
        return code, p["scale_rho"] / width if width > 0 else math.inf, width

    @property
    def band(self) -> float:
        r"""The half-width :math:`B` outside which :math:`\sigma'(u)` is exactly 0 (:math:`|u| \ge B`), or
        ``inf`` for a kind with unbounded support (then no sparse backward)."""
        name = BAND_PARAMETER.get(self.kind)
        return math.inf if name is None else self[name]

    @property
    def sparse(self) -> bool:
        """Whether this surrogate is 0 outside a band, so that the sparse backward applies."""
        return math.isfinite(self.band)

    def active(self, u: torch.Tensor) -> torch.Tensor:
        r"""Where :math:`\sigma'(u)` may be non-zero, :math:`|u| <` :attr:`band` (``csrc/lif_core.h``'s
        ``sparse_active``): the neurons the sparse backward computes :math:`\partial L/\partial z` for."""
        return u.abs() < self.band

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        r"""The surrogate :math:`\sigma'(u)` itself."""
        return self.grad(torch.ones_like(u), u)

    def grad(self, grad_z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        r""":math:`g_z \sigma'(u)`, in the operation order of ``surrogate_grad`` in ``csrc/lif_core.h``."""
        _, p0, p1 = self.kernel_args()
        if self.kind == SUPERSPIKE:
            return grad_z / (p0 * u.abs() + 1.0) ** 2
        if self.kind == "arctan":
            return grad_z * (p0 / (1.0 + (p1 * u) ** 2))
        if self.kind == "triangle":
            return grad_z * (p0 * (1.0 - u.abs() / p1).clamp_min(0.0))
        if self.kind == "superspike_truncated":  # a select: 0 outside the band even for a non-finite grad_z
            au = u.abs()
            return torch.where(au < p1, grad_z / (p0 * au + 1.0) ** 2, torch.zeros_like(grad_z))
        return grad_z * (p0 * torch.exp(-u.abs() / p1))

    def describe(self) -> str:
        """``arctan(alpha=2)``: for messages and tables."""
        return f"{self.kind}(" + ", ".join(f"{k}={v:g}" for k, v in self.params) + ")"


def resolve(surrogate: Optional[Surrogate], steepness: float = DEFAULT_STEEPNESS) -> Surrogate:
    """``surrogate``, or SuperSpike with ``steepness`` (the functions' older ``surrogate_steepness`` argument)."""
    return surrogate if surrogate is not None else Surrogate.superspike(steepness)


def surrogate_of(training: Mapping[str, Any]) -> Surrogate:
    """The surrogate of a model's training settings: ``surrogate`` if recorded, else SuperSpike with
    ``surrogate_steepness`` (model files written before the registry), else the default."""
    if training.get("surrogate") is not None:
        return Surrogate.from_dict(training["surrogate"])
    return Surrogate.superspike(training.get("surrogate_steepness", DEFAULT_STEEPNESS))


class SurrogateSpike(torch.autograd.Function):
    """Heaviside forward, the surrogate's derivative backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor):
        (u,) = ctx.saved_tensors
        return ctx.surrogate.grad(grad_z, u), None


class SuperSpike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid derivative backward (kept for callers of the pre-registry API)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, steepness: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.surrogate = Surrogate.superspike(steepness)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor):
        (u,) = ctx.saved_tensors
        return ctx.surrogate.grad(grad_z, u), None


def superspike_derivative(u: torch.Tensor, steepness: float) -> torch.Tensor:
    """SuperSpike's derivative itself (kept for callers of the pre-registry API)."""
    return Surrogate.superspike(steepness).derivative(u)


def spike(u: torch.Tensor, steepness: float = DEFAULT_STEEPNESS,
          surrogate: Optional[Surrogate] = None) -> torch.Tensor:
    """Binary spike of ``u = v - v_th``; backward: ``surrogate``, or SuperSpike with ``steepness``."""
    return SurrogateSpike.apply(u, resolve(surrogate, steepness))


__all__ = ["BAND_PARAMETER", "DEFAULT_STEEPNESS", "KINDS", "SUPERSPIKE", "SuperSpike", "Surrogate", "SurrogateKind",
           "SurrogateSpike", "resolve", "spike", "superspike_derivative", "surrogate_of"]
