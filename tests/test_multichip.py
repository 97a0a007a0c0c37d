"""Multi-chip BSS-2 deployments: partition, container file, inspect, chip pipeline, link rules, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurodeploy import api
from neurodeploy.backends.base import readout_scores
from neurodeploy.backends.registry import get_backend
from neurodeploy.cli import main
from neurodeploy.data.datasets import load_split, training_probe
from neurodeploy.data.encoding import encode
from neurodeploy.errors import NeurodeployError
from neurodeploy.graph import Graph, Population, Projection
from neurodeploy.modelfile import ModelFile, load_model, save_model
from neurodeploy.multichip import is_multichip, load_multichip
from neurodeploy.targets.bss2.lower import lower
from neurodeploy.targets.bss2.multichip import ChipPipeline, map_chips, spike_train_deployment, spike_train_times
from neurodeploy.targets.bss2.partition import plan_partition, spec_link
from neurodeploy.targets.registry import get_target
from neurodeploy.workflows.inspect import inspect_file
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run as run_deployment

SPEC = get_target("bss2").spec


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def widened(model: ModelFile, hidden: int, seed: int = 0) -> ModelFile:
    """``model`` with ``hidden`` hidden neurons and random weights: a network of any size, without training."""
    pops = model.graph.populations
    graph = Graph((pops[0], Population(pops[1].name, hidden, pops[1].kind, pops[1].neuron), pops[2]),
                  (Projection(pops[0].name, pops[1].name), Projection(pops[1].name, pops[2].name)))
    g = torch.Generator().manual_seed(seed)
    # Magnitudes within a factor 2: every neuron's largest weight sets a synaptic gain the circuits reach.
    draw = lambda *shape: torch.randn(*shape, generator=g).sign() * (1 + torch.rand(*shape, generator=g))  # noqa: E731
    weights = {f"{pops[0].name}->{pops[1].name}": draw(hidden, pops[0].size),
               f"{pops[1].name}->{pops[2].name}": 0.2 * draw(pops[2].size, hidden)}
    return replace(model, graph=graph, weights=weights)


@pytest.fixture(scope="module")
def wide_model(trained_model, tmp_path_factory) -> Path:
    """5 → 510 → 3: 510 + 3 x 4 = 522 neuron circuits, more than one chip's 512."""
    path = tmp_path_factory.mktemp("wide") / "wide.pt"
    save_model(widened(load_model(trained_model), 510), path)
    return path


@pytest.fixture(scope="module")
def test_times(trained_model):
    model = load_model(trained_model)
    x, _ = load_split(model.dataset, "test")
    return encode(x[:100], model.encoding)


def test_partition_layer_wise_then_split(trained_model):
    model = load_model(trained_model)  # 5 → 24 → 3, one circuit per neuron
    layers = lower(model.graph, SPEC)
    whole = plan_partition(model, layers, 2, 512)
    assert [[(b.layer, b.start, b.stop) for b in chip] for chip in whole] == [[("hidden", 0, 24)], [("output", 0, 3)]]
    # A chip of 16 circuits: hidden (24) does not fit one, so it is split in two slices; the output shares the
    # last slice's chip.
    split = plan_partition(model, layers, 2, 16)
    assert [[(b.layer, b.start, b.stop) for b in chip] for chip in split] == \
        [[("hidden", 0, 12)], [("hidden", 12, 24), ("output", 0, 3)]]
    wider = plan_partition(model, layers, 3, 16)  # a chip left over: one more, smaller slice
    assert [[b.size for b in chip] for chip in wider] == [[8], [8], [8, 3]]
    with pytest.raises(NeurodeployError, match="needs 2 chips"):
        plan_partition(model, layers, 1, 16)
    with pytest.raises(NeurodeployError, match="1..64"):
        plan_partition(model, layers, 0, 512)


def test_too_big_network_maps_onto_two_chips_and_inspect_shows_it(wide_model, tmp_path):
    assert invoke("map", wide_model, "--target", "bss2", "-o", tmp_path / "one.npz").exit_code == 2  # 522 > 512
    out = tmp_path / "two.npz"
    result = invoke("map", wide_model, "--target", "bss2", "--chips", 2, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["chips_used"] == 2 and report["circuits_used"] == 522
    assert [row["chip"] for row in report["layers"]] == [0, 1]
    assert is_multichip(out)
    multi = load_multichip(out)
    assert [part["input"] for part in multi.partition["chips"]] == ["input", "hidden"]
    assert multi.partition["routes"] == [{"layer": "hidden", "neurons": [0, 510], "from_chip": 0, "to_chip": 1,
                                          "peak_events_per_step": multi.partition["routes"][0]["peak_events_per_step"],
                                          "mean_events_per_s": multi.partition["routes"][0]["mean_events_per_s"]}]
    summary = inspect_file(out)
    assert summary["kind"] == "multi-chip deployment" and summary["chips"] == 2
    assert summary["routes"] == ["hidden[0:510] chip 0 -> chip 1"]
    text = invoke("inspect", out)
    assert text.exit_code == 0 and "partition:" in text.output and "chip 0 -> chip 1" in text.output
    # Each chip is a complete single-chip deployment, checked as one.
    assert all(chip.meta["report"]["circuits_used"] <= 512 for chip in multi.chips)


def test_single_chip_files_unchanged(deployment_file):
    assert not is_multichip(deployment_file)
    assert inspect_file(deployment_file)["kind"] == "deployment"


def _pipeline_scores(multi, times):
    pipeline = ChipPipeline(multi, [get_backend("mock:ideal") for _ in multi.chips])
    obs, counters = pipeline.run(times)
    return obs, counters, readout_scores(multi.chips[-1], obs)


@pytest.mark.parametrize("bursting", [False, True])  # True: hidden neurons spike several times per sample
def test_two_chips_equal_one_chip(trained_model, test_times, bursting):
    model = load_model(trained_model)
    if bursting:  # excitatory input weights of 2..4
        model = widened(model, 24)
        model = replace(model, weights={k: v.abs() * 2 if k.endswith("->hidden") else v
                                        for k, v in model.weights.items()})
    probe = training_probe(model.dataset, model.encoding, model.dt_s)
    one = api.map(model, "bss2")
    reference = get_backend("mock:ideal").run(one, test_times)
    first, count = one.meta["readout_neurons"]
    v_one = reference.membrane[..., first:first + count]
    # No link latency: the one-chip run (a spike at step s reaches the next layer at s+1 either way), up to the
    # float32 summation order (the readout sums its inputs as FPGA events on one chip, on-chip events on the other).
    multi, _, violations = map_chips(model, SPEC, 2, probe_inputs=probe, link=replace(spec_link(SPEC), latency_s=0.0))
    assert not violations
    obs, counters, scores = _pipeline_scores(multi, test_times)
    torch.testing.assert_close(obs.membrane, v_one, rtol=0, atol=1e-3)
    torch.testing.assert_close(scores, readout_scores(one, reference), rtol=0, atol=1e-3)
    assert counters["events_between_chips"] == int(reference.spikes[..., :first].sum())
    if bursting:
        per_source = reference.spikes[..., :first].sum(0)
        assert int(per_source.max()) > 1  # the several-spikes-per-channel path ran
    # A chip of 16 circuits: hidden split over both chips, the output beside the second slice; it hears the first
    # slice through the FPGA, the second on the chip, both halves of the hidden layer the same inputs.
    split, _, violations = map_chips(model, SPEC, 2, probe_inputs=probe, link=replace(spec_link(SPEC), latency_s=0.0),
                                     capacity=16)
    assert not violations
    assert [part["input"] for part in split.partition["chips"]] == ["input", "input[0:5]+hidden[0:12]"]
    assert split.partition["routes"] == [{**split.partition["routes"][0], "layer": "hidden", "neurons": [0, 12],
                                          "from_chip": 0, "to_chip": 1}]
    obs, _, scores = _pipeline_scores(split, test_times)
    first_out, _ = split.chips[-1].meta["readout_neurons"]  # the second slice's 12 neurons come first on chip 1
    torch.testing.assert_close(obs.membrane[..., first_out:], v_one, rtol=0, atol=1e-3)
    torch.testing.assert_close(scores, readout_scores(one, reference), rtol=0, atol=1e-3)
    torch.testing.assert_close(obs.spikes[..., :12], reference.spikes[..., 12:24])  # the second slice
    # The default latency (1 us = one step here): the readout's membrane exactly one step later.
    delayed, _, _ = map_chips(model, SPEC, 2, probe_inputs=probe)
    obs, _, _ = _pipeline_scores(delayed, test_times)
    assert delayed.meta["partition"]["latency_steps"] == 1
    torch.testing.assert_close(obs.membrane[1:], v_one[:-1], rtol=0, atol=1e-3)


def test_spike_trains_become_one_spike_per_channel():
    events = np.array([[3e-3, 0, 1], [1e-3, 0, 1], [2e-3, 1, 0], [5e-3, 0, 1]])  # (model s, sample, source)
    times = spike_train_times(events, batch=2, sources=2)
    assert times.shape == (2, 6)  # source 1 of sample 0 spikes 3 times: 3 channels per source
    np.testing.assert_array_equal(times[0], [np.nan, 1e-3, np.nan, 3e-3, np.nan, 5e-3])
    np.testing.assert_array_equal(times[1], [2e-3, np.nan, np.nan, np.nan, np.nan, np.nan])
    assert spike_train_times(np.zeros((0, 3)), 2, 2).shape == (2, 2)


def test_spike_train_deployment_routes_copies_as_their_source(deployment_file):
    from neurodeploy.validation.loading import load_checked_deployment

    dep = load_checked_deployment(deployment_file)
    channels = dep.meta["graph"]["populations"][0]["size"]
    copies = spike_train_deployment(dep, 3)
    routes = copies["input_routes"]
    assert copies.meta["input_channels"] == 3 * channels and len(routes) == 3 * len(dep["input_routes"])
    for m in range(3):
        part = routes[m * len(dep["input_routes"]):(m + 1) * len(dep["input_routes"])]
        np.testing.assert_array_equal(part[:, 0], dep["input_routes"][:, 0] + m * channels)
        np.testing.assert_array_equal(part[:, 1:], dep["input_routes"][:, 1:])


def test_run_on_two_chips(trained_model, tmp_path):
    out = tmp_path / "two.npz"
    map_model(trained_model, "bss2", out, chips=2)
    one = tmp_path / "one.npz"
    map_model(trained_model, "bss2", one)
    software = run_deployment(out, "software")
    assert software["accuracy"] == run_deployment(one, "software")["accuracy"]
    ideal = run_deployment(out, "mock:ideal")
    assert ideal["chips"] == 2 and ideal["inter_chip_latency_us"] == 1.0
    assert abs(ideal["accuracy"] - run_deployment(one, "mock:ideal")["accuracy"]) <= 0.02
    listed = invoke("run", out, "--backend", "mock:0,mock:1", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["backends"] == ["mock:0", "mock:1"]
    wrong = invoke("run", out, "--backend", "mock:0,mock:1,mock:2")
    assert wrong.exit_code == 2 and "names 3 chips" in wrong.output and len(wrong.output.strip().splitlines()) == 1


def test_link_rules_say_needed_and_available(trained_model):
    model = load_model(trained_model)
    probe = training_probe(model.dataset, model.encoding, model.dt_s)
    multi, _, violations = map_chips(model, SPEC, 2, probe_inputs=probe,
                                     link=replace(spec_link(SPEC), events_per_s=1e5))
    assert multi is None
    (bandwidth,) = [v for v in violations if v.rule_id == "BSS2-LINK-BANDWIDTH"]
    assert float(bandwidth.needed) >= 1e6 and float(bandwidth.available) == 1e5  # one event in a 1 us step
    assert "chip 0 to chip 1" in bandwidth.what
    _, _, violations = map_chips(model, SPEC, 2, probe_inputs=probe, link=replace(spec_link(SPEC), latency_s=20e-6))
    (latency,) = [v for v in violations if v.rule_id == "BSS2-LINK-LATENCY"]
    assert latency.needed == "20 us" and latency.available.startswith("13 us")  # 40 steps, last input at step 26


def test_bad_input_is_one_line_exit_2(trained_model, wide_model, tmp_path):
    for args, words in (((trained_model, "--chips", 0, "-o", tmp_path / "a.npz"), "1..64"),
                        ((wide_model, "--chips", 1, "-o", tmp_path / "b.npz"), "needs 2 chips"),
                        ((trained_model, "--chips", 3, "-o", tmp_path / "c.npz"), "more chips than")):
        result = invoke("map", *args)
        assert result.exit_code == 2, result.output
        assert words in result.output and len(result.output.strip().splitlines()) == 1
        assert not any(tmp_path.iterdir())
    checked = invoke("map", wide_model, "--chips", 2, "--check")
    assert checked.exit_code == 0 and "fits bss2" in checked.output


def test_edited_multichip_file_is_refused(trained_model, tmp_path):
    out = tmp_path / "two.npz"
    map_model(trained_model, "bss2", out, chips=2)
    with np.load(out, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["chip0/synapse_weight"] = arrays["chip0/synapse_weight"].copy()
    arrays["chip0/synapse_weight"].flat[0] ^= 1
    edited = tmp_path / "edited.npz"
    np.savez_compressed(edited, **arrays)
    result = invoke("run", edited)
    assert result.exit_code == 2 and "fails its checksum" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_links_come_from_the_target_file():
    """Bandwidth derived from the crossbar's channels and the FPGA clock, latency as the file says."""
    link = spec_link(SPEC)
    assert link.events_per_s == pytest.approx(4 * 125e6) and link.latency_s == pytest.approx(1e-6)
    raw = {**SPEC.raw, "links": {**SPEC.raw["links"], "latency_s": 2e-6, "crossbar_channels": 2}}
    other = spec_link(replace(SPEC, raw=raw))
    assert other.latency_s == pytest.approx(2e-6) and other.events_per_s == pytest.approx(2 * 125e6)
