"""The Python API drives the whole pipeline from objects, with no file written."""

import os

import numpy as np
import pytest
import torch

import neurodeploy as nd


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return nd.train("yinyang", epochs=2, seed=0)


def test_train_map_run_itl_through_the_api_writes_nothing(model, tmp_path):
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        x, y = nd.load_split("yinyang", "test")
        software = nd.evaluate(model, (x, y))
        deployment = nd.map(model, target="bss2")
        result = nd.run(deployment, backend="mock:ideal", inputs=x)
        assert result.spikes.shape[1] == len(y) and result.counters["events_in"] > 0
        assert abs(result.accuracy(y) - software) < 0.1 and result.predictions.shape == (len(y),)
        on_xylo = nd.run(nd.map(model, target="xylo"), "xylo-sim", inputs=x[:100])
        assert 0 <= on_xylo.accuracy(y[:100]) <= 1
        tuned = nd.itl(model, "mock:1", epochs=1, train_samples=200, uncalibrated=True)
        assert tuned.metrics["in_the_loop"]["epochs"] == 1 and tuned.mapping["trained_on"]["chip"] == "mock-chip-1"
        assert list(tmp_path.iterdir()) == []
    finally:
        os.chdir(before)


def test_run_takes_features_spike_times_or_a_raster(model):
    deployment = nd.map(model, target="bss2", probe=False)
    x, _ = nd.load_split("yinyang", "test")
    x = x[:20]
    by_features = nd.run(deployment, "software", inputs=x)
    times = nd.run(deployment, "software", spike_times_s=_times(deployment, x))
    raster = torch.zeros(40, 20, 5)
    steps = np.round(_times(deployment, x) / 1e-3).astype(int)
    for b in range(20):
        raster[steps[b], b, np.arange(5)] = 1.0
    by_raster = nd.run(deployment, "software", raster=raster)
    assert torch.equal(by_features.scores, times.scores) and torch.equal(by_features.scores, by_raster.scores)


def _times(deployment, x):
    from neurodeploy.data.encoding import encode
    return encode(x, deployment.meta["encoding"])


def test_errors_are_typed_and_never_exit(model):
    with pytest.raises(nd.NeurodeployError, match="only one of"):
        nd.run(nd.map(model, probe=False), "software", inputs=np.zeros((2, 4)), spike_times_s=np.zeros((2, 5)))
    with pytest.raises(nd.NeurodeployError, match="input channels"):
        nd.run(nd.map(model, probe=False), "software", inputs=np.zeros((2, 9)))
    with pytest.raises(nd.NeurodeployError, match="does not support --weight-copies"):
        nd.map(model, target="xylo", weight_copies=2)
    with pytest.raises(nd.DoesNotFitError):
        nd.map(nd.train("digits", epochs=1), target="xylo")
    assert [t["name"] for t in nd.targets()][:2] == ["bss2", "xylo"]
    assert not nd.check(model, "xylo").violations


def test_run_gives_membranes_in_model_units_comparable_with_software(deployment_file):
    deployment = nd.load_deployment(deployment_file)
    x, _ = nd.load_split("yinyang", "test")
    chip, software = nd.run(deployment, "mock:ideal", inputs=x[:16]), nd.run(deployment, "software", inputs=x[:16])
    readout = [list(chip.observations.recorded).index(n) for n in software.observations.recorded]
    assert chip.membrane is not None and software.membrane is not None
    assert chip.membrane.shape[:2] == software.membrane.shape[:2]
    assert np.corrcoef(chip.membrane[..., readout].ravel(), software.membrane.ravel())[0, 1] > 0.95
