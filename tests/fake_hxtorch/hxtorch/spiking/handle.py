"""hxtorch spiking/handle.py (fake): handles are dataclasses of optional tensors, fields sorted by name.

hxtorch's ``Handle`` factory builds them on the fly; the three types the backend meets are spelled out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import torch


class _Clone:
    def clone(self, other) -> None:
        """``Handle.clone``: overwrite this handle's contents with ``other``'s (same fields)."""
        assert [f.name for f in fields(self)] == [f.name for f in fields(other)]
        for f in fields(other):
            setattr(self, f.name, getattr(other, f.name))


@dataclass
class LIFObservables(_Clone):
    current: Optional[torch.Tensor] = None
    membrane_cadc: Optional[torch.Tensor] = None
    membrane_madc: Optional[torch.Tensor] = None
    spikes: Optional[torch.Tensor] = None


@dataclass
class LIObservables(_Clone):
    current: Optional[torch.Tensor] = None
    membrane_cadc: Optional[torch.Tensor] = None
    membrane_madc: Optional[torch.Tensor] = None


@dataclass
class SynapseHandle(_Clone):
    graded_spikes: Optional[torch.Tensor] = None


@dataclass
class AnalogObservable:
    """observables.py ``AnalogObservable``."""

    cadc: Optional[torch.Tensor] = None
    madc: Optional[torch.Tensor] = None


@dataclass
class NeuronHardwareData:
    """What ``AELIF.post_process`` returns: ``Handle(voltage=AnalogObservable, adaptation=..., spikes=...)``."""

    voltage: AnalogObservable
    adaptation: AnalogObservable
    spikes: Optional[torch.Tensor] = None
