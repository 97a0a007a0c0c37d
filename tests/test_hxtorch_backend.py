"""Contract tests of the hxtorch backend against a fake of hxtorch (tests/fake_hxtorch, README there).

Each test names the hxtorch function (electronicvisions/hxtorch@3bfc7aadf3, src/pyhxtorch/hxtorch/spiking/...)
whose arguments or results it checks. hxtorch itself is not installed here: without the fake the backend must
say how to get it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy.backends.base import Recording, readout_scores
from neurodeploy.backends.registry import get_backend
from neurodeploy.data.datasets import load_data
from neurodeploy.data.encoding import encode
from neurodeploy.deployment import Deployment, load_deployment
from neurodeploy.errors import BackendError

FAKE = Path(__file__).parent / "fake_hxtorch"
FAKE_MODULES = ("hxtorch", "dlens_vx_v3")


def _forget_fake() -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in FAKE_MODULES]:
        del sys.modules[name]


@pytest.fixture
def fake_hxtorch(monkeypatch):
    """The fake hxtorch first on sys.path; its chip's gain per i_synin_gm LSB set to neurodeploy's nominal curve
    (an ideally calibrated chip); everything removed afterwards."""
    _forget_fake()
    monkeypatch.syspath_prepend(str(FAKE))
    import hxtorch.spiking.experiment as experiment

    from neurodeploy.targets.bss2.spec import load_bss2_spec
    nominal = load_bss2_spec()["capmem"]["synaptic_gain_per_code"]
    monkeypatch.setattr(experiment.FakeChip, "cadc_per_lsb_per_gm", nominal)
    yield experiment
    _forget_fake()


@pytest.fixture(scope="module")
def samples(deployment_file):
    deployment = load_deployment(deployment_file)
    x, y = load_data(deployment.meta["dataset"], None)
    return encode(x, deployment.meta["encoding"])[:200], torch.as_tensor(y[:200])


def _modules(engine):
    built = engine._built
    return built.experiment, built.inputs, built.populations, built.synapses


def test_without_hxtorch_the_backend_says_how_to_get_it(deployment_file):
    """No hxtorch importable: one BackendError naming the BSS-2 software stack; the CLI prints one line, exits 2."""
    _forget_fake()
    if importlib.util.find_spec("hxtorch") is not None:
        pytest.skip("hxtorch is installed here")
    with pytest.raises(BackendError) as info:
        get_backend("hxtorch")
    assert "EBRAINS" in info.value.fix and "container" in info.value.fix
    result = CliRunner().invoke(__import__("neurodeploy.cli", fromlist=["main"]).main,
                                ["run", str(deployment_file), "--backend", "hxtorch"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hxtorch" in lines[0] and "EBRAINS" in lines[0] and "Traceback" not in result.output


def test_modules_get_our_sizes_placement_and_integer_weights(fake_hxtorch, deployment_file, samples):
    """InputNeuron(size), LIF/LI(size, placement_constraint=..., neuron_structure=SingleCompartmentNeuron(k))
    (modules/neuron.py, neuron_placement.py) and Synapse(in, out, transform=linear_saturating) whose
    add_to_network_graph integers (exc + inh) are the deployment's quantised weights."""
    deployment = load_deployment(deployment_file)
    engine = get_backend("hxtorch")
    engine.run(deployment, samples[0][:4])
    experiment, inputs, populations, synapses = _modules(engine)
    assert not experiment.mock and experiment.dt == pytest.approx(deployment.meta["dt_s"] / deployment.meta["speedup"])
    assert inputs.size == 5
    hidden, output = populations["hidden"], populations["output"]
    assert (hidden.size, output.size) == (24, 3) and hidden.fire and not output.fire
    circuits = deployment["neuron_circuits"]
    placement = experiment.default_execution_instance.neuron_placement
    for module in (hidden, output):
        placed = [[an.toEnum().value() for an in ln] for ln in
                  [logical.get_atomic_neurons() for logical in placement.id2logicalneuron(module.unit_ids)]]
        first = 0 if module is hidden else 24
        assert placed == circuits[first:first + module.size].tolist()
    plan = engine._built.plan
    gain = deployment["circuit_synaptic_gain_cadc_per_lsb"][circuits[:, 0]]
    for (source, target), synapse in synapses.items():
        exc, inh = experiment.last_connections[synapse]
        assert (exc >= 0).all() and (inh <= 0).all()
        name = f"{source}->{target}"
        ours = deployment[f"quantised_weight:{name}"].astype(np.int64)
        assert synapse.weight.shape == ours.shape
        ratio = plan.population(target).ratio
        factor = gain[plan.population(target).neurons] * ratio / plan.gain_cadc_per_lsb
        exact = np.isclose(factor, 1.0)
        assert (factor <= 1 + 1e-9).all()  # requantising only ever drops resolution, never exceeds 6 bits
        if target == "hidden":  # the readout's gain sits far below the hidden layer's here: it is requantised
            assert exact.sum() >= len(exact) // 2
        np.testing.assert_array_equal((exc + inh)[exact], ours[exact])  # our 6-bit integers, exactly
        np.testing.assert_array_equal(exc + inh, [[round(w) for w in row] for row in ours * factor[:, None]])
    assert plan.requantised == int(sum(((e + i) != deployment[f"quantised_weight:{s}->{t}"]).sum()
                                       for (s, t), syn in synapses.items()
                                       for e, i in [experiment.last_connections[syn]]))


def test_calix_gets_our_requested_settings_on_our_circuits(fake_hxtorch, deployment_file, samples):
    """ExecutionInstance.calibrate / Population.calibration_from_params: one i_synin_gm and synapse_dac_bias for
    all populations; per atomic neuron the deployment's leak, time constants and (scaled) threshold."""
    deployment = load_deployment(deployment_file)
    engine = get_backend("hxtorch")
    engine.run(deployment, samples[0][:2])
    target = engine._built.experiment.default_execution_instance.calib_target
    circuits = deployment["neuron_circuits"][:, 0]
    np.testing.assert_allclose(target["leak"][circuits], deployment["circuit_v_leak_cadc"][circuits], rtol=1e-6)
    np.testing.assert_allclose(target["tau_mem"][circuits], deployment["circuit_tau_mem_s"][circuits], rtol=1e-6)
    np.testing.assert_allclose(target["tau_syn"][circuits], deployment["circuit_tau_syn_s"][circuits], rtol=1e-6)
    hidden = engine._built.plan.population("hidden")
    leak, th = deployment["circuit_v_leak_cadc"][circuits[:24]], deployment["circuit_v_th_cadc"][circuits[:24]]
    np.testing.assert_allclose(target["threshold"][circuits[:24]], leak + hidden.ratio * (th - leak), rtol=1e-5)
    assert (target["threshold"][circuits[:24]] - leak >= 40 - 1e-3).all()  # MIN_SWING_CADC
    assert (target["threshold"][circuits[:24]] <= 220 + 1e-3).all()  # calix's threshold range
    unused = np.setdiff1d(np.arange(512), circuits)
    assert np.isnan(target["leak"][unused]).all()
    assert target["i_synin_gm"] == engine.describe(deployment)["i_synin_gm"]


def test_hardware_observables_become_time_major_steps_in_cadc_units(fake_hxtorch, deployment_file, samples):
    """AELIF.post_process: spikes/CADC to_dense give ceil(runtime/dt) + 1 rows, MADCHandle.to_raw [2, samples, B]
    (FPGA cycles, 10-bit values): Observations are [T, B, N] on the hardware step, CADC, madc [T, B]."""
    deployment = load_deployment(deployment_file)
    engine = get_backend("hxtorch")
    times = samples[0][:6]
    obs = engine.run(deployment, times, Recording(madc_neuron=np.full(6, 25)))
    steps = engine._built.plan.steps
    dt_hw = deployment.meta["dt_s"] / deployment.meta["speedup"]
    assert obs.spikes.shape == (steps, 6, 27) and obs.membrane.shape == (steps, 6, 27)
    assert obs.time_step_s == pytest.approx(dt_hw) and obs.recorded.tolist() == list(range(27))
    circuits = deployment["neuron_circuits"][:, 0]
    np.testing.assert_allclose(obs.baseline.numpy(), deployment["circuit_v_leak_cadc"][circuits])
    assert obs.madc.shape == (steps, 6) and float(obs.madc.min()) >= 0 and float(obs.madc.max()) <= 1023
    assert float(obs.madc.std()) > 0  # the readout neuron moves
    assert obs.spikes[:, :, 24:].sum() == 0 and obs.counters["events_in"] == int(np.isfinite(times).sum())
    assert obs.spike_events.shape == (int(obs.spikes.sum()), 3)
    assert engine._built.populations["output"]._record_neuron_id == 1  # in-population index of neuron 25
    only_spikes = engine.run(deployment, times, Recording(membrane=False))
    assert only_spikes.membrane.shape == (steps, 6, 0) and len(only_spikes.recorded) == 0
    assert torch.equal(only_spikes.spikes, obs.spikes)


def test_madc_samples_are_held_onto_the_step_grid():
    """detail/to_dense.cpp sparse_madc_to_dense_raw: row 0 times (FPGA cycles), row 1 values."""
    from neurodeploy.backends.hxtorch import _on_steps, madc_on_steps
    raw = torch.tensor([[[0.0], [100.0], [250.0]], [[10.0], [20.0], [30.0]]])  # samples at 0, 0.8 µs, 2 µs
    held = madc_on_steps(raw, steps=4, dt_s=1e-6, batch=1)
    assert held[:, 0].tolist() == [10.0, 20.0, 30.0, 30.0]
    assert _on_steps(torch.arange(5.0)[:, None], 3).flatten().tolist() == [0.0, 1.0, 2.0]
    assert _on_steps(torch.arange(2.0)[:, None], 3).flatten().tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("name", ["hxtorch:mock", "hxtorch"])
def test_classifies_like_mock_ideal(fake_hxtorch, deployment_file, samples, name):
    """Experiment(mock=True) runs the modules' forward functions (functional/aelif.py cuba_aelif_integration);
    Experiment(mock=False) the fake chip: both decide like mock:ideal (the quantised network, spike for spike)."""
    deployment = load_deployment(deployment_file)
    times, y = samples
    ideal = get_backend("mock:ideal").run(deployment, times)
    obs = get_backend(name).run(deployment, times)
    assert obs.spikes.shape == ideal.spikes.shape and obs.time_step_s == ideal.time_step_s
    decided, reference = readout_scores(deployment, obs).argmax(1), readout_scores(deployment, ideal).argmax(1)
    assert float((decided == reference).float().mean()) >= 0.97
    accuracy = lambda d: float((d == y).float().mean())  # noqa: E731
    assert abs(accuracy(decided) - accuracy(reference)) <= 0.02
    assert float((obs.spikes == ideal.spikes).float().mean()) >= 0.99
    if name == "hxtorch:mock":  # the same numbers, up to the requantised weights of low-gain neurons
        assert float((obs.membrane - ideal.membrane).abs().median()) < 0.5


def test_weight_changes_only_rewrite_synapse_weights(fake_hxtorch, deployment_file, samples):
    """Synapse.changed_since_last_run: an itl step changes weights only, so the modules (and hxtorch's routing)
    stay; a change of anything else builds them anew."""
    deployment = load_deployment(deployment_file)
    engine = get_backend("hxtorch:mock")
    engine.run(deployment, samples[0][:4])
    experiment = engine._built.experiment
    weight = deployment["synapse_weight"].copy()
    h, r, c = (int(i[0]) for i in np.nonzero(weight))
    weight[h, r, c] = 0
    changed = Deployment(meta=deployment.meta, arrays={**deployment.arrays, "synapse_weight": weight})
    engine.run(changed, samples[0][:4])
    assert engine._built.experiment is experiment
    assert engine._built.plan.projections[0].weight_lsb.sum() != 0
    leak = deployment["circuit_v_leak_cadc"] + 1.0
    engine.run(Deployment(meta=deployment.meta, arrays={**deployment.arrays, "circuit_v_leak_cadc": leak}),
               samples[0][:4])
    assert engine._built.experiment is not experiment


def test_itl_trains_through_hxtorch_mock(fake_hxtorch, trained_model, tmp_path):
    """itl needs only run(): one short epoch on hxtorch's mock mode."""
    from neurodeploy.workflows.itl import itl
    summary = itl(trained_model, tmp_path / "itl.pt", backend="hxtorch:mock", epochs=1, train_samples=50,
                  progress=False)
    assert (tmp_path / "itl.pt").is_file() and summary["history"]


def test_cli_runs_on_hxtorch_mock(fake_hxtorch, deployment_file):
    """``neurodeploy run --backend hxtorch:mock`` (the whole test set, in-process)."""
    from neurodeploy.cli import main
    result = CliRunner().invoke(main, ["run", str(deployment_file), "--backend", "hxtorch:mock", "--json"])
    assert result.exit_code == 0, result.output
    assert '"accuracy"' in result.stdout


def _recurrent(deployment: Deployment) -> Deployment:
    """The deployment with hidden neuron 0 also sent on the first input route's driver and label (hidden → hidden)."""
    route = deployment["input_routes"][0].copy()
    route[0] = 0
    routes = np.vstack([deployment["neuron_routes"], route[None]]).astype(np.int32)
    return Deployment(meta=deployment.meta, arrays={**deployment.arrays, "neuron_routes": routes})


@pytest.mark.parametrize("case", ["correlation", "madc in mock", "two madc neurons", "synaptic-input madc",
                                  "chip experiment", "spike-strength", "recurrent", "calibrate"])
def test_unsupported_constructs_are_clear_errors(fake_hxtorch, deployment_file, samples, case):
    """What hxtorch cannot express here is a BackendError with a fix, before anything runs."""
    deployment = load_deployment(deployment_file)
    times = samples[0][:2]
    engine = get_backend("hxtorch:mock" if case in ("madc in mock", "recurrent", "calibrate") else "hxtorch")
    with pytest.raises(BackendError) as info:
        if case == "correlation":
            engine.run(deployment, times, Recording(correlation=True))
        elif case == "madc in mock":
            engine.run(deployment, times, Recording(madc_neuron=np.zeros(2, np.int64)))
        elif case == "two madc neurons":  # modules/neuron.py: record_neuron_id, one per execution instance
            engine.run(deployment, times, Recording(madc_neuron=np.array([0, 1])))
        elif case == "synaptic-input madc":
            engine.run(deployment, times, Recording(madc_neuron=np.zeros(2, np.int64), madc_source="synaptic_input"))
        elif case == "chip experiment":
            from neurodeploy.calibration.experiment import chip_experiment
            from neurodeploy.targets.bss2.analog import ChipCodes
            from neurodeploy.targets.bss2.spec import load_bss2_spec
            spec = load_bss2_spec()
            engine.run(chip_experiment(spec, ChipCodes.from_arrays(deployment.arrays), 1e-5), np.zeros((1, 1)))
        elif case == "spike-strength":
            meta = {**deployment.meta, "delays": {"strategy": "spike-strength", "strength_bits": 3}}
            engine.run(dataclasses.replace(deployment, meta=meta), times)
        elif case == "recurrent":
            engine.run(_recurrent(deployment), times)
        else:
            from neurodeploy.targets.registry import get_target
            get_target("bss2").calibrate(engine, {}, progress=False)
    assert info.value.fix, info.value


def test_delayed_copies_are_the_input_population(deployment_file):
    """With delays the FPGA's delayed copies (targets/bss2/delays.py input_copy_times) feed InputNeuron; events are
    binned on the 8 ns clock, then the step (as the mock chip)."""
    from neurodeploy.backends.hxtorch_plan import input_spikes, plan_network
    from neurodeploy.targets.bss2.spec import load_bss2_spec
    plan = plan_network(load_deployment(deployment_file), load_bss2_spec())
    copies = np.array([[0, 0, 7], [0, 3, 7], [1, 2, 7]], np.int32)
    delayed = plan._replace(delay_copies=copies, input_size=3)
    times = np.array([[2e-3, np.nan], [5e-3, 1e-3]])
    dense = input_spikes(delayed, times)
    assert dense.shape == (plan.steps, 2, 3)
    assert [tuple(i) for i in np.argwhere(dense)] == [(2, 0, 0), (3, 1, 2), (5, 0, 1), (5, 1, 0), (8, 1, 1)]
    with pytest.raises(BackendError):
        input_spikes(plan, times)  # 2 channels given, the deployment has 5
