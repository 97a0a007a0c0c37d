"""``mock:ideal``: a BSS-2 chip as an ideal one would behave, in hardware units and hardware time.

It consumes exactly the configuration a chip gets (integer weights, labels, row modes, routes,
per-circuit analog settings) and nothing else: connectivity is re-derived from the synapse arrays
(:mod:`.connectivity`), never read from the model. Time runs 1000× faster (hardware seconds);
input events are placed on the 8 ns FPGA clock grid and binned to the hardware step; every
projection adds one step of routing latency; potentials are CADC LSB. Membranes of all neurons are
sampled every step (an ideal CADC). Fixed-pattern mismatch, noise, ADC quantisation and calibration
slot in as transformations of :class:`ChipState` (issue 4) without changing this flow.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ...core.dispatch import lif_sequence
from ...core.lif import LIFParameters
from ...data.encoding import n_steps
from ...deployment import Deployment
from ...models.network import delay_one_step
from ..base import Observations
from .connectivity import membership, route_currents, source_matrix


class ChipState(NamedTuple):
    """A configured chip: per-neuron physical parameters and effective connectivity."""

    params: LIFParameters  # per logical neuron, hardware seconds and CADC
    input_matrix: torch.Tensor  # [channels, neurons]
    recurrent_matrix: torch.Tensor  # [neurons, neurons], row = source
    dt_s: float  # hardware step
    steps: int


def configure(deployment: Deployment) -> ChipState:
    """Load a deployment into the emulated chip."""
    a, meta = deployment.arrays, deployment.meta
    neuron_circuits = a["neuron_circuits"]
    n_circuits = len(a["circuit_enabled"])
    member = membership(neuron_circuits, n_circuits)
    gain = a["circuit_synaptic_gain_cadc_per_lsb"] * a["circuit_enabled"]
    matrices = []
    for routes, n_sources in ((a["input_routes"], int(meta["graph"]["populations"][0]["size"])),
                              (a["neuron_routes"], len(neuron_circuits))):
        currents = route_currents(routes, a["synapse_weight"], a["synapse_label"], a["row_mode"])
        matrices.append(torch.as_tensor(source_matrix(routes, n_sources, currents, gain, member), dtype=torch.float32))
    first = neuron_circuits[:, 0]  # a merged neuron's first circuit holds its leak and threshold (bss2.md §1.2)
    value = lambda name: torch.as_tensor(a[f"circuit_{name}"][first], dtype=torch.float32)  # noqa: E731
    params = LIFParameters(tau_mem_s=value("tau_mem_s"), tau_syn_s=value("tau_syn_s"), v_leak=value("v_leak_cadc"),
                           v_th=value("v_th_cadc"), v_reset=value("v_reset_cadc"), t_ref_s=value("t_ref_s"))
    dt_hw = meta["dt_s"] / meta["speedup"]
    return ChipState(params, matrices[0], matrices[1], dt_hw, n_steps(meta["encoding"], meta["dt_s"]))


def bin_on_clock(times_model_s: np.ndarray, speedup: float, clock_s: float, dt_hw_s: float, steps: int) -> torch.Tensor:
    """Model-time spike times → FPGA clock cycles (8 ns) → dense ``[T, B, channels]`` on the hardware step."""
    cycles = np.round(times_model_s / speedup / clock_s)
    step = np.round(cycles * clock_s / dt_hw_s)
    spikes = torch.zeros(steps, *times_model_s.shape)
    b, c = np.nonzero(np.isfinite(step) & (step >= 0) & (step < steps))
    spikes[torch.as_tensor(step[b, c], dtype=torch.long), torch.as_tensor(b), torch.as_tensor(c)] = 1.0
    return spikes


class MockChip:
    """The emulator behind ``--backend mock:ideal``."""

    def __init__(self, chip: str = "ideal") -> None:
        self.chip = chip
        self.name = f"mock:{chip}"
        self._configured: tuple[int, ChipState] | None = None

    def _state(self, deployment: Deployment) -> ChipState:
        # Reconfiguring costs the same as on a chip: only when the deployment changes.
        if self._configured is None or self._configured[0] != id(deployment):
            self._configured = (id(deployment), configure(deployment))
        return self._configured[1]

    def run(self, deployment: Deployment, input_times_s: np.ndarray) -> Observations:
        state = self._state(deployment)
        meta = deployment.meta
        events = bin_on_clock(input_times_s, meta["speedup"], meta["clock_period_s"], state.dt_s, state.steps)
        with torch.no_grad():
            x = delay_one_step(events) @ state.input_matrix
            spikes, membrane = lif_sequence(x, state.params, state.dt_s, lateral=state.recurrent_matrix.t())
        routes_per_neuron = np.bincount(deployment["neuron_routes"][:, 0], minlength=spikes.shape[-1])
        internal = float((spikes.sum(dim=(0, 1)) * torch.as_tensor(routes_per_neuron, dtype=torch.float32)).sum())
        return Observations(spikes=spikes, membrane=membrane, recorded=np.arange(spikes.shape[-1]),
                            baseline=torch.as_tensor(state.params.v_leak), time_step_s=state.dt_s,
                            counters={"events_in": int(events.sum()), "events_internal": int(internal),
                                      "events_dropped": 0})
