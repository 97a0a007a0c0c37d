"""The graph's discretisation and recurrent projections: native graphs and model files read and
write as before, imported (nir-euler) ones round-trip through model files, and both simulate
recurrent projections."""

from __future__ import annotations

import pytest
import torch

from neurodeploy.core.lif import lif_sequence
from neurodeploy.errors import FileKindError, GraphError
from neurodeploy.graph import Graph, NeuronParameters, Population, Projection
from neurodeploy.interchange import read_nir
from neurodeploy.modelfile import load_model, save_model
from neurodeploy.models.network import SpikingNetwork
from test_nir import GOLDEN

NEURON = NeuronParameters(t_ref_s=0.0)


def graph(discretisation: str = "native", neuron: NeuronParameters = NEURON, recurrent: bool = True) -> Graph:
    pops = (Population("input", 3, "input"), Population("h", 4, "lif", neuron), Population("out", 2, "li", NEURON))
    projs = (Projection("input", "h"), *([Projection("h", "h", recurrent=True)] * recurrent), Projection("h", "out"))
    return Graph(pops, projs, discretisation=discretisation)


def test_native_graph_dicts_are_as_before():
    data = graph(recurrent=False).to_dict()
    assert set(data) == {"populations", "projections"}
    assert set(data["populations"][1]["neuron"]) == {"tau_mem_s", "tau_syn_s", "v_leak", "v_th", "v_reset", "t_ref_s"}
    assert data["projections"][0] == {"pre": "input", "post": "h"}
    assert Graph.from_dict(data) == graph(recurrent=False)


@pytest.mark.parametrize("build, match", [
    (lambda: graph(neuron=NeuronParameters(model="leaky")), "only the nir-euler discretisation simulates"),
    (lambda: graph(neuron=NeuronParameters(i_bias=0.1)), "a constant input"),
    (lambda: graph("nir-euler", NeuronParameters(t_ref_s=1e-3)), "no refractory period"),
    (lambda: graph("rk4"), "unknown discretisation"),
    (lambda: Graph((Population("input", 2, "input"), Population("o", 2, "li", NEURON)),
                   (Projection("input", "o"), Projection("o", "o", recurrent=True))), "must join a lif population"),
    (lambda: Graph((Population("input", 2, "input"), Population("o", 2, "lif", NEURON)),
                   (Projection("o", "o"),)), "runs backwards or onto itself"),
])
def test_what_a_graph_refuses(build, match):
    with pytest.raises(GraphError, match=match):
        build()


def test_native_recurrent_projection_is_the_lateral_input():
    torch.manual_seed(0)
    net = SpikingNetwork(graph(), 1e-3, weights={"input->h": torch.rand(4, 3) * 3, "h->h": torch.randn(4, 4),
                                                 "h->out": torch.randn(2, 4)})
    x = (torch.rand(30, 5, 3) < 0.3).float()
    with torch.no_grad():
        out = net(x)
        drive = torch.cat([torch.zeros_like(x[:1]), x[:-1]]) @ net.weight("input->h").t()
        spikes, _ = lif_sequence(drive, NEURON.to_lif(), 1e-3, lateral=net.weight("h->h"))
    assert out.spikes["h"].sum() > 10 and torch.equal(out.spikes["h"], spikes)
    loss = net(x).readout_v.sum()  # and it trains: the recurrent weights get a gradient
    loss.backward()
    assert net.weight("h->h").grad is not None and net.weight("h->h").grad.abs().sum() > 0


def test_model_files_keep_the_discretisation(trained_model, tmp_path):
    raw = torch.load(trained_model, weights_only=True)
    assert raw["version"] == 5 and raw["discretisation"]["kind"] == "native"
    raw.pop("checksum")  # version 2 files had none
    raw.pop("recurrent")  # nor constraints
    raw["version"] = 2
    del raw["discretisation"]["kind"]
    torch.save(raw, tmp_path / "v2.pt")
    assert load_model(tmp_path / "v2.pt").discretisation == "native"
    model = read_nir(GOLDEN / "handmade.nir")
    save_model(model, tmp_path / "imported.pt")
    again = load_model(tmp_path / "imported.pt")
    assert again.graph == model.graph and again.discretisation == "nir-euler" and again.provenance == model.provenance
    assert torch.load(tmp_path / "imported.pt", weights_only=True)["discretisation"]["transmission_latency_steps"] == 0
    raw = torch.load(tmp_path / "imported.pt", weights_only=True)
    raw["discretisation"] = {"kind": "native"}
    torch.save(raw, tmp_path / "damaged.pt")
    with pytest.raises(FileKindError, match="discretisation 'native' differs from its graph's 'nir-euler'"):
        load_model(tmp_path / "damaged.pt")
