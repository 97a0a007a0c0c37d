"""Spike trains as input: ``input_times_s`` ``[B, channels, K]`` (NaN-padded), several spikes per channel, as seed
003's Poisson-coded pixels need. Binning, the Poisson encoder, and what each backend does with trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.backends.mock.chip import MockChip, bin_on_clock, input_channels
from neurodeploy.backends.software import SoftwareBackend
from neurodeploy.data.encoding import bin_spike_times, grid_events, poisson_trains
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import BackendError


def _trains(batch: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    trains = np.sort(rng.uniform(0, 0.03, size=(batch, channels, 4)), axis=-1)
    trains[rng.random(trains.shape) < 0.3] = np.nan
    return trains


def test_a_channels_spikes_on_one_step_merge_and_the_rest_count():
    times = np.array([[[0.0021, 0.0019, 0.0050, np.nan], [np.nan] * 4]])  # two spikes on step 2, one on 5
    step, b, c = grid_events(np.round(times / 1e-3), 10)
    assert list(zip(step, b, c)) == [(2, 0, 0), (5, 0, 0)]
    dense = bin_spike_times(times, 1e-3, 10)
    assert dense.shape == (10, 1, 2) and dense.sum() == 2 and dense[2, 0, 0] == dense[5, 0, 0] == 1
    assert torch.equal(bin_spike_times(times[..., :1], 1e-3, 10), bin_spike_times(times[..., 0], 1e-3, 10))
    with pytest.raises(ValueError, match="expected"):
        bin_spike_times(np.zeros(3), 1e-3, 10)


def test_poisson_trains_have_the_rate_and_at_most_one_spike_per_step():
    rng = np.random.default_rng(0)
    features = np.tile(np.array([[0.0, 0.25, 1.0]]), (400, 1))
    trains = poisson_trains(features, max_rate_hz=200.0, duration_s=0.1, dt_s=1e-3, rng=rng)
    counts = np.isfinite(trains).sum(-1)
    assert counts[:, 0].max() == 0
    expected = 100 * 200.0 * 1e-3 * np.array([0.25, 1.0])  # steps × rate × dt × intensity
    binomial_sd = np.sqrt(100 * 0.2 * np.array([0.25, 1.0]) * (1 - 0.2 * np.array([0.25, 1.0])) / 400)
    assert np.all(np.abs(counts[:, 1:].mean(0) - expected) < 4 * binomial_sd)
    steps = np.round(trains / 1e-3)
    assert np.nanmax(steps) <= 99 and np.nanmin(steps) >= 0
    assert (bin_spike_times(trains, 1e-3, 100).sum(0).numpy() == counts).all()  # no two on one step


def test_the_software_backend_and_the_ideal_chip_take_trains(deployment_file):
    dep = load_deployment(deployment_file)
    channels = input_channels(dep.meta)
    trains = _trains(16, channels, 1)
    for backend in (SoftwareBackend(), MockChip("ideal")):
        obs = backend.run(dep, trains)
        first = backend.run(dep, trains[..., 0])
        assert obs.spikes.shape == first.spikes.shape
        assert not torch.equal(obs.membrane, first.membrane)  # the later spikes arrive
    events = bin_on_clock(trains, dep.meta["speedup"], dep.meta["clock_period_s"], 1e-6, 40)
    assert int(events.sum()) > 16 * channels  # more events than channels


def test_the_pynn_backend_refuses_trains_in_one_line(deployment_file):
    pytest.importorskip("pyNN")
    from neurodeploy.backends.pynn import PynnBackend
    with pytest.raises(BackendError, match="one spike per input channel"):
        PynnBackend("brian2").run(load_deployment(deployment_file), _trains(2, 5, 0))


def test_hxtorch_input_takes_trains_but_not_with_delay_lines(deployment_file):
    from neurodeploy.backends.hxtorch_plan import input_spikes, plan_network
    from neurodeploy.targets.bss2.spec import load_bss2_spec
    plan = plan_network(load_deployment(deployment_file), load_bss2_spec())
    trains = _trains(3, plan.input_size, 2)
    dense = input_spikes(plan, trains)
    assert dense.shape == (plan.steps, 3, plan.input_size) and dense.max() == 1
    assert dense.sum() > input_spikes(plan, trains[..., 0]).sum()
    delayed = plan._replace(delay_copies=np.array([[0, 0, 7]], np.int32), input_size=1)
    with pytest.raises(BackendError, match="not spike trains"):
        input_spikes(delayed, trains)


def test_xylo_counts_every_spike_of_a_train():
    from neurodeploy.targets.xylo.backend import _binned
    trains = np.array([[[0.0021, 0.0019, np.nan], [0.004, np.nan, np.nan]]])
    counts = _binned(trains, 1e-3, 10)
    assert counts[2, 0, 0] == 2 and counts[4, 0, 1] == 1 and counts.sum() == 3
