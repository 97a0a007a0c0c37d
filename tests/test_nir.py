"""Golden NIR graphs written by snnTorch 1.0, Norse 1.1 and by hand import and give the spikes of
the graph's own equations, as the independent numpy simulator in tests/nir_reference.py computes
them (forward Euler at dt). The .nir files are made by tests/data/nir/make_golden.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.errors import InterchangeError
from neurodeploy.interchange import InterchangeWarning, import_nir, read_nir
from neurodeploy.models.delayed import network_from_model
from nir_reference import simulate

GOLDEN = Path(__file__).resolve().parent / "data" / "nir"
# What each graph needs: snnTorch's time constants assume dt = 1e-4 s; Norse 1.1 writes dt*tau (tau_scale 1000).
CASES = {
    "snntorch_ff": {"dt_s": 1e-4},  # Affine+bias, CubaLIF with per-neuron tau, LIF
    "snntorch_rec": {"dt_s": 1e-4},  # RLeaky: a LIF fed back through an Affine with bias
    "norse_ff": {"dt_s": 1e-3, "tau_scale": 1000.0},  # LIF, CubaLIF, LI readout, scalar parameters
    "norse_if": {"dt_s": 1e-3, "tau_scale": 1000.0},  # IF, LIF
    "handmade": {"dt_s": 1e-3},  # Delay, Scale, skip, recurrent Linear, IF, CubaLI, per-neuron v_leak/v_reset
}


def run_both(name: str, dtype: torch.dtype, steps: int = 60, batch: int = 8, **extra) -> tuple[dict, dict, object]:
    """Our simulation of the imported graph and the reference's, on the same random input spikes."""
    options = {**CASES[name], **extra}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InterchangeWarning)
        model = read_nir(GOLDEN / f"{name}.nir", **options)
    x = (np.random.default_rng(0).random((steps, batch, model.graph.input.size)) < 0.3).astype(float)
    reference = simulate(nir.read(GOLDEN / f"{name}.nir", type_check=False), x, options["dt_s"],
                         options.get("tau_scale", 1.0), subtract=options.get("reset") == "subtract")
    net = network_from_model(model).to(dtype)
    with torch.no_grad():
        out = net(torch.as_tensor(x, dtype=dtype))
    ours = {pop.name: (out.spikes[pop.name] if pop.kind == "lif" else out.readout_v).double().numpy()
            for pop in model.graph.populations[1:]}
    return ours, reference, model


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_graph_spikes_as_its_equations(name, dtype):
    ours, reference, model = run_both(name, dtype)
    assert model.discretisation == "nir-euler" and set(ours) == set(reference)
    for pop in model.graph.populations[1:]:
        if pop.kind == "lif":
            assert reference[pop.name].sum() > 20, f"{name}: layer {pop.name} hardly spikes, the test would be weak"
            np.testing.assert_array_equal(ours[pop.name], reference[pop.name], err_msg=f"{name}: {pop.name}")
        else:  # weights are stored in float32, so membranes agree to float32 precision
            np.testing.assert_allclose(ours[pop.name], reference[pop.name], atol=2e-6, rtol=1e-6)


def test_subtractive_reset_option_matches_the_equations_with_subtraction():
    ours, reference, model = run_both("snntorch_ff", torch.float64, reset="subtract")
    assert {p.parameters.reset for p in model.graph.populations[1:]} == {"subtract"}
    for name in ("1", "3"):
        np.testing.assert_array_equal(ours[name], reference[name])
    plain, _, _ = run_both("snntorch_ff", torch.float64)
    assert not np.array_equal(plain["1"], ours["1"]), "the option changes the spikes"


def test_what_the_golden_graphs_become():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InterchangeWarning)
        rec = read_nir(GOLDEN / "snntorch_rec.nir", dt_s=1e-4)
        ff = read_nir(GOLDEN / "snntorch_ff.nir", dt_s=1e-4)
        hand = read_nir(GOLDEN / "handmade.nir", dt_s=1e-3)
    assert [(p.name, p.recurrent) for p in rec.graph.projections] == [
        ("input->1.lif", False), ("1.lif->1.lif", True), ("1.lif->3", False)]
    assert rec.graph.population("1.lif").parameters.i_bias != 0  # the loop's Affine bias: a constant input
    hidden = ff.graph.population("1").parameters
    assert hidden.model == "cuba" and {name for name, _ in hidden.per_neuron} == {"tau_mem_s", "tau_syn_s", "i_bias"}
    # Euler's decay per step is kept: exp(-dt / tau_stored) = 1 - dt / tau_graph
    tau_graph = np.asarray(nir.read(GOLDEN / "snntorch_ff.nir").nodes["1"].tau_mem, dtype=np.float64)
    np.testing.assert_allclose(np.exp(-1e-4 / np.array(hidden.value("tau_mem_s"))), 1 - 1e-4 / tau_graph, rtol=1e-12)
    assert {p.name: p.max_delay_steps for p in hand.graph.projections} == {
        "in->lif1": 0, "lif1->lif1": 0, "in->if2": 0, "lif1->if2": 3, "if2->readout": 0}
    assert hand.graph.population("if2").parameters.model == "integrator"
    assert hand.graph.population("readout").kind == "li"
    assert hand.provenance["imported_from"].endswith("handmade.nir") and hand.provenance["dt_s_from"] == "option"


def test_peer_slips_are_named_and_never_fixed_silently():
    with pytest.warns(InterchangeWarning, match=r"snnTorch.*v_reset = 0.*reset='subtract'"):
        model = read_nir(GOLDEN / "snntorch_ff.nir", dt_s=1e-4)
    assert model.graph.population("1").parameters.reset == "value"  # as written
    assert "snnTorch" in model.provenance["warnings"][0]
    with pytest.raises(InterchangeError, match=r"tau.* = 1e-05 s is not longer than dt = 0.001 s") as error:
        read_nir(GOLDEN / "norse_ff.nir")
    assert "tau_scale=1000" in error.value.fix
    with pytest.warns(InterchangeWarning, match=r"Norse 1.1's exporter writes dt\*tau.*tau_scale=1000"):
        small_step = read_nir(GOLDEN / "norse_ff.nir", dt_s=1e-6)  # imports as written: a 10 us neuron
    assert small_step.graph.population("1").parameters.tau_mem_s < 2e-5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the options say what to do: no warning is left
        read_nir(GOLDEN / "norse_ff.nir", tau_scale=1000.0)
        read_nir(GOLDEN / "snntorch_ff.nir", dt_s=1e-4, reset="subtract")


def test_import_takes_a_graph_object_and_a_dataset():
    graph = nir.read(GOLDEN / "norse_ff.nir", type_check=False)  # nir's own check refuses Norse's [1, 4] input
    encoding = {"kind": "time_to_spike", "t_early_s": 2e-3, "t_late_s": 26e-3, "duration_s": 40e-3}
    model = import_nir(graph, dataset="yinyang", encoding=encoding, tau_scale=1000.0)
    assert model.dataset == "yinyang" and model.encoding == encoding and model.dt_s == 1e-3
    assert model.provenance["imported_from"] == "NIRGraph object" and model.provenance["dt_s_from"] == "default"
    with pytest.raises(InterchangeError, match="Input has 4 channels, dataset 'digits'"):
        import_nir(graph, dataset="digits", encoding={"kind": "latency", "t_min_s": 2e-3, "t_max_s": 20e-3,
                                                      "threshold": 0.05, "duration_s": 35e-3}, tau_scale=1000.0)
    with pytest.raises(InterchangeError, match="needs an encoding"):
        import_nir(graph, dataset="yinyang", tau_scale=1000.0)
    with pytest.raises(InterchangeError, match="output '3' spikes: evaluate and map score a dataset"):
        read_nir(GOLDEN / "snntorch_ff.nir", dt_s=1e-4, dataset="yinyang", encoding=encoding)
