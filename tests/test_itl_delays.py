"""In-the-loop training of models with learned delays, for each BSS-2 realisation: the model side of the
loop delivers the delayed input exactly as the emulated chip does, the delays stay as trained, and the
output maps with the same realisation and scales."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.core.dispatch import lif_sequence
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import bin_spike_times, encode
from neurodeploy.deployment import load_deployment
from neurodeploy.modelfile import load_model
from neurodeploy.targets.registry import get_target
from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.train import train
from conftest import ROOT

STRATEGIES = ("multi-synapse", "spike-strength", "gradient-only")


@pytest.fixture(scope="module")
def delay_model(tmp_path_factory):
    """The delay task with a wide final kernel (σ = 1 step), so that the strategies realise it differently."""
    folder = tmp_path_factory.mktemp("delays")
    train(ROOT / "models" / "delay_task_wide.yaml", folder / "model.pt", epochs=8, progress=False)
    return folder / "model.pt"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_loops_delayed_input_is_what_the_chip_delivers(delay_model, strategy):
    model = load_model(delay_model)
    chip = MockChip()
    session = get_target("bss2").itl_session(model, chip, None, 1, None, strategy)
    weights = session.chip_weights(model.weights)
    x, _ = load_split(model.dataset, "test")
    times = np.round(encode(x[:32], model.encoding), 3)  # on the step grid
    spikes = bin_spike_times(times, model.dt_s, 80)
    proj = model.graph.projections[0]
    current = session.projection_input(proj.name, spikes, weights)
    assert current is not None and current.shape == (80, 32, model.graph.population("hidden").size)
    hidden, _ = lif_sequence(current, model.graph.population("hidden").parameters.to_lif(), model.dt_s)
    on_chip = chip.run(session.deployment, times).spikes[..., :hidden.shape[-1]]
    assert hidden.sum() > 0 and torch.equal(on_chip, hidden)  # spike for spike
    assert session.projection_input("hidden->output", hidden, weights) is None  # not delayed: the plain product


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_itl_trains_the_weights_through_each_realisation(delay_model, tmp_path, strategy):
    out = tmp_path / f"{strategy}.pt"
    summary = itl(delay_model, out, backend="mock:ideal", epochs=1, train_samples=300, delays=strategy,
                  progress=False)
    assert summary["history"][0]["synapses_rewritten"] > 0
    before, after = load_model(delay_model), load_model(out)
    assert after.mapping["delays"] == strategy
    assert all(torch.equal(after.delays[k], before.delays[k]) for k in before.delays)  # delays as trained
    report = map_model(out, "bss2", tmp_path / "again.npz")  # no --delays: the realisation itl used
    assert strategy in report["delays"]
    deployment = load_deployment(tmp_path / "again.npz")
    assert torch.equal(torch.as_tensor(deployment["weight_scale:hidden"]).float(),
                       after.mapping["weight_scale"]["hidden"].float())  # the scales itl kept
