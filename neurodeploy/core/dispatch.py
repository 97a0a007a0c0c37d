"""Chooses the implementation of the LIF time loop: the fused kernel when built, else the twin.

``lif_sequence`` has the twin's signature (:func:`neurodeploy.core.lif.lif_sequence`). It runs
:func:`neurodeploy.core.fused.fused_lif_sequence` unless ``NEURODEPLOY_KERNEL=twin``, the
extension failed to build (one warning, then the twin), or the call is outside what the kernel
covers: neuron parameters that require grad (the kernel treats them as constants), a dtype other
than float32/float64, or a device it was not built for. With a surrogate that is 0 outside a band both paths use the
sparse backward (:mod:`neurodeploy.core.sparse`). ``NEURODEPLOY_KERNEL=fused`` turns a
build failure into an error. :func:`neurodeploy.core.fused.kernel_status` says which path runs.
"""

from __future__ import annotations

from typing import Optional

import torch

from .fused import fused_lif_sequence, kernel_status, use_fused
from .lif import LIFParameters, lif_sequence as twin_lif_sequence
from .sparse import check_sparse, sparse_lif_sequence
from .surrogate import Surrogate, resolve


def lif_sequence(x: torch.Tensor, p: LIFParameters, dt_s: float, *,
                 lateral: Optional[torch.Tensor] = None, surrogate_steepness: float = 10.0,
                 detach_reset: bool = False, surrogate: Optional[Surrogate] = None,
                 sparse_backward: Optional[bool] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF population over time (``x`` ``[T, B, N]`` → spikes, membrane) on the chosen path.

    ``surrogate``: the spike's surrogate gradient (:mod:`neurodeploy.core.surrogate`; every kind runs on
    both paths); ``None``: SuperSpike with ``surrogate_steepness``. ``sparse_backward``
    (:mod:`neurodeploy.core.sparse`, exact): ``None`` uses it whenever the surrogate is 0 outside a band
    (``triangle``, ``superspike_truncated``), ``True`` insists (``ValueError`` for another surrogate),
    ``False`` keeps the dense backward. On the twin it needs constant neuron parameters; with parameters
    that require grad the twin's own autograd (dense, the same gradients) runs instead.
    """
    s = resolve(surrogate, surrogate_steepness)
    sparse = s.sparse if sparse_backward is None else bool(sparse_backward)
    if sparse:
        check_sparse(s)
    if use_fused(x, p):
        return fused_lif_sequence(x, p, dt_s, lateral=lateral, detach_reset=detach_reset, surrogate=s,
                                  sparse_backward=sparse)
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or (lateral is not None and lateral.requires_grad))
    params_grad = torch.is_grad_enabled() and any(isinstance(v, torch.Tensor) and v.requires_grad for v in p)
    if sparse and needs_grad and not params_grad:
        return sparse_lif_sequence(x, p, dt_s, lateral=lateral, detach_reset=detach_reset, surrogate=s)
    return twin_lif_sequence(x, p, dt_s, lateral=lateral, detach_reset=detach_reset, surrogate=s)


__all__ = ["kernel_status", "lif_sequence", "twin_lif_sequence"]
