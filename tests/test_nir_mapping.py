"""Imported models evaluate, map onto BSS-2 and Xylo with the discretisation reported, and run;
what the mappers do not realise yet is a named design-rule violation."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurodeploy.interchange import export_nir, import_nir, write_nir, read_nir
from neurodeploy.modelfile import load_model, save_model
from neurodeploy.workflows.evaluate import evaluate
from neurodeploy.workflows.map import check_model, map_model
from neurodeploy.workflows.run import run
from conftest import tiny_recipe

ENCODING = {"kind": "time_to_spike", "t_early_s": 2e-3, "t_late_s": 26e-3, "t_bias_s": 2e-3, "duration_s": 40e-3}


@pytest.fixture(scope="module")
def no_refractory(tmp_path_factory):
    """A tiny Yin-Yang model trained without a refractory period: NIR says all of it."""
    from neurodeploy.workflows.train import train

    folder = tmp_path_factory.mktemp("nir")
    train(tiny_recipe(folder, **{"layers.0.neuron.t_ref_s": 0.0}), folder / "model.pt", progress=False)
    return folder / "model.pt"


def without_latency(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The graph with its Delay nodes bridged: the same network in NIR's semantics, without latency."""
    delays = {name for name, node in graph.nodes.items() if isinstance(node, nir.Delay)}
    edges = [(a, next(d for c, d in graph.edges if c == b) if b in delays else b)
             for a, b in graph.edges if a not in delays]
    return nir.NIRGraph(nodes={k: v for k, v in graph.nodes.items() if k not in delays}, edges=edges)


def test_exported_model_evaluates_and_maps_as_before(no_refractory, tmp_path):
    write_nir(load_model(no_refractory), tmp_path / "model.nir")
    again = read_nir(tmp_path / "model.nir", dataset="yinyang", encoding=ENCODING)
    assert again.discretisation == "native"
    save_model(again, tmp_path / "again.pt")
    assert evaluate(tmp_path / "again.pt")["accuracy"] == evaluate(no_refractory)["accuracy"]
    report = map_model(tmp_path / "again.pt", "bss2", tmp_path / "again.npz")
    assert not [w for w in report["warnings"] if "DISCRETISATION" in w]


def test_imported_nir_euler_model_maps_with_the_discretisation_reported(no_refractory, tmp_path):
    graph = without_latency(export_nir(load_model(no_refractory)))
    model = import_nir(graph, dataset="yinyang", encoding=ENCODING)
    assert model.discretisation == "nir-euler" and not any(p.max_delay_steps for p in model.graph.projections)
    save_model(model, tmp_path / "euler.pt")
    accuracy = evaluate(tmp_path / "euler.pt")["accuracy"]
    assert accuracy > 0.5  # the trained network, without its latency, still classifies
    for target, chip in (("bss2", "mock:ideal"), ("xylo", "xylo-sim")):
        report = map_model(tmp_path / "euler.pt", target, tmp_path / f"euler.{target}.npz")
        assert any(w.startswith(f"{target.upper()}-DISCRETISATION") for w in report["warnings"]), report["warnings"]
        software = run(tmp_path / f"euler.{target}.npz", "software")
        assert software["accuracy"] == pytest.approx(accuracy, abs=1e-6)  # the deployment simulates it as evaluate does
        assert 0 <= run(tmp_path / f"euler.{target}.npz", chip)["accuracy"] <= 1


def imported(tmp_path, hidden: nir.NIRNode, recurrent: bool = False, dt_s: float = 1e-3, bias: bool = False):
    n = 6
    nodes = {"in": nir.Input(input_type={"input": np.array([5])}),
             "w1": (nir.Affine(weight=np.ones((n, 5)), bias=np.full(n, 0.5)) if bias
                    else nir.Linear(weight=np.ones((n, 5)))),
             "h": hidden, "w2": nir.Linear(weight=np.ones((3, n))),
             "ro": nir.CubaLI(tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3)),
             "out": nir.Output(output_type={"output": np.array([3])}), "rec": nir.Linear(weight=np.eye(n))}
    edges = [("in", "w1"), ("w1", "h"), ("h", "w2"), ("w2", "ro"), ("ro", "out")]
    if recurrent:
        edges += [("h", "rec"), ("rec", "h")]
    else:
        del nodes["rec"]
    save_model(import_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt_s=dt_s, dataset="yinyang", encoding=ENCODING),
               tmp_path / "m.pt")
    return tmp_path / "m.pt"


def cuba(n: int = 6, **changes) -> nir.CubaLIF:
    values = dict(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n),
                  v_threshold=np.ones(n))
    return nir.CubaLIF(**{**values, **changes})


@pytest.mark.parametrize("case, target, rules", [
    ("recurrent", "bss2", set()),  # mapped: on-chip routes back onto the layer (tests/test_recurrent.py)
    ("recurrent", "xylo", set()),  # Xylo's recurrent matrix carries it
    ("bias", "bss2", {"BSS2-BIAS"}),
    ("bias", "xylo", {"XYLO-BIAS"}),
    ("per-neuron", "bss2", {"BSS2-PER-NEURON"}),
    ("per-neuron", "xylo", {"XYLO-PER-NEURON"}),
    ("integrator", "bss2", {"BSS2-NEURON-MODEL"}),
    ("integrator", "xylo", {"XYLO-NEURON-MODEL"}),
    ("leaky", "bss2", set()),  # the chip's shortest synapse: 4.5e-5 of the current left after a 1 ms step
    ("leaky small step", "bss2", {"BSS2-NEURON-MODEL"}),  # at 0.1 ms: 37 % left
    ("leaky", "xylo", {"XYLO-NEURON-MODEL"}),
])
def test_what_the_mappers_do_not_realise_is_named(tmp_path, case, target, rules):
    hidden = {"per-neuron": cuba(tau_mem=np.linspace(8e-3, 12e-3, 6)),
              "integrator": nir.IF(r=np.full(6, 500.0), v_threshold=np.ones(6)),
              "leaky": nir.LIF(tau=np.full(6, 1e-2), r=np.ones(6), v_leak=np.zeros(6), v_threshold=np.ones(6)),
              }.get(case.replace(" small step", ""), cuba())
    path = imported(tmp_path, hidden, recurrent=case == "recurrent", bias=case == "bias",
                    dt_s=1e-4 if "small step" in case else 1e-3)
    result = check_model(path, target)
    assert {v["rule"] for v in result["violations"]} == rules
    assert any("DISCRETISATION" in w for w in result["warnings"])
