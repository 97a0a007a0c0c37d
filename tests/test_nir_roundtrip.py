"""A neurodeploy model exported to NIR and imported again gives identical spikes; the graphs we
write are read by ``nir.read`` (with its type check) and execute in nirtorch as in neurodeploy."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from neurodeploy.errors import InterchangeError
from neurodeploy.graph import Graph, NeuronParameters, Population, Projection
from neurodeploy.interchange import export_nir, import_nir, read_nir, write_nir
from neurodeploy.modelfile import ModelFile, load_model
from neurodeploy.models.delayed import network_from_model
from nir_reference import SPIKING, neuron
from test_nir import GOLDEN

HIDDEN = NeuronParameters(tau_mem_s=10e-3, tau_syn_s=5e-3, v_reset=-0.2, t_ref_s=0.0)


def native_model(delays: bool = True, recurrent: bool = True) -> ModelFile:
    """Two hidden layers with a skip connection from the input, a recurrent layer and learned delays."""
    torch.manual_seed(0)
    pops = (Population("input", 5, "input"), Population("h1", 20, "lif", HIDDEN), Population("h2", 12, "lif", HIDDEN),
            Population("output", 3, "li", NeuronParameters()))
    projs = (Projection("input", "h1", 3 if delays else 0), *([Projection("h1", "h1", recurrent=True)] * recurrent),
             Projection("h1", "h2"), Projection("input", "h2"), Projection("h2", "output"))
    graph = Graph(pops, projs)
    weights = {p.name: torch.randn(graph.population(p.post).size, graph.population(p.pre).size)
               * (0.3 if p.recurrent else 1.5) for p in projs}
    weights["h1->h2"][0, :3] = 0.0  # synapses without weight: their delay is nobody's
    delay = {"input->h1": torch.randint(0, 4, (20, 5)).float()} if delays else {}
    return ModelFile(graph=graph, weights=weights, dt_s=1e-3, encoding={}, dataset="none", seed=0, delays=delay,
                     delay_sigma_steps={name: 0.0 for name in delay})


def outputs(model: ModelFile, x: torch.Tensor):
    with torch.no_grad():
        return network_from_model(model)(x)


def assert_same(a, b, exact_membrane: bool = True) -> None:
    assert a.spikes.keys() == b.spikes.keys()
    for name in a.spikes:
        assert torch.equal(a.spikes[name], b.spikes[name]), name
    if exact_membrane:
        assert torch.equal(a.readout_v, b.readout_v)
    else:
        torch.testing.assert_close(a.readout_v, b.readout_v, atol=1e-5, rtol=1e-5)


SPIKES = (torch.rand(50, 16, 5, generator=torch.Generator().manual_seed(1)) < 0.3).float()


@pytest.mark.parametrize("delays", [False, True])
def test_native_model_round_trip_is_exact(tmp_path, delays):
    model = native_model(delays=delays)
    write_nir(model, tmp_path / "m.nir")
    nir.read(tmp_path / "m.nir")  # nir's own reader and type check accept it
    again = read_nir(tmp_path / "m.nir")
    assert again.discretisation == "native" and again.dt_s == model.dt_s  # dt from the graph's metadata
    assert [(p.name, p.max_delay_steps, p.recurrent) for p in again.graph.projections] == [
        (p.name, p.max_delay_steps, p.recurrent) for p in model.graph.projections]
    before, after = outputs(model, SPIKES), outputs(again, SPIKES)
    assert before.spikes["h1"].sum() > 100 and before.spikes["h2"].sum() > 100
    assert_same(before, after, exact_membrane=not delays)  # delayed synapses: the same spikes


def test_native_model_as_nir_euler_keeps_its_spikes():
    model = native_model()
    euler = import_nir(export_nir(model), discretisation="nir-euler")
    assert euler.discretisation == "nir-euler"
    assert {p.name: p.max_delay_steps for p in euler.graph.projections}["h1->h2"] == 1  # the latency, as a Delay
    assert_same(outputs(model, SPIKES), outputs(euler, SPIKES), exact_membrane=False)


def test_imported_graph_round_trip_is_exact(tmp_path):
    first = read_nir(GOLDEN / "handmade.nir", dt_s=1e-3)
    write_nir(first, tmp_path / "again.nir")
    second = read_nir(tmp_path / "again.nir")
    assert second.discretisation == "nir-euler" and second.graph.projections == first.graph.projections
    for a, b in zip(first.graph.populations[1:], second.graph.populations[1:]):  # equal up to float64 rounding
        assert (a.name, a.size, a.kind, a.parameters.model) == (b.name, b.size, b.kind, b.parameters.model)
        for name in ("tau_mem_s", "tau_syn_s", "v_leak", "v_th", "v_reset", "i_bias"):
            np.testing.assert_allclose(a.parameters.value(name), b.parameters.value(name), rtol=1e-12, atol=1e-15)
    x = SPIKES[..., :5]
    assert_same(outputs(first, x), outputs(second, x))


def test_what_nir_cannot_say_is_an_error_or_named_when_lossy(trained_model):
    model = load_model(trained_model)  # a refractory period of 2 ms
    with pytest.raises(InterchangeError, match="refractory period 0.002 s dropped") as error:
        export_nir(model)
    assert "lossy=True" in error.value.fix
    graph = export_nir(model, lossy=True)
    assert "refractory" in graph.metadata["lossy"] and graph.metadata["writer"].startswith("neurodeploy")


def nirtorch_run(graph: nir.NIRGraph, x: np.ndarray, dt: float) -> np.ndarray:
    """The graph executed by nirtorch: its wiring, with the reference's neuron equations as modules."""
    nirtorch = pytest.importorskip("nirtorch")

    class Neuron(torch.nn.Module):
        def __init__(self, node):
            super().__init__()
            self.node = node

        def forward(self, y, state=None):
            state = {} if state is None else state
            z = neuron(self.node, "n", y.detach().double().numpy(), state, dt, 1.0, False, y.shape[0])
            return torch.as_tensor(z if isinstance(self.node, SPIKING) else state["n"][1], dtype=torch.float32), state

    class Delay(torch.nn.Module):
        def __init__(self, node):
            super().__init__()
            self.lag = np.round(np.asarray(node.delay) / dt).astype(int)

        def forward(self, y, state=None):
            past = [] if state is None else state
            past.append(y)
            out = [past[-1 - d][..., i] if len(past) > d else torch.zeros_like(y[..., 0])
                   for i, d in enumerate(self.lag)]
            return torch.stack(out, -1), past

    def affine(node):  # nirtorch 2.6's default Affine sets the bias on the weight (module.weight.bias), not the module
        module = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0])
        module.weight.data, module.bias.data = torch.as_tensor(node.weight), torch.as_tensor(node.bias)
        return module

    node_map = {**{cls: Neuron for cls in (nir.CubaLIF, nir.CubaLI, nir.LIF, nir.LI, nir.IF, nir.I)},
                nir.Delay: Delay, nir.Affine: affine}
    module, state, out = nirtorch.nir_to_torch(graph, node_map), None, []
    for x_k in torch.as_tensor(x, dtype=torch.float32):
        y, state = module(x_k, state)
        out.append(y.detach().double().numpy())
    return np.stack(out)


@pytest.mark.parametrize("source", ["native", "handmade"])
def test_nirtorch_executes_our_graphs_as_we_do(source):
    model = native_model() if source == "native" else read_nir(GOLDEN / "handmade.nir", dt_s=1e-3)
    graph = export_nir(model)
    x = SPIKES[..., : model.graph.input.size]
    ours = outputs(model, x).readout_v.double().numpy()
    np.testing.assert_allclose(nirtorch_run(graph, x.numpy(), model.dt_s), ours, atol=1e-4, rtol=1e-4)
