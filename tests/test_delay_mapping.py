"""Delay realisations on BSS-2: taps, each strategy's cost, the mock's execution, design rules, file versions, CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.delay_lines import fpga_delayed_times, input_route_currents
from neurodeploy.backends.software import SoftwareBackend
from neurodeploy.cli import main
from neurodeploy.delay_experiments import LearningResult, experiment_model, spike_times_on_chip
from neurodeploy.deployment import load_deployment, save_deployment
from neurodeploy.errors import FileKindError, NeurodeployError
from neurodeploy.graph import Graph, NeuronParameters, Population, Projection
from neurodeploy.modelfile import ModelFile, save_model
from neurodeploy.targets.bss2.delay_rules import (rule_delay_capacity, rule_delay_labels, rule_delay_range,
                                                  rule_delay_rows, rule_delay_source)
from neurodeploy.targets.bss2.delays import plan_delays, strength_factor, synapse_taps
from neurodeploy.targets.bss2.mapper import map_to_bss2
from neurodeploy.targets.bss2.spec import BSS2Spec, load_bss2_spec

SPEC = load_bss2_spec()
# Output 1 and 2 share input 0's delay (5.5: two equal taps at 5 and 6), differ on input 1, share input 2.
DELAYS = [[5.5, 10.0, 20.0], [5.5, 12.0, 20.0]]


def _model(delays=DELAYS, max_delay=60, sigma=0.23) -> ModelFile:
    result = LearningResult([], [], [], delays, [])
    model = experiment_model(result, [0, 5, 10], 1.2, max_delay, 100)
    model.delay_sigma_steps["input->output"] = sigma
    return model


def _cost(strategy: str) -> dict:
    deployment, report, violations = map_to_bss2(_model(), SPEC, delays=strategy)
    assert not violations
    return report["delays"][strategy], deployment


def test_taps_per_strategy():
    assert synapse_taps(5.4, 0.23, 60, "gradient-only") == [(5, 1.0, 7)]
    multi = synapse_taps(5.5, 0.23, 60, "multi-synapse")
    assert [t.delay_steps for t in multi] == [5, 6] and sum(t.weight_fraction for t in multi) == pytest.approx(1.0)
    strength = synapse_taps(5.3, 1.0, 60, "spike-strength")
    codes = {t.delay_steps: t.level for t in strength}
    assert codes[5] == 7 and 0 <= min(codes.values()) < 7  # the centre at full strength, neighbours weaker
    assert all(t.weight_fraction == strength[0].weight_fraction for t in strength)  # one synapse weight
    assert strength_factor(np.array([0, 7])).tolist() == [0.125, 1.0]


def test_gradient_only_cost():
    cost, deployment = _cost("gradient-only")
    # copies (channel, delay): (0,6) (1,10) (1,12) (2,20); channel 1 needs two events per spike
    assert cost["fpga_copies"] == 4 and cost["events_per_spike"] == 2  # (per hemisphere, if split: one each)
    assert cost["rows_per_neuron"] == {"output": 6} and cost["labels_available"] == 64
    assert sorted(deployment["delay_copies"][:, 1].tolist()) == [6, 10, 12, 20]


def test_multi_synapse_cost():
    cost, deployment = _cost("multi-synapse")
    # input 0's two taps are two synapses (slots) per neuron: 3 inputs x 2 taps = 6 slots = 12 rows
    assert cost["taps_per_synapse"] == {"output": 2} and cost["rows_per_neuron"] == {"output": 12}
    # input 0 sends both taps to every hemisphere that holds one of the outputs
    hemispheres = len(set((deployment["neuron_circuits"][:, 0] // 256).tolist()))
    assert cost["fpga_copies"] == 5 and cost["events_per_spike"] == 2 * hemispheres
    assert (deployment["delay_copies"][:, 2] == 7).all()


def test_spike_strength_cost_and_labels():
    cost, deployment = _cost("spike-strength")
    assert cost["rows_per_neuron"] == {"output": 6} and cost["labels_available"] == 8
    hemispheres = len(set((deployment["neuron_circuits"][:, 0] // 256).tolist()))
    assert cost["events_per_spike"] == 2 * hemispheres  # input 0: a burst of two events (taps 5 and 6)
    routes = deployment["input_routes"]
    copies = deployment["delay_copies"]
    channel0 = routes[(copies[routes[:, 0], 0] == 0) & (routes[:, 1] == routes[0, 1])]
    assert len(channel0) == 2 and len(set(channel0[:, 3] & 7)) == 1  # one address, two events
    assert (routes[:, 3] >> 3 == copies[routes[:, 0], 2]).all()  # strength code in the top 3 label bits
    assert deployment.meta["delays"] == {**deployment.meta["delays"], "address_bits": 3, "strength_bits": 3}


def test_spike_strength_splits_a_slot_when_labels_run_out():
    delays = [[float(2 * i + 1), 0.0, 0.0] for i in range(12)]  # 12 distinct delays on input 0
    model = _model(delays)
    model.weights["input->output"] = torch.ones(12, 3)
    plan = plan_delays(model, "spike-strength", 6, 3)
    assert plan.layers["output"].weights.shape[1] == 3 + 1  # input 0 needs 12 > 8 labels: a second slot
    assert not list(rule_delay_labels(plan))
    assert list(rule_delay_labels(plan, reserved_labels=8))[0].rule_id == "BSS2-DELAY-LABELS"


def test_strength_decoding_scales_the_charge():
    weight = np.zeros((2, 256, 256))
    label = np.zeros((2, 256, 256), np.int64)
    row_mode = np.zeros((2, 256), np.int64)
    row_mode[0, 0] = 1
    weight[0, 0, 3] = 40
    label[0, 0, 3] = 5
    routes = np.array([[0, 0, 0, 5 | (3 << 3)], [1, 0, 0, 5 | (7 << 3)], [2, 0, 0, 4 | (7 << 3)]])
    meta = {"delays": {"strength_bits": 3, "address_bits": 3}}
    currents = input_route_currents(routes, weight, {"synapse_label": label, "row_mode": row_mode}, meta)
    assert currents[0, 3] == 40 * 4 / 8 and currents[1, 3] == 40 and currents[2, 3] == 0


def test_fpga_delay_lines_shift_each_copy():
    deployment = _cost("gradient-only")[1]
    times = np.array([[0.0, 0.005, 0.010]])
    copies = deployment["delay_copies"]
    shifted = fpga_delayed_times(deployment, times)
    assert shifted.shape == (1, len(copies))
    assert np.allclose(shifted[0], times[0, copies[:, 0]] + copies[:, 1] * 1e-3)


@pytest.mark.parametrize("strategy", ["multi-synapse", "spike-strength", "gradient-only"])
def test_mock_follows_software_per_strategy(strategy):
    result = LearningResult([], [], [], [[30.0, 26.4, 21.7], [50.2, 46.0, 41.5]], [])
    times = spike_times_on_chip(result, strategy)
    assert None not in times["chip"] and None not in times["software"]
    for mock, software in zip(times["chip"], times["software"]):
        assert abs(mock - software) <= 1


def test_the_seeds_experiments_on_a_calibrated_non_ideal_chip(tmp_path):
    """(b) runs on calibrated mock:0 near its software spike times; (a) and (c) need delays beyond the FPGA's."""
    from neurodeploy.delay_experiments import DELAYS_A, fits_on_chip
    from neurodeploy.workflows.calibrate import calibrate_chip

    calibrate_chip("mock:0", output=tmp_path / "mock-0.yaml", progress=False)
    result = LearningResult([], [], [], [[30.0, 26.4, 21.7], [50.2, 46.0, 41.5]], [])
    times = spike_times_on_chip(result, "gradient-only", "mock:0", str(tmp_path / "mock-0.yaml"))
    assert all(abs(chip - software) <= 2 for chip, software in zip(times["chip"], times["software"]))
    assert len(times["membrane"]) == 100 and max(max(row) for row in times["membrane"]) > 0.3
    assert any(v.startswith("BSS2-DELAY-RANGE") for v in fits_on_chip(DELAYS_A, 300, 450, "gradient-only"))
    assert fits_on_chip(result.delays, 60, 100, "gradient-only") == []


def test_gradient_only_mock_equals_hardened_software():
    model = _model([[30.4, 26.4, 21.7], [50.2, 46.0, 41.5]])
    deployment, _, _ = map_to_bss2(model, SPEC, delays="gradient-only")
    hard = copy.deepcopy(deployment)
    hard.meta["delays"]["sigma_steps"] = {"input->output": 0.0}
    times = np.array([[0.0, 0.005, 0.010]])
    assert torch.equal(MockChip("ideal").run(deployment, times).spikes, SoftwareBackend().run(hard, times).spikes)


def test_rule_delay_range_and_capacity():
    plan = plan_delays(_model([[250.0, 1.0, 1.0], [1.0, 1.0, 1.0]], max_delay=300), "gradient-only", 6, 3)
    assert not list(rule_delay_range(plan, 1e-3, SPEC))  # 250 us < 262 us
    plan = plan_delays(_model([[290.0, 1.0, 1.0], [1.0, 1.0, 1.0]], max_delay=300), "gradient-only", 6, 3)
    violation = list(rule_delay_range(plan, 1e-3, SPEC))[0]
    assert violation.rule_id == "BSS2-DELAY-RANGE" and "290 us" in violation.one_line()
    small = BSS2Spec(SPEC.name, "", copy.deepcopy(dict(SPEC.raw)))
    small.raw["delays"]["off_chip"]["copies"] = 2
    assert list(rule_delay_capacity(plan, small))[0].rule_id == "BSS2-DELAY-CAPACITY"
    assert not list(rule_delay_capacity(plan, SPEC))


def test_rule_delay_rows():
    plan = plan_delays(_model(), "multi-synapse", 6, 3)
    tiny = BSS2Spec(SPEC.name, "", copy.deepcopy(dict(SPEC.raw)))
    tiny.raw["synapse"]["signed_inputs_per_circuit"] = 2
    tiny.raw["merging"]["max_circuits_per_neuron"] = 2
    violation = list(rule_delay_rows(plan, tiny))[0]
    assert violation.rule_id == "BSS2-DELAY-ROWS" and violation.needed == 6 and violation.available == 4
    assert not list(rule_delay_rows(plan_delays(_model(), "gradient-only", 6, 3), tiny))  # 3 slots fit


def test_rule_delay_source_and_map_refuses():
    neuron = NeuronParameters()
    graph = Graph((Population("input", 2, "input"), Population("hidden", 2, "lif", neuron),
                   Population("out", 2, "li", neuron)),
                  (Projection("input", "hidden", 4), Projection("hidden", "out", 4)))
    assert [v.rule_id for v in rule_delay_source(graph)] == ["BSS2-DELAY-SOURCE"]
    model = ModelFile(graph=graph, weights={"input->hidden": torch.ones(2, 2), "hidden->out": torch.ones(2, 2)},
                      dt_s=1e-3, encoding=_model().encoding, dataset="temporal_patterns", seed=0,
                      delays={"input->hidden": torch.ones(2, 2), "hidden->out": torch.ones(2, 2)},
                      delay_sigma_steps={"input->hidden": 0.23, "hidden->out": 0.23})
    deployment, _, violations = map_to_bss2(model, SPEC, delays="multi-synapse")
    assert deployment is None and [v.rule_id for v in violations] == ["BSS2-DELAY-SOURCE"]


def test_map_without_delays_refuses_a_strategy(trained_model):
    from neurodeploy.workflows.map import map_model

    with pytest.raises(NeurodeployError, match="no delays"):
        map_model(trained_model, "bss2", None, delays="multi-synapse")


def test_deployment_version_3_and_reading_version_1(tmp_path, deployment_file):
    deployment = load_deployment(deployment_file)
    assert "delays" not in deployment.meta
    path = tmp_path / "d.npz"
    save_deployment(deployment, path)
    archive = dict(np.load(path, allow_pickle=False))
    meta = json.loads(archive["meta"].tobytes())
    assert meta["version"] == 3
    old = {k: v for k, v in meta.items() if k != "checksum"}  # versions 1 and 2 had no checksum
    for version, readable in ((1, True), (4, False)):
        archive["meta"] = np.frombuffer(json.dumps({**old, "version": version}).encode(), np.uint8)
        np.savez(path, **archive)
        if readable:
            assert load_deployment(path).meta["version"] == 1
        else:
            with pytest.raises(FileKindError, match="version 4"):
                load_deployment(path)


def _task_model() -> ModelFile:
    """models/delay_task.yaml's network with random weights and delays (not trained)."""
    from neurodeploy.recipe import load_recipe
    from tests.conftest import ROOT

    recipe = load_recipe(ROOT / "models" / "delay_task.yaml")
    generator = torch.Generator().manual_seed(1)
    weights = {p.name: torch.randn(recipe.graph.population(p.post).size, recipe.graph.population(p.pre).size,
                                   generator=generator) for p in recipe.graph.projections}
    delays = {"input->hidden": 32 * torch.rand(weights["input->hidden"].shape, generator=generator)}
    return ModelFile(graph=recipe.graph, weights=weights, dt_s=recipe.dt_s, encoding=recipe.encoding,
                     dataset=recipe.dataset, seed=1, delays=delays, delay_sigma_steps={"input->hidden": 0.23})


def test_cli_map_json_reports_delay_cost_and_refuses_bad_input(tmp_path, trained_model):
    model_path = tmp_path / "delayed.pt"
    save_model(_task_model(), model_path)
    runner = CliRunner()
    out = tmp_path / "d.npz"
    result = runner.invoke(main, ["map", str(model_path), "--delays", "spike-strength", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cost = json.loads(result.output)["delays"]["spike-strength"]
    assert {"rows", "labels", "events_per_spike"} <= set(cost)
    assert load_deployment(out).meta["delays"]["strategy"] == "spike-strength"
    refused = tmp_path / "refused.npz"
    result = runner.invoke(main, ["map", str(trained_model), "--delays", "gradient-only", "-o", str(refused)])
    assert result.exit_code == 2 and "no delays" in result.output and len(result.output.strip().splitlines()) == 1
    assert not refused.exists()


def test_itl_refuses_an_unknown_realisation_of_delays(tmp_path):
    model_path, out = tmp_path / "delayed.pt", tmp_path / "itl.pt"
    save_model(_task_model(), model_path)
    result = CliRunner().invoke(main, ["itl", str(model_path), "--backend", "mock:ideal", "-o", str(out),
                                       "--delays", "teleport", "--train-samples", "100"])
    assert result.exit_code == 2 and "unknown delay strategy 'teleport'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_kernel_fidelity_per_strategy():
    # delays half a step off the grid: the trained kernel splits the weight over two taps
    errors = {s: plan_delays(_model([[5.5, 10.5, 20.5], [7.5, 12.5, 30.5]]), s, 6, 3).kernel_l1_error
              for s in ("multi-synapse", "spike-strength", "gradient-only")}
    assert errors["multi-synapse"] < 1e-3  # every tap above 1/16 of the peak is realised
    assert errors["spike-strength"] < 0.05  # 8 strength levels
    assert errors["gradient-only"] == pytest.approx(1.0, abs=1e-3)  # all weight on one of the two taps
