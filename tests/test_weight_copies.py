"""Weight copies (``map --weight-copies K``): one weight spread over K synapses on K rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from click.testing import CliRunner
from hypothesis import given, strategies as st

from neurodeploy.backends.mock.chip import Chip, MockChip, configure
from neurodeploy.backends.mock.variation import MockEffects, draw_variation
from neurodeploy.cli import main
from neurodeploy.deployment import load_deployment
from neurodeploy.targets.bss2.itl_layout import fixed_layout, reconfigured
from neurodeploy.modelfile import load_model
from neurodeploy.targets.bss2.lower import copies_that_fit
from neurodeploy.targets.bss2.mapper import map_to_bss2
from neurodeploy.targets.bss2.route import split_weight
from neurodeploy.targets.bss2.spec import load_bss2_spec

SPEC = load_bss2_spec()


@given(st.integers(-63, 63), st.integers(1, 40))
def test_parts_add_up_share_the_sign_and_differ_by_at_most_one(w, copies):
    parts = split_weight(w, copies)
    assert len(parts) == copies and sum(parts) == w
    assert all(p * w >= 0 and abs(p) <= 63 for p in parts)
    assert max(parts) - min(parts) <= 1


def test_a_layer_uses_as_many_copies_as_its_drivers_hold():
    assert copies_that_fit(5, 1, 128, 100) == 25  # Yin-Yang's hidden layer: 5 inputs, 128 drivers
    assert copies_that_fit(120, 1, 128, 100) == 1
    assert copies_that_fit(5, 1, 128, 4) == 4
    assert copies_that_fit(200, 2, 128, 8) == 1  # merged: each circuit takes 100 of the 200 inputs


def _mapped(model_path, copies):
    deployment, report, violations = map_to_bss2(load_model(model_path), SPEC, weight_copies=copies)
    assert not violations
    return deployment, report


def test_the_ideal_chip_does_the_same_with_copies(trained_model):
    """The parts add up to the weight, so a chip without mismatch runs the same network."""
    one, _ = _mapped(trained_model, 1)
    many, report = _mapped(trained_model, 25)
    copies = {layer["name"]: layer["weight_copies"] for layer in report["layers"]}
    hidden = load_model(trained_model).graph.populations[1].size
    assert copies == {"hidden": 25, "output": 128 // hidden}
    assert report["max_events_per_spike"] == 2 * 25  # each input reaches 25 rows in both hemispheres
    assert np.array_equal(many["quantised_weight:input->hidden"], one["quantised_weight:input->hidden"])
    times = np.random.default_rng(0).uniform(2e-3, 26e-3, size=(64, 5))
    a, b = MockChip("ideal").run(one, times), MockChip("ideal").run(many, times)
    assert torch.equal(a.spikes, b.spikes)
    assert torch.allclose(a.membrane, b.membrane, atol=1e-3)


def _synapse_error(deployment, chip: Chip) -> float:
    """Relative spread of the input weights a chip realises, within each neuron (its gain divided out)."""
    ideal = configure(deployment).input_matrix.numpy()
    real = configure(deployment, chip).input_matrix.numpy()
    used = np.abs(ideal) > 0.05 * np.abs(ideal).max(0, keepdims=True)
    columns = used.any(0)  # neurons with input synapses
    used, ideal, real = used[:, columns], ideal[:, columns], real[:, columns]
    ratio = np.where(used, real / np.where(used, ideal, 1.0), np.nan)
    return float(np.nanstd(ratio / np.nanmedian(ratio, axis=0, keepdims=True)))


def test_copies_average_the_per_synapse_mismatch(trained_model):
    effects = MockEffects()
    chip = Chip(draw_variation(0, SPEC, effects), effects, SPEC, np.zeros(0, np.int64))
    single = _synapse_error(_mapped(trained_model, 1)[0], chip)
    spread = _synapse_error(_mapped(trained_model, 25)[0], chip)
    assert 0.02 < single < 0.1  # about the chip's 5 % per synapse
    assert spread < 0.5 * single


def test_in_the_loop_updates_keep_the_copies(trained_model):
    deployment, _ = _mapped(trained_model, 8)
    model = load_model(trained_model)
    layout = fixed_layout(model, SPEC, deployment, None)
    hidden = model.graph.populations[1].size
    assert [layer.weight_copies for layer in layout.layers] == [8, min(8, 128 // hidden)]
    same, changed = reconfigured(deployment, model.weights, layout)
    assert changed == 0 and np.array_equal(same["synapse_weight"], deployment["synapse_weight"])
    # A model trained in the loop with copies is mapped with them unless told otherwise.
    pinned = dataclasses.replace(model, mapping={"weight_copies": 8})
    _, report, _ = map_to_bss2(pinned, SPEC)
    assert [layer["weight_copies"] for layer in report["layers"]] == [8, min(8, 128 // hidden)]


def test_zero_copies_is_a_one_line_error_that_writes_nothing(trained_model, tmp_path):
    out = tmp_path / "d.npz"
    result = CliRunner().invoke(main, ["map", str(trained_model), "--weight-copies", "0", "-o", str(out)])
    assert result.exit_code == 2 and "--weight-copies" in result.stderr and len(result.stderr.splitlines()) == 1
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    ok = CliRunner().invoke(main, ["map", str(trained_model), "--weight-copies", "4", "-o", str(out), "--json"])
    assert ok.exit_code == 0 and load_deployment(out).meta["weight_copies"] == 4
