"""Chooses the implementation of the LIF time loop: the fused kernel when built, else the twin.

``lif_sequence`` has the twin's signature (:func:`neurodeploy.core.lif.lif_sequence`). It runs
:func:`neurodeploy.core.fused.fused_lif_sequence` unless ``NEURODEPLOY_KERNEL=twin``, the
extension failed to build (one warning, then the twin), or the call is outside what the kernel
covers: neuron parameters that require grad (the kernel treats them as constants), a dtype other
than float32/float64, or a device it was not built for. ``NEURODEPLOY_KERNEL=fused`` turns a
build failure into an error. :func:`neurodeploy.core.fused.kernel_status` says which path runs.
"""

from __future__ import annotations

from typing import Optional

import torch

from .fused import fused_lif_sequence, kernel_status, use_fused
from .lif import LIFParameters, lif_sequence as twin_lif_sequence
from .surrogate import Surrogate


def lif_sequence(x: torch.Tensor, p: LIFParameters, dt_s: float, *,
                 lateral: Optional[torch.Tensor] = None, surrogate_steepness: float = 10.0,
                 detach_reset: bool = False,
                 surrogate: Optional[Surrogate] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF population over time (``x`` ``[T, B, N]`` → spikes, membrane) on the chosen path.

    ``surrogate``: the spike's surrogate gradient (:mod:`neurodeploy.core.surrogate`; every kind runs on
    both paths); ``None``: SuperSpike with ``surrogate_steepness``.
    """
    run = fused_lif_sequence if use_fused(x, p) else twin_lif_sequence
    return run(x, p, dt_s, lateral=lateral, surrogate_steepness=surrogate_steepness,
               detach_reset=detach_reset, surrogate=surrogate)


__all__ = ["kernel_status", "lif_sequence", "twin_lif_sequence"]
