"""``itl --method asf``: the chip in the loop through its spike counters only (neurodeploy/itl/counters.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.backends.base import Recording
from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.data.datasets import training_probe
from neurodeploy.itl.counters import COUNTER_MAX, chip_flows
from neurodeploy.itl.forward import layer_neurons
from neurodeploy.itl.run import train_in_the_loop
from neurodeploy.modelfile import load_model
from neurodeploy.targets.registry import get_target
from neurodeploy.training.asf import flows
from neurodeploy.models.network import SpikingNetwork
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import bin_spike_times, encode, n_steps


class Watched(MockChip):
    """The ideal mock chip, remembering what each run asked to record."""

    def __init__(self) -> None:
        super().__init__("ideal")
        self.asked: list[Recording] = []

    def run(self, deployment, input_times_s, record=None):
        self.asked.append(record or Recording())
        return super().run(deployment, input_times_s, record)


def test_counts_on_the_ideal_chip_give_the_flows_of_the_quantised_model(trained_model):
    model = load_model(trained_model)
    session = get_target("bss2").itl_session(model, MockChip("ideal"), None, 1,
                                             training_probe(model.dataset, model.encoding, model.dt_s))
    chip_weights = {k: w.detach() for k, w in session.chip_weights(dict(model.weights)).items()}
    times = encode(load_split("yinyang", "test")[0][:40], model.encoding)
    spikes = bin_spike_times(times, model.dt_s, n_steps(model.encoding, model.dt_s))
    obs = MockChip("ideal").run(session.deployment, times, Recording(spikes=True, membrane=False))
    neurons = layer_neurons(session.deployment.meta, session.deployment["neuron_layer"])
    counted = chip_flows(obs, model.graph, neurons, chip_weights, spikes)
    software = flows(SpikingNetwork(model.graph, model.dt_s, weights=chip_weights), spikes, chip_weights)
    hidden = model.graph.populations[1].name
    # the chip counts every step's spikes, ASF the ones delivered within the window (all but the last step's)
    assert torch.allclose(counted.flows.outflow[hidden], software.outflow[hidden].double(), atol=1)
    readout = model.graph.readout.name
    agree = (counted.flows.inflow[readout].argmax(1) == software.inflow[readout].argmax(1)).float().mean()
    assert agree > 0.95 and counted.bytes_read == 40 * obs.spikes.shape[-1] and counted.saturated == 0


def test_asf_in_the_loop_reads_counters_only_and_fewer_bytes(trained_model):
    model = load_model(trained_model)
    chip = Watched()
    _, summary = train_in_the_loop(model, chip, get_target("bss2"), epochs=1, train_samples=200, method="asf",
                                   progress=False)
    training_runs = [r for r in chip.asked if not r.membrane]
    assert training_runs and all(r.madc_neuron is None for r in training_runs)
    assert summary["method"] == "asf" and summary["test_accuracy_counters_after"] is not None
    assert summary["bytes_read_by_training"] == 200 * sum(p.size for p in model.graph.populations[1:])
    assert "counter_saturations" in summary["history"][0] and summary["history"][0]["counter_saturations"] >= 0
    _, surrogate = train_in_the_loop(model, MockChip("ideal"), get_target("bss2"), epochs=1, train_samples=200,
                                     progress=False)
    assert surrogate["bytes_read_by_training"] > 10 * summary["bytes_read_by_training"]


def test_counters_saturate_at_eight_bits(trained_model):
    model = load_model(trained_model)
    sizes = [p.size for p in model.graph.populations[1:]]
    neurons = dict(zip([p.name for p in model.graph.populations[1:]], np.split(np.arange(sum(sizes)),
                                                                              np.cumsum(sizes)[:-1])))

    class Busy:  # a run of 300 steps in which every neuron fires every step
        spikes = torch.ones(300, 1, sum(sizes))

    counted = chip_flows(Busy(), model.graph, neurons, model.weights, torch.zeros(300, 1, model.graph.input.size))
    hidden = model.graph.populations[1].name
    assert (counted.flows.outflow[hidden] == COUNTER_MAX).all() and counted.saturated == sizes[0]


def test_an_unknown_method_is_refused(trained_model):
    with pytest.raises(Exception, match="--method 'hebb' is unknown"):
        train_in_the_loop(load_model(trained_model), MockChip("ideal"), get_target("bss2"), method="hebb")
