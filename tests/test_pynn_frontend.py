"""``import neurodeploy.pynn as sim``: PyNN scripts on the emulated BSS-2 chip (neurodeploy/pynn/)."""

from __future__ import annotations

import numpy as np
import pytest
import quantities as pq
import torch

import neurodeploy as nd
import neurodeploy.pynn as sim
from neurodeploy.errors import BackendError, DoesNotFitError, GraphError, NeurodeployError
from neurodeploy.graph import Graph, NeuronParameters, Population, Projection
from neurodeploy.interchange.pynn_export import weight_factor
from neurodeploy.modelfile import ModelFile

CELL = dict(tau_m=10.0, cm=0.5, v_rest=-65.0, v_thresh=-45.0, v_reset=-65.0, tau_syn_E=5.0, tau_syn_I=5.0,
            tau_refrac=2.0)
NEURON = NeuronParameters(tau_mem_s=10e-3, tau_syn_s=5e-3, v_leak=0.0, v_th=1.0, v_reset=0.0, t_ref_s=2e-3)


@pytest.fixture(autouse=True)
def _fresh():
    yield
    sim.end()


def own_path_spikes(weights: dict, sizes: list, times_s: np.ndarray, duration_s: float) -> list:
    """Spike times (model s) per layer and neuron of the same network mapped and run by neurodeploy itself."""
    names = ["input", "hidden", "out"][:len(sizes)]
    pops = (Population("input", sizes[0], "input"),) + tuple(Population(n, s, "lif", NEURON)
                                                             for n, s in zip(names[1:], sizes[1:]))
    graph = Graph(pops, tuple(Projection(a, b) for a, b in zip(names, names[1:])))
    model = ModelFile(graph, {k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()}, 1e-3,
                      {"kind": "pynn", "duration_s": duration_s}, "pynn", 0, training={"loss": "max_over_time"})
    result = nd.run(nd.map(model, "bss2", probe=False), "mock:ideal", spike_times_s=times_s[None])
    events = result.observations.spike_events
    out, first = [], 0
    for size in sizes[1:]:
        out.append([np.round(events[events[:, 2] == first + k, 0] * 1e6, 9).tolist() for k in range(size)])  # model ms
        first += size
    return out


def _signed_projections(pre, post, w: np.ndarray, to_user) -> None:
    for receptor, chosen in (("excitatory", w > 0), ("inhibitory", w < 0)):
        rows = [(i, j, to_user(w[j, i]), 0.0) for j, i in zip(*np.nonzero(chosen))]  # delay 0: the routing latency
        if rows:
            sim.Projection(pre, post, sim.FromListConnector(rows, column_names=["weight", "delay"]),
                           sim.StaticSynapse(), receptor_type=receptor)


def test_if_curr_exp_network_spikes_as_neurodeploys_own_path():
    rng = np.random.default_rng(1)
    w1 = rng.uniform(0, 4.0, (6, 4))
    w1[rng.random(w1.shape) < 0.3] *= -1
    w2 = rng.uniform(0, 3.0, (3, 6))
    times_ms = np.array([2.0, 5.0, 9.0, 14.0])
    sim.setup(timestep=1.0, time_scale="biological")
    src = sim.Population(4, sim.SpikeSourceArray(spike_times=[[t] for t in times_ms]), label="src")
    hidden = sim.Population(6, sim.IF_curr_exp(**CELL), label="hidden")
    out = sim.Population(3, sim.IF_curr_exp(**CELL), label="out")
    hidden.record("spikes")
    out.record("spikes")
    # a model weight w is w * 20 mV/unit * cm / tau_m nA, times the discretisation factor (network.py)
    to_na = lambda w: w * 20.0 * CELL["cm"] / CELL["tau_m"] * weight_factor(1e-3, 5e-3)  # noqa: E731
    _signed_projections(src, hidden, w1, to_na)
    _signed_projections(hidden, out, w2, to_na)
    sim.run(40.0)
    mine = [[np.asarray(s.magnitude).tolist() for s in p.get_data().segments[0].spiketrains] for p in (hidden, out)]
    reference = own_path_spikes({"input->hidden": w1, "hidden->out": w2}, [4, 6, 3], times_ms * 1e-3, 40e-3)
    assert sum(len(t) for layer in mine for t in layer) > 5  # the comparison means something
    assert mine == [[pytest.approx(t) for t in layer] for layer in reference]


def test_hxneuron_integer_weights_and_several_spikes_per_source_as_own_path():
    """Hardware time (µs as ms/1000), default (calibrated) HXNeurons, a source that spikes five times."""
    q = np.array([[63, 40], [20, 63], [63, -30]], np.float64)
    sim.setup(timestep=0.001)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[0.003, 0.004, 0.005, 0.006, 0.015], [0.005]]))
    neurons = sim.Population(3, sim.cells.HXNeuron())
    neurons.record(["spikes", "v"])
    _signed_projections(src, neurons, q, abs)  # pynn_brainscales: magnitudes, the receptor gives the sign
    sim.run(0.03)
    mine = [np.asarray(s.magnitude).tolist() for s in neurons.get_data("spikes").segments[0].spiketrains]
    # own path: one input channel per spike; a code is worth gain / swing = 2 / 140 model units (targets/bss2.yaml)
    channels = np.array([0, 0, 0, 0, 0, 1])
    w = q[:, channels] * 2.0 / 140.0
    reference = own_path_spikes({"input->hidden": w}, [6, 3], np.array([3e-3, 4e-3, 5e-3, 6e-3, 15e-3, 5e-3]), 30e-3)[0]
    assert sum(len(t) for t in mine) >= 1
    assert mine == [pytest.approx([t / 1000 for t in train]) for train in reference]  # model ms → chip ms


def test_get_data_is_a_neo_block_with_shapes_and_units():
    sim.setup(timestep=1.0, time_scale="biological", record_sample_times=False)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [3.0]]))
    cells = sim.Population(4, sim.IF_curr_exp(**CELL), label="cells")
    cells.record(["spikes", "v"])
    src.record("spikes")
    sim.Projection(src, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0))
    sim.run(25.0)
    block = cells.get_data()
    segment = block.segments[0]
    assert len(segment.spiketrains) == 4 and segment.spiketrains[0].units == pq.ms
    signal = segment.analogsignals[0]
    assert signal.shape == (25, 4) and signal.units == pq.mV
    assert signal.sampling_period == 1.0 * pq.ms
    assert float(signal.magnitude[0, 0]) == pytest.approx(-65.0)  # at rest before any input
    assert float(signal.magnitude.max()) > -65.0  # the input moved it
    assert [list(s.magnitude) for s in src.get_data().segments[0].spiketrains] == [[1.0], [3.0]]
    sim.reset()
    sim.run(10.0)
    assert len(cells.get_data().segments) == 2  # reset() starts a new segment


def test_hxneuron_membrane_is_irregularly_sampled_cadc_like_pynn_brainscales():
    sim.setup(timestep=0.001)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[0.002]))
    readout = sim.Population(2, sim.cells.HXNeuron(threshold_enable=False))
    readout.record("v")
    sim.Projection(src, readout, sim.AllToAllConnector(), sim.StaticSynapse(weight=30))
    sim.run(0.02)
    signal = readout.get_data("v").segments[0].irregularlysampledsignals[0]
    assert signal.shape == (20, 2) and signal.units == pq.dimensionless
    assert float(signal.magnitude[0, 0]) == pytest.approx(60.0)  # the calibrated leak, CADC
    assert float(signal.magnitude.max()) > 70.0


@pytest.mark.parametrize("build, error, words", [
    (lambda src: sim.Population(2, sim.IF_cond_exp()), BackendError, "IF_cond_exp"),
    (lambda src: sim.Population(2, sim.SpikeSourcePoisson(rate=10.0)), BackendError, "SpikeSourceArray"),
    (lambda src: sim.Projection(src, sim.Population(2, sim.cells.HXNeuron()), sim.AllToAllConnector(),
                                sim.STDPMechanism(timing_dependence=sim.SpikePairRule(),
                                                  weight_dependence=sim.AdditiveWeightDependence(), weight=1.0)),
     BackendError, "StaticSynapse"),
    (lambda src: sim.Projection(src, sim.Population(2, sim.cells.HXNeuron()), sim.AllToAllConnector(),
                                sim.StaticSynapse(weight=10, delay=0.005)), BackendError, "delay"),
    (lambda src: sim.Projection(src, sim.Population(600, sim.cells.HXNeuron()), sim.AllToAllConnector(),
                                sim.StaticSynapse(weight=10)), DoesNotFitError, "BSS2-NEURONS"),
    (lambda src: sim.Projection(src, sim.Population(2, sim.cells.HXNeuron()), sim.AllToAllConnector(),
                                sim.StaticSynapse(weight=80)), GraphError, "0..63"),
    (lambda src: sim.Population(1, sim.IF_curr_exp()).inject(sim.DCSource(amplitude=1.0)), BackendError,
     "current injection"),
])
def test_unsupported_constructs_fail_at_run_with_one_line(build, error, words):
    sim.setup(timestep=0.001)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[0.002]))
    build(src)  # building works as in any PyNN simulator
    with pytest.raises(error) as caught:
        sim.run(0.01)
    line = caught.value.one_line()
    assert isinstance(caught.value, NeurodeployError) and "\n" not in line
    assert words in line and "fix:" in line


def test_a_changed_network_is_mapped_again_and_an_unchanged_one_is_not():
    sim.setup(timestep=0.001)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[0.002]))
    cell = sim.Population(1, sim.cells.HXNeuron())
    cell.record("spikes")
    projection = sim.Projection(src, cell, sim.AllToAllConnector(), sim.StaticSynapse(weight=10))
    sim.run(0.02)
    assert len(cell.get_data().segments[0].spiketrains[0]) == 0
    first = next(iter(sim.simulator.state.cache.values()))
    sim.reset()
    src.set(spike_times=[0.004])  # only the input changed: the same deployment
    sim.run(0.02)
    assert next(iter(sim.simulator.state.cache.values())) is first
    sim.reset()
    projection.set(weight=63)
    src.set(spike_times=[0.002, 0.003, 0.004, 0.005, 0.006])  # several spikes: more input channels
    sim.run(0.02)
    assert next(iter(sim.simulator.state.cache.values())) is not first
    assert len(cell.get_data().segments[-1].spiketrains[0]) >= 1


@pytest.mark.slow
def test_calibrated_chip_runs_calibrated_cells_and_refuses_other_targets(tmp_path):
    """setup(calibration=...) picks the calibration's chip; cells at the targets run there, others are refused."""
    from neurodeploy.errors import CalibrationError
    from neurodeploy.workflows.calibrate import calibrate_chip

    path = tmp_path / "cal0.yaml"
    calibrate_chip("mock:0", output=path, progress=False)
    at_targets = dict(v_rest=60, v_reset=60, v_thresh=200, tau_m=10, tau_syn_E=5, tau_syn_I=5, tau_refrac=2,
                      i_synin_gm_E=200, i_synin_gm_I=200)
    for cell, error in ((sim.CalibHXNeuronCuba(**at_targets), None), (sim.cells.HXNeuron(), None),
                        (sim.CalibHXNeuronCuba(**{**at_targets, "tau_m": 20}), CalibrationError)):
        sim.setup(calibration=path)
        src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[0.002, 0.004, 0.006, 0.008, 0.010]] * 2))
        neurons = sim.Population(3, cell)
        neurons.record("spikes")
        sim.Projection(src, neurons, sim.AllToAllConnector(), sim.StaticSynapse(weight=63))
        if error is not None:
            with pytest.raises(error, match="tau_mem_s"):
                sim.run(0.03)
            continue
        sim.run(0.03)
        assert sim.simulator.state.backend == "mock:0"
        assert all(len(train) >= 1 for train in neurons.get_data().segments[0].spiketrains)
        sim.end()
