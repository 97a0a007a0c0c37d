"""Mapping onto BSS-2: design rules, quantisation, placement, routing, the deployment file."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from neurodeploy.deployment import load_deployment
from neurodeploy.errors import DoesNotFitError
from neurodeploy.graph import Graph, NeuronParameters, Population, Projection
from neurodeploy.modelfile import ModelFile, load_model, save_model
from neurodeploy.targets.bss2.mapper import map_to_bss2
from neurodeploy.targets.bss2.quantise import quantise_layer
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.workflows.map import check_model, map_model

SPEC = load_bss2_spec()
DEFAULT_NEURON = NeuronParameters(t_ref_s=2e-3)
ENCODING = {"kind": "time_to_spike", "t_early_s": 2e-3, "t_late_s": 26e-3, "t_bias_s": 2e-3, "duration_s": 40e-3}


def make_model(sizes, neuron=DEFAULT_NEURON, seed=0) -> ModelFile:
    """A yinyang-shaped model with arbitrary layer sizes and random weights."""
    pops = [Population("input", sizes[0], "input")]
    pops += [Population(f"h{i}", n, "lif", neuron) for i, n in enumerate(sizes[1:-1])]
    pops.append(Population("output", sizes[-1], "li", NeuronParameters()))
    projs = tuple(Projection(a.name, b.name) for a, b in zip(pops, pops[1:]))
    g = torch.Generator().manual_seed(seed)
    weights = {p.name: torch.randn(b.size, a.size, generator=g) for p, a, b in zip(projs, pops, pops[1:])}
    return ModelFile(graph=Graph(tuple(pops), projs), weights=weights, dt_s=1e-3, encoding=ENCODING,
                     dataset="yinyang", seed=seed)


def test_report_counts_resources(deployment_file, trained_model):
    report = load_deployment(deployment_file).meta["report"]
    model = load_model(trained_model)
    hidden = model.graph.populations[1].size
    assert report["circuits_used"] == hidden + 3 and report["circuits_available"] == 512
    assert report["synapses_used"] == 2 * (5 * hidden + hidden * 3)
    assert report["rows_available"] == 512 and 0 < report["rows_used"] <= 512
    assert [layer["name"] for layer in report["layers"]] == ["hidden", "output"]


def test_too_many_neurons_names_rule_needed_and_available():
    with pytest.raises(DoesNotFitError) as info:
        violations = map_to_bss2(make_model([5, 700, 3]), SPEC)[2]
        raise DoesNotFitError("bss2", violations)
    v = info.value.violations[0]
    # 700 + 3 readouts of 6 merged circuits
    assert (v.rule_id, v.layer, v.needed, v.available) == ("BSS2-NEURONS", "h0", 718, 512)
    assert "BSS2-NEURONS" in info.value.one_line() and "needs 718" in info.value.one_line()


def test_fan_in_beyond_merging_is_refused():
    violations = map_to_bss2(make_model([1100, 4, 3]), SPEC)[2]
    v = next(v for v in violations if v.rule_id == "BSS2-FANIN")
    assert (v.layer, v.needed, v.available) == ("h0", 1100, 1024)


def test_check_reports_every_violation(tmp_path):
    neuron = NeuronParameters(tau_mem_s=5.0, t_ref_s=2e-3)  # 5 ms on hardware: beyond 2000 us
    path = tmp_path / "bad.pt"
    save_model(make_model([5, 1100, 700, 3], neuron=neuron), path)  # 1100 inputs to the second layer
    result = check_model(path)
    rules = sorted({v["rule"] for v in result["violations"]})
    assert rules == ["BSS2-FANIN", "BSS2-NEURONS", "BSS2-TAU-MEM"]
    assert not result["fits"]
    with pytest.raises(DoesNotFitError):
        map_model(path, "bss2", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_merged_neurons_use_whole_columns_and_fit_large_fan_in(tmp_path):
    model = make_model([300, 20, 3])
    deployment, report, violations = map_to_bss2(model, SPEC)
    assert not violations
    assert report["layers"][0]["circuits_per_neuron"] == 4  # ceil(300/128) = 3, rounded to 2 columns
    circuits = deployment["neuron_circuits"][:20]
    assert np.all(circuits[:, 0] % 256 == circuits[:, 2] % 256 - 1)  # next column
    assert np.all(circuits[:, 1] == circuits[:, 0] + 256)  # top then bottom


def test_dead_circuits_are_never_used():
    ok = np.ones(512, bool)
    ok[[0, 256, 3, 300]] = False
    deployment, _, violations = map_to_bss2(make_model([5, 40, 3]), SPEC, circuit_ok=ok)
    used = deployment["neuron_circuits"]
    assert not violations and not np.isin(used[used >= 0], np.flatnonzero(~ok)).any()


def test_routing_respects_driver_and_label_rules(deployment_file):
    dep = load_deployment(deployment_file)
    labels, weights, modes = dep["synapse_label"], dep["synapse_weight"], dep["row_mode"]
    assert weights.max() <= 63 and labels.max() <= 63
    assert set(np.unique(modes[:, 0::2])) <= {0, 1} and set(np.unique(modes[:, 1::2])) <= {0, 2}
    routes = np.concatenate([dep["input_routes"], dep["neuron_routes"]])
    # at most 64 labels per driver, and a (hemisphere, driver, label) names one source
    keys = {tuple(r[1:]) for r in routes}
    assert len(keys) == len(routes)
    for h in range(2):
        for d in range(128):
            assert len({r[3] for r in routes if r[1] == h and r[2] == d}) <= 64


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.floats(0.01, 10.0), st.floats(0.9, 1.0),
       st.sampled_from(["per-neuron", "per-projection"]))
def test_quantisation_error_is_bounded(rows, cols, magnitude, quantile, mode):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(rows * 7 + cols)) * magnitude
    q = quantise_layer({"p": w}, 63, quantile, mode)
    assert q.weights["p"].abs().max() <= 63 and q.scale.shape == (rows,)
    step = q.scale[:, None].expand_as(w)
    inside = w.abs() <= 63 * step
    error = (q.dequantised()["p"] - w).abs()
    assert torch.all(error[inside] <= step[inside] / 2 + 1e-6)
    if mode == "per-projection":
        assert torch.all(q.scale == q.scale[0])
    if quantile == 1.0:
        largest = w.abs().amax(dim=1) if mode == "per-neuron" else w.abs().max().expand(rows)
        assert q.clipped_fraction == 0 and torch.allclose(largest, 63 * q.scale, rtol=1e-5)


def test_per_neuron_scale_shares_across_a_layers_projections():
    a, b = torch.tensor([[1.0], [0.1]]), torch.tensor([[0.5], [2.0]])
    q = quantise_layer({"a": a, "b": b}, 63)
    assert torch.allclose(q.scale, torch.tensor([1.0, 2.0]) / 63)


def test_time_step_rule():
    from neurodeploy.targets.bss2.rules import check_time_grid

    warnings = []
    assert check_time_grid(1e-3, SPEC, warnings) == [] and warnings == []
    assert check_time_grid(0.5e-3, SPEC, warnings) == [] and "62.50 clock cycles" in warnings[0]
    (violation,) = check_time_grid(4e-6, SPEC, [])  # 4 ns on the chip: finer than its 8 ns clock
    assert violation.rule_id == "BSS2-DT"


def test_check_runs_the_rules_that_need_a_mapping(trained_model, tmp_path):
    """`map --check` and `map` agree: a model whose weights need more synaptic gain than a circuit reaches is a
    BSS2-GAIN violation for both (the rule runs on the quantised, placed network)."""
    from neurodeploy.errors import DoesNotFitError
    from neurodeploy.modelfile import load_model, save_model
    from neurodeploy.workflows.map import check_model, map_model

    model = load_model(trained_model)
    model.weights["input->hidden"] = model.weights["input->hidden"] * 40  # far beyond the chip's gain range
    save_model(model, tmp_path / "loud.pt")
    checked = check_model(tmp_path / "loud.pt", "bss2")
    assert not checked["fits"] and {v["rule"] for v in checked["violations"]} == {"BSS2-GAIN"}
    with pytest.raises(DoesNotFitError, match="BSS2-GAIN"):
        map_model(tmp_path / "loud.pt", "bss2", tmp_path / "loud.npz")
    assert check_model(trained_model, "bss2")["fits"]
