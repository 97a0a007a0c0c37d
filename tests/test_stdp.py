"""Unsupervised STDP (seed 003): the rules' signs and bounds, 6-bit weights, adaptive thresholds, labels, a tiny run."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace

import numpy as np
import pytest

from neurodeploy.errors import RecipeError
from neurodeploy.training.stdp import (StdpSettings, assign_labels, evaluate, patch_layout, predict_from_counts,
                                       present, receptive_fields, train_stdp, with_weight_bits)
from neurodeploy.training.stdp_rules import (bump_trace, decay_trace, event_update, pair_update, quantise,
                                             weight_codes)

DT, TAU = 1e-3, 0.02


def _pair(pre_step: int, post_step: int, steps: int = 60, eta_plus: float = 0.01, eta_minus: float = 0.02,
          w0: float = 0.5, mu: float = 0.0) -> float:
    """Weight change of one synapse under pair STDP for one scripted pre and one post spike."""
    w = np.array([[w0]])
    x_pre, x_post = np.zeros((1, 1)), np.zeros((1, 1))
    for t in range(steps):
        pre = np.array([[float(t == pre_step)]])
        post = np.array([[float(t == post_step)]])
        x_pre, x_post = decay_trace(x_pre, DT, TAU), decay_trace(x_post, DT, TAU)
        w = w + pair_update(w, x_pre, x_post, pre, post, eta_plus, eta_minus, 1.0, mu)
        x_pre, x_post = bump_trace(x_pre, pre, True), bump_trace(x_post, post, True)
    return float(w[0, 0] - w0)


@pytest.mark.parametrize("delay", [1, 5, 20])
def test_pair_stdp_matches_the_exponential_window(delay):
    causal = _pair(pre_step=10, post_step=10 + delay)
    acausal = _pair(pre_step=10 + delay, post_step=10)
    assert causal == pytest.approx(0.01 * math.exp(-delay * DT / TAU), rel=1e-9)
    assert acausal == pytest.approx(-0.02 * math.exp(-delay * DT / TAU), rel=1e-9)
    assert _pair(pre_step=10, post_step=10) == 0.0  # same step: no pair


def test_pair_stdp_weight_dependence_vanishes_at_the_bounds():
    assert _pair(pre_step=10, post_step=12, w0=1.0, mu=0.5) == 0.0  # potentiation stops at w_max
    assert _pair(pre_step=12, post_step=10, w0=0.0, mu=0.5) == 0.0  # depression stops at 0


def test_event_rule_signs_and_scale():
    w = np.full((3, 1), 0.5)
    x_pre = np.array([[0.9, 0.4, 0.0]])  # active, at target, silent pixel
    dw = event_update(w, x_pre, np.ones((1, 1)), eta_post=0.1, x_tar=0.4, w_max=1.0, mu=0.2)
    assert dw[0, 0] == pytest.approx(0.1 * 0.5 * 0.5 ** 0.2)
    assert dw[1, 0] == pytest.approx(0.0)
    assert dw[2, 0] == pytest.approx(-0.1 * 0.4 * 0.5 ** 0.2)  # the built-in decay of blank pixels
    assert not event_update(w, x_pre, np.zeros((1, 1)), 0.1, 0.4, 1.0, 0.2).any()  # no post spike, no change


def test_quantise_lies_on_the_6_bit_grid_and_stochastic_rounding_is_unbiased():
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.2, 1.3, size=(64, 50))
    for rounding in ("nearest", "stochastic"):
        q = quantise(w, 1.0, 6, rounding, rng)
        codes = q * 63
        assert np.allclose(codes, np.rint(codes)) and q.min() >= 0 and q.max() <= 1.0
    assert np.abs(quantise(w, 1.0, 6, "nearest", rng) - np.clip(w, 0, 1)).max() <= 0.5 / 63 + 1e-12
    small = np.full(20000, 0.3 / 63)  # a third of a step: nearest rounds it away, stochastic keeps it on average
    assert not quantise(small, 1.0, 6, "nearest", rng).any()
    assert quantise(small, 1.0, 6, "stochastic", rng).mean() == pytest.approx(0.3 / 63, rel=0.05)
    assert weight_codes(np.array([0.0, 0.5, 1.0]), 1.0).tolist() == [0, 32, 63]
    with pytest.raises(RecipeError):
        quantise(w, 1.0, 6, "up", rng)


@pytest.fixture(scope="module")
def digits():
    from neurodeploy.data.digits import load_digits_split
    return load_digits_split("train"), load_digits_split("test")


TINY = StdpSettings(n_exc=40, epochs=1, duration_s=0.05, min_spikes=10)


def test_learning_keeps_weights_in_bounds_and_on_the_6_bit_grid(digits):
    (x, y), _ = digits
    for bits in (0, 6):
        result = train_stdp(replace(TINY, weight_bits=bits), x[:60], y[:60], seed=1)
        assert result.weights.min() >= 0.0 and result.weights.max() <= TINY.w_max
        if bits:
            codes = result.weights / TINY.w_max * 63
            assert np.allclose(codes, np.rint(codes), atol=1e-9)
    held = with_weight_bits(result, 6)
    assert np.allclose(held.weights * 63, np.rint(held.weights * 63))


def test_adaptive_thresholds_rise_with_firing(digits):
    (x, _), _ = digits
    settings = replace(TINY, tau_theta_s=1e9)
    mask, groups = patch_layout(settings)
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 0.3, mask.shape)
    counts, _, theta = present(w, np.zeros(settings.n_exc), x[:1], settings, mask, groups, rng, learn=True)
    assert counts.sum() > 0
    assert np.allclose(theta, settings.theta_gain * counts.sum(axis=0), rtol=1e-5)
    _, _, frozen = present(w, theta, x[:1], settings, mask, groups, rng, learn=False)
    assert frozen is theta  # not learning: thresholds untouched


def test_lateral_inhibition_cuts_the_spikes(digits):
    (x, _), _ = digits
    settings = replace(TINY, n_exc=40)
    mask, groups = patch_layout(settings)
    w = np.random.default_rng(0).uniform(0, 0.3, mask.shape)
    active = {}
    for w_inh in (0.0, 5.0):
        counts, _, _ = present(w, np.zeros(40), x[:20], replace(settings, w_inh=w_inh, v_min=-5.0), mask, groups,
                               np.random.default_rng(1), learn=False)
        active[w_inh] = counts.sum(axis=1).mean()  # spikes per sample
    assert active[5.0] < 0.3 * active[0.0]


def test_label_assignment_and_prediction_on_a_toy_case():
    # neurons 0, 1 answer class 0; neuron 2 class 1; neuron 3 class 2; neuron 4 never fires
    counts = np.array([[5, 3, 0, 1, 0], [4, 4, 1, 0, 0], [0, 1, 6, 0, 0], [1, 0, 0, 7, 0], [0, 0, 1, 5, 0]], float)
    y = np.array([0, 0, 1, 2, 2])
    labels = assign_labels(counts, y, 3)
    assert labels.tolist() == [0, 0, 1, 2, -1]
    assert predict_from_counts(counts, labels, 3).tolist() == [0, 0, 1, 2, 2]
    assert predict_from_counts(np.array([[0, 0, 0, 0, 9.0]]), labels, 3).tolist() == [0]  # silent neuron ignored


def test_patches_restrict_receptive_fields():
    mask, groups = patch_layout(StdpSettings(n_exc=20, patch_size=4, patch_stride=4))
    assert mask.shape == (64, 20) and (mask.sum(axis=0) == 16).all()
    assert sorted(set(groups.tolist())) == [0, 1, 2, 3]
    with pytest.raises(RecipeError, match="patches need"):
        patch_layout(StdpSettings(n_exc=3, patch_size=4, patch_stride=4))


def test_bad_settings_are_one_line_errors():
    for bad in ({"n_exc": 0}, {"rule": "hebb"}, {"rounding": "up"}, {"patch_size": 9}, {"v_min": 1.0},
                {"eta_post": -1.0}):
        with pytest.raises(RecipeError) as info:
            StdpSettings(**bad)
        assert "\n" not in info.value.one_line() and info.value.fix


def test_tiny_run_beats_chance_and_is_reproducible(digits):
    (x, y), (x_test, y_test) = digits
    settings = replace(TINY, n_exc=50)
    result = train_stdp(settings, x[:300], y[:300], seed=0)
    accuracy = evaluate(result, x_test[:200], y_test[:200], seed=1)
    assert accuracy > 0.45, accuracy  # chance is 0.1
    again = train_stdp(settings, x[:30], y[:30], seed=3)
    assert np.array_equal(again.weights, train_stdp(settings, x[:30], y[:30], seed=3).weights)
    assert receptive_fields(result).shape == (50, 8, 8)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_receptive_field_figure(tmp_path):
    from neurodeploy.stdp_plots import receptive_field_grid
    fields = np.random.default_rng(0).uniform(0, 1, (10, 8, 8))
    path = receptive_field_grid(fields, tmp_path / "rf.png", labels=np.arange(10) - 1, title="t")
    assert path.stat().st_size > 1000
