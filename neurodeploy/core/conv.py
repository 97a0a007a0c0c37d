r"""Convolutional and pooled projections as structured dense matrices.

A projection with a :class:`Geometry` sees its pre population as an image :math:`z \in \{0,1\}^{C \times H \times W}`
(channel-major, as a flattened ``[C, H, W]``). Its input to the post population is

.. math:: x = \mathrm{conv}_K\big(\mathrm{avgpool}_p(z)\big) \quad\text{or, with ``channels`` 0,}\quad
          x = W\,\mathrm{vec}\big(\mathrm{avgpool}_p(z)\big),

a linear map of :math:`z`, so it is one dense matrix :math:`D(K)` of shape ``[post, pre]``:
:func:`dense` builds it by applying the map to every basis vector (differentiable in the kernel, so
training shares weights), and :func:`connected` says which of its entries the structure allows.
Everything downstream (the simulation, the mapping, the mock, in-the-loop training) sees the dense
matrix; on BSS-2 each of its non-zero entries is its own 6-bit synapse (a kernel unrolled), and the
entries the structure leaves out get no synapse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F


class Geometry(NamedTuple):
    """``in_shape`` of the pre population; ``pool`` (average pooling size, 1: none) applied first; then a
    convolution with ``channels`` output channels (0: a dense matrix on the pooled image)."""

    in_shape: tuple[int, int, int]  # channels, height, width of the pre population
    pool: int = 1
    channels: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return c, h // self.pool, w // self.pool

    @property
    def out_shape(self) -> tuple[int, int, int] | None:
        """``[C_out, H_out, W_out]`` of a convolution, :math:`H_{out} = \\lfloor (H + 2P - k)/s \\rfloor + 1`; None
        for a dense matrix."""
        if not self.channels:
            return None
        _, h, w = self.pooled_shape
        side = lambda n: (n + 2 * self.padding - self.kernel) // self.stride + 1  # noqa: E731
        return self.channels, side(h), side(w)

    def parameter_shape(self, post: int) -> tuple[int, ...]:
        """The trained (shared) parameter: the kernel ``[C_out, C_in, k, k]`` or a ``[post, pooled]`` matrix."""
        c, h, w = self.pooled_shape
        return (self.channels, c, self.kernel, self.kernel) if self.channels else (post, c * h * w)

    def fan_in(self) -> int:
        """Inputs of one post neuron's parameter row: ``C_in k²`` or the pooled size (its initial scale)."""
        c, h, w = self.pooled_shape
        return c * self.kernel * self.kernel if self.channels else c * h * w

    def problem(self, pre: int, post: int | None = None) -> str | None:
        """Why this geometry does not fit a ``pre`` → ``post`` projection (``post`` None: any size), or None."""
        c, h, w = self.in_shape
        if min(c, h, w, self.pool, self.stride) < 1 or self.padding < 0 or self.channels < 0:
            return f"has non-positive sizes {self.to_dict()}"
        if c * h * w != pre:
            return f"expects {c}x{h}x{w} = {c * h * w} inputs, its pre population has {pre}"
        if h % self.pool or w % self.pool:
            return f"pools {h}x{w} by {self.pool}, which does not divide it"
        out = self.out_shape
        if self.channels and (self.kernel < 1 or min(out[1:]) < 1):  # type: ignore[index]
            return f"has a {self.kernel}x{self.kernel} kernel that does not fit its {self.pooled_shape[1:]} input"
        if out is not None and post is not None and out[0] * out[1] * out[2] != post:
            size = out[0] * out[1] * out[2]
            return f"gives {out[0]}x{out[1]}x{out[2]} = {size} outputs, its post population has {post}"
        return None

    def to_dict(self) -> dict[str, Any]:
        conv = {"channels": self.channels, "kernel": self.kernel, "stride": self.stride, "padding": self.padding}
        return {"in_shape": list(self.in_shape), "pool": self.pool, **(conv if self.channels else {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Geometry:
        c, h, w = (int(v) for v in data["in_shape"])
        return cls((c, h, w), int(data.get("pool", 1)), int(data.get("channels", 0)), int(data.get("kernel", 0)),
                   int(data.get("stride", 1)), int(data.get("padding", 0)))


def dense(parameter: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """The ``[post, pre]`` matrix of the linear map (module docstring), differentiable in ``parameter``."""
    pre = geometry.in_shape[0] * geometry.in_shape[1] * geometry.in_shape[2]
    basis = torch.eye(pre, dtype=parameter.dtype, device=parameter.device).view(pre, *geometry.in_shape)
    pooled = F.avg_pool2d(basis, geometry.pool) if geometry.pool > 1 else basis
    if geometry.channels:
        out = F.conv2d(pooled, parameter, stride=geometry.stride, padding=geometry.padding)
        return out.reshape(pre, -1).t()
    return parameter @ pooled.reshape(pre, -1).t()


def input_slots(geometry: Geometry) -> torch.Tensor | None:
    r"""A slot per input pixel such that no receptive field holds two pixels of one slot, or None (a dense matrix,
    or no fewer slots than pixels).

    A receptive field spans :math:`K = k \cdot p` consecutive rows and columns of the image (kernel k after
    pooling p), so pixel :math:`(c, y, x)` takes slot :math:`c K^2 + (y \bmod K) K + (x \bmod K)`: a neuron needs
    :math:`C_{in} K^2` input slots instead of one per pixel (on BSS-2 a slot is a synapse driver, whose
    label tells its pixels apart; bss2.md §1.3).
    """
    if not geometry.channels:
        return None
    c, h, w = geometry.in_shape
    size = geometry.kernel * geometry.pool
    if c * size * size >= c * h * w:
        return None
    channel, y, x = torch.meshgrid(torch.arange(c), torch.arange(h), torch.arange(w), indexing="ij")
    return (channel * size * size + (y % size) * size + (x % size)).flatten()


def connected(geometry: Geometry, post: int) -> torch.Tensor:
    """``[post, pre]`` bool: the pairs the structure joins (a kernel or matrix of ones, unrolled)."""
    ones = torch.ones(geometry.parameter_shape(post), dtype=torch.float64)
    return dense(ones, geometry) != 0
