"""The ideal mock chip: it re-derives the network from the configuration alone, and matches it."""

import numpy as np
import torch

from neurodeploy.backends.base import readout_scores
from neurodeploy.backends.mock.chip import MockChip, bin_on_clock, configure
from neurodeploy.backends.registry import get_backend
from neurodeploy.data.encoding import bin_spike_times
from neurodeploy.deployment import load_deployment
from neurodeploy.graph import Graph
from neurodeploy.models.network import SpikingNetwork
from conftest import dequantised

LEAK_CADC = 60.0  # targets/bss2.yaml: default and readout rest potentials


def _per_unit(dep, layer: str) -> float:
    """CADC per model unit of a layer, as the mapper chose it (the readout is scaled into the CADC range)."""
    return next(row["cadc_per_model_unit"] for row in dep.meta["report"]["layers"] if row["name"] == layer)


def test_connectivity_is_recovered_from_synapse_arrays(deployment_file):
    dep = load_deployment(deployment_file)
    state = configure(dep)
    w = dequantised(dep)
    n_hidden = w["input->hidden"].shape[0]
    expected_in = torch.zeros_like(state.input_matrix)
    expected_in[:, :n_hidden] = w["input->hidden"].t() * _per_unit(dep, "hidden")
    assert torch.allclose(state.input_matrix, expected_in, atol=1e-4)
    expected_rec = torch.zeros_like(state.recurrent_matrix)
    expected_rec[:n_hidden, n_hidden:] = w["hidden->output"].t() * _per_unit(dep, "output")
    assert torch.allclose(state.recurrent_matrix, expected_rec, atol=1e-4)


def test_mock_matches_quantised_software_spike_for_spike(deployment_file):
    dep = load_deployment(deployment_file)
    rng = np.random.default_rng(0)
    times = rng.integers(0, 30, size=(64, 5)) * 1e-3  # on the step grid: no rounding ambiguity
    obs = MockChip().run(dep, times)
    net = SpikingNetwork(Graph.from_dict(dep.meta["graph"]), dep.meta["dt_s"], weights=dequantised(dep))
    with torch.no_grad():
        out = net(bin_spike_times(times, 1e-3, 40))
    n_hidden = out.spikes["hidden"].shape[-1]
    assert torch.equal(obs.spikes[..., :n_hidden], out.spikes["hidden"])
    v_readout = obs.membrane[..., n_hidden:]
    assert torch.allclose(v_readout, LEAK_CADC + _per_unit(dep, "output") * out.readout_v, atol=1e-3)
    assert obs.time_step_s == 1e-6  # 1000x faster than the model's 1 ms
    assert torch.equal(readout_scores(dep, obs).argmax(1), out.readout_v.amax(0).argmax(1))


def test_a_wrong_label_changes_what_the_chip_does(deployment_file):
    dep = load_deployment(deployment_file)
    reference = configure(dep).input_matrix
    h, d, ell = dep["input_routes"][0, 1:]
    dep.arrays["synapse_label"] = dep["synapse_label"].copy()
    dep.arrays["synapse_label"][h, 2 * d] ^= 1  # every synapse of that row now listens to another source
    assert not torch.allclose(configure(dep).input_matrix, reference)


def test_events_land_on_the_8ns_clock_then_the_hardware_step():
    times = np.array([[1.0e-3, 1.4999e-3, 1.5001e-3, np.nan]])  # model seconds
    spikes = bin_on_clock(times, 1000.0, 8e-9, 1e-6, 5)
    assert spikes[1, 0, 0] == 1 and spikes[1, 0, 1] == 1 and spikes[2, 0, 2] == 1 and spikes[:, 0, 3].sum() == 0


def test_backends_share_one_interface(deployment_file):
    dep = load_deployment(deployment_file)
    times = np.full((3, 5), 5e-3)
    for name in ("software", "mock:ideal"):
        obs = get_backend(name).run(dep, times)
        assert obs.spikes.shape[:2] == (40, 3)
        assert readout_scores(dep, obs).shape == (3, 3)
