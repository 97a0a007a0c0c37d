r"""Sparse surrogate backward (Perez-Nieves & Goodman, NeurIPS 2021, "Sparse spiking gradient descent"): the twin.

With a surrogate that is exactly 0 outside a band (:attr:`~neurodeploy.core.surrogate.Surrogate.band`
:math:`B`: ``triangle``, ``superspike_truncated``), a neuron is *active* at step :math:`k` when
:math:`|u_k| < B`, :math:`u_k = p_k - v_{th}` (:math:`p_k`: membrane before reset). The reverse step
(``csrc/lif_core.h``; :math:`A_I = \alpha\,g^I_{k+1}`, :math:`A_v = \beta\,g^{free}_{k+1}`)

.. math::
    g^v_k = \partial_v L_k + A_v, \quad
    g^z_k = \partial_z L_k + (L^T g^I_{k+1})\;[- g^v_k (p_k - v_{reset})], \quad
    g^{p}_k = g^v_k (1 - z_k) + g^z_k\,\sigma'(u_k), \quad
    g^I_k = A_I + (1-\beta)\,g^{free}_k

uses :math:`g^z_k` only in the product :math:`g^z_k \sigma'(u_k)`, which is 0 for an inactive neuron
whatever :math:`g^z_k` is. So:

* with feedback, the lateral term :math:`(L^T g^I_{k+1})_n = \sum_m g^I_{k+1,m} L_{mn}` is computed only
  for the active neurons :math:`n` of step :math:`k` (per step and row, the list of active neurons and a dot
  product with column :math:`n` of :math:`L` each) instead of one dense GEMM per step; the others get 0;
* the lateral weight gradient :math:`\partial L/\partial L = \sum_{k \ge 1} (g^I_k)^T z_{k-1}` is accumulated
  spike by spike: only the columns :math:`j` of neurons that spiked at :math:`k-1` (event-driven, as the
  fused kernel always did);
* without feedback the reverse step is element-wise and the adjoints run through every step (via
  :math:`v` and :math:`I`, also where :math:`\sigma' = 0`): the same arithmetic as dense; what is sparse
  there is :math:`\partial L/\partial z` itself, needed only at the active neurons (by whoever computes
  it: the next layer's :math:`W^T g^I`, outside this function).

This is exact, not an approximation: the gradients equal the dense backward of the same surrogate up to
the order of floating-point sums. The fused kernel does the same (``csrc/lif_cpu.cpp``,
``backward_lateral_sparse``); this module is its twin. Both count the active neurons:
:func:`sparse_backward_stats`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .lif import LIFParameters, lif_coefficients
from .surrogate import Surrogate, resolve


class SparseBackwardStats(NamedTuple):
    """Active (step, row, neuron) triples over all sparse backward passes since the last reset, of ``total``."""

    active: int
    total: int

    @property
    def fraction(self) -> float:
        """``active / total`` (0 before any sparse backward)."""
        return self.active / self.total if self.total else 0.0


_stats = {"active": 0, "total": 0}


def record_active(active: int, total: int) -> None:
    """Add one backward pass's counts (the fused kernel's and the twin's backward call it)."""
    _stats["active"] += int(active)
    _stats["total"] += int(total)


def sparse_backward_stats() -> SparseBackwardStats:
    """The counts of every sparse backward pass (fused or twin) since :func:`reset_sparse_backward_stats`."""
    return SparseBackwardStats(_stats["active"], _stats["total"])


def reset_sparse_backward_stats() -> None:
    """Start counting again."""
    _stats["active"] = _stats["total"] = 0


def check_sparse(surrogate: Surrogate) -> None:
    """``ValueError`` unless ``surrogate`` is 0 outside a band (the condition of the sparse backward)."""
    if not surrogate.sparse:
        raise ValueError(f"the sparse backward needs a surrogate that is 0 outside a band (triangle, "
                         f"superspike_truncated), not {surrogate.describe()}")


class _SparseLIF(torch.autograd.Function):
    """The twin's update order forward (no autograd graph: v_pre and the refractory flags are kept), and the
    sparse reverse sweep of the module docstring backward. Neuron parameters are constants."""

    @staticmethod
    def forward(ctx, x, lateral, coeffs, surrogate, detach_reset):
        alpha, beta, v_leak, v_th, v_reset, n_ref = coeffs
        i_syn = torch.zeros_like(x[0])
        v = v_leak.expand_as(i_syn).clone()
        steps = torch.zeros(i_syn.shape, dtype=torch.int32, device=x.device)
        z = torch.zeros_like(i_syn)
        zs, vs, pre, refr = [], [], [], []
        for x_k in x.unbind(0):  # lif_step's arithmetic, operation for operation
            if lateral is not None:
                x_k = x_k + z @ lateral.t()
            i_syn = alpha * i_syn + x_k
            v_free = v_leak + beta * (v - v_leak) + (1.0 - beta) * i_syn
            refractory = steps > 0
            p = torch.where(refractory, v_reset, v_free)
            z = (p - v_th > 0).to(x.dtype)
            v = p - z * (p - v_reset)
            steps = torch.where(z > 0, n_ref, (steps - 1).clamp_min(0))
            zs.append(z)
            vs.append(v)
            pre.append(p)
            refr.append(refractory)
        z_all, v_all = torch.stack(zs), torch.stack(vs)
        ctx.save_for_backward(z_all, torch.stack(pre), torch.stack(refr), lateral)
        ctx.coeffs, ctx.surrogate, ctx.detach_reset = coeffs, surrogate, detach_reset
        ctx.set_materialize_grads(False)
        return z_all, v_all

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_z, grad_v):
        z, v_pre, refr, lateral = ctx.saved_tensors
        alpha, beta, _, v_th, v_reset, _ = ctx.coeffs
        surrogate: Surrogate = ctx.surrogate
        steps = z.shape[0]
        grad_x = torch.empty_like(z)
        a_i = torch.zeros_like(z[0])
        a_v = torch.zeros_like(z[0])
        gz_lat = torch.zeros_like(z[0])
        active = surrogate.active(v_pre - v_th)  # [T, B, N]
        lat_t = None if lateral is None else lateral.t()  # row n: column n of L
        for k in range(steps - 1, -1, -1):  # lif_backward_step, in its operation order
            gv = a_v if grad_v is None else grad_v[k] + a_v
            gz = gz_lat if grad_z is None else grad_z[k] + gz_lat
            if not ctx.detach_reset:
                gz = gz - gv * (v_pre[k] - v_reset)
            g_pre = gv * (1.0 - z[k]) + surrogate.grad(gz, v_pre[k] - v_th)
            g_free = torch.where(refr[k], torch.zeros_like(g_pre), g_pre)
            g_i = a_i + (1.0 - beta) * g_free
            a_i, a_v = alpha * g_i, beta * g_free
            grad_x[k] = g_i
            if lat_t is not None and k > 0:
                # (L^T gI_k)_n only for the active neurons n of step k-1 (one dot product each); 0 elsewhere.
                gz_lat = torch.zeros_like(g_i)
                for b, act in enumerate(active[k - 1]):
                    idx = act.nonzero().squeeze(1)
                    gz_lat[b, idx] = lat_t[idx] @ g_i[b]
        record_active(int(active.sum()), active.numel())
        grad_lateral = None
        if lateral is not None and ctx.needs_input_grad[1]:
            # sum_{k>=1} gI_k^T z_{k-1}, spike by spike: row j of the transpose gets gI_k[b] per spike (k-1, b, j).
            k, b, j = z[:-1].nonzero(as_tuple=True)
            g_lt = torch.zeros_like(lateral).index_add_(0, j, grad_x[k + 1, b])
            grad_lateral = g_lt.t().contiguous()
        return (grad_x if ctx.needs_input_grad[0] else None, grad_lateral, None, None, None)


def sparse_lif_sequence(x: torch.Tensor, p: LIFParameters, dt_s: float, *,
                        lateral: Optional[torch.Tensor] = None, surrogate_steepness: float = 10.0,
                        detach_reset: bool = False,
                        surrogate: Optional[Surrogate] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`~neurodeploy.core.lif.lif_sequence` with the sparse backward: same forward, gradients to ``x`` and
    ``lateral`` as its own autograd gives for the same surrogate (up to the order of sums).

    ``surrogate`` must be 0 outside a band (``ValueError`` otherwise); the neuron parameters ``p`` are constants
    (no gradient for them; ``ValueError`` if one requires grad: use the dense twin for that).
    """
    s = resolve(surrogate, surrogate_steepness)
    check_sparse(s)
    if x.dim() != 3:
        raise ValueError(f"x must be [T, B, N], got shape {tuple(x.shape)}")
    if torch.is_grad_enabled() and any(isinstance(v, torch.Tensor) and v.requires_grad for v in p):
        raise ValueError("the sparse backward treats neuron parameters as constants; these require grad")
    with torch.no_grad():
        c = lif_coefficients(p, dt_s, x.shape[-1], x.dtype, x.device)
    z, v = _SparseLIF.apply(x, lateral, tuple(c), s, bool(detach_reset))
    return z, v


__all__ = ["SparseBackwardStats", "check_sparse", "record_active", "reset_sparse_backward_stats",
           "sparse_backward_stats", "sparse_lif_sequence"]
