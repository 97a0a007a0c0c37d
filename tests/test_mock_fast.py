"""The compiled mock emulator (csrc/mock_cpu.cpp, backends/mock/fast.py) against its twin (backends/mock/chip.py).

On the ideal chip: the same spikes and membranes bit for bit. With noise: the same statistics (the
draws come from another generator). And what only the fast path promises: a sample's noise does
not depend on the batch it runs in or on the number of threads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.backends.base import Recording
from neurodeploy.backends.mock import chip as chip_module
from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.fast import (chip_key, emulator_status, event_lists, event_lists_numpy, normal_table,
                                            normals)
from neurodeploy.backends.mock.variation import MockEffects
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import BackendError

pytestmark = pytest.mark.skipif(emulator_status()["path"] != "fast-cpu",
                                reason=f"fast emulator not built: {emulator_status()['build_error']}")


def _times(batch: int, seed: int) -> np.ndarray:
    times = np.random.default_rng(seed).uniform(0, 0.03, size=(batch, 5))
    times[::7, 2] = np.nan  # some channels silent
    return times


def _pair(monkeypatch, chip: str, effects: str = "", seed: int = 0) -> tuple[MockChip, MockChip]:
    """(twin, fast) backends of the same chip; the twin pinned by the environment at each run."""
    return MockChip(chip, MockEffects.parse(effects), seed=seed), MockChip(chip, MockEffects.parse(effects), seed=seed)


def _run(monkeypatch, path: str, backend: MockChip, deployment, times, record=None):
    monkeypatch.setenv("NEURODEPLOY_MOCK", path)
    return backend.run(deployment, times, record)


@pytest.mark.parametrize("record", [Recording(), Recording(spikes=False), Recording(membrane=False)])
def test_ideal_chip_is_the_twin_bit_for_bit(monkeypatch, deployment_file, record):
    dep = load_deployment(deployment_file)
    twin, fast = _pair(monkeypatch, "ideal")
    for batch, seed in ((64, 0), (33, 1)):
        a = _run(monkeypatch, "twin", twin, dep, _times(batch, seed), record)
        b = _run(monkeypatch, "fast", fast, dep, _times(batch, seed), record)
        assert torch.equal(a.spikes, b.spikes) and torch.equal(a.membrane, b.membrane)
        assert np.array_equal(a.recorded, b.recorded) and torch.equal(a.baseline, b.baseline)
        assert a.counters == b.counters
        if record.spikes:
            assert a.spikes.sum() > 0 and np.array_equal(a.spike_events, b.spike_events)


def test_noiseless_chip_spikes_and_cadc_match_the_twin(monkeypatch, deployment_file):
    """Without noise a chip's fast run is the twin's: same parameters, events, CADC quantisation and grid."""
    dep = load_deployment(deployment_file)
    twin, fast = _pair(monkeypatch, "2", "noise=off,jitter=off")
    a = _run(monkeypatch, "twin", twin, dep, _times(48, 3))
    b = _run(monkeypatch, "fast", fast, dep, _times(48, 3))
    assert torch.equal(a.spikes, b.spikes) and torch.equal(a.membrane, b.membrane)
    assert a.counters == b.counters and np.array_equal(a.spike_events, b.spike_events)


def _quiet_membranes(monkeypatch, path: str, deployment, samples: int) -> torch.Tensor:
    """Membranes ``[T, B, N]`` of chip 0 without input (CADC off): the rest potential plus the membrane noise."""
    backend = MockChip("0", MockEffects.parse("cadc=off"), seed=5)
    return _run(monkeypatch, path, backend, deployment, np.full((samples, 5), np.nan)).membrane


def test_membrane_noise_statistics_match_the_twin(monkeypatch, deployment_file):
    dep = load_deployment(deployment_file)
    stats = []
    for path in ("twin", "fast"):
        v = _quiet_membranes(monkeypatch, path, dep, 400)[20:]  # past the first steps: stationary
        hidden = v[..., :-3]  # the readout's own noise is the same kind; keep the spiking layer
        dv = hidden - hidden.mean(dim=(0, 1))
        var = dv.pow(2).mean(dim=(0, 1))
        lag1 = (dv[1:] * dv[:-1]).mean(dim=(0, 1)) / var
        lag5 = (dv[5:] * dv[:-5]).mean(dim=(0, 1)) / var
        stats.append((hidden.mean(dim=(0, 1)), var, lag1, lag5))
    (m0, v0, a0, b0), (m1, v1, a1, b1) = stats
    assert torch.allclose(m0, m1, atol=0.25)  # the mean: the chip's rest potential (5 standard errors)
    # Variance: each neuron's estimate is within ~5 % of its own truth; all neurons together within ~1 %.
    assert torch.allclose(v1 / v0, torch.ones_like(v0), atol=0.3)
    assert (v1.mean() / v0.mean() - 1).abs() < 0.04
    assert torch.allclose(a0, a1, atol=0.05) and torch.allclose(b0, b1, atol=0.07)  # the filtered noise's colour


def test_a_samples_noise_does_not_depend_on_its_batch_or_the_threads(deployment_file):
    dep = load_deployment(deployment_file)
    times = _times(40, 4)
    whole = MockChip("1", seed=3).run(dep, times)
    split = MockChip("1", seed=3)
    halves = [split.run(dep, times[:13]), split.run(dep, times[13:])]
    assert torch.equal(whole.spikes, torch.cat([h.spikes for h in halves], dim=1))
    assert torch.equal(whole.membrane, torch.cat([h.membrane for h in halves], dim=1))
    events = halves[1].spike_events.copy()
    events[:, 1] += 13
    merged = np.concatenate([halves[0].spike_events, events])
    order = np.lexsort((merged[:, 2], merged[:, 1], np.round(merged[:, 0] / 1e-6)))
    assert len(merged) == len(whole.spike_events)
    assert set(map(tuple, merged[order])) == set(map(tuple, whole.spike_events))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = MockChip("1", seed=3).run(dep, times)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(whole.membrane, one.membrane) and torch.equal(whole.spikes, one.spikes)
    again = MockChip("1", seed=3).run(dep, times)  # a fresh backend with the seed repeats the run ...
    assert torch.equal(whole.membrane, again.membrane)
    assert not torch.equal(whole.membrane, split.run(dep, times).membrane)  # ... the next run differs (trial to trial)


def test_events_are_binned_as_the_numpy_twin_bins_them():
    """Clock rounding (half to even), the run's edges, NaN/inf/negative times, a step's several events in
    channel order, arrivals after the run's end lost but counted as binned."""
    rng = np.random.default_rng(4)
    times = rng.uniform(-0.002, 0.032, size=(300, 9))
    times[rng.random(times.shape) < 0.2] = np.nan
    times[::11, 3] = np.inf
    times[::13, :4] = 0.0123  # several channels in one step
    times[5, :] = np.nan  # a run without events
    dt_s, clock_s, speedup = 1e-6, 8e-9, 1000.0
    steps = 30
    for grid in (times, np.round(times / speedup / clock_s) * speedup * clock_s + 0.5 * speedup * clock_s):
        fast, twin = (f(grid, speedup, clock_s, dt_s, steps) for f in (event_lists, event_lists_numpy))
        for mine, theirs in zip(fast[:3], twin[:3]):
            assert torch.equal(mine, theirs)
        assert fast.binned == twin.binned > len(fast.step)  # some binned into the last step never arrive


def test_spike_trains_are_binned_as_the_numpy_twin_bins_them():
    """Several spikes per channel ([B, channels, K], NaN-padded): a channel's events on one step merge, the rest
    arrive in step, then channel order; the same lists and counts from C++ and numpy."""
    rng = np.random.default_rng(5)
    trains = rng.uniform(-0.002, 0.032, size=(200, 6, 7))
    trains[rng.random(trains.shape) < 0.3] = np.nan
    trains[::9, 2, :3] = 0.0150  # three spikes of one channel in one step: one event
    speedup, clock_s, dt_s, steps = 1000.0, 8e-9, 1e-6, 30
    fast, twin = (f(trains, speedup, clock_s, dt_s, steps) for f in (event_lists, event_lists_numpy))
    for mine, theirs in zip(fast[:3], twin[:3]):
        assert torch.equal(mine, theirs)
    assert fast.binned == twin.binned
    first = event_lists(trains[:1], speedup, clock_s, dt_s, steps)
    pairs = list(zip(first.step.tolist(), first.channel.tolist()))
    assert pairs == sorted(set(pairs))  # sorted, no duplicates
    # One spike per channel is the K = 1 case of a train.
    single = trains[..., 0]
    assert all(torch.equal(a, b) for a, b in zip(event_lists(single, speedup, clock_s, dt_s, steps)[:3],
                                                  event_lists(single[..., None], speedup, clock_s, dt_s, steps)[:3]))


def test_spike_trains_run_as_the_twin_runs_them(monkeypatch, deployment_file):
    """The ideal chip on spike trains: fast path and twin bit for bit, and more input spikes than channels."""
    dep = load_deployment(deployment_file)
    twin, fast = _pair(monkeypatch, "ideal")
    rng = np.random.default_rng(2)
    trains = np.sort(rng.uniform(0, 0.03, size=(40, 5, 4)), axis=-1)
    trains[rng.random(trains.shape) < 0.3] = np.nan
    a = _run(monkeypatch, "twin", twin, dep, trains)
    b = _run(monkeypatch, "fast", fast, dep, trains)
    assert torch.equal(a.spikes, b.spikes) and torch.equal(a.membrane, b.membrane) and a.counters == b.counters
    assert a.counters["events_in"] > 40 * 5
    first_only = _run(monkeypatch, "fast", MockChip("ideal"), dep, trains[..., 0])
    assert not torch.equal(first_only.membrane, b.membrane)  # the later spikes of a train arrive


def test_the_generators_normals_are_standard_and_uncorrelated():
    n = 200_000
    index = torch.arange(n)
    z = normals(chip_key(0, 0), 1, index // 1000, torch.zeros(n, dtype=torch.long), index % 1000).double()
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1) < 0.01
    assert abs((z ** 3).mean()) < 0.03 and abs((z ** 4).mean() - 3) < 0.06  # skew 0, kurtosis 3
    assert abs(float((z[1:] * z[:-1]).mean())) < 0.01  # neighbours (next neuron) uncorrelated
    # Kolmogorov-Smirnov against the normal CDF: D < 1.63 / sqrt(n) at the 1 % level.
    sorted_z = z.sort().values
    cdf = 0.5 * (1 + torch.erf(sorted_z / 2 ** 0.5))
    grid = torch.arange(1, n + 1, dtype=torch.float64) / n
    assert float((cdf - grid).abs().max()) < 1.63 / n ** 0.5
    assert float(normal_table().double().pow(2).mean()) == pytest.approx(1.0, abs=1e-6)
    other = normals(chip_key(0, 1), 1, index // 1000, torch.zeros(n, dtype=torch.long), index % 1000).double()
    assert abs(float((z * other).mean())) < 0.01  # another seed: independent draws


def test_congested_buses_drop_as_many_events_as_the_twin(monkeypatch, deployment_file):
    """With one event per bus and step, which events are lost is random, how many is not (input buses)."""
    dep = load_deployment(deployment_file)
    monkeypatch.setattr(chip_module, "bus_capacity", lambda dt_s, spec: 1)
    times = np.full((30, 5), 0.01)  # every channel in the same step: its routes share buses
    counts = []
    for path in ("twin", "fast"):
        backend = MockChip("1", MockEffects.parse("noise=off,jitter=off"))
        state = backend._state(dep)
        backend._configured = (dep, state, backend._plan._replace(input_may_drop=True))
        counts.append(_run(monkeypatch, path, backend, dep, times, Recording(spikes=True, membrane=False)).counters)
    assert counts[0]["events_dropped"] == counts[1]["events_dropped"] > 0


def test_forced_fast_path_without_a_build_is_an_error(monkeypatch):
    from neurodeploy.backends.mock import fast
    monkeypatch.setitem(fast._build, "ops", None)
    monkeypatch.setitem(fast._build, "attempted", True)
    monkeypatch.setitem(fast._build, "error", "RuntimeError: no compiler")
    monkeypatch.setenv("NEURODEPLOY_MOCK", "fast")
    with pytest.raises(BackendError, match="failed to build"):
        fast.emulator_ops()
    monkeypatch.setenv("NEURODEPLOY_MOCK", "auto")
    assert fast.emulator_ops() is None and fast.emulator_status()["path"] == "twin"
    monkeypatch.setenv("NEURODEPLOY_MOCK", "sometimes")
    with pytest.raises(BackendError, match="NEURODEPLOY_MOCK"):
        fast.emulator_mode()


@pytest.mark.parametrize("source", ["membrane", "synaptic_input"])
def test_madc_of_independent_neurons_is_the_twins_on_the_ideal_chip(monkeypatch, deployment_file, source):
    dep = load_deployment(deployment_file)
    record = Recording(spikes=False, membrane=False, madc_neuron=np.arange(30) % 23, madc_source=source)
    twin, fast = _pair(monkeypatch, "ideal")
    for backend in (twin, fast):  # the calibration's case: no neuron feeds another
        state = backend._state(dep)
        backend._configured = (dep, state._replace(neuron_routes=state.neuron_routes._replace(
            per_source=torch.zeros_like(state.neuron_routes.per_source))), backend._plan)
    a = _run(monkeypatch, "twin", twin, dep, _times(30, 6), record).madc
    b = _run(monkeypatch, "fast", fast, dep, _times(30, 6), record).madc
    assert a.abs().sum() > 0 and torch.equal(a, b)


def test_a_neurons_madc_trace_has_its_whole_chip_noise(monkeypatch, deployment_file):
    """The MADC run of a neuron alone draws the noise the neuron gets in a whole-chip run of the same sample."""
    dep = load_deployment(deployment_file)
    alone, whole = MockChip("4", MockEffects.parse("cadc=off,madc=off"), seed=2), MockChip("4", MockEffects.parse(
        "cadc=off,madc=off"), seed=2)
    state = alone._state(dep)
    alone._configured = (dep, state._replace(neuron_routes=state.neuron_routes._replace(
        per_source=torch.zeros_like(state.neuron_routes.per_source))), alone._plan)
    quiet = np.full((6, 5), np.nan)
    madc = alone.run(dep, quiet, Recording(spikes=False, membrane=False, madc_neuron=np.full(6, 3))).madc
    v = whole.run(dep, quiet, Recording(spikes=False)).membrane[:, :, 3]
    chip = alone._chip
    assert torch.allclose(madc, chip.variation.madc_gain * v + chip.variation.madc_offset, atol=1e-4)


def test_reading_only_some_membranes_reads_the_same_values(monkeypatch, deployment_file):
    """A neuron's CADC reading does not depend on which other neurons are read out (fast path: the same draws)."""
    dep = load_deployment(deployment_file)
    chosen = np.array([2, 17, 20, 25])
    part = Recording(spikes=False, membrane_neurons=chosen)
    whole = MockChip("3", seed=1).run(dep, _times(25, 8), Recording(spikes=False))
    some = MockChip("3", seed=1).run(dep, _times(25, 8), part)
    assert np.array_equal(some.recorded, chosen) and torch.equal(some.baseline, whole.baseline[chosen])
    assert torch.equal(some.membrane, whole.membrane[..., chosen])
    for chip, effects in (("ideal", ""), ("2", "noise=off,jitter=off")):  # the twin reads the same neurons
        twin, fast = _pair(monkeypatch, chip, effects)
        a = _run(monkeypatch, "twin", twin, dep, _times(25, 8), part)
        b = _run(monkeypatch, "fast", fast, dep, _times(25, 8), part)
        assert torch.equal(a.membrane, b.membrane) and np.array_equal(a.recorded, b.recorded)
        assert a.counters == b.counters
    with pytest.raises(BackendError, match="membrane_neurons"):
        MockChip("3").run(dep, _times(2, 8), Recording(membrane_neurons=np.array([10_000])))
