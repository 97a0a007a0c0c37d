"""Accumulated Spiking Flow (training/asf.py): its backward against finite differences of its own loss, the
FI ≈ 0 guard, a short training run, and the recipe's ``training.method``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from conftest import changed_recipe
from neurodeploy.errors import RecipeError
from neurodeploy.graph import Graph, NeuronParameters, Population, Projection
from neurodeploy.models.network import SpikingNetwork
from neurodeploy.recipe import load_recipe, recipe_from_dict
from neurodeploy.training import asf

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = NeuronParameters(tau_mem_s=10e-3, tau_syn_s=5e-3, v_th=1.0, t_ref_s=2e-3)


def _tiny(sizes=(6, 5, 4, 3)) -> tuple[SpikingNetwork, dict[str, torch.Tensor], torch.Tensor]:
    """input → two hidden LIF layers → li readout (eq. (8) runs between the two hidden layers), float64
    weights, 12 steps of random input spikes for 8 samples."""
    names = ["input", "h1", "h2", "out"][: len(sizes)]
    pops = [Population("input", sizes[0], "input")]
    pops += [Population(n, s, "lif", HIDDEN) for n, s in zip(names[1:-1], sizes[1:-1])]
    pops += [Population(names[-1], sizes[-1], "li", NeuronParameters(v_th=0.5))]
    graph = Graph(tuple(pops), tuple(Projection(a, b) for a, b in zip(names, names[1:])))
    g = torch.Generator().manual_seed(3)
    weights = {p.name: (0.4 + torch.randn(graph.population(p.post).size, graph.population(p.pre).size,
                                          generator=g, dtype=torch.float64)) * 1.5 for p in graph.projections}
    spikes = (torch.rand(12, 8, sizes[0], generator=g) < 0.4).to(torch.float64)
    return SpikingNetwork(graph, 1e-3, weights=weights), weights, spikes


def _flow_loss(graph: Graph, weights: dict, f: asf.Flows, labels: torch.Tensor, ratio: str) -> torch.Tensor:
    """The loss ASF's backward differentiates: the forward's flows, moved to first order by the weights with the
    layer ratios held, FO^n(W) = FO^n + S^n (g(FI^n(W)) - g(FI^n)) (g: identity, or [.]_+ when gated), and the
    readout V^N(T) = FI^N(W); eq. (5)."""
    g = (lambda v: v.clamp_min(0)) if ratio == "gated" else (lambda v: v)
    out = {graph.input.name: f.outflow[graph.input.name]}
    for pop in graph.populations[1:]:
        fi = sum(out[p.pre] @ weights[p.name].t() for p in graph.feedforward(pop.name))
        if pop.kind == "li":
            return asf.asf_loss(fi, labels, asf.readout_scale(graph, f.steps))
        out[pop.name] = f.outflow[pop.name] + f.ratio[pop.name] * (g(fi) - g(f.inflow[pop.name]))
    raise AssertionError("no readout")


@pytest.mark.parametrize("neuron", ["lif", "if"])
@pytest.mark.parametrize("ratio", ["gated", "shared"])
def test_backward_matches_finite_differences_of_its_loss(neuron, ratio):
    net, weights, spikes = _tiny()
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    f = asf.flows(net, spikes, weights, neuron)
    assert all(float(f.outflow[name].sum()) > 0 for name in ("h1", "h2"))  # both hidden layers spike
    grads, loss = asf.asf_gradients(net.graph, weights, f, labels, ratio)
    assert torch.allclose(loss, _flow_loss(net.graph, weights, f, labels, ratio))
    step = 1e-6
    for name, w in weights.items():
        numeric = torch.zeros_like(w)
        for index in range(w.numel()):
            changed = {k: v.clone() for k, v in weights.items()}
            changed[name].view(-1)[index] += step
            up = _flow_loss(net.graph, changed, f, labels, ratio)
            changed[name].view(-1)[index] -= 2 * step
            down = _flow_loss(net.graph, changed, f, labels, ratio)
            numeric.view(-1)[index] = (up - down) / (2 * step)
        assert torch.allclose(grads[name], numeric, rtol=1e-5, atol=1e-9), name
        assert float(grads[name].abs().max()) > 0, name


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_silent_layer_gives_finite_gradients(scale):
    """FI = 0 (zero weights) or FI < 0 everywhere: no spikes, S falls back to 1/(v_th - v_reset), all finite;
    the seed's shared ratio still passes a gradient, so a silent layer can wake up."""
    net, weights, spikes = _tiny(sizes=(6, 5, 3))
    weights["input->h1"] = torch.full_like(weights["input->h1"], scale)
    f = asf.flows(net, spikes, weights)
    assert float(f.outflow["h1"].sum()) == 0
    assert float(f.ratio["h1"]) == pytest.approx(1.0 / (HIDDEN.v_th - HIDDEN.v_reset))
    for ratio in asf.RATIOS:
        grads, loss = asf.asf_gradients(net.graph, weights, f, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), ratio)
        assert torch.isfinite(loss)
        assert all(bool(torch.isfinite(g).all()) for g in grads.values())
    assert float(grads["input->h1"].abs().sum()) > 0  # the last ratio checked: shared
    assert float(asf.shared_ratio(torch.full((2, 3), 1e-9), torch.zeros(2, 3), 0.7)) == pytest.approx(0.7)


def test_short_asf_training_beats_chance(tmp_path):
    """digits_asf with 30 hidden neurons and 3 epochs: far above chance (10 %), on the deployable li readout
    and on the accumulator it was trained with; the model file says how it was trained."""
    recipe = load_recipe(changed_recipe("digits_asf", tmp_path, "asf.yaml",
                                        **{"layers.0.size": 30, "training.epochs": 3}))
    from neurodeploy.training.fit import fit

    model = fit(recipe, progress=False)
    assert model.training["method"] == "asf"
    assert model.metrics["test_accuracy"] > 0.5
    assert model.metrics["test_accuracy_accumulator"] > 0.5
    assert model.provenance["history"][-1]["loss"] < model.provenance["history"][0]["loss"]


def test_method_defaults_to_bptt_and_unknown_is_one_line():
    data = yaml.safe_load((ROOT / "models" / "digits.yaml").read_text())
    assert recipe_from_dict(data).training["method"] == "bptt"
    data["training"]["method"] = "backprop"
    with pytest.raises(RecipeError, match=r"training.method = 'backprop' is unknown") as caught:
        recipe_from_dict(data)
    assert "\n" not in caught.value.one_line() and "'asf'" in caught.value.fix
    data["training"].update(method="asf", asf_ratio="per-neuron")
    with pytest.raises(RecipeError, match=r"training.asf_ratio = 'per-neuron' is unknown"):
        recipe_from_dict(data)


@pytest.mark.parametrize("recipe,pattern", [
    ("yinyang_recurrent", "recurrent projection"), ("yinyang_delays", "delays of"),
    ("digits_conv", "convolution or pooling"),
])
def test_what_asf_cannot_train_is_named(recipe, pattern):
    graph_recipe = load_recipe(ROOT / "models" / f"{recipe}.yaml")
    with pytest.raises(RecipeError, match=pattern):
        asf.check_supported(graph_recipe.graph, {**graph_recipe.training, "method": "asf"}, graph_recipe.recurrent)
    with pytest.raises(RecipeError, match="training.activity_l1"):
        asf.check_supported(load_recipe(ROOT / "models" / "digits.yaml").graph, {"activity_l1": 0.1})


def test_forward_is_the_networks():
    """ASF's forward runs the network's own neurons: its spike counts are those of SpikingNetwork (the spikes a
    target receives: one step late, so the last step's are not counted), and eq. (6), FI = W FO, holds exactly."""
    net, weights, spikes = _tiny()
    out = net(spikes, weights=weights)
    f = asf.flows(net, spikes, weights)
    for name in ("h1", "h2"):
        assert torch.equal(f.outflow[name], out.spikes[name][:-1].sum(0))
    for proj in net.graph.projections:
        assert torch.allclose(f.inflow[proj.post], f.outflow[proj.pre] @ weights[proj.name].t())
