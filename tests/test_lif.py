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


# --- lif_step's measured-state injection (in-the-loop training) against the loop it replaced ---------------------

def _old_inject(model_value, measured):
    """Verbatim copy of neurodeploy.itl.inject.inject before it moved to core (reference)."""
    if measured is None:
        return model_value
    return model_value + (measured.to(model_value.dtype) - model_value).detach()


def _old_lif_sequence_injected(x, p, dt_s, *, v_measured=None, z_measured=None, surrogate_steepness=10.0):
    """Verbatim copy of neurodeploy.itl.inject.lif_sequence_injected before it became a loop over
    core.lif.lif_step (reference; only ``inject`` renamed to ``_old_inject``)."""
    from neurodeploy.core.lif import lif_coefficients
    from neurodeploy.core.surrogate import spike

    c = lif_coefficients(p, dt_s, x.shape[-1], x.dtype, x.device)
    i_syn = torch.zeros_like(x[0])
    v = c.v_leak.expand_as(i_syn).clone()
    refractory = torch.zeros(i_syn.shape, dtype=torch.int32)
    v_steps = [None] * x.shape[0] if v_measured is None else v_measured.unbind(0)
    z_steps = [None] * x.shape[0] if z_measured is None else z_measured.unbind(0)
    spikes, membrane = [], []
    for x_k, v_hw, z_hw in zip(x.unbind(0), v_steps, z_steps):
        i_syn = c.alpha * i_syn + x_k
        v_free = c.v_leak + c.beta * (v - c.v_leak) + (1.0 - c.beta) * i_syn
        v = _old_inject(torch.where(refractory > 0, c.v_reset, v_free), v_hw)
        z = _old_inject(spike(v - c.v_th, surrogate_steepness), z_hw)
        if v_hw is None:
            v = v - z.detach() * (v - c.v_reset)
        refractory = torch.where(z.detach() > 0, c.n_ref, (refractory - 1).clamp_min(0))
        spikes.append(z)
        membrane.append(v)
    return torch.stack(spikes), torch.stack(membrane)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("measured", ["none", "v", "z", "both"])
def test_injected_loop_over_lif_step_is_bit_identical_to_the_old_loop(seed, measured):
    from neurodeploy.itl.inject import lif_sequence_injected

    g = torch.Generator().manual_seed(seed)
    T, B, N = (int(n) for n in torch.randint(3, 24, (3,), generator=g))
    dt = 1e-3
    t_ref = (0.0, 2e-3, 4e-3)[seed % 3]
    p = LIFParameters(tau_mem_s=float(5e-3 + 15e-3 * torch.rand(1, generator=g)), tau_syn_s=4e-3,
                      v_leak=0.1, v_th=1.0, v_reset=-0.2, t_ref_s=t_ref)
    if seed % 2:  # per-neuron parameters, refractory periods of 0..3 steps
        p = p._replace(v_th=0.7 + 0.6 * torch.rand(N, generator=g),
                       t_ref_s=torch.randint(0, 4, (N,), generator=g).float() * dt)
    x_data = torch.randn(T, B, N, generator=g) * 0.8 + 0.3
    v_meas = 0.3 * torch.randn(T, B, N, generator=g) + 0.5 if measured in ("v", "both") else None
    z_meas = (torch.rand(T, B, N, generator=g) < 0.2).float() if measured in ("z", "both") else None
    w_z, w_v = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)

    results = []
    for run in (_old_lif_sequence_injected, lif_sequence_injected):
        x = x_data.clone().requires_grad_()
        z, v = run(x, p, dt, v_measured=v_meas, z_measured=z_meas, surrogate_steepness=7.0)
        (gx,) = torch.autograd.grad((w_z * z).sum() + (w_v * v).sum(), x)
        results.append((z.detach(), v.detach(), gx))
    (z_old, v_old, g_old), (z_new, v_new, g_new) = results
    assert z_old.sum() > 0  # the comparison covers spikes, resets and refractory steps
    assert torch.equal(z_new, z_old)
    assert torch.equal(v_new, v_old)
    assert torch.equal(g_new, g_old)
    if z_meas is not None:
        assert torch.equal(z_new, z_meas)
    if v_meas is not None:  # model + (measured - model): the measurement up to rounding
        assert torch.allclose(v_new, v_meas, atol=1e-6)


def test_lif_step_without_measurement_is_the_model_step_and_inject_is_reexported():
    from neurodeploy.core.inject import inject as core_inject
    from neurodeploy.core.lif import initial_state, lif_coefficients, lif_step
    from neurodeploy.itl.inject import inject

    assert inject is core_inject
    c = lif_coefficients(LIFParameters(t_ref_s=2e-3), 1e-3, 4)
    x = torch.rand(3, 4) * 3
    plain = lif_step(x, initial_state(3, c), c)
    explicit = lif_step(x, initial_state(3, c), c, v_measured=None, z_measured=None)
    assert all(torch.equal(a, b) for a, b in zip(plain, explicit))
    # a measured membrane replaces v and skips the reset; measured spikes set the refractory counter
    v_hw, z_hw = torch.full((3, 4), 0.25), torch.tensor([[1.0, 0, 0, 0]] * 3)
    step = lif_step(x, initial_state(3, c), c, v_measured=v_hw, z_measured=z_hw)
    assert torch.allclose(step.v, v_hw, atol=1e-6) and torch.equal(step.z, z_hw)
    assert step.refractory_steps.tolist() == [[2, 0, 0, 0]] * 3
