r"""BSS2-BUS-LOAD: how many on-chip events a PADI bus must carry in one step (bss2.md §1.4).

Every spike of an on-chip neuron (a hidden layer feeding the next, or a layer feeding itself
through a recurrent projection) travels once per route, and each route sits on one PADI bus of
its driver's hemisphere. A bus takes one event per 8 ns clock, :math:`C = \lfloor \Delta t_{hw} / 8\,ns \rfloor`
events per hardware step; what arrives beyond that is dropped without an error (the crossbar only
counts it). The load is measured, not assumed: the mapper's software probe of the quantised
network on training samples gives each neuron's spikes per step, and

.. math:: E_{b,k} = \sum_{r \in \mathrm{routes}(b)} z_{\mathrm{src}(r),k}

is the events bus :math:`b` carries in step :math:`k`. The peak over steps, samples and buses is
reported; above :math:`C` it is a warning (the chip runs, and loses events), not a violation.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .place import Placement
from .spec import BSS2Spec


def bus_of_routes(routes: np.ndarray, spec: BSS2Spec) -> np.ndarray:
    """Global bus index ``hemisphere * buses + driver // drivers_per_bus`` of each route ``(src, h, driver, label)``."""
    g = spec["geometry"]
    return routes[:, 1] * g["buses_per_hemisphere"] + routes[:, 2] // g["drivers_per_bus"]


def bus_capacity(dt_s: float, spec: BSS2Spec) -> int:
    """Events one PADI bus carries in one step of ``dt_s`` hardware seconds."""
    cycles = int(np.floor(dt_s / spec["time"]["clock_period_s"] + 1e-9))
    return max(1, cycles * spec["readout"]["bus_events_per_clock"])


def peak_bus_load(neuron_routes: np.ndarray, spikes: dict[str, torch.Tensor], placement: Placement,
                  spec: BSS2Spec) -> Optional[tuple[int, int, int]]:
    """``(events, hemisphere, bus)`` of the busiest bus in any step, from the probe's ``spikes``
    (layer → ``[T, B, N]``); None without on-chip routes or spikes."""
    if len(neuron_routes) == 0 or not spikes:
        return None
    g = spec["geometry"]
    n_neurons = len(placement.neuron_layer)
    # z of every logical neuron, [T*B, neurons]; layers without probe spikes (the readout) stay zero
    first = next(iter(spikes.values()))
    z = torch.zeros(first.shape[0] * first.shape[1], n_neurons)
    for name, layer_spikes in spikes.items():
        if name in placement.layer_start:
            start = placement.layer_start[name]
            z[:, start:start + layer_spikes.shape[-1]] = layer_spikes.reshape(-1, layer_spikes.shape[-1])
    bus = bus_of_routes(neuron_routes, spec)
    routes_per_bus = np.zeros((n_neurons, g["hemispheres"] * g["buses_per_hemisphere"]), np.float32)
    np.add.at(routes_per_bus, (neuron_routes[:, 0], bus), 1.0)
    load = z @ torch.as_tensor(routes_per_bus)  # [T*B, buses]
    events, where = load.max(dim=0)[0].max(dim=0)
    hemisphere, index = divmod(int(where), g["buses_per_hemisphere"])
    return int(events), hemisphere, index


def bus_load_warning(peak: Optional[tuple[int, int, int]], capacity: int) -> Optional[str]:
    """The BSS2-BUS-LOAD warning when the peak exceeds the capacity, else None."""
    if peak is None or peak[0] <= capacity:
        return None
    events, hemisphere, bus = peak
    return (f"BSS2-BUS-LOAD: up to {events} on-chip events in one step on PADI bus {bus} of hemisphere {hemisphere}, "
            f"which carries {capacity}: the chip drops the rest (measured on training samples); lower the layer's "
            "firing rate (training.rate_target) or use a longer dt_s")
