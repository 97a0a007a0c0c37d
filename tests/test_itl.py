"""In-the-loop training: measured values drive the update, alignment is measured, a killed run
resumes, a calibration of another chip is refused, and the trained chip travels with the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy.backends.base import Observations
from neurodeploy.backends.software import SoftwareBackend
from neurodeploy.calibration.calibrate import calibration_targets
from neurodeploy.targets.bss2.calibration_file import Calibration, save_calibration
from neurodeploy.cli import main
from neurodeploy.core.lif import li_sequence
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode, encode_dataset
from neurodeploy.deployment import load_deployment
from neurodeploy.itl.alignment import Alignment, LayerAlignment
from neurodeploy.itl.checkpoint import checkpoint_path
from neurodeploy.itl.forward import injected_forward, layer_neurons, measured_per_layer
from neurodeploy.itl.inject import inject
from neurodeploy.itl.measure import measure_alignment
from neurodeploy.modelfile import load_model
from neurodeploy.models.network import SpikingNetwork, decode, delay_one_step
from neurodeploy.targets.bss2.analog import nominal_codes
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run

SPEC = load_bss2_spec()


class DistortedReadout:
    """The software backend, but its readout samples are :math:`o_c + g_c\\,v[t - d]` (a chip's view)."""

    def __init__(self, gain: list[float], offset: float = 0.0, delay_steps: int = 0) -> None:
        self.inner, self.name = SoftwareBackend(), "distorted"
        self.gain, self.offset, self.delay_steps = torch.tensor(gain), offset, delay_steps

    def run(self, deployment, input_times_s, record=None) -> Observations:
        obs = self.inner.run(deployment, input_times_s)
        v = obs.membrane - obs.baseline
        for _ in range(self.delay_steps):
            v = delay_one_step(v)
        return obs._replace(membrane=self.offset + obs.baseline + self.gain * v)


def test_injection_forwards_the_measurement_and_backpropagates_through_the_model():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = inject(3 * x, torch.tensor([10.0, -4.0]))
    assert torch.equal(y, torch.tensor([10.0, -4.0]))
    (y * torch.tensor([1.0, 5.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([3.0, 15.0]))


def test_alignment_offset_scale_and_time_shift_are_measured(trained_model, deployment_file):
    model, deployment = load_model(trained_model), load_deployment(deployment_file)
    x, _ = load_split(model.dataset, "train")
    weights = {k: torch.as_tensor(v) for k, v in deployment.float_weights().items()}
    neurons = layer_neurons(deployment.meta, deployment["neuron_layer"])
    chip = DistortedReadout([20.0, 20.0, 20.0], offset=50.0, delay_steps=1)
    found = measure_alignment(chip, deployment, model.graph, weights, neurons, encode(x[:100], model.encoding),
                              encode_dataset(x[:100], model.encoding, model.dt_s), model.dt_s)
    readout = found.layers["output"]
    assert readout.time_shift_steps == 1 and readout.scale == pytest.approx(1 / 20, rel=1e-3)
    assert found.offset[neurons["output"]].tolist() == pytest.approx([50.0] * 3)
    assert readout.residual < 0.01
    assert "hidden" not in found.layers  # the software backend records no hidden membrane: nothing assumed


def test_the_update_uses_the_measured_readout_not_the_models(trained_model, deployment_file):
    """Gradient of the output weights = softmax error of the *measured* scores × the model's sensitivity."""
    model, deployment = load_model(trained_model), load_deployment(deployment_file)
    x, y = load_split(model.dataset, "train")
    x, labels = x[:40], torch.as_tensor(y[:40])
    spikes = encode_dataset(x, model.encoding, model.dt_s)
    chip = DistortedReadout([0.4, 1.0, 1.6])  # a chip whose class-0 readout is weak, class 2 strong
    obs = chip.run(deployment, encode(x, model.encoding))
    neurons = layer_neurons(deployment.meta, deployment["neuron_layer"])
    alignment = Alignment(torch.as_tensor(obs.baseline.new_zeros(len(deployment["neuron_layer"]))),
                          {"output": LayerAlignment(1.0, 0, 0.0, 0)})
    alignment.offset[neurons["output"]] = obs.baseline
    measured = measured_per_layer(obs, model.graph, neurons, alignment)
    weights = {k: v.clone().requires_grad_(True) for k, v in model.weights.items()}
    out = injected_forward(model.graph, weights, spikes, model.dt_s, measured)
    scores = decode(out.readout_v)
    torch.nn.functional.cross_entropy(5.0 * scores, labels).backward()

    v_measured = obs.membrane - obs.baseline
    assert torch.allclose(out.readout_v, v_measured)
    hidden = out.spikes["hidden"].detach()
    readout = model.graph.populations[-1].neuron.to_lif()
    sensitivity = li_sequence(delay_one_step(hidden), readout, model.dt_s)  # dv_c[t]/dW_cj, [T, B, hidden]
    peak = v_measured.argmax(dim=0)  # [B, C]: the measured trace's maximum decides the score
    error = torch.softmax(5.0 * v_measured.amax(0), 1) - torch.nn.functional.one_hot(labels, 3)
    expected = torch.stack([(5.0 * error[:, c, None] * sensitivity[peak[:, c], torch.arange(40)]).mean(0)
                            for c in range(3)])
    grad = weights["hidden->output"].grad
    assert torch.allclose(grad, expected, atol=1e-5)
    net = SpikingNetwork(model.graph, model.dt_s, weights=model.weights)  # what software alone would do
    torch.nn.functional.cross_entropy(5.0 * decode(net(spikes).readout_v), labels).backward()
    assert not torch.allclose(grad, net.weight("hidden->output").grad, atol=1e-3)


def _itl_command(model, out, epochs, *extra):
    return [sys.executable, "-m", "neurodeploy.cli", "itl", str(model), "--backend", "software", "-o", str(out),
            "--epochs", str(epochs), "--train-samples", "100", "--json", *extra]


def test_a_run_killed_with_sigkill_resumes_losing_at_most_one_epoch(trained_model, tmp_path):
    out = tmp_path / "itl.pt"
    ckpt = checkpoint_path(out)
    env = {**os.environ, "NEURODEPLOY_KERNEL": "twin"}
    process = subprocess.Popen(_itl_command(trained_model, out, 200), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while not ckpt.exists() and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not out.exists() and ckpt.exists()
    saved = torch.load(ckpt, weights_only=True)
    finished = int(saved["epoch"])
    assert finished >= 1 and len(saved["history"]) == finished
    resumed = subprocess.run(_itl_command(trained_model, out, finished + 1, "--resume"), env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed_from_epoch"] == finished and len(summary["history"]) == finished + 1
    assert summary["history"][:finished] == saved["history"]
    assert out.exists() and not ckpt.exists()
    assert load_model(out).mapping["trained_on"]["backend"] == "software"


def _calibration_of(chip: int, path) -> None:
    targets = calibration_targets(SPEC)
    full = lambda v: np.full(SPEC.total_circuits, float(v))  # noqa: E731
    codes = nominal_codes({"v_leak_cadc": full(targets["v_leak_cadc"]), "v_reset_cadc": full(targets["v_reset_cadc"]),
                           "v_th_cadc": full(targets["v_threshold_cadc"]), "tau_mem_s": full(targets["tau_mem_s"]),
                           "tau_syn_s": full(targets["tau_syn_s"]), "t_ref_s": full(targets["t_ref_s"]),
                           "synaptic_gain_cadc_per_lsb": full(2.0)}, SPEC)
    n = SPEC.total_circuits
    save_calibration(Calibration(chip=f"mock-chip-{chip}", backend=f"mock:{chip}", target="bss2", targets=targets,
                                 codes=codes, gain_slope=np.full(n, 0.01), gain_offset_code=np.zeros(n),
                                 residuals={}, success=np.ones(n, bool), spread={}, madc={"gain": 4.0, "offset": 0.0},
                                 seconds=0.0, measurement_rounds=0), path)


def test_training_with_a_calibration_of_another_chip_is_refused(trained_model, tmp_path):
    calibration, out = tmp_path / "mock-1.yaml", tmp_path / "itl.pt"
    _calibration_of(1, calibration)
    result = CliRunner().invoke(main, ["itl", str(trained_model), "--target", "bss2", "--backend", "mock:0",
                                       "--calibration", str(calibration), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "chip mock-chip-1" in result.stderr and "mock-chip-0" in result.stderr
    assert not out.exists() and not checkpoint_path(out).exists()


@pytest.mark.parametrize("args, message", [(["--epochs", "0"], "--epochs"),
                                           (["--train-samples", "0"], "--train-samples"),
                                           (["--resume"], "no checkpoint"),
                                           (["--learning-rate", "-1"], "learning-rate")])
def test_bad_input_is_one_line_and_writes_nothing(trained_model, tmp_path, args, message):
    out = tmp_path / "itl.pt"
    result = CliRunner().invoke(main, ["itl", str(trained_model), "--backend", "mock:0", "--uncalibrated", "-o",
                                       str(out), *args])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_chip_travels_with_the_model_into_map_and_run(trained_model, tmp_path):
    out = tmp_path / "itl.pt"
    summary = itl(trained_model, out, backend="mock:ideal", epochs=1, train_samples=100, progress=False)
    model = load_model(out)
    assert model.mapping["trained_on"]["chip"] == "mock-chip-ideal" == summary["chip"]
    assert set(model.mapping["alignment"]["layers"]) == {"hidden", "output"}
    deployment = tmp_path / "itl.npz"
    map_model(out, "bss2", deployment)
    mapped = load_deployment(deployment)
    assert mapped.meta["trained_on"]["chip"] == "mock-chip-ideal"
    for layer, scale in model.mapping["weight_scale"].items():  # the scales itl trained with, not new ones
        assert np.array_equal(mapped[f"weight_scale:{layer}"], scale.numpy())
    assert run(deployment, "mock:ideal")["warnings"] == []
    other = run(deployment, "mock:3")  # trained on another chip, and uncalibrated here: a warning each
    assert len(other["warnings"]) == 2 and "mock-chip-ideal" in other["warnings"][0]


def test_itl_refuses_models_it_would_simulate_wrongly(tmp_path):
    """An imported NIR model (forward Euler): one clean error, nothing written."""
    import nir

    from neurodeploy.errors import NeurodeployError
    from neurodeploy.interchange import import_nir
    from neurodeploy.modelfile import save_model

    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([5])}), "w": nir.Linear(weight=np.ones((4, 5))),
        "h": nir.CubaLIF(tau_syn=np.full(4, 5e-3), tau_mem=np.full(4, 1e-2), r=np.ones(4), v_leak=np.zeros(4),
                         v_threshold=np.ones(4)),
        "w2": nir.Linear(weight=np.ones((3, 4))),
        "o": nir.CubaLI(tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3)),
        "out": nir.Output(output_type={"output": np.array([3])})},
        edges=[("in", "w"), ("w", "h"), ("h", "w2"), ("w2", "o"), ("o", "out")])
    from neurodeploy.recipe import load_recipe

    model = import_nir(graph, dataset="yinyang", encoding=load_recipe("yinyang").encoding)
    path = tmp_path / "imported.pt"
    save_model(model, path)
    with pytest.raises(NeurodeployError, match="supports native models only"):
        itl(path, tmp_path / "out.pt", backend="mock:ideal", epochs=1, train_samples=50, progress=False)
    assert not (tmp_path / "out.pt").exists()
