r"""How a backend's membrane samples map onto the model's potentials, measured on the chip.

Per logical neuron :math:`n` of layer :math:`\ell`, with :math:`m_n[t]` the sample at step
:math:`t` (CADC LSB on a chip) and :math:`v_{leak}` the model's rest:

.. math:: \hat v_n[t] = v_{leak} + a_\ell \,\bigl(m_n[t + k_\ell] - o_n\bigr)

- offset :math:`o_n`: the neuron's mean sample in a run without input events (its real rest,
  not the one the deployment asked for);
- scale :math:`a_\ell` and time shift :math:`k_\ell` (steps): least squares of the model's
  potential above rest against the shifted samples, :math:`a = \sum v m / \sum m^2`, on a probe
  batch with the deployed (quantised) weights; the shift in ``SHIFTS`` with the smallest
  residual :math:`\sum (v - a m)^2 / \sum v^2` wins. A spiking layer is compared only before
  each neuron's first spike (model or chip), where both trajectories are free integration.

hxtorch assumes these (``trace_scale``, ``trace_offset``, ``cadc_time_shift``, bss2.md §4.3);
here they are measured per chip and stored in the model file trained on it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

SHIFTS = (-2, -1, 0, 1, 2)


class LayerAlignment(NamedTuple):
    scale: float  # model units per sample unit (CADC LSB)
    time_shift_steps: int  # sample of step t + shift belongs to model step t
    residual: float  # unexplained fraction of the model's squared potential
    samples: int  # (step, run, neuron) triples the fit used


class Alignment(NamedTuple):
    offset: torch.Tensor  # [n_neurons] measured rest of each logical neuron (sample units)
    layers: dict  # layer name → LayerAlignment (layers whose membrane the backend records)

    def to_dict(self) -> dict:
        return {"offset": self.offset.clone(), "layers": {k: v._asdict() for k, v in self.layers.items()}}

    @staticmethod
    def from_dict(data: dict) -> Alignment:
        return Alignment(torch.as_tensor(data["offset"]).float(),
                         {k: LayerAlignment(**v) for k, v in data["layers"].items()})


def shifted(trace: torch.Tensor, steps: int) -> torch.Tensor:
    """``out[t] = trace[t + steps]`` along axis 0, holding the first/last sample at the edges."""
    index = (torch.arange(trace.shape[0]) + steps).clamp(0, trace.shape[0] - 1)
    return trace[index]


def fit_scale_and_shift(model_above_rest: torch.Tensor, samples_above_rest: torch.Tensor,
                        mask: torch.Tensor) -> LayerAlignment:
    """Least-squares scale and the best time shift (module docstring); all ``[T, B, N]``."""
    best = None
    v = model_above_rest.double()
    for shift in SHIFTS:
        m = shifted(samples_above_rest, shift).double()
        vm, mm = float((v * m)[mask].sum()), float((m * m)[mask].sum())
        scale = vm / mm if mm > 0 else 0.0
        residual = float(((v - scale * m) ** 2)[mask].sum()) / max(float((v * v)[mask].sum()), 1e-12)
        if best is None or residual < best.residual:
            best = LayerAlignment(scale, shift, residual, int(mask.sum()))
    if best is None:  # SHIFTS is not empty; stated for the type checker
        raise ValueError("no time shifts to try (SHIFTS is empty)")
    return best


def before_first_spike(first: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
    """``[T, B, N]`` True at the steps before the first spike of every given train."""
    fired = torch.cumsum(first, dim=0)
    for z in others:
        fired = fired + torch.cumsum(z, dim=0)
    return fired == 0


def to_model_units(samples: torch.Tensor, offset: torch.Tensor, layer: LayerAlignment, v_leak: float) -> torch.Tensor:
    """Samples ``[T, B, N]`` of a layer (``offset`` ``[N]``) → model potentials (module docstring)."""
    return v_leak + layer.scale * (shifted(samples, layer.time_shift_steps) - offset)


def recorded_columns(recorded: np.ndarray, neurons: np.ndarray) -> np.ndarray | None:
    """Columns of the membrane array holding ``neurons``, or None if any is not recorded."""
    where = {int(n): i for i, n in enumerate(recorded)}
    if not all(int(n) in where for n in neurons):
        return None
    return np.array([where[int(n)] for n in neurons], dtype=np.int64)
