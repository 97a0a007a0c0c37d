"""The sparse surrogate backward (issue 18, Perez-Nieves & Goodman 2021; neurodeploy/core/sparse.py and
csrc/lif_cpu.cpp's backward_lateral_sparse): with a surrogate that is 0 outside a band it must give the dense
backward's gradients of the same surrogate (it is exact, only the order of sums differs), on the fused kernel and
on the twin, with and without feedback, and count the active neurons correctly."""

from __future__ import annotations

import math

import pytest
import torch

from neurodeploy.core import dispatch, fused
from neurodeploy.core.lif import LIFParameters, lif_coefficients, lif_sequence
from neurodeploy.core.sparse import reset_sparse_backward_stats, sparse_backward_stats, sparse_lif_sequence
from neurodeploy.core.surrogate import Surrogate

DT_S = 1e-3


@pytest.fixture(scope="module")
def built() -> None:
    if fused.kernel_status()["path"] != "fused-cpu":
        pytest.skip("fused kernel not built")


def _case(seed: int, steps: int, batch: int, n: int, lateral: bool, refractory: bool, dtype: torch.dtype):
    """Inputs that keep the membranes near threshold (a sizeable active fraction, spikes of 1-30%)."""
    g = torch.Generator().manual_seed(seed)
    x = (0.25 + 0.6 * torch.randn(steps, batch, n, generator=g)).to(dtype)
    lat = (0.3 / math.sqrt(n) * torch.randn(n, n, generator=g)).to(dtype) if lateral else None
    gz = torch.randn(steps, batch, n, generator=g).to(dtype)
    gv = torch.randn(steps, batch, n, generator=g).to(dtype)
    p = LIFParameters(t_ref_s=2e-3 if refractory else 0.0)
    return x, lat, gz, gv, p


def _run(fn, x, lat, gz, gv, p, surrogate, detach, **kw):
    """Outputs and the gradients of <gz, z> + <gv, v> for x (and L)."""
    xi = x.clone().requires_grad_()
    li = None if lat is None else lat.clone().requires_grad_()
    z, v = fn(xi, p, DT_S, lateral=li, detach_reset=detach, surrogate=surrogate, **kw)
    grads = torch.autograd.grad([z, v], [xi] + ([li] if li is not None else []), [gz, gv])
    return [z, v, *grads]


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dtype == torch.float64:
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    else:
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


# Random shapes: B across the fused kernel's row blocks (about B/2 rows on one thread, at most 32) and their
# tails, N across its 4-way splits; and one B = 70 (blocks of 32, 32 and 6 rows: every bit of the row mask).
_g = torch.Generator().manual_seed(18)
_draw = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=_g))  # noqa: E731
CASES = [(100 + i, _draw(2, 60), _draw(1, 20), _draw(1, 70), bool(i % 2), bool(i // 2 % 2), bool(i // 4 % 2))
         for i in range(8)] + [(200, 12, 70, 23, True, True, False)]
SURROGATES = [Surrogate.of("superspike_truncated"), Surrogate.of("superspike_truncated", steepness=3.0, band=0.2),
              Surrogate.of("triangle", height=0.5, width=0.4)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("seed,steps,batch,n,lateral,refractory,detach", CASES)
def test_sparse_equals_dense(built, dtype, seed, steps, batch, n, lateral, refractory, detach) -> None:
    """Fused sparse, twin sparse and fused dense against the twin's own autograd (dense), same surrogate:
    spikes identical, membranes and the gradients of x and L equal within rounding."""
    x, lat, gz, gv, p = _case(seed, steps, batch, n, lateral, refractory, dtype)
    surrogate = SURROGATES[seed % len(SURROGATES)]
    reference = _run(lif_sequence, x, lat, gz, gv, p, surrogate, detach)
    for fn, kw in ((fused.fused_lif_sequence, {"sparse_backward": True}), (sparse_lif_sequence, {}),
                   (fused.fused_lif_sequence, {"sparse_backward": False})):
        out = _run(fn, x, lat, gz, gv, p, surrogate, detach, **kw)
        assert torch.equal(out[0], reference[0])
        for a, b in zip(out[1:], reference[1:]):
            assert torch.isfinite(a).all()
            _close(a, b)


def _active_reference(x, lat, p, surrogate) -> torch.Tensor:
    """The active mask |v_pre - v_th| < band, from a forward written out here (lif.py's update order)."""
    c = lif_coefficients(p, DT_S, x.shape[-1], x.dtype)
    i_syn = torch.zeros_like(x[0])
    v = c.v_leak.expand_as(i_syn).clone()
    ref = torch.zeros(i_syn.shape, dtype=torch.int32)
    z = torch.zeros_like(i_syn)
    masks = []
    for x_k in x.unbind(0):
        if lat is not None:
            x_k = x_k + z @ lat.t()
        i_syn = c.alpha * i_syn + x_k
        v_pre = torch.where(ref > 0, c.v_reset, c.v_leak + c.beta * (v - c.v_leak) + (1 - c.beta) * i_syn)
        masks.append((v_pre - c.v_th).abs() < surrogate.band)
        z = (v_pre > c.v_th).to(x.dtype)
        v = v_pre - z * (v_pre - c.v_reset)
        ref = torch.where(z > 0, c.n_ref, (ref - 1).clamp_min(0))
    return torch.stack(masks)


@pytest.mark.parametrize("lateral", [True, False], ids=["feedback", "no-feedback"])
def test_active_fraction_is_counted(built, lateral) -> None:
    """Both paths count the active (step, row, neuron) triples of every backward pass; the count accumulates
    until reset; a dense backward counts nothing."""
    x, lat, gz, gv, p = _case(7, 40, 11, 37, lateral, True, torch.float64)
    surrogate = Surrogate.of("superspike_truncated", band=0.3)
    mask = _active_reference(x, lat, p, surrogate)
    assert 0.05 < mask.double().mean().item() < 0.9  # the case tests something
    for fn, kw in ((fused.fused_lif_sequence, {"sparse_backward": True}), (sparse_lif_sequence, {})):
        reset_sparse_backward_stats()
        _run(fn, x, lat, gz, gv, p, surrogate, True, **kw)
        stats = sparse_backward_stats()
        assert (stats.active, stats.total) == (int(mask.sum()), mask.numel())
        assert stats.fraction == pytest.approx(mask.double().mean().item())
        _run(fn, x, lat, gz, gv, p, surrogate, True, **kw)
        assert sparse_backward_stats().active == 2 * int(mask.sum())
    reset_sparse_backward_stats()
    _run(fused.fused_lif_sequence, x, lat, gz, gv, p, surrogate, True, sparse_backward=False)
    assert sparse_backward_stats() == (0, 0) and sparse_backward_stats().fraction == 0.0


def test_inactive_neurons_get_no_lateral_gradient(built) -> None:
    """What makes it exact: an upstream gradient on z at an inactive (step, row, neuron) changes nothing, even a
    huge one, on both paths and the dense one; at an active one it does."""
    x, lat, gz, gv, p = _case(3, 30, 9, 25, True, False, torch.float64)
    surrogate = Surrogate.of("superspike_truncated", band=0.25)
    mask = _active_reference(x, lat, p, surrogate)
    bumped = gz + 1e6 * (~mask).to(gz.dtype)
    for fn, kw in ((fused.fused_lif_sequence, {"sparse_backward": True}), (sparse_lif_sequence, {}),
                   (fused.fused_lif_sequence, {"sparse_backward": False})):
        base = _run(fn, x, lat, gz, gv, p, surrogate, True, **kw)
        other = _run(fn, x, lat, bumped, gv, p, surrogate, True, **kw)
        for a, b in zip(base[2:], other[2:]):
            _close(a, b)
    changed = _run(sparse_lif_sequence, x, lat, gz + mask.to(gz.dtype), gv, p, surrogate, True)
    assert not torch.allclose(changed[2], base[2])


def test_dispatch_chooses_the_sparse_backward(built) -> None:
    """None: sparse exactly for a surrogate that is 0 outside a band (on both paths); True with another
    surrogate is refused; the twin's path is the sparse twin."""
    x, lat, gz, gv, p = _case(5, 20, 3, 16, True, False, torch.float64)
    for surrogate, sparse in ((Surrogate.of("superspike_truncated"), True), (Surrogate.of("triangle"), True),
                              (Surrogate.of("superspike"), False), (Surrogate.of("arctan"), False)):
        assert surrogate.sparse is sparse
        for mode in ("fused", "twin"):
            fused.set_kernel_mode(mode)
            try:
                reset_sparse_backward_stats()
                _run(dispatch.lif_sequence, x, lat, gz, gv, p, surrogate, True)
                assert (sparse_backward_stats().total > 0) is sparse, (surrogate, mode)
            finally:
                fused.set_kernel_mode(None)
    for fn in (dispatch.lif_sequence, fused.fused_lif_sequence):
        with pytest.raises(ValueError, match="0 outside a band"):
            _run(fn, x, lat, gz, gv, p, Surrogate.of("superspike"), True, sparse_backward=True)
    with pytest.raises(ValueError, match="0 outside a band"):
        _run(sparse_lif_sequence, x, lat, gz, gv, p, Surrogate.of("slayer"), True)


def test_truncated_superspike_is_superspike_inside_the_band() -> None:
    u = torch.linspace(-2, 2, 4001, dtype=torch.float64)
    s = Surrogate.of("superspike_truncated", steepness=7.0, band=0.6)
    inside = u.abs() < 0.6
    assert torch.equal(s.derivative(u)[inside], Surrogate.superspike(7.0).derivative(u)[inside])
    assert (s.derivative(u)[~inside] == 0).all() and s.band == 0.6 and s.kernel_args() == (4, 7.0, 0.6)
    assert Surrogate.of("triangle", width=0.3).band == 0.3 and Surrogate.of("arctan").band == math.inf
    # 0 outside the band even for a non-finite upstream gradient (a select, as in the kernel)
    assert s.grad(torch.tensor([math.inf, math.nan]), torch.tensor([1.0, -1.0])).tolist() == [0.0, 0.0]
    assert Surrogate.from_dict({"kind": "superspike_truncated", "band": 0.3}).to_dict() == {
        "kind": "superspike_truncated", "steepness": 10.0, "band": 0.3}
