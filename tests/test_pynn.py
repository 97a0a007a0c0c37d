"""``export --format pynn`` and the ``pynn:brian2`` backend: the script runs on pyNN.brian2, the backend agrees
with the ideal mock chip, bad input is a one-line error with nothing written (docs/pynn.md)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pyNN.brian2  # noqa: F401  (in the test extra: a missing PyNN fails here, it is not skipped)
import pytest
from click.testing import CliRunner

from conftest import dequantised
from neurodeploy.backends.base import readout_scores
from neurodeploy.backends.registry import get_backend
from neurodeploy.cli import main
from neurodeploy.data.datasets import load_data
from neurodeploy.data.encoding import encode
from neurodeploy.deployment import load_deployment
from neurodeploy.interchange.pynn_export import weight_factor
from neurodeploy.interchange.pynn_runtime import build, run_samples
from neurodeploy.backends.pynn import deployment_weights, pynn_simulator
from neurodeploy.interchange.pynn_export import network_description, source_times_ms
from neurodeploy.graph import Graph
from test_json_schemas import documented


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_weight_factor_matches_the_mean_current_of_a_step():
    """The exponential current w_nA e^{-t/τ} has the staircase's mean over the first step (module docstring)."""
    dt, tau = 1e-3, 5e-3
    f = weight_factor(dt, tau)
    mean_first_step = f * tau / dt * (1 - math.exp(-dt / tau))
    assert mean_first_step == pytest.approx(1.0)


def test_deployment_weights_are_the_chips(deployment_file):
    deployment = load_deployment(deployment_file)
    ours = deployment_weights(deployment)
    for name, w in dequantised(deployment).items():
        np.testing.assert_allclose(ours[name], w.numpy(), rtol=1e-6)


def test_exported_script_runs_on_brian2_and_prints_an_accuracy(deployment_file, tmp_path):
    script = tmp_path / "net.py"
    result = cli("export", str(deployment_file), "--format", "pynn", "--samples", "12", "-o", str(script), "--json")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout.strip().splitlines()[-1])
    assert obj["format"] == "pynn" and obj["source"] == "deployment" and obj["samples"] == 12
    required, optional = documented()["export"]
    assert required <= set(obj) and set(obj) - required - optional == set()
    text = script.read_text()
    assert "import neurodeploy" not in text and "from neurodeploy" not in text  # self-contained
    assert text.count("import pyNN.brian2 as sim") == 1
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"accuracy \d+\.\d% on 12 samples", run.stdout), run.stdout


def test_the_script_of_a_model_file_is_written(trained_model, tmp_path):
    script = tmp_path / "model.py"
    result = cli("export", str(trained_model), "--format", "pynn", "--samples", "3", "-o", str(script))
    assert result.exit_code == 0, result.output
    assert "(model)" in script.read_text().splitlines()[1]


def test_backend_agrees_with_the_ideal_mock_chip(deployment_file):
    deployment = load_deployment(deployment_file)
    x, y = load_data(deployment.meta["dataset"], None)
    times = encode(x[:40], deployment.meta["encoding"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mock = get_backend("mock:ideal").run(deployment, times)
        pynn = get_backend("pynn:brian2").run(deployment, times)
    assert pynn.spikes.shape == mock.spikes.shape
    counts_mock, counts_pynn = float(mock.spikes.sum()), float(pynn.spikes.sum())
    assert abs(counts_pynn - counts_mock) <= 0.1 * counts_mock + 5
    same = (readout_scores(deployment, mock).argmax(1) == readout_scores(deployment, pynn).argmax(1)).float().mean()
    assert float(same) >= 0.9


def test_bulk_connections_equal_pynns_own(deployment_file):
    """The backend's bulk connection (pyNN.brian2 only) gives the same spikes and membranes as PyNN's own call."""
    deployment = load_deployment(deployment_file)
    meta = deployment.meta
    net = network_description(Graph.from_dict(meta["graph"]), deployment_weights(deployment), meta["dt_s"],
                              meta["encoding"], "max_over_time")
    x, _ = load_data(meta["dataset"], None)
    times = source_times_ms(encode(x[:3], meta["encoding"]), net)
    results = []
    for bulk in (False, True):
        sim = pynn_simulator("brian2")
        sim.setup(timestep=net["timestep_ms"], min_delay=net["timestep_ms"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(run_samples(sim, net, build(sim, net, 3, bulk=bulk), times))
        sim.end()
    (spikes_a, v_a), (spikes_b, v_b) = results
    assert all(np.array_equal(spikes_a[k], spikes_b[k]) for k in spikes_a)
    np.testing.assert_allclose(v_a, v_b, atol=1e-6)


def test_run_verb_on_pynn(deployment_file):
    result = cli("run", str(deployment_file), "--backend", "pynn:brian2", "--data", "test", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["backend"] == "pynn:brian2"


@pytest.mark.parametrize("args, message", [
    (["--format", "vhdl"], "unknown export format 'vhdl'"),
    (["--format", "pynn", "--lossy"], "--lossy applies to --format nir"),
    (["--format", "pynn", "--samples", "0"], "--samples"),
])
def test_bad_export_options_are_one_line_errors(trained_model, tmp_path, args, message):
    output = tmp_path / "out.py"
    result = cli("export", str(trained_model), "-o", str(output), *args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and not output.exists()


def test_a_xylo_deployment_is_refused(xylo_file, tmp_path):
    output = tmp_path / "x.py"
    result = cli("export", str(xylo_file), "--format", "pynn", "-o", str(output))
    assert result.exit_code == 2 and "target 'xylo'" in result.output and not output.exists()
    assert len(result.output.strip().splitlines()) == 1
    run = cli("run", str(xylo_file), "--backend", "pynn:brian2")
    assert run.exit_code == 2 and "target 'xylo'" in run.output


def test_an_unknown_pynn_simulator_is_refused(deployment_file):
    result = cli("run", str(deployment_file), "--backend", "pynn:nest")
    assert result.exit_code == 2 and "unknown PyNN simulator 'nest'" in result.output


@pytest.mark.slow
def test_backend_accuracy_within_one_point_of_the_mock_on_the_test_split(deployment_file):
    deployment = load_deployment(deployment_file)
    x, y = load_data(deployment.meta["dataset"], None)
    times = encode(x[:300], deployment.meta["encoding"])
    scores = {}
    for name in ("mock:ideal", "pynn:brian2"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs = get_backend(name).run(deployment, times)
        scores[name] = float((readout_scores(deployment, obs).argmax(1).numpy() == y[:300]).mean())
    assert abs(scores["pynn:brian2"] - scores["mock:ideal"]) <= 0.01 + 1e-9, scores
