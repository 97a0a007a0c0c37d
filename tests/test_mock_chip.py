"""The non-ideal mock chips: fixed pattern per chip id, switchable effects, readouts, event drops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.backends.base import Recording
from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.events import deliver
from neurodeploy.backends.mock.readout import cadc_samples, input_noise_std
from neurodeploy.backends.mock.variation import MockEffects, draw_variation, realise
from neurodeploy.backends.registry import get_backend
from neurodeploy.calibration.experiment import chip_experiment
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import BackendError
from neurodeploy.targets.bss2.analog import nominal_codes
from neurodeploy.targets.bss2.spec import load_bss2_spec

SPEC = load_bss2_spec()


def _codes():
    full = lambda v: np.full(SPEC.total_circuits, float(v))  # noqa: E731
    return nominal_codes({"v_leak_cadc": full(60), "v_reset_cadc": full(60), "v_th_cadc": full(200),
                          "tau_mem_s": full(1e-5), "tau_syn_s": full(5e-6), "t_ref_s": full(2e-6),
                          "synaptic_gain_cadc_per_lsb": full(2.0)}, SPEC)


def test_a_chip_id_fixes_the_pattern_and_chips_differ():
    a, b = draw_variation(0, SPEC, MockEffects()), draw_variation(0, SPEC, MockEffects())
    c = draw_variation(1, SPEC, MockEffects())
    assert np.array_equal(a.tau_mem, b.tau_mem) and not np.array_equal(a.tau_mem, c.tau_mem)
    leak = realise(_codes(), a, SPEC).v_leak
    assert 4 < np.std(leak) < 12  # uncalibrated: several LSB apart
    flat = realise(_codes(), draw_variation(0, SPEC, MockEffects(fixed_pattern=False)), SPEC).v_leak
    assert np.ptp(flat) < 1e-9


def test_effects_switch_off_by_name_and_typos_are_errors():
    chip = get_backend("mock:3:noise=off,cadc=off")
    assert not chip.effects.noise and not chip.effects.cadc and chip.effects.fixed_pattern
    with pytest.raises(BackendError, match="unknown mock effect"):
        get_backend("mock:3:nosie=off")
    with pytest.raises(BackendError, match="not a chip number"):
        get_backend("mock:three")


def test_noise_makes_trials_differ_and_cadc_reads_8_bit_samples(deployment_file):
    dep = load_deployment(deployment_file)
    times = np.random.default_rng(0).integers(0, 30, size=(32, 5)) * 1e-3
    noisy = MockChip(0)
    first, second = noisy.run(dep, times), noisy.run(dep, times)
    assert not torch.equal(first.membrane, second.membrane)
    samples = first.membrane[1::2]  # 2 µs CADC period on a 1 µs step: every second step is a sample
    assert torch.equal(samples, samples.round()) and samples.min() >= 0 and samples.max() <= 255
    quiet = MockChip(0, MockEffects(noise=False, jitter=False))
    assert torch.equal(quiet.run(dep, times).spikes, quiet.run(dep, times).spikes)
    events = first.spike_events
    assert events.shape[1] == 3 and np.allclose(events[:, 0] / 8e-9, np.round(events[:, 0] / 8e-9))


def test_membrane_noise_has_the_configured_standard_deviation():
    dt, tau_syn, tau_mem = 1e-6, 5e-6, 10e-6
    alpha, beta = torch.tensor([np.exp(-dt / tau_syn)]), torch.tensor([np.exp(-dt / tau_mem)])
    sigma_x = input_noise_std(1.5, alpha, beta)
    x = sigma_x * torch.randn(40000, 1, generator=torch.Generator().manual_seed(0))
    i = v = torch.zeros(1)
    trace = []
    for x_k in x:
        i = alpha * i + x_k
        v = beta * v + (1 - beta) * i
        trace.append(v)
    assert abs(float(torch.stack(trace)[1000:].std()) - 1.5) < 0.1


def test_cadc_interpolates_between_samples():
    v = torch.arange(10, dtype=torch.float32).view(10, 1, 1) * 10.0 + 0.3
    out = cadc_samples(v, 1e-6, 2e-6)
    assert out[1].item() == 10 and out[3].item() == 30 and out[2].item() == 20  # sampled, rounded, interpolated


def test_a_bus_drops_what_it_cannot_carry():
    events = torch.zeros(2, 1, 5)
    events[0, 0, :] = 1  # five routes on one bus in one step
    events[1, 0, :2] = 1
    delivered, dropped = deliver(events, np.zeros(5, int), 2, lambda: torch.rand(events.shape))
    assert dropped == 3 and delivered[0].sum() == 2 and torch.equal(delivered[1], events[1])


def test_the_chip_counts_dropped_events():
    # 8 ns steps: one event per bus per step; 8 drivers over 4 buses put 2 copies of each event on a bus.
    experiment = chip_experiment(SPEC, _codes(), 2e-6, input_weight=10, drivers=8)
    experiment.meta.update(dt_s=8e-9 * SPEC.speedup, steps=250)
    obs = MockChip(0).run(experiment, np.full((3, 1), 0.5e-6 * SPEC.speedup), Recording(spikes=False))
    assert obs.counters["events_dropped"] == 3 * 2 * 4  # per run: 4 buses x 2 hemispheres, one copy lost each
    ideal = MockChip(0, MockEffects(event_drops=False)).run(experiment, np.full((3, 1), 0.5e-6 * SPEC.speedup))
    assert ideal.counters["events_dropped"] == 0


def test_madc_records_one_neuron_per_run():
    experiment = chip_experiment(SPEC, _codes(), 5e-6)
    record = Recording(spikes=False, membrane=False, madc_neuron=np.array([0, 7, 511]))
    obs = MockChip(0).run(experiment, np.full((3, 1), np.nan), record)
    assert obs.madc.shape == (experiment.meta["steps"], 3)
    assert torch.equal(obs.madc, obs.madc.round()) and obs.madc.max() <= 1023
