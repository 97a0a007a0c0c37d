"""Recurrent (intra-layer) projections end to end: recipe, training with constraints, the model file,
BSS-2 mapping as on-chip routes, the mock, and in-the-loop training with the measured z(t-1)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.core.recurrent import RecurrentConstraints, project_, violation
from neurodeploy.data.encoding import bin_spike_times
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import FileKindError, RecipeError
from neurodeploy.graph import Graph
from neurodeploy.itl.forward import Measured, injected_forward
from neurodeploy.modelfile import load_model, read_model_dict
from neurodeploy.models.network import SpikingNetwork
from neurodeploy.recipe import load_recipe
from neurodeploy.validation.checksum import FIELD, digest
from neurodeploy.workflows.calibrate import calibrate_chip
from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run
from neurodeploy.workflows.train import train
from conftest import ROOT, dequantised, tiny_recipe

LOOP = "hidden->hidden"


def recurrent_recipe(folder, **recurrent):
    spec = {"init": {"mean": 0.0, "std": 0.5}, "mask": "hollow", "sign": "free", "learnable": True, **recurrent}
    return tiny_recipe(folder, **{"layers.0.recurrent": spec})


@pytest.fixture(scope="module")
def recurrent_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recurrent")
    train(recurrent_recipe(folder), folder / "model.pt", progress=False)
    return folder / "model.pt"


def test_the_recipe_key_builds_a_recurrent_projection_with_its_constraints(tmp_path):
    recipe = load_recipe(recurrent_recipe(tmp_path, sign="inhibitory", learnable=False))
    loop = recipe.graph.recurrent("hidden")
    assert loop is not None and loop.name == LOOP and loop.pre == loop.post == "hidden"
    assert recipe.recurrent[LOOP] == RecurrentConstraints("hollow", "inhibitory", False)
    assert recipe.init[LOOP] == {"mean": 0.0, "std": 0.5}
    shipped = load_recipe(ROOT / "models" / "yinyang_recurrent.yaml")
    assert shipped.graph.recurrent("hidden") is not None


@pytest.mark.parametrize("change, message", [
    ({"layers.0.recurrent": {"mask": "diagonal"}}, "layers[0].recurrent.mask"),
    ({"layers.0.recurrent": {"sign": "excitatory"}}, "layers[0].recurrent.sign"),
    ({"layers.0.recurrent": {"learnable": "yes"}}, "layers[0].recurrent.learnable"),
    ({"layers.0.recurrent": {"gain": 1}}, "unknown key(s) ['gain']"),
    ({"layers.0.recurrent": [1]}, "layers[0].recurrent"),
    ({"layers.1.recurrent": {}}, "readout layer"),
])
def test_bad_recurrent_blocks_are_named(tmp_path, change, message):
    with pytest.raises(RecipeError) as info:
        load_recipe(tiny_recipe(tmp_path, **change))
    assert message in info.value.message


@pytest.mark.parametrize("mask, sign", [("full", "free"), ("hollow", "free"), ("full", "inhibitory"),
                                        ("hollow", "inhibitory")])
def test_projection_keeps_every_combination(mask, sign):
    constraints = RecurrentConstraints(mask, sign)
    w = project_(torch.randn(7, 7), constraints)
    assert violation(w, constraints) is None
    assert bool((w.diagonal() == 0).all()) == (mask == "hollow")
    assert bool((w <= 0).all()) == (sign == "inhibitory")
    assert violation(torch.eye(3) - 2, RecurrentConstraints(mask, sign)) == (
        "has non-zero self-connections, but its mask is hollow" if mask == "hollow" else None)


def test_training_keeps_the_constraints_and_a_fixed_matrix_stays_fixed(tmp_path):
    train(recurrent_recipe(tmp_path, sign="inhibitory"), tmp_path / "inh.pt", progress=False)
    inhibitory = load_model(tmp_path / "inh.pt")
    w = inhibitory.weights[LOOP]
    assert (w.diagonal() == 0).all() and (w <= 0).all() and (w < 0).any()
    assert inhibitory.recurrent == {LOOP: {"mask": "hollow", "sign": "inhibitory", "learnable": True}}

    fixed_recipe = recurrent_recipe(tmp_path, learnable=False)
    train(fixed_recipe, tmp_path / "fixed.pt", progress=False)
    fixed = load_model(tmp_path / "fixed.pt")
    from neurodeploy.training.fit import initial_weights
    start = initial_weights(load_recipe(fixed_recipe), torch.Generator().manual_seed(0))[LOOP]
    assert torch.equal(fixed.weights[LOOP], start)


def test_the_lateral_term_reaches_the_fused_kernel_and_gets_a_gradient(recurrent_model):
    model = load_model(recurrent_model)
    net = SpikingNetwork(model.graph, model.dt_s, weights=model.weights,
                         recurrent={LOOP: RecurrentConstraints.from_dict(model.recurrent[LOOP])})
    spikes = (torch.rand(40, 8, model.graph.input.size) < 0.05).float()
    out = net(spikes)
    out.readout_v.sum().backward()
    assert float(net.weight(LOOP).grad.abs().sum()) > 0
    # without the recurrent matrix the hidden spikes differ: the feedback acts
    silent = {k: (torch.zeros_like(v) if k == LOOP else v) for k, v in model.weights.items()}
    assert not torch.equal(net(spikes, weights=silent).spikes["hidden"], out.spikes["hidden"])


def test_model_files_of_version_4_load_and_broken_constraints_are_refused(recurrent_model, tmp_path):
    data = read_model_dict(recurrent_model)
    assert data["version"] == 5 and data["recurrent"][LOOP]["mask"] == "hollow"
    old = {k: v for k, v in copy.deepcopy(data).items() if k not in ("recurrent", FIELD)}
    old["version"] = 4
    torch.save({**old, FIELD: digest(old)}, tmp_path / "v4.pt")
    assert load_model(tmp_path / "v4.pt").recurrent == {}

    broken = copy.deepcopy(data)
    del broken[FIELD]
    broken["weights"][LOOP].fill_diagonal_(0.5)
    torch.save({**broken, FIELD: digest(broken)}, tmp_path / "broken.pt")
    with pytest.raises(FileKindError, match="non-zero self-connections"):
        load_model(tmp_path / "broken.pt")
    stray = copy.deepcopy(data)
    del stray[FIELD]
    stray["recurrent"]["input->hidden"] = stray["recurrent"][LOOP]
    torch.save({**stray, FIELD: digest(stray)}, tmp_path / "stray.pt")
    with pytest.raises(FileKindError, match="names no recurrent projection"):
        load_model(tmp_path / "stray.pt")


def test_bss2_routes_the_feedback_on_chip_and_the_ideal_mock_matches_software(recurrent_model, tmp_path):
    report = map_model(recurrent_model, "bss2", tmp_path / "rec.npz")
    assert report["layers"][0]["fan_in"] == 5 + 24
    deployment = load_deployment(tmp_path / "rec.npz")
    hidden = np.flatnonzero(deployment["neuron_layer"] == 0)
    routes = deployment["neuron_routes"]
    # every hidden neuron is a source of on-chip routes onto the hidden layer and onto the readout
    assert set(routes[:, 0]) == set(hidden)
    assert report["bus_load"]["peak_events_per_step"] >= 1
    assert report["bus_load"]["capacity_per_step"] == 125  # 1 us hardware step / 8 ns
    times = np.random.default_rng(0).integers(0, 30, size=(256, 5)) * 1e-3  # on the step grid
    chip = MockChip().run(deployment, times)
    net = SpikingNetwork(Graph.from_dict(deployment.meta["graph"]), deployment.meta["dt_s"],
                         weights=dequantised(deployment))
    with torch.no_grad():
        software = net(bin_spike_times(times, 1e-3, 40)).spikes["hidden"]
    assert software.sum() > 0 and torch.equal(chip.spikes[..., hidden], software)  # spike for spike
    assert chip.counters["events_internal"] > 0


def test_injected_forward_uses_the_measured_spikes_in_the_lateral_term(recurrent_model):
    model = load_model(recurrent_model)
    spikes = (torch.rand(40, 4, model.graph.input.size) < 0.05).float()
    measured_z = (torch.rand(40, 4, 24) < 0.1).float()
    weights = {k: v.clone().requires_grad_(True) for k, v in model.weights.items()}
    out = injected_forward(model.graph, weights, spikes, model.dt_s, {"hidden": Measured(None, measured_z)})
    assert torch.equal(out.spikes["hidden"], measured_z)
    out.readout_v.sum().backward()
    assert float(weights[LOOP].grad.abs().sum()) > 0
    # what the readout sees is the chip's spikes, so another lateral matrix changes only the gradient path
    other = {k: (v * 0 if k == LOOP else v).detach() for k, v in weights.items()}
    again = injected_forward(model.graph, other, spikes, model.dt_s, {"hidden": Measured(None, measured_z)})
    assert torch.allclose(again.readout_v, out.readout_v.detach())


def test_train_map_run_on_a_calibrated_chip_then_itl(recurrent_model, tmp_path):
    calibration = tmp_path / "mock-0.yaml"
    calibrate_chip("mock:0", output=calibration, progress=False)
    map_model(recurrent_model, "bss2", tmp_path / "rec0.npz", calibration=calibration)
    on_chip = run(tmp_path / "rec0.npz", "mock:0")
    assert on_chip["accuracy"] > 0.5
    summary = itl(recurrent_model, tmp_path / "itl.pt", backend="mock:0", calibration=calibration, epochs=1,
                  train_samples=300, progress=False)
    assert summary["history"][0]["synapses_rewritten"] > 0
    tuned = load_model(tmp_path / "itl.pt")
    assert tuned.recurrent == load_model(recurrent_model).recurrent
    assert (tuned.weights[LOOP].diagonal() == 0).all()  # hollow, as trained


def test_fused_and_twin_paths_agree_on_a_recurrent_network(recurrent_model):
    """Both paths of the LIF loop run the recurrent layer (the fused one event-driven); outputs and the
    recurrent matrix's gradient agree."""
    from neurodeploy.core.fused import set_kernel_mode

    model = load_model(recurrent_model)
    spikes = (torch.rand(40, 8, model.graph.input.size, generator=torch.Generator().manual_seed(3)) < 0.05).float()
    results = {}
    try:
        for path in ("twin", "fused"):  # "fused": an extension that does not build is an error
            set_kernel_mode(path)
            net = SpikingNetwork(model.graph, model.dt_s, weights=model.weights)
            out = net(spikes)
            out.readout_v.sum().backward()
            results[path] = (out.spikes["hidden"].detach(), out.readout_v.detach(), net.weight(LOOP).grad.clone())
    finally:
        set_kernel_mode(None)
    (z0, v0, g0), (z1, v1, g1) = results["twin"], results["fused"]
    assert torch.equal(z0, z1) and torch.allclose(v0, v1, atol=1e-5) and torch.allclose(g0, g1, atol=1e-4)


def test_bus_load_counts_events_per_padi_bus_and_step():
    from neurodeploy.targets.bss2.bus_load import bus_load_warning, peak_bus_load
    from neurodeploy.targets.bss2.place import Placement
    from neurodeploy.targets.bss2.spec import load_bss2_spec

    spec = load_bss2_spec()
    placement = Placement(np.arange(4).reshape(4, 1), np.zeros(4, int), {"h": 0})
    # (source neuron, hemisphere, driver, label): drivers 0-31 are bus 0, 32-63 bus 1
    routes = np.array([(0, 0, 0, 0), (1, 0, 1, 0), (2, 0, 2, 0), (2, 0, 40, 0), (3, 1, 0, 0)], np.int32)
    spikes = torch.zeros(5, 2, 4)
    spikes[3, 1, :3] = 1.0  # neurons 0-2 together: three events on bus 0 of hemisphere 0 in one step
    spikes[4, 0, 3] = 1.0
    assert peak_bus_load(routes, {"h": spikes}, placement, spec) == (3, 0, 0)
    assert bus_load_warning((3, 0, 0), 125) is None
    assert bus_load_warning((3, 0, 0), 2).startswith("BSS2-BUS-LOAD: up to 3 on-chip events in one step")
