r"""hxtorch spiking/functional (fake): ``linear``, ``input_neuron``, ``Unterjubel``, ``cuba_aelif_integration``.

The CuBa step, as ``step_integration_code_factory.CuBaStepCode`` generates it for LIF/LI (no adaptation,
no exponential term), per step ``t``:

.. math::
    dv = \Delta t / c\,(i + g_L(v_{leak} - v)); \quad i \leftarrow i(1 - \Delta t/\tau_{syn}) + x_t; \quad
    v \leftarrow v + dv \;(\text{or the hardware trace}); \quad z = \Theta(v - \vartheta) \;(\text{or hw spikes});
    \quad v \leftarrow (1 - z) v + z\,v_{reset} \;(\text{only without a hardware trace});

then the refractory update (``refractory.py``): while the counter runs, :math:`v = v_{reset}`, no spike; a
spike sets the counter to :math:`t_{ref}/\Delta t`. :math:`v^0 = v_{leak}`, :math:`i^0 = 0`.
"""

from __future__ import annotations

from typing import Optional

import torch


def linear(input: torch.Tensor, weight: torch.Tensor, bias=None) -> torch.Tensor:  # noqa: A002
    """functional/linear.py ``linear``: ``torch.nn.functional.linear``."""
    return torch.nn.functional.linear(input, weight, bias)


class Unterjubel(torch.autograd.Function):
    """functional/unterjubel.py: forward returns the hardware value, backward passes the gradient to the model's."""

    @staticmethod
    def forward(ctx, model: torch.Tensor, hardware: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return hardware.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad, None


def input_neuron(input: torch.Tensor, hw_data: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: A002
    """functional/spike_source.py ``input_neuron``: identity, or the loop-back spikes when recorded."""
    return input if hw_data is None else Unterjubel.apply(input, hw_data[:input.shape[0]])


def _refractory(z, v, ref_state, spikes_hw, membrane_hw, *, reset, refractory_time, dt):
    """functional/refractory.py ``refractory_update``."""
    ref_mask = (ref_state > 0).to(v.dtype)
    v = (1 - ref_mask) * v + ref_mask * reset
    if membrane_hw is not None:
        v = Unterjubel.apply(v, membrane_hw)
    z = (1 - ref_mask) * z
    if spikes_hw is not None:
        z = Unterjubel.apply(z, spikes_hw)
    ref_state = (1 - z) * torch.relu(ref_state - ref_mask) + z * refractory_time / dt
    return z, v, ref_state


def cuba_aelif_integration(input, *, leak, reset, threshold, tau_syn, c_mem, g_l, refractory_time, dt,  # noqa: A002
                           fire: bool, refractory: bool, hw_data=None):
    """functional/aelif.py ``cuba_aelif_integration`` restricted to LIF/LI: returns
    ``(membrane, membrane_madc_hw, current, spikes)``, each ``[T, B, N]`` (madc: the raw hardware tensor)."""
    if isinstance(input, tuple):
        input = torch.stack(input).sum(0)  # noqa: A001
    T, batch, size = input.shape
    membrane_hw = spikes_hw = madc_hw = None
    if hw_data is not None:
        membrane_hw, madc_hw, spikes_hw = hw_data.voltage.cadc, hw_data.voltage.madc, hw_data.spikes
        T = min([T] + [d.shape[0] for d in (membrane_hw, spikes_hw) if d is not None])
    i = torch.zeros(batch, size)
    z = torch.zeros(batch, size)
    v = torch.empty(batch, size)
    v[:] = torch.as_tensor(leak)
    ref_state = torch.zeros(size)
    current, spikes, membrane = (torch.empty(T, batch, size) for _ in range(3))
    for t in range(T):
        dv = dt / c_mem * (i + g_l * (leak - v))
        i = i * (1 - dt / tau_syn) + input[t]
        v = Unterjubel.apply(dv + v, membrane_hw[t]) if membrane_hw is not None else v + dv
        if fire:
            spike = (v - threshold > 0).to(v.dtype)  # superspike_func forward: heaviside(v - threshold)
            z = Unterjubel.apply(spike, spikes_hw[t]) if spikes_hw is not None else spike
            if membrane_hw is None:
                v = (1 - z.detach()) * v + z.detach() * reset
        if refractory:
            z, v, ref_state = _refractory(z, v, ref_state, None if spikes_hw is None else spikes_hw[t],
                                          None if membrane_hw is None else membrane_hw[t], reset=reset,
                                          refractory_time=refractory_time, dt=dt)
        current[t], membrane[t], spikes[t] = i, v, z
    return membrane, madc_hw, current, spikes
