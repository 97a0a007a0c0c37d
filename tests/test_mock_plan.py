"""The twin's shortcuts (run plan, in-place arithmetic) give exactly the outputs of its general path.

The compiled emulator has its own tests (test_mock_fast.py); here every mock runs on the twin.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.backends.base import Recording
from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.plan import may_overflow
from neurodeploy.backends.mock.readout import cadc_samples
from neurodeploy.backends.mock.variation import MockEffects
from neurodeploy.deployment import load_deployment


pytestmark = pytest.mark.usefixtures("twin_mock")


def _times(batch: int, seed: int) -> np.ndarray:
    times = np.random.default_rng(seed).integers(0, 30, size=(batch, 5)) * 1e-3
    times[::7, 2] = np.nan  # some channels silent
    return times


def _general(chip: MockChip, deployment) -> MockChip:
    """``chip`` forced onto the general path: every bus is checked for overflow event by event."""
    state = chip._state(deployment)
    chip._configured = (deployment, state, chip._plan._replace(input_may_drop=True, neuron_may_drop=True))
    return chip


def _assert_same(a, b) -> None:
    for field in ("spikes", "membrane", "madc", "baseline"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None and y is None) or torch.equal(x, y), field
    assert a.counters == b.counters
    assert (a.spike_events is None and b.spike_events is None) or np.array_equal(a.spike_events, b.spike_events)


def test_fast_path_equals_general_path_sample_for_sample(deployment_file):
    dep = load_deployment(deployment_file)
    for chip, effects in (("0", ""), ("3", "cadc=off"), ("ideal", ""), ("1", "noise=off,jitter=off")):
        fast = MockChip(chip, MockEffects.parse(effects), seed=7)
        general = MockChip(chip, MockEffects.parse(effects), seed=7)
        _general(general, dep)
        fast._state(dep)
        assert not fast._plan.input_may_drop and not fast._plan.neuron_may_drop  # Yin-Yang's buses never overflow
        for batch, seed in ((64, 0), (17, 1)):  # two batches: the generator advances alike
            _assert_same(fast.run(dep, _times(batch, seed)), general.run(dep, _times(batch, seed)))
        madc = Recording(madc_neuron=np.arange(20) % 5)
        _assert_same(fast.run(dep, _times(20, 2), madc), general.run(dep, _times(20, 2), madc))


def test_in_place_cadc_equals_the_out_of_place_expression():
    v = torch.randn(41, 6, 9, generator=torch.Generator().manual_seed(3)) * 80 + 120
    for period_steps, noise in ((2, 0.5), (3, 0.0), (1, 0.7), (41, 0.5)):
        got = cadc_samples(v, 1e-6, period_steps * 1e-6, noise, torch.Generator().manual_seed(4))
        # The expression before the run plan (kept here as the reference).
        every, steps, generator = period_steps, v.shape[0], torch.Generator().manual_seed(4)
        at = torch.arange(every - 1, steps, every)
        at = at if len(at) else torch.tensor([steps - 1])
        sampled = v[at]
        if noise > 0:
            sampled = sampled + noise * torch.randn(sampled.shape, generator=generator)
        sampled = sampled.round().clamp(0, 255)
        position = ((torch.arange(steps, dtype=torch.float32) - at[0]) / every).clamp(0, len(at) - 1)
        lower = position.floor().long()
        upper = (lower + 1).clamp(max=len(at) - 1)
        frac = (position - lower).view(-1, 1, 1)
        assert torch.equal(got, sampled[lower] * (1 - frac) + sampled[upper] * frac)


def test_in_place_noise_equals_the_out_of_place_expression(deployment_file):
    dep = load_deployment(deployment_file)
    chip = MockChip(0, seed=2)
    chip._state(dep)
    x = torch.randn(40, 8, chip._plan.noise_std.numel())
    expected = x + chip._plan.noise_std * torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    chip._noise = torch.Generator().manual_seed(9)
    assert torch.equal(chip._add_noise(x.clone(), None), expected)


def test_a_bus_with_more_routes_than_its_capacity_may_overflow():
    assert not may_overflow(np.array([0, 0, 1]), capacity=2)
    assert may_overflow(np.array([0, 0, 0, 1]), capacity=2)
    assert not may_overflow(np.zeros(0, np.int64), capacity=1)


def test_outputs_of_a_run_are_not_overwritten_by_the_next(deployment_file):
    dep = load_deployment(deployment_file)
    chip = MockChip(0, seed=1)
    first = chip.run(dep, _times(32, 0))
    kept = {field: getattr(first, field).clone() for field in ("spikes", "membrane")}
    chip.run(dep, _times(32, 1))  # same shapes: the same workspace buffers
    assert all(torch.equal(getattr(first, field), value) for field, value in kept.items())
