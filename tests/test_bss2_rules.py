"""Every BSS-2 design rule id is reachable and reports needed vs available with a fix."""

import numpy as np
import pytest

from neurodeploy.graph import NeuronParameters
from neurodeploy.targets.bss2.lower import lower
from neurodeploy.targets.bss2.mapper import check, map_to_bss2
from neurodeploy.targets.bss2.place import place
from neurodeploy.targets.bss2.quantise import quantise_layer
from neurodeploy.targets.bss2.route import route
from test_mapping import SPEC, make_model


@pytest.mark.parametrize("neuron,rule,needed,available", [
    (NeuronParameters(tau_syn_s=0.5, t_ref_s=2e-3), "BSS2-TAU-SYN", "500 us", "0.1..100 us"),
    (NeuronParameters(tau_mem_s=5.0, t_ref_s=2e-3), "BSS2-TAU-MEM", "5e+03 us", "0.1..2e+03 us"),
    (NeuronParameters(t_ref_s=50e-3), "BSS2-REFRAC", "50 us", "0.04..32 us"),
    (NeuronParameters(v_reset=-5.0, t_ref_s=2e-3), "BSS2-POTENTIAL", -640.0, "50..160"),
])
def test_neuron_parameter_rules(neuron, rule, needed, available):
    violations = check(make_model([5, 10, 3], neuron=neuron), SPEC)[1]
    found = [v for v in violations if v.rule_id == rule]
    assert found and (found[0].layer, found[0].needed, found[0].available) == ("h0", needed, available)
    assert found[0].fix


def test_gain_beyond_the_code_range():
    model = make_model([5, 10, 3])
    model.weights["input->h0"] *= 1e4
    violations = map_to_bss2(model, SPEC)[2]
    assert [v.rule_id for v in violations] == ["BSS2-GAIN"]
    assert float(violations[0].needed) > float(violations[0].available) and "clip-quantile" in violations[0].fix


def test_labels_overflowing_a_driver():
    """Two input channels sharing a driver whose label space holds one source."""
    model = make_model([2, 4, 3])
    layers = lower(model.graph, SPEC, 1)
    placement, _ = place(layers, SPEC, None)
    quantised = {layer.name: quantise_layer({f"{pre}->{layer.name}": model.weights[f"{pre}->{layer.name}"]
                                             for pre, _ in layer.inputs}, SPEC.weight_max) for layer in layers}
    _, violations = route(layers, placement, quantised, SPEC, "input", labels_per_driver=1)
    assert violations and violations[0].rule_id == "BSS2-LABELS" and violations[0].available == 1
    _, fine = route(layers, placement, quantised, SPEC, "input")
    assert not fine and np.isfinite(placement.neuron_circuits).all()
