r"""Current-based leaky integrate-and-fire neuron with exponential synapses.

Continuous dynamics (BSS-2's LIF mode, ../shared/reference/bss2.md §1.1):

.. math::
    \tau_{syn}\,\dot I = -I + \textstyle\sum_j w_j\,\tau_{syn} \sum_k \delta(t - t_j^k), \qquad
    \tau_{mem}\,\dot v = -(v - v_{leak}) + I

Discretised with the exact exponential decay of each step :math:`\Delta t`
(:math:`\alpha = e^{-\Delta t/\tau_{syn}}`, :math:`\beta = e^{-\Delta t/\tau_{mem}}`). The
update order of one step :math:`k`, the same everywhere in neurodeploy (model, in-the-loop
training via :func:`lif_step`'s injection, fused kernel, mock):

1. synapse: :math:`I_k = \alpha I_{k-1} + x_k` (``x_k``: weighted input events of step k, plus
   the lateral term :math:`L z_{k-1}` when intra-layer feedback is on);
2. membrane: :math:`v_k = v_{leak} + \beta (v_{k-1} - v_{leak}) + (1-\beta) I_k`, or
   :math:`v_k = v_{reset}` while the refractory counter is running;
3. spike: :math:`z_k = \Theta(v_k - v_{th})`, surrogate gradient in backward (``surrogate``, a
   :class:`~neurodeploy.core.surrogate.Surrogate`; ``None``: SuperSpike with ``surrogate_steepness``);
4. reset: :math:`v_k \leftarrow v_k - z_k (v_k - v_{reset})` (``detach_reset`` stops the
   gradient through :math:`z_k` here, seed 004_5fb35622c679aa12.txt), and the refractory
   counter is set to :math:`n_{ref} = \mathrm{round}(t_{ref}/\Delta t)` steps.

Time is iterated with ``unbind`` (indexing ``x[t]`` makes the backward pass quadratic in T).
Parameters may be Python floats or per-neuron tensors of shape ``[N]`` (the mock chip passes each
circuit's own values).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch

from .inject import inject
from .surrogate import Surrogate, spike

Scalar = Union[float, torch.Tensor]


class LIFParameters(NamedTuple):
    """Physical neuron parameters; potentials in the model's voltage unit, times in seconds."""

    tau_mem_s: Scalar = 10e-3
    tau_syn_s: Scalar = 5e-3
    v_leak: Scalar = 0.0
    v_th: Scalar = 1.0
    v_reset: Scalar = 0.0
    t_ref_s: Scalar = 0.0


class LIFState(NamedTuple):
    """State of a population: synaptic current, membrane, refractory steps left, last spikes."""

    i_syn: torch.Tensor
    v: torch.Tensor
    refractory_steps: torch.Tensor
    z: torch.Tensor


class LIFCoefficients(NamedTuple):
    """Per-neuron discrete-time coefficients, shape ``[N]``: what a kernel consumes."""

    alpha: torch.Tensor
    beta: torch.Tensor
    v_leak: torch.Tensor
    v_th: torch.Tensor
    v_reset: torch.Tensor
    n_ref: torch.Tensor  # int32 steps


def _as_vector(value: Scalar, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype, device=device)
    return t.expand(n).contiguous() if t.dim() == 0 else t.to(dtype=dtype, device=device)


def lif_coefficients(p: LIFParameters, dt_s: float, n: int, dtype: torch.dtype = torch.float32,
                     device: Optional[torch.device] = None) -> LIFCoefficients:
    """Per-neuron decay factors and potentials for a step of ``dt_s`` seconds."""
    device = device or torch.device("cpu")
    vec = lambda value: _as_vector(value, n, dtype, device)  # noqa: E731
    tau_mem, tau_syn, t_ref = vec(p.tau_mem_s), vec(p.tau_syn_s), vec(p.t_ref_s)
    return LIFCoefficients(
        alpha=torch.exp(-dt_s / tau_syn), beta=torch.exp(-dt_s / tau_mem),
        v_leak=vec(p.v_leak), v_th=vec(p.v_th), v_reset=vec(p.v_reset),
        n_ref=torch.round(t_ref / dt_s).to(torch.int32))


def initial_state(batch: int, c: LIFCoefficients) -> LIFState:
    """Neurons at rest: no current, membrane at leak, not refractory, no spikes."""
    shape = (batch, c.v_leak.numel())
    zeros = torch.zeros(shape, dtype=c.v_leak.dtype, device=c.v_leak.device)
    return LIFState(i_syn=zeros, v=c.v_leak.expand(shape).clone(),
                    refractory_steps=torch.zeros(shape, dtype=torch.int32, device=zeros.device),
                    z=zeros)


def lif_step(x: torch.Tensor, state: LIFState, c: LIFCoefficients, *,
             lateral: Optional[torch.Tensor] = None, surrogate_steepness: float = 10.0,
             detach_reset: bool = False, v_measured: Optional[torch.Tensor] = None,
             z_measured: Optional[torch.Tensor] = None, surrogate: Optional[Surrogate] = None) -> LIFState:
    """One time step (update order in the module docstring); ``x`` is ``[B, N]``.

    ``v_measured`` / ``z_measured`` (``[B, N]``, model units; in-the-loop training) replace the
    step's membrane after step 2 and its spikes after step 3 by straight-through injection
    (:func:`neurodeploy.core.inject.inject`): the forward value is the measurement, the gradient
    goes to the model's value, ``model + (measured - model).detach()``. With a measured membrane
    the reset of step 4 is skipped (the measured trace already contains it); the refractory
    counter follows the (injected) spikes. Both None: the model's own step, unchanged.
    """
    if lateral is not None:
        x = x + state.z @ lateral.t()
    i_syn = c.alpha * state.i_syn + x
    v_free = c.v_leak + c.beta * (state.v - c.v_leak) + (1.0 - c.beta) * i_syn
    refractory = state.refractory_steps > 0
    v = inject(torch.where(refractory, c.v_reset, v_free), v_measured)
    z = inject(spike(v - c.v_th, surrogate_steepness, surrogate), z_measured)
    if v_measured is None:
        z_reset = z.detach() if detach_reset else z
        v = v - z_reset * (v - c.v_reset)
    steps = torch.where(z > 0, c.n_ref, (state.refractory_steps - 1).clamp_min(0))
    return LIFState(i_syn=i_syn, v=v, refractory_steps=steps, z=z)


def lif_sequence(x: torch.Tensor, p: LIFParameters, dt_s: float, *,
                 lateral: Optional[torch.Tensor] = None, surrogate_steepness: float = 10.0,
                 detach_reset: bool = False,
                 surrogate: Optional[Surrogate] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF population over time: ``x`` ``[T, B, N]`` → spikes and membrane, each ``[T, B, N]``.

    ``lateral`` (``[N, N]``, row = target) adds the layer's own spikes of the previous step
    to its input: intra-layer feedback (seed 000_611cab4eccd6835b.txt).
    """
    c = lif_coefficients(p, dt_s, x.shape[-1], x.dtype, x.device)
    state = initial_state(x.shape[1], c)
    spikes, membrane = [], []
    for x_k in x.unbind(0):
        state = lif_step(x_k, state, c, lateral=lateral, surrogate_steepness=surrogate_steepness,
                         detach_reset=detach_reset, surrogate=surrogate)
        spikes.append(state.z)
        membrane.append(state.v)
    return torch.stack(spikes), torch.stack(membrane)


def li_sequence(x: torch.Tensor, p: LIFParameters, dt_s: float) -> torch.Tensor:
    """Non-spiking leaky integrator (readout): the LIF equations without threshold → ``v`` ``[T, B, N]``."""
    n = x.shape[-1]
    c = lif_coefficients(p, dt_s, n, x.dtype, x.device)
    i_syn = torch.zeros_like(x[0])
    v = c.v_leak.expand_as(i_syn)
    membrane = []
    for x_k in x.unbind(0):
        i_syn = c.alpha * i_syn + x_k
        v = c.v_leak + c.beta * (v - c.v_leak) + (1.0 - c.beta) * i_syn
        membrane.append(v)
    return torch.stack(membrane)
