"""Shared sources (targets/bss2/lower.py): a projection whose sources all act alike, such as a uniform lateral
inhibition -w·11ᵀ, takes one synapse driver and one label instead of one per source. Seed 003's network (64
pixels, 400 excitatory neurons inhibiting each other) fits one chip this way."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.software import SoftwareBackend
from neurodeploy.deployment import Deployment, load_deployment, save_deployment
from neurodeploy.errors import DoesNotFitError
from neurodeploy.graph import Graph, NeuronParameters, Population, Projection
from neurodeploy.modelfile import ModelFile
from neurodeploy.targets.bss2.mapper import map_to_bss2
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.targets.registry import get_target
from neurodeploy.validation.rules import Invalid

SPEC = load_bss2_spec()
ENCODING = {"kind": "latency", "t_min_s": 0.0, "t_max_s": 0.05, "threshold": 0.0, "duration_s": 0.1}


def inhibited_layer(inputs: int, neurons: int, w_inh: float = 0.5, w_in: float = 0.4, seed: int = 0) -> ModelFile:
    """``inputs`` → ``neurons`` LIF with non-negative input weights and a uniform lateral inhibition (self included)."""
    pops = (Population("input", inputs, "input"), Population("exc", neurons, "lif", NeuronParameters(t_ref_s=2e-3)))
    projections = (Projection("input", "exc"), Projection("exc", "exc", recurrent=True))
    g = torch.Generator().manual_seed(seed)
    weights = {"input->exc": w_in * torch.rand(neurons, inputs, generator=g),
               "exc->exc": torch.full((neurons, neurons), -w_inh)}
    return ModelFile(graph=Graph(pops, projections), weights=weights, dt_s=1e-3, encoding=ENCODING,
                     dataset="digits", seed=seed)


def _saved(deployment: Deployment, tmp_path) -> Deployment:
    save_deployment(deployment, tmp_path / "d.npz")
    return load_deployment(tmp_path / "d.npz")


def test_seed_003s_network_fits_one_chip_with_one_inhibitory_driver_per_hemisphere(tmp_path):
    deployment, report, violations = map_to_bss2(inhibited_layer(64, 400), SPEC)
    assert not violations
    assert report["layers"][0]["fan_in"] == 65 and report["circuits_used"] == 400
    assert deployment.meta["shared_sources"] == {"exc": ["exc"]}
    routes = deployment["neuron_routes"]
    assert len(routes) == 400 * 2  # every neuron to its hemisphere's and the other's inhibitory driver
    assert len(np.unique(routes[:, 1:], axis=0)) == 2  # one (driver, label) per hemisphere
    get_target("bss2").validate_deployment(_saved(deployment, tmp_path))


def test_a_matrix_whose_sources_differ_is_not_shared():
    model = inhibited_layer(64, 400)
    model.weights["exc->exc"][3, 7] = -0.25
    with pytest.raises(DoesNotFitError):
        deployment, _, violations = map_to_bss2(model, SPEC)
        raise DoesNotFitError("bss2", violations)


def test_the_validator_refuses_a_label_two_unshared_sources_share(tmp_path):
    deployment = _saved(map_to_bss2(inhibited_layer(64, 40), SPEC)[0], tmp_path)
    get_target("bss2").validate_deployment(deployment)
    damaged = copy.deepcopy(deployment)
    damaged.arrays["input_routes"][1, 1:] = damaged.arrays["input_routes"][0, 1:]  # channel 1 aliases channel 0
    with pytest.raises(Invalid, match="could not tell them apart"):
        get_target("bss2").validate_deployment(damaged)
    undeclared = copy.deepcopy(deployment)
    del undeclared.meta["shared_sources"]
    with pytest.raises(Invalid, match="could not tell them apart"):
        get_target("bss2").validate_deployment(undeclared)


def test_the_ideal_chip_runs_the_shared_inhibition_as_software_does():
    """Every spike of the layer inhibits every neuron one step later, on the chip as in the float network."""
    deployment, _, violations = map_to_bss2(inhibited_layer(64, 40, w_inh=0.3, w_in=0.3), SPEC)
    assert not violations
    rng = np.random.default_rng(0)
    trains = np.sort(rng.uniform(0, 0.1, size=(8, 64, 4)), axis=-1)
    chip, software = (backend.run(deployment, trains).spikes for backend in (MockChip("ideal"), SoftwareBackend()))
    assert chip.sum() > 100
    assert abs(float(chip.sum() - software.sum())) <= 0.05 * float(software.sum())
    per_neuron = chip.sum((0, 1)), software.sum((0, 1))
    assert float((per_neuron[0] - per_neuron[1]).abs().max()) <= 0.2 * float(per_neuron[1].max())
    alone = copy.deepcopy(deployment)
    alone.arrays["neuron_routes"] = alone.arrays["neuron_routes"][:0]
    assert MockChip("ideal").run(alone, trains).spikes.sum() > chip.sum()  # the inhibition acts


@pytest.mark.parametrize("copies", [1, 3])
def test_rewriting_weights_where_the_routing_put_them_is_routing_again(copies):
    """itl and learn rewrite weights through the first routing's record (itl_layout.rewritten_synapses): the same
    synapse array as routing the new weights, weight copies split alike."""
    from neurodeploy.targets.bss2.itl_layout import fixed_layout, quantised_layers, rewritten_synapses
    from neurodeploy.targets.bss2.route import route
    model = inhibited_layer(30, 20)
    deployment, _, violations = map_to_bss2(model, SPEC, weight_copies=copies)
    assert not violations
    layout = fixed_layout(model, SPEC, deployment, None)
    assert layout.written is not None and layout.layers[0].weight_copies == copies
    g = torch.Generator().manual_seed(5)
    new = {**model.weights, "input->exc": torch.randn(20, 30, generator=g) * 0.3}
    quantised = quantised_layers(new, layout)
    routed, _ = route(layout.layers, layout.placement, quantised, SPEC, "input")
    fast = rewritten_synapses(quantised, layout, layout.written, deployment["synapse_weight"].shape)
    assert np.array_equal(fast, routed.synapse_weight) and fast.any()
