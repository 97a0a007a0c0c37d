r"""The ``nir-euler`` discretisation: NIR's neuron equations integrated with forward Euler.

NIR's equations for a neuron whose input is :math:`y` (a spike counts 1 for the step it is in):

.. math::
    \text{CubaLIF:}\quad \tau_{syn}\dot I = -I + w_{in} y, \qquad \tau_{mem}\dot v = (v_{leak} - v) + r I;
    \qquad \text{LIF:}\quad \tau\dot v = (v_{leak} - v) + r y; \qquad \text{IF:}\quad \dot v = r y

(CubaLI, LI and I: the same without a threshold). Forward Euler at :math:`\Delta t` gives, with
:math:`a = 1 - \Delta t/\tau_{syn}` and :math:`b = 1 - \Delta t/\tau_{mem}`,
:math:`I_k = a I_{k-1} + \tfrac{\Delta t}{\tau_{syn}} w_{in} y_k` and
:math:`v_k = v_{leak} + b (v_{k-1} - v_{leak}) + (1 - b)\, r I_k` (LIF: :math:`I_k = y_k`; IF:
:math:`v_k = v_{k-1} + \Delta t\, r\, y_k`). Import (:mod:`neurodeploy.interchange.nir_neurons`)
folds each neuron's input gain (:math:`g = r\, w_{in} \Delta t/\tau_{syn}`, :math:`r`, or
:math:`\Delta t\, r`) into its weights and bias, and stores each time constant as the exact
exponential one with the same decay per step, :math:`e^{-\Delta t/\tau} = 1 - \Delta t/\tau_{Euler}`.
One step :math:`k` is then, with :math:`x_k` the folded weighted input of the *same* step:

1. synapse: :math:`I_k = a I_{k-1} + x_k + i_{bias} + L z_{k-1}`, :math:`a = e^{-\Delta t/\tau_{syn}}`
   (``cuba``), :math:`a = 0` (``leaky``, ``integrator``);
2. membrane: :math:`v_k = v_{leak} + b (v_{k-1} - v_{leak}) + m I_k`, :math:`b = e^{-\Delta t/\tau_{mem}}`,
   :math:`m = 1 - b`; for an ``integrator`` :math:`b = m = 1`;
3. spike: :math:`z_k = \Theta(v_k - v_{th})` (strictly above, as NIR; surrogate gradient backward);
4. reset: :math:`v_k \leftarrow v_k - z_k (v_k - v_{reset})`, or :math:`v_k - z_k (v_{th} - v_{reset})`
   for ``subtract``.

No transmission latency (delays only where the graph has NIR Delay nodes), no refractory period,
start at :math:`I = 0`, :math:`v = v_{leak}`. This is plain PyTorch: the fused kernel
(:mod:`neurodeploy.core.fused`) implements only the native step, so ``nir-euler`` models never
use it. Coefficients are computed in float64 and then cast, and steps 2 and 4 are written as in
:func:`neurodeploy.core.lif.lif_step`, so that a native model exported to NIR and imported again
computes the same numbers bit for bit (:mod:`neurodeploy.interchange.nir_export`).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .lif import LIFParameters, Scalar
from .surrogate import Surrogate, spike


class EulerCoefficients(NamedTuple):
    """Per-neuron coefficients ``[N]`` of one population's Euler step (module docstring)."""

    a: torch.Tensor
    b: torch.Tensor
    m: torch.Tensor
    v_leak: torch.Tensor
    v_th: torch.Tensor
    v_reset: torch.Tensor
    bias: torch.Tensor
    subtract: bool


def _vector(value: Scalar | tuple[float, ...], n: int) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    return t.expand(n).clone() if t.dim() == 0 else t.clone()


def euler_coefficients(p: LIFParameters, dt_s: float, n: int, *, model: str = "cuba", reset: str = "value",
                       i_bias: Scalar | tuple[float, ...] = 0.0, dtype: torch.dtype = torch.float32,
                       device: Optional[torch.device] = None) -> EulerCoefficients:
    """Decays and potentials for a step of ``dt_s``: float64 arithmetic, then cast to ``dtype``."""
    cast = lambda t: t.to(dtype=dtype, device=device or torch.device("cpu"))  # noqa: E731
    zeros, ones = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    a = torch.exp(-dt_s / _vector(p.tau_syn_s, n)) if model == "cuba" else zeros
    b = cast(ones if model == "integrator" else torch.exp(-dt_s / _vector(p.tau_mem_s, n)))
    m = torch.ones_like(b) if model == "integrator" else 1.0 - b  # 1 - b in dtype, as lif_step computes it
    return EulerCoefficients(a=cast(a), b=b, m=m, v_leak=cast(_vector(p.v_leak, n)), v_th=cast(_vector(p.v_th, n)),
                             v_reset=cast(_vector(p.v_reset, n)), bias=cast(_vector(i_bias, n)),
                             subtract=reset == "subtract")


def euler_sequence(x: torch.Tensor, c: EulerCoefficients, *, lateral: Optional[torch.Tensor] = None,
                   spiking: bool = True, surrogate_steepness: float = 10.0,
                   detach_reset: bool = False,
                   surrogate: Optional[Surrogate] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a population over time: ``x`` ``[T, B, N]`` → spikes and membrane, each ``[T, B, N]``.

    ``lateral`` (``[N, N]``, row = target): the population's own spikes of the previous step
    (a recurrent projection). ``spiking=False``: a leaky integrator without threshold (spikes are zeros).
    """
    shape = x.shape[1:]
    i_syn = torch.zeros(shape, dtype=x.dtype, device=x.device)
    v = c.v_leak.expand(shape).clone()
    z = torch.zeros_like(i_syn)
    if bool((c.bias != 0).any()):
        x = x + c.bias
    spikes, membrane = [], []
    for x_k in x.unbind(0):
        if lateral is not None:
            x_k = x_k + z @ lateral.t()
        i_syn = c.a * i_syn + x_k
        v = c.v_leak + c.b * (v - c.v_leak) + c.m * i_syn
        if spiking:
            z = spike(v - c.v_th, surrogate_steepness, surrogate)
            z_reset = z.detach() if detach_reset else z
            v = v - z_reset * ((c.v_th - c.v_reset) if c.subtract else (v - c.v_reset))
        spikes.append(z)
        membrane.append(v)
    return torch.stack(spikes), torch.stack(membrane)
