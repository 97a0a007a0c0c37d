r"""The straight-through injection of a measured observable (hxtorch's "Unterjubel", bss2.md §4.3).

:func:`inject` returns the measured value in the forward pass and routes the gradient to the
model's value in the backward pass:

.. math:: y = m + (x - \mathrm{sg}[x]) \quad\Rightarrow\quad y = m,\ \ \partial y/\partial x = 1

where :math:`m` is the measurement and :math:`\mathrm{sg}` stops the gradient. Applied at every
step to the membrane :math:`v_k` and the spikes :math:`z_k` (:func:`neurodeploy.core.lif.lif_step`),
the surrogate gradient is evaluated on the *chip's* trajectory (Cramer et al. 2022), not on the
one the model would have taken.
"""

from __future__ import annotations

from typing import Optional

import torch


def inject(model_value: torch.Tensor, measured: Optional[torch.Tensor]) -> torch.Tensor:
    """``measured`` forward, gradient to ``model_value`` backward; ``measured`` None: the model's value."""
    if measured is None:
        return model_value
    return model_value + (measured.to(model_value.dtype) - model_value).detach()
