"""Recipes: shipped ones load; typos and impossible values are named."""

from pathlib import Path

import pytest
import yaml

from neurodeploy.errors import FileKindError, RecipeError
from neurodeploy.recipe import load_recipe, recipe_from_dict

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name,sizes", [("yinyang", [5, 120, 3]), ("digits", [64, 100, 10])])
def test_shipped_recipes_load(name, sizes):
    recipe = load_recipe(ROOT / "models" / f"{name}.yaml")
    assert [p.size for p in recipe.graph.populations] == sizes
    assert recipe.graph.readout.kind == "li"


def _base():
    return yaml.safe_load((ROOT / "models" / "yinyang.yaml").read_text())


@pytest.mark.parametrize("mutate,pattern", [
    (lambda d: d["training"].update(epochz=3), r"unknown key\(s\) \['epochz'\] in training"),
    (lambda d: d.update(datset="yinyang"), r"unknown key\(s\) \['datset'\]"),
    (lambda d: d["layers"][0]["neuron"].update(tau_mem_s=-1e-3), r"tau_mem_s = -0.001 is not a positive time"),
    (lambda d: d["layers"][0]["neuron"].update(tau_mme_s=1e-3), r"unknown key\(s\) \['tau_mme_s'\]"),
    (lambda d: d["layers"][1].update(size=4), r"readout has 4 neurons, dataset 'yinyang' has 3 classes"),
    (lambda d: d["layers"][0].update(size=0), r"layers\[0\].size = 0 must be a positive integer"),
    (lambda d: d["training"].update(loss="mse"), r"training.loss = 'mse' is unknown"),
    (lambda d: d["encoding"].update(kind="rate"), r"unknown encoding kind 'rate'"),
    (lambda d: d.update(dataset="mnist"), r"unknown dataset 'mnist'"),
    (lambda d: d["layers"][0]["neuron"].update(v_reset=2.0), r"v_reset \(2.0\) must lie below v_th"),
])
def test_bad_recipes_name_the_problem(mutate, pattern):
    data = _base()
    mutate(data)
    with pytest.raises(RecipeError, match=pattern):
        recipe_from_dict(data)


def test_other_kind_of_yaml_is_refused(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("format: neurodeploy.target\nversion: 1\n")
    with pytest.raises(FileKindError, match="not a neurodeploy recipe"):
        load_recipe(path)
    with pytest.raises(FileKindError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")


def test_activity_regularisers_penalise_spike_counts():
    """L1 on spike counts and a per-neuron upper bound (training/loss.py): zero when off, growing with the
    counts, and the bound ignores counts below it."""
    import torch

    from neurodeploy.training.loss import spikes_per_sample, task_loss

    scores, labels = torch.zeros(2, 3), torch.tensor([0, 1])
    few = {"input": torch.ones(5, 2, 4), "hidden": torch.zeros(5, 2, 6)}
    few["hidden"][0, 0, 0] = 1.0
    many = {"input": few["input"], "hidden": torch.ones(5, 2, 6)}
    base = {"readout_scale": 5.0}
    plain = task_loss(scores, labels, many, "input", base)
    assert task_loss(scores, labels, many, "input", {**base, "activity_l1": 0.0}) == plain
    l1 = {**base, "activity_l1": 0.1}
    assert task_loss(scores, labels, many, "input", l1) - plain == pytest.approx(0.1 * 5)  # 5 spikes each
    bound = {**base, "activity_upper_weight": 1.0, "activity_upper_spikes": 4.0}
    assert task_loss(scores, labels, many, "input", bound) - plain == pytest.approx(1.0)  # (5 - 4)^2
    assert task_loss(scores, labels, few, "input", bound) == task_loss(scores, labels, few, "input", base)
    assert spikes_per_sample(many, "input") == {"hidden": 5.0}
