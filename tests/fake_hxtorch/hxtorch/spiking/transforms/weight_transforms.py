"""hxtorch spiking/transforms/weight_transforms.py (fake)."""

import torch


def linear_saturating(weight: torch.Tensor, scale: float = 1., min_weight: float = -63.,
                      max_weight: float = 63.) -> torch.Tensor:
    """``linear_saturating``: ``clip(scale * w, min_weight, max_weight)``."""
    return torch.clamp(scale * weight, min_weight, max_weight)
