"""Event transport limits: a PADI bus takes one event per clock cycle, the rest are dropped (bss2.md §1.4).

On the chip a congested crossbar drops events silently and counts them; the mock does the same.
Which of the competing events is lost is random (a fixed random priority per event, so that
re-evaluating the same traffic drops the same events).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...targets.bss2.bus_load import bus_capacity, bus_of_routes

__all__ = ["bus_capacity", "bus_of_routes", "deliver"]


def deliver(route_events: torch.Tensor, bus: np.ndarray, capacity: int,
            priority: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Keep at most ``capacity`` events per bus and step: ``route_events`` ``[T, B, R]`` → (delivered, dropped).

    ``priority()`` gives each event's random priority ``[T, B, R]``; it is only asked for when a
    bus overflows.
    """
    delivered = route_events
    dropped = 0
    buses, which = np.unique(bus, return_inverse=True)
    # Events per bus and step, all buses in one product: usually no bus is full, and then nothing
    # below would change (a spike train fed as many channels has many routes per bus but one event).
    per_bus = torch.zeros(len(bus), len(buses), dtype=route_events.dtype)
    per_bus[torch.arange(len(bus)), torch.as_tensor(which)] = 1
    if float((route_events.reshape(-1, len(bus)) @ per_bus).max()) <= capacity:
        return delivered, dropped
    for b in buses:
        columns = torch.as_tensor(np.flatnonzero(bus == b))
        if len(columns) <= capacity:
            continue  # this bus cannot overflow
        events = route_events[..., columns]
        if float(events.sum(-1).max()) <= capacity:
            continue
        priority_all = priority()
        # Rank the events present by priority; the first `capacity` get through.
        score = torch.where(events > 0, priority_all[..., columns], torch.full_like(events, -1.0))
        rank = score.argsort(dim=-1, descending=True).argsort(dim=-1)
        keep = (events > 0) & (rank < capacity)
        dropped += int((events > 0).sum() - keep.sum())
        delivered = delivered.clone() if delivered is route_events else delivered
        delivered[..., columns] = keep.to(route_events.dtype)
    return delivered, dropped
