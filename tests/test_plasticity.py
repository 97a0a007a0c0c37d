"""On-chip plasticity on the emulated chip: correlation sensors against the analytic pair traces, plasticity
programs between time slices (`neurodeploy learn`), and a program that changes nothing changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy.backends.base import Recording
from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.correlation import SensorSettings, pairings, trace
from neurodeploy.cli import main
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode
from neurodeploy.modelfile import load_model
from neurodeploy.errors import NeurodeployError
from neurodeploy.plasticity import CorrelationStdp, SliceObservables
from neurodeploy.validation.loading import load_checked_deployment
from neurodeploy.workflows.learn import learn
from neurodeploy.workflows.map import map_model

DT_S, SETTINGS = 1e-6, SensorSettings()


def train_of(steps: int, *times: int) -> torch.Tensor:
    spikes = torch.zeros(steps, 1, 1)
    spikes[list(times), 0, 0] = 1.0
    return spikes


@pytest.mark.parametrize("pre, post, causal, acausal", [
    ((2,), (5,), 3, None),  # pre 3 steps before post: causal e^{-3 dt/τ+}
    ((5,), (2,), None, 3),  # post 3 steps before pre: acausal e^{-3 dt/τ-}
    ((4,), (4,), 0, None),  # the same step counts as causal, Δt = 0
    ((1, 3), (5,), 2, None),  # nearest neighbour: the later pre spike sets the trace anew
    ((2,), (5, 7), (3, 5), None),  # each post spike reads the trace
])
def test_sensors_follow_the_analytic_pair_traces(pre, post, causal, acausal):
    c, a = pairings(train_of(10, *pre), train_of(10, *post), DT_S, SETTINGS)
    expected = lambda steps, tau: 0.0 if steps is None else sum(  # noqa: E731
        math.exp(-k * DT_S / tau) for k in (steps if isinstance(steps, tuple) else (steps,)))
    assert float(c) == pytest.approx(expected(causal, SETTINGS.tau_causal_s))
    assert float(a) == pytest.approx(expected(acausal, SETTINGS.tau_acausal_s))
    assert trace(train_of(4, 0), DT_S, 2e-6)[:, 0, 0].tolist() == pytest.approx([1, math.exp(-0.5), math.exp(-1),
                                                                                  math.exp(-1.5)])


def test_the_mock_reads_its_sensors_from_its_own_spikes(deployment_file):
    deployment = load_checked_deployment(deployment_file)
    times = encode(load_split("yinyang", "test")[0][:8], deployment.meta["encoding"])
    obs = MockChip("ideal").run(deployment, times, Recording(correlation=True))
    assert set(obs.correlation) == {"input->hidden"}  # the readout never spikes: no sensors to read
    causal, acausal = obs.correlation["input->hidden"]
    hidden = obs.spikes[..., :causal.shape[1]]
    assert causal.shape == acausal.shape == (8, hidden.shape[-1], 5) and causal.dtype == np.uint8
    assert causal.sum() > 0
    silent = hidden.sum(dim=0) == 0  # a neuron that never spikes reads nothing causal
    assert (causal[silent.numpy()] == 0).all()


def test_stdp_potentiates_causal_and_depresses_acausal_pairs_within_six_bits():
    program = CorrelationStdp(("p",), eta_plus=0.5, eta_minus=0.5)
    zeros, full = np.zeros((2, 3), np.int64), np.full((2, 3), 200)
    seen = lambda w, c, a: SliceObservables("p", w, c, a, np.zeros(2), np.zeros(3), 0)  # noqa: E731
    rng = np.random.default_rng(0)
    assert (program.update(seen(np.full((2, 3), 30), full, zeros), rng) == 63).all()  # +100, clipped at 63
    assert (program.update(seen(np.full((2, 3), 30), zeros, full), rng) == 0).all()
    assert (program.update(seen(np.full((2, 3), 30), zeros, zeros), rng) == 30).all()


def program_file(tmp_path, projections="[input->hidden]", **fields):
    text = "\n".join(["format: neurodeploy.plasticity", "version: 1", f"projections: {projections}"]
                     + [f"{k}: {v}" for k, v in fields.items()])
    (tmp_path / "program.yaml").write_text(text + "\n")
    return tmp_path / "program.yaml"


def test_a_program_that_changes_nothing_leaves_the_run_identical(excitatory_model, tmp_path):
    learned = tmp_path / "learned.pt"
    summary = learn(excitatory_model, program_file(tmp_path, rule="unchanged", slice_samples=20), learned,
                    backend="mock:ideal", train_samples=60)
    assert summary["slices"] == 3 and summary["synapses_rewritten"] == 0
    times = encode(load_split("yinyang", "test")[0][:50], load_model(learned).encoding)
    runs = []
    for model in (excitatory_model, learned):
        map_model(model, "bss2", tmp_path / "d.npz")
        runs.append(MockChip("ideal").run(load_checked_deployment(tmp_path / "d.npz"), times))
    assert torch.equal(runs[0].spikes, runs[1].spikes) and torch.equal(runs[0].membrane, runs[1].membrane)


def test_stdp_on_the_chip_changes_the_plastic_weights_only(excitatory_model, tmp_path):
    learned = tmp_path / "learned.pt"
    result = CliRunner().invoke(main, ["learn", str(excitatory_model), "--program",
                                       str(program_file(tmp_path, rule="stdp", eta_plus=0.5, eta_minus=0.2,
                                                        slice_samples=10)),
                                       "--backend", "mock:ideal", "--train-samples", "40", "-o", str(learned)])
    assert result.exit_code == 0, result.stderr
    before, after = load_model(excitatory_model), load_model(learned)
    assert not torch.equal(before.weights["input->hidden"], after.weights["input->hidden"])
    assert torch.equal(before.weights["hidden->output"], after.weights["hidden->output"])
    assert (after.weights["input->hidden"] >= 0).all() and after.mapping["trained_on"]["backend"] == "mock:ideal"


@pytest.mark.parametrize("fields, message", [
    ({"rule": "hebb"}, "rule"), ({"rule": "stdp", "eta_plus": -1}, "eta_plus"),
    ({"rule": "unchanged", "eta_plus": 0.1}, "takes no parameters"), ({"rule": "stdp", "colour": 1}, "colour"),
])
def test_bad_program_files_are_one_line_errors(excitatory_model, tmp_path, fields, message):
    program = str(program_file(tmp_path, **fields))
    result = CliRunner().invoke(main, ["learn", str(excitatory_model), "--program", program, "--backend", "mock:ideal",
                                       "-o", str(tmp_path / "out.pt")])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out.pt").exists()


def test_learn_refuses_what_a_program_cannot_rewrite(trained_model, excitatory_model, tmp_path):
    with pytest.raises(NeurodeployError, match="negative weights"):
        learn(trained_model, program_file(tmp_path, rule="stdp"), tmp_path / "o.pt", backend="mock:ideal")
    for projections, message in (("[hidden->output]", "non-spiking"), ("[nowhere]", "the model has")):
        with pytest.raises(NeurodeployError, match=message):
            learn(excitatory_model, program_file(tmp_path, projections, rule="stdp"), tmp_path / "o.pt",
                  backend="mock:ideal")
    with pytest.raises(NeurodeployError, match="no --calibration"):
        learn(excitatory_model, program_file(tmp_path, rule="stdp"), tmp_path / "o.pt", backend="mock:0")
