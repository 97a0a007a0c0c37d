"""Seed 003 on the emulated chip: the event-based STDP program (neurodeploy/plasticity.py ``EventStdp``) with
its homeostasis rewriting thresholds, Poisson-coded inputs, the network as a model file
(training/stdp_network.py) and label assignment on chip counts (workflows/label.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode, validate_encoding
from neurodeploy.errors import NeurodeployError, RecipeError
from neurodeploy.modelfile import load_model, save_model
from neurodeploy.plasticity import Boost, EventStdp, SliceObservables, load_program
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.targets.bss2.thresholds import threshold_codes, unmoved_thresholds, with_threshold_offsets
from neurodeploy.targets.registry import get_target
from neurodeploy.training.stdp_network import LATERAL, PLASTIC, StdpNetwork, stdp_network_model
from neurodeploy.workflows.label import label_accuracy, layer_counts
from neurodeploy.workflows.learn import learn

SMALL = StdpNetwork(n_exc=24, threshold=8.0)  # a working point where 24 untrained neurons fire


def seen(weights, causal, post, theta=None) -> SliceObservables:
    weights, causal = np.asarray(weights), np.asarray(causal)
    return SliceObservables("p", weights, causal, np.zeros_like(causal), np.asarray(post),
                            np.zeros(weights.shape[1], np.int64), 0, theta)


def test_the_event_rule_is_the_seeds_summed_over_a_slice():
    """ΔW = 63 η (C⁺/a − x_tar n)(1 − W/63)^μ: potentiation where the sensor read more than x_tar per post spike."""
    program = EventStdp(("p",), eta=0.01, x_tar=0.25, mu=0.0, pairing_lsb=10.0)
    w = np.full((2, 3), 20)
    causal = np.array([[30, 5, 0], [0, 0, 0]])  # neuron 0 spiked 4 times: read 3.0, 0.5 and 0 pairings
    post = np.array([4, 0])
    new = program.update(seen(w, causal, post), np.random.default_rng(0))
    expected = 20 + 63 * 0.01 * (np.array([3.0, 0.5, 0.0]) - 0.25 * 4)
    assert np.all(np.abs(new[0] - expected) < 1) and (new[1] == 20).all()  # stochastic rounding: within 1 LSB
    rounded = np.mean([program.update(seen(w, causal, post), np.random.default_rng(s))[0, 1] for s in range(400)])
    assert rounded == pytest.approx(expected[1], abs=0.1)  # unbiased


def test_a_neuron_that_did_not_fire_ignores_its_sensors_read_noise():
    """Without a postsynaptic spike nothing paired: a reading there is noise and must not move the weights (its
    rectified mean would creep into every weight of every quiet neuron, slice after slice)."""
    program = EventStdp(("p",), eta=0.05, x_tar=0.2)
    w = np.full((2, 4), 10)
    noise = np.array([[1, 0, 1, 0], [0, 1, 0, 1]])
    new = program.update(seen(w, noise, np.array([0, 0])), np.random.default_rng(0))
    assert np.array_equal(new, w)


def test_normalisation_and_the_weight_dependence():
    program = EventStdp(("p",), eta=0.0, weight_sum_lsb=60.0)
    new = program.update(seen([[10, 20, 30]], np.zeros((1, 3)), np.zeros(1)), np.random.default_rng(0))
    assert abs(int(new.sum()) - 60) <= 2 and (np.abs(new - [10, 20, 30]) <= 1).all()
    soft = EventStdp(("p",), eta=0.1, x_tar=0.0, mu=1.0, pairing_lsb=1.0)  # (1 − W/63): no growth at the top
    assert (soft.update(seen([[63]], [[5]], [5]), np.random.default_rng(0)) == 63).all()


def test_homeostasis_keeps_the_differences_between_neurons_within_range():
    program = EventStdp(("p",), theta_gain=0.01, theta_max=0.08)
    theta = program.homeostasis(seen(np.zeros((3, 2)), np.zeros((3, 2)), np.array([10, 0, 2])))
    assert theta == pytest.approx(np.array([0.1, 0.0, 0.02]) - 0.04)
    theta = program.homeostasis(seen(np.zeros((3, 2)), np.zeros((3, 2)), np.array([40, 0, 2]), theta))
    assert theta.max() == pytest.approx(0.08) and theta.min() == pytest.approx(-0.08)  # clipped at ±theta_max
    assert EventStdp(("p",)).homeostasis(seen(np.zeros((3, 2)), np.zeros((3, 2)), np.array([9, 0, 0]))) is None


def test_poisson_encoding_gives_a_sample_the_same_trains_in_any_batch():
    enc = {"kind": "poisson", "max_rate_hz": 200.0, "dt_s": 1e-3, "duration_s": 0.05, "seed": 3}
    validate_encoding(enc)
    x = load_split("digits", "test")[0][:6]
    whole, part = encode(x, enc), encode(x[4:], enc)
    assert np.array_equal(whole[4:, :, :part.shape[2]], part, equal_nan=True)
    assert not np.array_equal(encode(x, {**enc, "seed": 4}), whole, equal_nan=True)
    with pytest.raises(RecipeError, match="one spike per step"):
        validate_encoding({**enc, "max_rate_hz": 2000.0})


def test_threshold_offsets_move_codes_and_the_neurons_firing():
    """−0.7 model units on one neuron: its code falls by 0.5 × CADC per unit / CADC per code; it fires more."""
    spec = load_bss2_spec()
    deployment = get_target("bss2").map(stdp_network_model(SMALL)).deployment
    base = deployment["code:v_threshold"]
    theta = np.zeros(SMALL.n_exc)
    theta[3] = -0.7
    codes = threshold_codes(base, deployment, {"exc": theta}, spec)
    circuit = deployment["neuron_circuits"][3, 0]
    per_unit = deployment.meta["report"]["layers"][0]["cadc_per_model_unit"]
    assert codes[circuit] - base[circuit] == round(-0.7 * per_unit / spec["capmem"]["potential_cadc"]["per_code"])
    assert int((codes != base).sum()) == 1
    x = load_split("digits", "train")[0][:40]
    lowered = with_threshold_offsets(deployment, deployment, {"exc": theta}, spec)
    assert np.array_equal(lowered["code:v_threshold"], codes) and lowered.meta["threshold_offsets"]["exc"][3] == -0.7
    assert np.array_equal(unmoved_thresholds(lowered), deployment["circuit_v_th_cadc"])
    before, _ = layer_counts(MockChip("ideal"), deployment, x, "exc")
    after, _ = layer_counts(MockChip("ideal"), lowered, x, "exc")  # the ideal chip realises the requested settings
    assert after[:, 3].sum() > before[:, 3].sum()


def program(tmp_path, **fields) -> str:
    text = {"format": "neurodeploy.plasticity", "version": 1, "rule": "event", "projections": f"[{PLASTIC}]",
            "eta": 0.05, "weight_sum_lsb": 403.2, "theta_gain": 0.0018, "theta_max": 0.14, **fields}
    path = tmp_path / "event.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in text.items()))
    return str(path)


def test_seed_003_learns_on_the_chip_and_map_reproduces_its_thresholds(tmp_path):
    save_model(stdp_network_model(SMALL, seed=1), tmp_path / "net.pt")
    summary = learn(tmp_path / "net.pt", program(tmp_path, min_spikes=10, boost_hz=100, max_boosts=2),
                    tmp_path / "learned.pt", backend="mock:ideal", train_samples=30)
    assert summary["slices"] == 30 + summary["presented_again"] and summary["synapses_rewritten"] > 0
    learned = load_model(tmp_path / "learned.pt")
    theta = learned.mapping["threshold_offsets"]["exc"].numpy()
    assert theta.shape == (SMALL.n_exc,) and np.ptp(theta) > 0 and abs(theta.mean()) < 1e-6
    assert (learned.weights[PLASTIC] >= 0).all()
    assert torch.equal(learned.weights[LATERAL], stdp_network_model(SMALL, seed=1).weights[LATERAL])
    mapped = get_target("bss2").map(learned).deployment
    untouched = get_target("bss2").map(stdp_network_model(SMALL, seed=1)).deployment
    moved = threshold_codes(untouched["code:v_threshold"], mapped, {"exc": theta}, load_bss2_spec())
    assert np.array_equal(mapped["code:v_threshold"], moved)
    x, y = load_split("digits", "train")
    result = label_accuracy(MockChip("ideal"), mapped, "exc", (x[:60], y[:60]), (x[60:90], y[60:90]),
                            Boost(10, 100, 2))
    assert 0.0 <= result.accuracy <= 1.0 and result.labels.shape == (SMALL.n_exc,) and result.spikes_per_sample > 0


def test_repetition_needs_poisson_inputs(tmp_path):
    latency = dataclasses.replace(stdp_network_model(SMALL), encoding={
        "kind": "latency", "t_min_s": 0.0, "t_max_s": 0.05, "threshold": 0.0, "duration_s": 0.1})
    save_model(latency, tmp_path / "latency.pt")
    with pytest.raises(NeurodeployError, match="again at a higher rate"):
        learn(tmp_path / "latency.pt", program(tmp_path, min_spikes=10, boost_hz=100, max_boosts=2),
              tmp_path / "o.pt", backend="mock:ideal", train_samples=5)
    assert not (tmp_path / "o.pt").exists()
    assert load_program(program(tmp_path, min_spikes=5, boost_hz=50, max_boosts=3)).boost == Boost(5, 50.0, 3)


def test_moved_thresholds_validate_within_capmem_reach(tmp_path):
    """A program may move thresholds past the mapping's range (the comparator works there) but not past what a
    CapMem cell sets; the deployment says so in one line when it does."""
    from neurodeploy.deployment import load_deployment, save_deployment
    from neurodeploy.validation.rules import Invalid
    deployment = get_target("bss2").map(stdp_network_model(SMALL)).deployment
    theta = np.zeros(SMALL.n_exc)
    theta[:2] = 0.5  # 200 + 70 CADC: above the mapping's 220
    spec = load_bss2_spec()
    save_deployment(with_threshold_offsets(deployment, deployment, {"exc": theta}, spec), tmp_path / "a.npz")
    get_target("bss2").validate_deployment(load_deployment(tmp_path / "a.npz"))
    theta[0] = 3.0  # 620 CADC: beyond code 1022
    save_deployment(with_threshold_offsets(deployment, deployment, {"exc": theta}, spec), tmp_path / "b.npz")
    with pytest.raises(Invalid, match="beyond what a CapMem cell sets"):
        get_target("bss2").validate_deployment(load_deployment(tmp_path / "b.npz"))


def test_offsets_without_the_layers_scale_are_a_typed_refusal(tmp_path):
    from neurodeploy.deployment import Deployment, load_deployment, save_deployment
    from neurodeploy.validation.rules import Invalid
    deployment = get_target("bss2").map(stdp_network_model(SMALL)).deployment
    moved = with_threshold_offsets(deployment, deployment, {"exc": np.full(SMALL.n_exc, 0.1)}, load_bss2_spec())
    report = {**moved.meta["report"], "layers": []}
    save_deployment(Deployment(meta={**moved.meta, "report": report}, arrays=moved.arrays), tmp_path / "d.npz")
    with pytest.raises(Invalid, match="cadc_per_model_unit"):
        get_target("bss2").validate_deployment(load_deployment(tmp_path / "d.npz"))
