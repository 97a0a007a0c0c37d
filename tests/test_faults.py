"""Faults of the emulated chip (``mock:N:faults=...``): parsing, determinism, what each fault does and
how run reports it, calibration marking dead circuits failed, map avoiding them, itl retrying runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy.backends.base import Recording
from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.faults import STUCK_FIELDS, ChipDisconnected, Faults
from neurodeploy.backends.mock.variation import MockEffects, realise
from neurodeploy.backends.registry import get_backend
from neurodeploy.backends.retry import run_with_retry
from neurodeploy.calibration.calibrate import _success, calibrate, calibration_targets
from neurodeploy.calibration.experiment import chip_experiment
from neurodeploy.calibration.measure import Meter
from neurodeploy.calibration.search import noisy_binary_search
from neurodeploy.calibration.session import calibration_from_result
from neurodeploy.cli import main
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import BackendError
from neurodeploy.itl.checkpoint import checkpoint_path
from neurodeploy.itl.run import Checkpointing, train_in_the_loop
from neurodeploy.modelfile import load_model
from neurodeploy.targets.bss2.analog import nominal_codes
from neurodeploy.targets.bss2.calibration_file import Calibration, save_calibration
from neurodeploy.targets.bss2.mapper import map_to_bss2
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.targets.registry import get_target
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run

SPEC = load_bss2_spec()
QUIET = "noise=off,jitter=off,cadc=off"  # exact membranes: a fault's effect is not hidden by noise


def _times(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 30, size=(batch, 5)) * 1e-3


def _codes():
    targets = calibration_targets(SPEC)
    full = lambda v: np.full(SPEC.total_circuits, float(v))  # noqa: E731
    return nominal_codes({"v_leak_cadc": full(targets["v_leak_cadc"]), "v_reset_cadc": full(targets["v_reset_cadc"]),
                          "v_th_cadc": full(targets["v_threshold_cadc"]), "tau_mem_s": full(targets["tau_mem_s"]),
                          "tau_syn_s": full(targets["tau_syn_s"]), "t_ref_s": full(targets["t_ref_s"]),
                          "synaptic_gain_cadc_per_lsb": full(2.0)}, SPEC)


# --- parsing --------------------------------------------------------------------------------------------------

def test_fault_specs_parse_and_the_name_is_canonical():
    chip = get_backend("mock:0:faults=dead:0.02+stuck:0.010,noise=off,faults=disconnect:0.05")
    assert chip.faults == Faults(dead=0.02, stuck=0.01, disconnect=0.05)
    assert not chip.effects.noise and chip.effects.cadc
    assert chip.name == "mock:0:noise=off,faults=dead:0.02+stuck:0.01+disconnect:0.05"
    assert get_backend(chip.name).name == chip.name  # the name a run records parses back to the same chip
    assert chip.chip_id == "mock-chip-0"  # the same chip: a calibration of mock:0 is one of mock:0 with faults
    assert MockEffects().faults == Faults() and not Faults() and get_backend("mock:0").name == "mock:0"
    assert get_backend("mock:0:faults=dead:0").name == "mock:0"  # rate 0: off


@pytest.mark.parametrize("name, message", [
    ("mock:0:faults=", "names no fault"),
    ("mock:0:faults=dead", "needs a rate"),
    ("mock:0:faults=dead:lots", "needs a rate"),
    ("mock:0:faults=dead:1.5", "needs a rate in \\[0, 1\\]"),
    ("mock:0:faults=drop:-0.1", "needs a rate"),
    ("mock:0:faults=drop:nan", "needs a rate"),
    ("mock:0:faults=deaf:0.1", "unknown mock fault 'deaf'"),
    ("mock:0:faults=dead:0.1+dead:0.2", "given twice"),
    ("mock:0:faults=dead:0.1,faults=dead:0.2", "given twice"),
    ("mock:0:faults=dead:0.02,stuck:0.01", "fault outside 'faults='"),
    ("mock:0:dead:0.02", "fault outside 'faults='"),
    ("mock:0:dead=0.02", "fault outside 'faults='"),
    ("mock:0:fault=dead:0.02", "unknown mock effect setting"),
    ("mock:ideal:faults=dead:0.1", "mock:ideal has no faults"),
])
def test_bad_fault_specs_are_one_line_typed_errors(name, message):
    with pytest.raises(BackendError, match=message) as error:
        get_backend(name)
    assert "\n" not in error.value.one_line() and error.value.fix


def test_the_cli_reports_a_bad_fault_spec_in_one_line(deployment_file):
    result = CliRunner().invoke(main, ["run", str(deployment_file), "--backend", "mock:0:faults=dead:2"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: mock fault 'dead:2' needs a rate in [0, 1]") and "fix:" in result.stderr


# --- determinism ----------------------------------------------------------------------------------------------

def test_faults_are_seeded_by_the_chip_and_grow_with_the_rate():
    a, b = get_backend("mock:4:faults=dead:0.02+stuck:0.01"), get_backend("mock:4:faults=dead:0.02+stuck:0.01")
    assert np.array_equal(a._chip.dead, b._chip.dead) and len(a._chip.dead) == round(0.02 * 512)
    assert all(np.array_equal(x, y) for x, y in zip(a._chip.stuck, b._chip.stuck))
    assert len(a._chip.stuck.circuit) == round(0.01 * 512 * len(STUCK_FIELDS))
    other = get_backend("mock:5:faults=dead:0.02")
    assert not np.array_equal(a._chip.dead, other._chip.dead)
    more = get_backend("mock:4:faults=dead:0.1")
    assert set(a._chip.dead) < set(more._chip.dead)  # a larger rate breaks a superset
    both = MockChip(4, MockEffects.parse("faults=dead:0.02"), dead_circuits=(1, 2))
    assert set(both._chip.dead) == set(a._chip.dead) | {1, 2}  # the test hook and the fault add up
    assert np.array_equal(a._chip.variation.tau_mem, get_backend("mock:4")._chip.variation.tau_mem)


def test_fresh_chips_with_the_same_faults_give_the_same_runs(deployment_file):
    dep = load_deployment(deployment_file)
    name = "mock:2:faults=dead:0.1+drop:0.01+delay:0.01+disconnect:0.3"
    outcomes = []
    for _ in range(2):
        chip, seen = get_backend(name), []
        for k in range(6):
            try:
                obs = chip.run(dep, _times(40, k))
                seen.append((obs.counters, obs.spikes.clone(), obs.membrane.clone()))
            except ChipDisconnected as error:
                seen.append(error.message)
        outcomes.append(seen)
    for x, y in zip(*outcomes):
        assert type(x) is type(y)
        if isinstance(x, str):
            assert x == y
        else:
            assert x[0] == y[0] and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2])
    assert any(isinstance(x, str) for x in outcomes[0]) and not all(isinstance(x, str) for x in outcomes[0])


# --- each fault, observed -------------------------------------------------------------------------------------

def test_no_faults_by_default_and_no_fault_counters(deployment_file):
    counters = get_backend("mock:0").run(load_deployment(deployment_file), _times(20)).counters
    assert not {"dead_neurons", "stuck_neurons", "events_dropped_fault", "events_delayed"} & set(counters)
    assert {"events_in", "events_internal", "events_dropped"} <= set(counters)  # the existing names stay


def test_dead_circuits_never_spike_and_sit_at_the_bottom(deployment_file):
    dep = load_deployment(deployment_file)
    chip = get_backend(f"mock:0:{QUIET},faults=dead:0.5")
    first = dep["neuron_circuits"][:, 0]
    dead = np.isin(first, chip._chip.dead)
    assert 0 < dead.sum() < len(first)
    obs = chip.run(dep, _times(50))
    assert obs.counters["dead_neurons"] == dead.sum()
    assert obs.spikes[..., torch.as_tensor(dead)].sum() == 0
    assert torch.all(obs.membrane[..., torch.as_tensor(dead)] == 5.0)  # the reset/leak level of a dead circuit
    assert chip.run(dep, _times(50)).counters["dead_neurons"] == 0  # reported once per configuration
    summed = run(deployment_file, f"mock:0:{QUIET},faults=dead:0.5")["counters"]
    assert summed["dead_neurons"] == dead.sum()  # `run` adds its batches up and counts each neuron once


def test_stuck_cells_ignore_what_is_written(deployment_file):
    chip = get_backend("mock:1:faults=stuck:0.05")
    stuck = chip._chip.stuck
    low, high = _codes(), _codes()
    for name in STUCK_FIELDS:
        high = high._replace(**{name: np.full(512, 700, np.int32)})
        low = low._replace(**{name: np.full(512, 300, np.int32)})
    args = (chip._chip.variation, SPEC, chip._chip.dead, stuck)
    a, b = realise(low, *args), realise(high, *args)
    field = {"v_leak": a.v_leak - b.v_leak, "v_reset": a.v_reset - b.v_reset, "v_threshold": a.v_th - b.v_th,
             "i_bias_leak": a.tau_mem_s - b.tau_mem_s, "i_bias_syn_tau": a.tau_syn_s - b.tau_syn_s,
             "i_bias_synin_gm": a.gain_cadc_per_lsb - b.gain_cadc_per_lsb}
    for index, name in enumerate(STUCK_FIELDS):
        hit = stuck.circuit[stuck.field == index]
        assert len(hit) and np.all(field[name][hit] == 0), name  # stuck: the code written does not matter
        free = np.setdiff1d(np.arange(512), hit)
        assert np.all(field[name][free] != 0), name
    obs = chip.run(load_deployment(deployment_file), _times(10))
    used = load_deployment(deployment_file)["neuron_circuits"]
    assert obs.counters["stuck_neurons"] == np.isin(used, stuck.circuit).any(1).sum() > 0


def test_dropped_events_are_counted_at_the_rate_and_all_dropped_means_silence(deployment_file):
    dep = load_deployment(deployment_file)
    base = get_backend("mock:0").run(dep, _times(200)).counters
    obs = get_backend("mock:0:faults=drop:0.05").run(dep, _times(200))
    routed = base["events_internal"] + _input_route_events(dep, _times(200))
    assert obs.counters["events_dropped_fault"] == pytest.approx(0.05 * routed, rel=0.2)
    assert obs.counters["events_delayed"] == 0 and obs.counters["events_dropped"] == 0
    silent = get_backend(f"mock:0:{QUIET},faults=drop:1").run(dep, _times(50))
    assert silent.spikes.sum() == 0 and silent.counters["events_dropped_fault"] == _input_route_events(dep, _times(50))


def _input_route_events(dep, times) -> int:
    """Events the FPGA routes for ``times``: each channel's events times its routes (nothing falls off the end)."""
    per_channel = np.bincount(dep["input_routes"][:, 0], minlength=times.shape[1])
    return int((np.isfinite(times) * per_channel).sum())


def test_delayed_events_arrive_later(deployment_file):
    dep = load_deployment(deployment_file)
    times = _times(100)
    on_time = get_backend(f"mock:0:{QUIET}").run(dep, times)
    late = get_backend(f"mock:0:{QUIET},faults=delay:1").run(dep, times)
    assert late.counters["events_delayed"] > 0 and late.counters["events_dropped_fault"] == 0

    def first_spike(obs):
        step = torch.arange(obs.spikes.shape[0], dtype=torch.float32)[:, None, None].expand_as(obs.spikes)
        return step[obs.spikes > 0].reshape(-1).min() if obs.spikes.sum() else float("inf")

    assert first_spike(late) > first_spike(on_time)
    small = get_backend("mock:0:faults=delay:0.05").run(dep, times).counters
    routed = on_time.counters["events_internal"] + _input_route_events(dep, times)
    assert small["events_delayed"] == pytest.approx(0.05 * routed, rel=0.25)


def test_a_disconnecting_run_fails_typed_and_the_retry_returns_the_fault_free_result(deployment_file):
    dep = load_deployment(deployment_file)
    with pytest.raises(ChipDisconnected, match="lost the connection") as error:
        get_backend("mock:0:faults=disconnect:1").run(dep, _times(8))
    assert isinstance(error.value, BackendError) and error.value.retryable and "\n" not in error.value.one_line()
    flaky, healthy = get_backend("mock:0:faults=disconnect:0.5"), get_backend("mock:0")
    results = []
    for k in range(4):
        obs, retries = run_with_retry(flaky, dep, _times(30, k), attempts=20)
        results.append(retries)
        expected = healthy.run(dep, _times(30, k))
        assert torch.equal(obs.membrane, expected.membrane) and obs.counters == expected.counters
    assert sum(results) > 0  # some runs failed and were retried
    with pytest.raises(BackendError, match="failed 4 runs of the same batch in a row"):
        run_with_retry(get_backend("mock:0:faults=disconnect:1"), dep, _times(8))
    with pytest.raises(BackendError, match="returned"):  # an error that is not retryable is raised at once
        run_with_retry(_Broken(), dep, _times(8))


def test_run_retries_disconnected_runs_and_scores_as_the_fault_free_chip(deployment_file):
    """`run` wraps its backend in Retrying: a chip that loses one run in three scores as the healthy chip."""
    flaky = run(deployment_file, "mock:0:faults=disconnect:0.3")
    healthy = run(deployment_file, "mock:0")
    assert flaky["retried_runs"] > 0 and healthy["retried_runs"] == 0
    assert flaky["accuracy"] == healthy["accuracy"] and flaky["counters"] == healthy["counters"]


class _Broken:
    name, target, chip_id, uses_codes, capabilities = "broken", "bss2", None, False, frozenset()
    runs = 0

    def run(self, deployment, input_times_s, record=None):
        self.runs += 1
        if self.runs > 1:
            raise AssertionError("retried a permanent error")
        raise BackendError("the chip returned garbage", "none")


def test_calibration_runs_see_faults_in_the_one_neuron_per_run_path():
    """MADC-only runs of independent neurons (calibration's) take a shortcut; the drop fault still acts there."""
    experiment = chip_experiment(SPEC, _codes(), 20e-6, input_weight=20)
    record = Recording(spikes=False, membrane=False, madc_neuron=np.array([0, 7, 511]))
    times, silence = np.full((3, 1), 2e-6 * SPEC.speedup), np.full((3, 1), np.nan)
    healthy = get_backend(f"mock:0:{QUIET}")
    assert not torch.equal(healthy.run(experiment, times, record).madc, healthy.run(experiment, silence, record).madc)
    lossy = get_backend(f"mock:0:{QUIET},faults=drop:1")
    obs = lossy.run(experiment, times, record)
    assert obs.counters["events_dropped_fault"] == 3 * len(experiment["input_routes"])
    assert torch.equal(obs.madc, lossy.run(experiment, silence, record).madc)  # nothing arrived
    late = get_backend(f"mock:0:{QUIET},faults=delay:1").run(experiment, times, record)
    on_time = healthy.run(experiment, times, record).madc
    assert late.counters["events_delayed"] == 3 * len(experiment["input_routes"])
    rise = lambda madc: (madc > madc[0] + 8).float().argmax(0)  # noqa: E731 - first step clearly above rest
    assert torch.all(rise(late.madc) > rise(on_time))


# --- calibration and map --------------------------------------------------------------------------------------

def test_leak_search_fails_dead_circuits_and_map_with_that_calibration_avoids_them(trained_model, tmp_path):
    """The fast check: calibration's leak search and success criterion on a chip with 20 % dead circuits."""
    name = "mock:3:faults=dead:0.2"
    chip = get_backend(name)
    targets, codes = calibration_targets(SPEC), _codes()
    meter = Meter(chip, SPEC)
    found, leak = noisy_binary_search(lambda c: meter.rest(codes._replace(v_leak=c)), targets["v_leak_cadc"], 512,
                                      np.random.default_rng(0), code_max=SPEC["capmem"]["code_max"])
    codes = codes._replace(v_leak=found)
    measured = {"v_leak_cadc": leak, **{k: np.full(512, targets[k]) for k in
                                        ("v_reset_cadc", "v_threshold_cadc", "tau_mem_s", "tau_syn_s",
                                         "synaptic_gain_cadc_per_lsb")}}
    success = _success(codes, measured, targets, SPEC)
    assert not success[chip._chip.dead].any()  # every dead circuit failed ...
    assert success.sum() >= 512 - len(chip._chip.dead) - 5  # ... and hardly any other
    path = tmp_path / "cal.yaml"
    save_calibration(Calibration(chip="mock-chip-3", backend=name, target="bss2", targets=targets, codes=codes,
                                 gain_slope=np.full(512, 0.01), gain_offset_code=np.zeros(512), residuals={},
                                 success=success, spread={}, madc={"gain": 4.0, "offset": 0.0}, seconds=0.0,
                                 measurement_rounds=0), path)
    plain, calibrated = tmp_path / "plain.npz", tmp_path / "calibrated.npz"
    map_model(trained_model, "bss2", plain)
    map_model(trained_model, "bss2", calibrated, calibration=path)
    used = load_deployment(calibrated)["neuron_circuits"]
    assert not np.isin(used, chip._chip.dead).any()
    assert run(plain, name)["counters"]["dead_neurons"] > 0  # the plain placement lands on dead circuits
    assert run(calibrated, name)["counters"]["dead_neurons"] == 0


@pytest.mark.slow
def test_a_full_calibration_fails_exactly_the_dead_circuits_and_map_avoids_them(trained_model):
    chip = get_backend("mock:0:faults=dead:0.02")
    result = calibrate(chip, SPEC, calibration_targets(SPEC), progress=False)
    assert np.array_equal(np.flatnonzero(~result.success), chip._chip.dead)
    calibration = calibration_from_result(result, chip, SPEC, calibration_targets(SPEC))
    assert calibration.backend == "mock:0:faults=dead:0.02"
    deployment, _, violations = map_to_bss2(load_model(trained_model), SPEC, calibration=calibration)
    assert not violations and 0 in chip._chip.dead and not np.isin(deployment["neuron_circuits"], chip._chip.dead).any()


# --- itl ------------------------------------------------------------------------------------------------------

class _LinkDown:
    """A backend whose link goes down for good once ``checkpoint`` exists (every later run disconnects)."""

    def __init__(self, inner, checkpoint) -> None:
        self.inner, self.checkpoint = inner, checkpoint
        self.name, self.target, self.chip_id = inner.name, inner.target, inner.chip_id
        self.uses_codes, self.capabilities = inner.uses_codes, inner.capabilities

    def run(self, deployment, input_times_s, record=None):
        if self.checkpoint.exists():
            raise ChipDisconnected("the link is down", "reconnect")
        return self.inner.run(deployment, input_times_s, record)


def _itl(trained_model, engine, **kwargs):
    return train_in_the_loop(load_model(trained_model), engine, get_target("bss2"), epochs=kwargs.pop("epochs", 1),
                             train_samples=60, progress=False, uncalibrated=True, **kwargs)


def test_itl_retries_disconnected_runs_and_loses_nothing(trained_model):
    flaky = get_backend("mock:0:faults=disconnect:0.1")
    model, summary = _itl(trained_model, flaky)
    reference, expected = _itl(trained_model, get_backend("mock:0"))
    assert summary["runs_retried"] > 0 and expected["runs_retried"] == 0
    for key, weight in model.weights.items():  # the same batches ran: the same training, to the bit
        assert torch.equal(weight, reference.weights[key]), key
    assert summary["test_accuracy_after"] == expected["test_accuracy_after"]
    assert model.mapping["trained_on"]["backend"] == "mock:0:faults=disconnect:0.1"


def test_itl_stops_with_a_clear_error_when_runs_keep_failing_and_resumes_from_its_checkpoint(trained_model,
                                                                                             tmp_path):
    name = "mock:0:faults=disconnect:0.1"
    ckpt = checkpoint_path(tmp_path / "out.pt")
    broken = _LinkDown(get_backend(name), ckpt)  # down from epoch 2 on
    with pytest.raises(BackendError, match="failed 4 runs of the same batch in a row") as error:
        _itl(trained_model, broken, epochs=2, checkpoint=Checkpointing(ckpt, {"model": "tiny"}))
    assert "\n" not in error.value.one_line() and "--resume" in error.value.fix
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 1  # epoch 1 is kept
    model, summary = _itl(trained_model, get_backend(name), epochs=2,
                          checkpoint=Checkpointing(ckpt, {"model": "tiny"}, resume=True))
    assert summary["resumed_from_epoch"] == 1 and len(summary["history"]) == 2
    assert summary["history"][0] == saved["history"][0]
