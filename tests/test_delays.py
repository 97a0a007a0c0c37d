"""Learnable delays: kernels, hardening, training pieces, the seed's experiments (a)-(c), the delay task."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from neurodeploy.core.delays import delay_kernel, delayed_input, first_spike_time, harden_delays, sigma_at
from neurodeploy.core.lif import li_sequence
from neurodeploy.data.datasets import load_split
from neurodeploy.data.temporal_patterns import SPACING_MS, SPAN_MS, class_orders
from neurodeploy.errors import FileKindError, RecipeError
from neurodeploy.graph import Graph
from neurodeploy.recipe import load_recipe, recipe_from_dict
from tests.conftest import ROOT


def test_kernel_is_a_normalised_gaussian_centred_on_the_delay():
    d = torch.tensor([[3.4, 7.0]])
    k = delay_kernel(d, 1.5, 12)
    assert k.shape == (1, 2, 13)
    assert torch.allclose(k.sum(-1), torch.ones(1, 2))
    centre = (k * torch.arange(13.0)).sum(-1)
    assert torch.allclose(centre, d, atol=0.05)
    hard = delay_kernel(d, 0.0, 12)
    assert hard[0, 0].argmax() == 3 and hard[0, 1].argmax() == 7 and torch.equal(hard.sum(-1), torch.ones(1, 2))


def test_delayed_input_shifts_each_synapse_by_its_own_delay():
    spikes = torch.zeros(20, 1, 2)
    spikes[2, 0, 0] = 1.0
    spikes[5, 0, 1] = 1.0
    weight = torch.tensor([[0.5, 2.0]])
    x = delayed_input(spikes, weight, torch.tensor([[4.0, 9.0]]), 0.0, 10)
    assert x.shape == (20, 1, 1)
    assert torch.nonzero(x[:, 0, 0]).flatten().tolist() == [6, 14]
    assert x[6, 0, 0] == 0.5 and x[14, 0, 0] == 2.0


def test_delay_gradient_moves_the_input_in_time():
    spikes = torch.zeros(30, 1, 1)
    spikes[3, 0, 0] = 1.0
    delay = torch.tensor([[6.3]], requires_grad=True)
    x = delayed_input(spikes, torch.ones(1, 1), delay, 1.0, 20)
    (x[:, 0, 0] * torch.arange(30.0)).sum().backward()  # the input's mean time: 3 + delay
    assert delay.grad.item() == pytest.approx(1.0, abs=0.02)


def test_sigma_schedule_shrinks_over_the_first_quarter():
    assert sigma_at(0.0, 30) == 15.0
    assert sigma_at(0.125, 30) == pytest.approx((15.0 + 0.23) / 2)
    assert sigma_at(0.25, 30) == pytest.approx(0.23) and sigma_at(0.9, 30) == pytest.approx(0.23)


def test_exponential_schedule_is_dcls_per_epoch_decay():
    """DCLS's decrease_sig: σ0 = D/2 times α = (0.23/σ0)^(1/E) once per epoch, E = epochs // 4, then constant."""
    epochs, last = 150, 150 // 4
    alpha = (0.23 / 15.0) ** (1 / last)
    for epoch in (0, 1, 10, last - 1):
        for within in (0.0, 0.5, 0.999):  # constant inside an epoch
            progress = (epoch + within) / epochs
            assert sigma_at(progress, 30, schedule="exponential", epochs=epochs) == pytest.approx(15.0 * alpha**epoch)
    assert sigma_at(last / epochs, 30, schedule="exponential", epochs=epochs) == pytest.approx(0.23)
    assert sigma_at(1.0, 30, schedule="exponential", epochs=epochs) == pytest.approx(0.23)
    # DCLS's effective width |SIG| + 0.27 ends at 0.5 steps; the offset applies to the linear schedule too
    assert sigma_at(1.0, 30, schedule="exponential", epochs=epochs, offset_steps=0.27) == pytest.approx(0.5)
    assert sigma_at(0.0, 30, offset_steps=0.27) == pytest.approx(15.27)
    assert sigma_at(0.5, 30, schedule="exponential", epochs=3) == pytest.approx(0.23)  # E = max(1, 3 // 4)
    with pytest.raises(ValueError, match="not one of"):
        sigma_at(0.5, 30, schedule="cosine")


def test_recipe_sigma_schedule_keys_are_checked_and_reach_training():
    from neurodeploy.models.network import SpikingNetwork
    from neurodeploy.training.delays import SigmaSchedule, initial_delays

    data = yaml.safe_load((ROOT / "models" / "delay_task.yaml").read_text())
    layer = next(layer for layer in data["layers"] if "delays" in layer)
    layer["delays"].update(sigma_schedule="exponential", sigma_offset_steps=0.27)
    recipe = recipe_from_dict(data)
    name, spec = next(iter(recipe.delays.items()))
    assert spec["sigma_schedule"] == "exponential" and spec["sigma_offset_steps"] == 0.27
    net = SpikingNetwork(recipe.graph, recipe.dt_s, delays=initial_delays(recipe, torch.Generator().manual_seed(0)))
    schedule = SigmaSchedule(net, recipe, total_steps=40, epochs=8)  # 5 steps per epoch, E = 2
    seen = []
    for _ in range(40):
        seen.append(net.delay_sigma_steps[name])
        schedule.step()
    start = spec["max_steps"] / 2
    assert seen[:5] == [pytest.approx(start + 0.27)] * 5
    assert seen[5] == pytest.approx(start * (spec["sigma_final_steps"] / start) ** 0.5 + 0.27)
    assert seen[10:] == [pytest.approx(spec["sigma_final_steps"] + 0.27)] * 30
    for key, value in (("sigma_schedule", "cosine"), ("sigma_offset_steps", -1.0)):
        bad = yaml.safe_load((ROOT / "models" / "delay_task.yaml").read_text())
        next(layer for layer in bad["layers"] if "delays" in layer)["delays"][key] = value
        with pytest.raises(RecipeError, match=key):
            recipe_from_dict(bad)


def test_harden_delays_is_pure_and_rounds_into_range():
    delays = {"a->b": torch.tensor([[-0.7, 2.5001, 40.2]])}
    hard = harden_delays(delays, {"a->b": 30})
    assert hard["a->b"].tolist() == [[0.0, 3.0, 30.0]]
    assert delays["a->b"].tolist()[0][0] == pytest.approx(-0.7)  # input untouched


def test_first_spike_time_interpolates_and_has_a_gradient():
    v = torch.tensor([[0.0], [0.5], [0.9], [1.3], [0.2]], requires_grad=True)
    t = first_spike_time(v, 1.0)
    assert t.item() == pytest.approx(2.25)  # between steps 2 and 3
    t.sum().backward()
    assert v.grad[2].item() < 0 and v.grad[3].item() < 0  # a higher membrane crosses earlier
    assert first_spike_time(torch.zeros(5, 1), 1.0).item() == 5.0


def test_seed_experiment_a_coincidence():
    from neurodeploy.delay_experiments import coincidence

    r = coincidence()
    assert r.spike_counts[1] >= 1, "output 2 fires: its delays make the inputs coincide"
    assert r.spike_counts[0] == 0 and r.peak_over_threshold[0] < 0.5
    assert r.spike_count_doubled == 0 and r.peak_over_threshold_doubled < 1.0
    assert r.peak_over_threshold_doubled > r.peak_over_threshold[0]


def test_seed_experiment_b_learns_target_spike_times():
    from neurodeploy.delay_experiments import TARGETS_B, learn_spike_times

    torch.set_num_threads(1)
    r = learn_spike_times(iterations=150)
    assert all(abs(t - target) > 10 for t, target in zip(r.initial_spike_steps, TARGETS_B))
    for step, target in zip(r.spike_steps, TARGETS_B):
        assert step is not None and abs(step - target) <= 1


def test_seed_experiment_c_learns_a_delay_across_the_kernel():
    from neurodeploy.delay_experiments import learn_long_delay

    r = learn_long_delay()
    assert r.initial_spike_steps[0] < 150
    assert abs(r.spike_steps[0] - 900) <= 1
    assert r.delays[0][0] > 700


def test_temporal_patterns_differ_only_in_relative_timing():
    x, y = load_split("temporal_patterns", "train")
    assert x.shape == (1000, 4) and set(y.tolist()) == {0, 1, 2, 3}
    times = x * SPAN_MS
    orders = class_orders()
    for c in range(4):
        rel = times[y == c] - times[y == c].min(1, keepdims=True)
        # the order of the channels is the class's permutation
        assert (rel.argsort(1) == orders[c].argsort()).mean() > 0.99
    # every class uses the same set of slots, so each sample holds the same spikes up to order
    gaps = torch.tensor(sorted(times[0] - times[0].min()))
    assert torch.allclose(gaps, torch.tensor([0.0, 1.0, 2.0, 3.0]) * SPACING_MS, atol=2 * 1.0 + 1e-3)
    assert torch.equal(torch.as_tensor(load_split("temporal_patterns", "test")[0]),
                       torch.as_tensor(load_split("temporal_patterns", "test")[0]))


def _recipe_dict() -> dict:
    return yaml.safe_load((ROOT / "models" / "delay_task.yaml").read_text())


def test_recipe_delays_key_builds_a_delayed_projection():
    recipe = load_recipe(ROOT / "models" / "delay_task.yaml")
    proj = recipe.graph.projections[0]
    assert proj.max_delay_steps == 32 and recipe.delays[proj.name]["learning_rate"] == 0.5
    assert recipe.graph.projections[1].max_delay_steps == 0
    assert Graph.from_dict(recipe.graph.to_dict()) == recipe.graph
    assert "max_delay_steps" not in load_recipe(ROOT / "models" / "yinyang.yaml").graph.to_dict()["projections"][0]


@pytest.mark.parametrize("change, match", [
    ({"max_steps": 0}, "max_steps"), ({"max_step": 3}, "unknown key"),
    ({"init_steps": [0, 99]}, "init_steps"), ({"learning_rate": -1}, "learning_rate")])
def test_recipe_delays_errors_name_the_key(change, match):
    data = _recipe_dict()
    data["layers"][0]["delays"] = {**{"max_steps": 30}, **change} if "max_step" not in change else change
    with pytest.raises(RecipeError, match=match):
        recipe_from_dict(data)


def _train_tiny(tmp_path, recipe_name: str, epochs: int):
    from neurodeploy.workflows.train import train

    data = yaml.safe_load((ROOT / "models" / recipe_name).read_text())
    data["training"]["epochs"] = epochs
    path = tmp_path / recipe_name
    path.write_text(yaml.safe_dump(data))
    return train(path, tmp_path / "model.pt", progress=False)


def test_training_moves_delays_and_reports_hardened_accuracy(tmp_path):
    from neurodeploy.modelfile import load_model, read_model_dict
    from neurodeploy.recipe import load_recipe
    from neurodeploy.training.delays import initial_delays
    from neurodeploy.training.fit import initial_weights

    metrics = _train_tiny(tmp_path, "delay_task.yaml", epochs=1)
    assert {"test_accuracy_hardened", "test_accuracy_hardened_quantised"} <= set(metrics)
    model = load_model(tmp_path / "model.pt")
    recipe, generator = load_recipe(ROOT / "models" / "delay_task.yaml"), torch.Generator().manual_seed(0)
    initial_weights(recipe, generator)  # train() draws the weights first, then the delays
    start = initial_delays(recipe, generator)["input->hidden"]
    moved = (model.delays["input->hidden"] - start).abs()
    assert float(moved.max()) > 0.5, "one epoch of training moves the delays"
    delays = model.delays["input->hidden"]
    assert delays.shape == (16, 4) and 0 <= float(delays.min()) and float(delays.max()) <= 32
    assert model.delay_sigma_steps["input->hidden"] == pytest.approx(0.23)
    assert read_model_dict(tmp_path / "model.pt")["version"] >= 2  # 2: delays; 3: the discretisation too


@pytest.mark.slow
def test_delay_task_needs_delays(tmp_path):
    """The full claim (about 3 minutes): with learned delays the task is solved, without them it is not."""
    with_delays = _train_tiny(tmp_path, "delay_task.yaml", epochs=30)
    without = _train_tiny(tmp_path, "delay_task_nodelay.yaml", epochs=30)
    assert with_delays["test_accuracy_hardened"] > 0.9
    assert without["test_accuracy"] < 0.45


def test_model_file_version_1_still_reads(tmp_path, trained_model):
    from neurodeploy.modelfile import load_model

    data = torch.load(trained_model, weights_only=True)
    data["version"] = 1
    data.pop("checksum")  # version 1 files had none
    for key in ("delays", "delay_sigma_steps", "recurrent"):
        data.pop(key)
    old = tmp_path / "v1.pt"
    torch.save(data, old)
    model = load_model(old)
    assert model.delays == {} and model.graph == load_model(trained_model).graph
    data["version"] = 99
    torch.save(data, old)
    with pytest.raises(FileKindError, match="version 99"):
        load_model(old)


def test_free_membrane_convolution_equals_the_time_loop():
    from neurodeploy.delay_experiments import NEURON, free_membrane

    x = torch.rand(60, 2, 3, dtype=torch.float64)
    assert torch.allclose(free_membrane(x), li_sequence(x, NEURON, 1e-3), atol=1e-9)
    assert math.isfinite(float(free_membrane(x).sum()))
