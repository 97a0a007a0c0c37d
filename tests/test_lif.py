"""The functional LIF core: closed forms, update order, refractoriness, reset detach."""

import math

import pytest
import torch

from neurodeploy.core.lif import LIFParameters, li_sequence, lif_sequence


def test_resting_neuron_stays_at_leak():
    p = LIFParameters(v_leak=0.3, v_th=1.0, v_reset=0.0)
    z, v = lif_sequence(torch.zeros(20, 2, 3), p, 1e-3)
    assert z.sum() == 0
    assert torch.allclose(v, torch.full_like(v, 0.3))


def test_single_input_matches_exact_exponential_solution():
    """One event of weight w at step 0: I_k = w α^k and v follows the exact discrete recursion."""
    dt, tau_syn, tau_mem, w = 1e-3, 5e-3, 10e-3, 0.8
    x = torch.zeros(30, 1, 1)
    x[0] = w
    v = li_sequence(x, LIFParameters(tau_mem_s=tau_mem, tau_syn_s=tau_syn), dt)[:, 0, 0]
    alpha, beta = math.exp(-dt / tau_syn), math.exp(-dt / tau_mem)
    expected, v_k = [], 0.0
    for k in range(30):
        v_k = beta * v_k + (1 - beta) * w * alpha ** k
        expected.append(v_k)
    assert torch.allclose(v, torch.tensor(expected), rtol=1e-5)
    # the peak of the discrete PSP lies close to the continuous one's, at t* = ln(a/b)·τsτm/(τm-τs)
    t_peak = math.log(tau_mem / tau_syn) * tau_syn * tau_mem / (tau_mem - tau_syn)
    assert abs(int(v.argmax()) * dt - t_peak) <= 1.5 * dt


def test_spike_resets_and_refractory_clamps():
    p = LIFParameters(tau_mem_s=10e-3, tau_syn_s=5e-3, v_th=1.0, v_reset=-0.2, t_ref_s=3e-3)
    x = torch.full((40, 1, 1), 0.6)  # strong constant drive
    z, v = lif_sequence(x, p, 1e-3)
    first = int(torch.nonzero(z[:, 0, 0])[0])
    assert v[first, 0, 0] == pytest.approx(-0.2)
    # three refractory steps clamped at v_reset, no spike during them
    assert torch.allclose(v[first + 1:first + 4, 0, 0], torch.full((3,), -0.2))
    assert z[first + 1:first + 4].sum() == 0
    assert v[first + 4, 0, 0] > -0.2


def test_li_is_lif_without_threshold():
    x = torch.randn(25, 3, 4)
    p = LIFParameters(v_th=math.inf)
    z, v = lif_sequence(x, p, 1e-3)
    assert z.sum() == 0
    assert torch.allclose(v, li_sequence(x, p, 1e-3))


def test_per_neuron_parameters_match_separate_runs():
    x = torch.rand(30, 2, 2) * 0.5
    p_vec = LIFParameters(tau_mem_s=torch.tensor([5e-3, 20e-3]), v_th=torch.tensor([0.5, 1.0]))
    z, v = lif_sequence(x, p_vec, 1e-3)
    for n, (tau, th) in enumerate([(5e-3, 0.5), (20e-3, 1.0)]):
        z_n, v_n = lif_sequence(x[..., n:n + 1], LIFParameters(tau_mem_s=tau, v_th=th), 1e-3)
        assert torch.equal(z[..., n:n + 1], z_n)
        assert torch.allclose(v[..., n:n + 1], v_n)


def test_lateral_feedback_acts_one_step_later():
    p = LIFParameters(t_ref_s=0.0)
    x = torch.zeros(10, 1, 2)
    x[0, 0, 0] = 50.0  # neuron 0 spikes at step 0
    lateral = torch.tensor([[0.0, 0.0], [7.0, 0.0]])  # 0 → 1
    _, v = lif_sequence(x, p, 1e-3, lateral=lateral)
    _, v_alone = lif_sequence(x, p, 1e-3)
    assert v[0, 0, 1] == v_alone[0, 0, 1] == 0
    assert v[1, 0, 1] > 0


def test_surrogate_gradient_flows_and_detach_changes_it():
    torch.manual_seed(1)
    x = (torch.rand(30, 4, 5) * 0.8).requires_grad_()
    grads = []
    for detach in (False, True):
        z, _ = lif_sequence(x, LIFParameters(), 1e-3, detach_reset=detach)
        (gx,) = torch.autograd.grad(z.sum(), x)
        assert torch.isfinite(gx).all() and gx.abs().sum() > 0
        grads.append(gx)
    assert not torch.allclose(grads[0], grads[1])
