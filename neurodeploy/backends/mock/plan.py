r"""What a mock chip precomputes once per deployment, so that each batch only does per-event work.

Everything here is a pure function of the configured chip (:class:`~.chip.ChipState`) and the
mock's effects, so using it changes no output: it only moves work out of the per-batch path.

- **Bus overflow is decided by the routes alone.** A bus that carries at most ``capacity`` routes
  can never take more than ``capacity`` events in a step (one event per route and step), so
  :func:`~.events.deliver` would return the events unchanged and draw no random priority. When no
  bus of a route set can overflow, the mock skips the per-event check for that set entirely.
- **Noise scale.** The per-neuron input noise :math:`\sigma_x` (:func:`~.readout.input_noise_std`)
  depends only on :math:`\alpha = e^{-\Delta t/\tau_{syn}}` and :math:`\beta = e^{-\Delta t/\tau_{mem}}`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch

from .events import bus_capacity


class RunPlan(NamedTuple):
    """Per-deployment constants of the mock's run path."""

    input_source: torch.Tensor  # [R_in] long: source channel of each input route
    input_may_drop: bool  # some input bus has more routes than it carries per step
    neuron_may_drop: bool  # some on-chip bus has more routes than it carries per step
    noise_std: Optional[torch.Tensor]  # [neurons] input noise sigma_x (CADC per step), None: no noise
    routes_per_neuron: torch.Tensor  # [neurons] float32: events one spike of each neuron sends


def may_overflow(bus: np.ndarray, capacity: int) -> bool:
    """Whether some bus has more routes than ``capacity`` (else :func:`~.events.deliver` never drops)."""
    return len(bus) > 0 and int(np.bincount(bus).max()) > capacity


def make_plan(state, spec, event_drops: bool, noise_std: Optional[torch.Tensor]) -> RunPlan:
    """The plan of a configured chip ``state``; ``spec`` None (ideal chip) or ``event_drops`` False: nothing drops."""
    drops = event_drops and spec is not None
    capacity = bus_capacity(state.dt_s, spec) if drops else 0
    n = len(state.baseline)
    per_neuron = np.bincount(state.neuron_routes.source, minlength=n)
    return RunPlan(input_source=torch.as_tensor(state.input_routes.source),
                   input_may_drop=drops and may_overflow(state.input_routes.bus, capacity),
                   neuron_may_drop=drops and may_overflow(state.neuron_routes.bus, capacity),
                   noise_std=noise_std,
                   routes_per_neuron=torch.as_tensor(per_neuron, dtype=torch.float32))


class Workspace:
    """Reusable scratch tensors of one mock chip, so that a batch does not allocate its temporaries anew.

    A fresh ``[T, B, N]`` float tensor of a few MB is mostly page faults on first touch; the
    input current, its noise and the CADC interpolation temporaries never leave a run, so they
    can live in buffers kept from one batch to the next (same shape: same buffer). Nothing a run
    returns is a workspace buffer.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """An uninitialised tensor ``shape`` that stays ``name``'s until the next call with that name."""
        shape = tuple(int(s) for s in shape)
        kept = self._buffers.get(name)
        if kept is None or tuple(kept.shape) != shape or kept.dtype != dtype:
            kept = self._buffers[name] = torch.empty(shape, dtype=dtype)
        return kept
