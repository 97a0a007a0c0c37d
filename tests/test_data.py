"""Datasets and encoders: Yin-Yang's published definition, digits' fixed split, .npz input."""

import numpy as np
import pytest

from neurodeploy.data.datasets import load_data, load_npz
from neurodeploy.data.digits import load_digits_split
from neurodeploy.data.encoding import bin_spike_times, encode
from neurodeploy.data.yinyang import generate_yinyang, load_yinyang, yinyang_class
from neurodeploy.errors import DataError


@pytest.mark.parametrize("point,label", [((0.25, 0.5), 2), ((0.75, 0.5), 2), ((0.25, 0.62), 1),
                                         ((0.5, 0.9), 1), ((0.5, 0.1), 0), ((0.75, 0.7), 0)])
def test_class_rule(point, label):
    assert yinyang_class(*point) == label


def test_yinyang_splits_are_deterministic_and_well_formed():
    x, y = load_yinyang("test")
    assert x.shape == (1000, 4) and y.shape == (1000,)
    x2, y2 = generate_yinyang(1000, 40)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.allclose(x[:, 2], 1 - x[:, 0], atol=1e-6) and np.allclose(x[:, 3], 1 - x[:, 1], atol=1e-6)
    assert np.all(np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5)
    counts = np.bincount(y, minlength=3) / len(y)
    assert np.all(np.abs(counts - 1 / 3) < 0.05)
    assert all(yinyang_class(a, b) == c for (a, b, _, _), c in zip(x[:50], y[:50]))
    assert not np.array_equal(load_yinyang("validation")[0][:10], x[:10])


def test_digits_split_is_fixed():
    x_train, y_train = load_digits_split("train")
    x_test, y_test = load_digits_split("test")
    assert x_train.shape == (1437, 64) and x_test.shape == (360, 64)
    assert 0 <= x_train.min() and x_train.max() <= 1
    assert np.array_equal(load_digits_split("test")[1], y_test)


def test_time_to_spike_encoding_with_bias():
    enc = {"kind": "time_to_spike", "t_early_s": 2e-3, "t_late_s": 26e-3, "t_bias_s": 2e-3, "duration_s": 40e-3}
    times = encode(np.array([[0.0, 1.0, 0.5, 0.25]]), enc)
    assert np.allclose(times, [[2e-3, 26e-3, 14e-3, 8e-3, 2e-3]])
    spikes = bin_spike_times(times, 1e-3, 40)
    assert spikes.shape == (40, 1, 5) and spikes.sum() == 5
    assert spikes[26, 0, 1] == 1 and spikes[2, 0, 4] == 1


def test_latency_encoding_silences_dark_pixels():
    enc = {"kind": "latency", "t_min_s": 2e-3, "t_max_s": 20e-3, "threshold": 0.05, "duration_s": 35e-3}
    times = encode(np.array([[1.0, 0.0, 0.5]]), enc)
    assert times[0, 0] == pytest.approx(2e-3) and np.isnan(times[0, 1]) and times[0, 2] == pytest.approx(11e-3)
    assert bin_spike_times(times, 1e-3, 35).sum() == 2


def test_log_latency_is_a_lif_neurons_first_spike():
    """t = tau ln(v / (v - theta)): the time a membrane dv/dt = (v_in - v)/tau from 0 reaches theta."""
    enc = {"kind": "log_latency", "tau_s": 20e-3, "threshold": 0.2, "duration_s": 50e-3}
    v = np.array([[1.0, 0.5, 0.25, 0.2, 0.0]])
    times = encode(v, enc)[0]
    assert times[0] == pytest.approx(20e-3 * np.log(1.25)) and np.all(np.diff(times[:3]) > 0)
    assert np.isnan(times[3:]).all()  # at or below the threshold: silent
    for value, t in zip(v[0, :3], times[:3]):  # the closed form is the LIF's threshold crossing
        assert value * (1 - np.exp(-t / 20e-3)) == pytest.approx(0.2)
    spikes = bin_spike_times(times[None], 1e-3, 50)
    assert spikes.sum().item() == 3  # 4.5, 10.2 and 32.2 ms: all inside 50 ms
    enc_short = {**enc, "duration_s": 10e-3}
    assert bin_spike_times(encode(v, enc_short), 1e-3, 10).sum().item() == 1  # later spikes fall off the window


def test_log_latency_recipe_keys_are_checked():
    from neurodeploy.validation.common import check_encoding
    from neurodeploy.validation.rules import Invalid

    check_encoding({"kind": "log_latency", "tau_s": 20e-3, "threshold": 0.2, "duration_s": 0.1}, 1e-3)
    for bad in ({"tau_s": 0.0}, {"threshold": 1.0}, {"threshold": -0.1}):
        with pytest.raises(Invalid):
            check_encoding({"kind": "log_latency", "tau_s": 20e-3, "threshold": 0.2, "duration_s": 0.1, **bad}, 1e-3)


def test_npz_data_is_checked(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.random.rand(7, 4), y=np.array([0, 1, 2, 0, 1, 2, 0]))
    x, y = load_data("yinyang", str(good))
    assert x.shape == (7, 4) and y.dtype == np.int64
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.random.rand(7, 5), y=np.zeros(7, int))
    with pytest.raises(DataError, match=r"needs \[N, 4\]"):
        load_npz(wrong, "yinyang")
    labels = tmp_path / "labels.npz"
    np.savez(labels, x=np.random.rand(3, 4), y=np.array([0, 3, 1]))
    with pytest.raises(DataError, match="labels outside"):
        load_npz(labels, "yinyang")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_npz(junk, "yinyang")
