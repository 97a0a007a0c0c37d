"""Convolutional and pooled layers: the unrolled matrix is the convolution, training shares the kernel,
BSS-2 gets one synapse per unrolled copy and none outside a receptive field, itl keeps the structure."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.core.conv import Geometry, connected, dense, input_slots
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import bin_spike_times, encode
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import FileKindError, RecipeError
from neurodeploy.graph import Graph
from neurodeploy.modelfile import load_model, read_model_dict
from neurodeploy.models.network import SpikingNetwork
from neurodeploy.recipe import load_recipe
from neurodeploy.validation.checksum import FIELD, digest
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.train import train
from conftest import ROOT, changed_recipe, dequantised

CONV = "input->conv"


def conv_recipe(tmp_path, **changes):
    """models/digits_conv.yaml with 4 channels and 2 epochs (or ``changes`` per dotted key)."""
    return changed_recipe("digits_conv", tmp_path, "conv.yaml",
                          **{"layers.0.channels": 4, "training.epochs": 2, **changes})


@settings(max_examples=40, deadline=None)
@given(c_in=st.integers(1, 3), side=st.integers(3, 9), channels=st.integers(1, 4), kernel=st.integers(1, 3),
       stride=st.integers(1, 3), padding=st.integers(0, 1), pool=st.sampled_from([1, 2]))
def test_the_unrolled_matrix_is_the_convolution(c_in, side, channels, kernel, stride, padding, pool):
    side = side - side % pool
    geometry = Geometry((c_in, side, side), pool, channels, kernel, stride, padding)
    if geometry.problem(c_in * side * side):
        return  # the kernel does not fit the pooled image
    kernel_w = torch.randn(geometry.parameter_shape(0), dtype=torch.float64, requires_grad=True)
    image = torch.randn(5, c_in, side, side, dtype=torch.float64)
    pooled = F.avg_pool2d(image, pool) if pool > 1 else image
    expected = F.conv2d(pooled, kernel_w, stride=stride, padding=padding).reshape(5, -1)
    matrix = dense(kernel_w, geometry)
    assert torch.allclose(image.reshape(5, -1) @ matrix.t(), expected)
    # the kernel's gradient is the sum over its unrolled copies: weights are shared
    grad_out = torch.randn_like(expected)
    (g_conv,) = torch.autograd.grad(expected, kernel_w, grad_out)
    (g_dense,) = torch.autograd.grad(image.reshape(5, -1) @ matrix.t(), kernel_w, grad_out)
    assert torch.allclose(g_conv, g_dense)
    joined = connected(geometry, matrix.shape[0])
    assert not matrix.detach()[~joined].any() and int(joined.sum(1).max()) <= c_in * kernel * kernel * pool * pool
    slots = input_slots(geometry)
    if slots is not None:  # pixels of one receptive field never share a slot (a synapse driver on BSS-2)
        for row in joined:
            assert len(set(slots[row].tolist())) == int(row.sum())


def test_pooling_then_a_dense_matrix():
    geometry = Geometry((2, 4, 4), pool=2)
    w = torch.randn(geometry.parameter_shape(3))
    image = torch.randn(6, 2, 4, 4)
    assert torch.allclose(image.reshape(6, -1) @ dense(w, geometry).t(),
                          F.avg_pool2d(image, 2).reshape(6, -1) @ w.t(), atol=1e-6)
    assert connected(geometry, 3).all()  # every pixel reaches every output through its pool


def test_the_recipe_builds_a_convolution_and_refuses_what_does_not_fit(tmp_path):
    recipe = load_recipe(ROOT / "models" / "digits_conv.yaml")
    conv = recipe.graph.population("conv")
    assert conv.kind == "lif" and conv.size == 8 * 6 * 6
    assert recipe.graph.projections[0].geometry == Geometry((1, 8, 8), 1, 8, 3, 1, 0)
    pooled = load_recipe(conv_recipe(tmp_path, **{"layers.0.pool": 2}))
    looped = load_recipe(conv_recipe(tmp_path, **{"layers.0.recurrent": {"mask": "hollow"}}))
    assert looped.graph.recurrent("conv") is not None  # a conv layer may feed itself back
    assert pooled.graph.projections[1].geometry == Geometry((4, 6, 6), pool=2)
    for change, message in [({"layers.0.kernel": 9}, "does not fit"),
                            ({"layers.0.size": 10}, "its convolution gives 144 neurons"),
                            ({"layers.0.pool": 4}, "does not divide"),
                            ({"layers.0.channels": 0}, "layers[0].channels"),
                            ({"layers.1.pool": 2}, "not an image"),
                            ({"dataset": "yinyang", "layers.1.size": 3}, "not an image")]:
        with pytest.raises(RecipeError) as info:
            load_recipe(conv_recipe(tmp_path, **change))
        assert message in info.value.message, (change, info.value.message)


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conv")
    train(conv_recipe(folder, **{"layers.0.pool": 2, "layers.0.init.mean": 2.0}), folder / "model.pt", progress=False)
    return folder / "model.pt"


def test_training_shares_the_kernel(conv_model):
    model = load_model(conv_model)
    w = model.weights[CONV]  # [4*6*6, 64], unrolled
    geometry = model.graph.projections[0].geometry
    assert not w[~connected(geometry, w.shape[0])].any()
    # every output pixel of a channel holds the same 3x3 kernel: compare two receptive fields
    kernels = w.view(4, 6, 6, 8, 8)
    assert torch.equal(kernels[:, 0, 0, 0:3, 0:3], kernels[:, 2, 3, 2:5, 3:6])
    readout = model.weights["conv->output"].view(10, 4, 3, 2, 3, 2)  # a 2x2 pool: four equal weights
    assert torch.allclose(readout[..., 0, :, 0], readout[..., 1, :, 1])


def test_broken_structure_in_a_model_file_is_refused(conv_model, tmp_path):
    data = copy.deepcopy(read_model_dict(conv_model))
    del data[FIELD]
    data["weights"][CONV][0, -1] = 0.5  # the first neuron's receptive field is the top-left corner
    torch.save({**data, FIELD: digest(data)}, tmp_path / "broken.pt")
    with pytest.raises(FileKindError, match="outside the structure"):
        load_model(tmp_path / "broken.pt")


def test_bss2_gets_one_synapse_per_unrolled_copy_and_the_mock_matches(conv_model, tmp_path):
    report = map_model(conv_model, "bss2", tmp_path / "conv.npz")
    model = load_model(conv_model)
    pairs = 4 * 6 * 6 * 9 + 10 * 144  # receptive fields, then the readout from every conv neuron
    assert report["synapses_used"] == 2 * pairs  # an excitatory and an inhibitory row per signed pair
    assert report["layers"][0]["fan_in"] == 9  # a 3x3 receptive field: 9 input slots (drivers), not 64
    deployment = load_deployment(tmp_path / "conv.npz")
    times = np.round(encode(load_split("digits", "test")[0][:64], model.encoding), 3)  # digits, on the step grid
    chip = MockChip().run(deployment, times)
    net = SpikingNetwork(Graph.from_dict(deployment.meta["graph"]), model.dt_s, weights=dequantised(deployment))
    with torch.no_grad():
        software = net(bin_spike_times(times, model.dt_s, 35)).spikes["conv"]
    conv_neurons = np.flatnonzero(deployment["neuron_layer"] == 0)
    assert software.sum() > 0 and torch.equal(chip.spikes[..., conv_neurons], software)


def test_itl_trains_each_copy_and_keeps_the_structure(conv_model, tmp_path):
    from neurodeploy.workflows.itl import itl

    summary = itl(conv_model, tmp_path / "itl.pt", backend="mock:ideal", epochs=1, train_samples=200,
                  progress=False)
    assert summary["history"][0]["synapses_rewritten"] > 0
    tuned = load_model(tmp_path / "itl.pt")  # loading checks the weights stay within the structure
    geometry = tuned.graph.projections[0].geometry
    assert not tuned.weights[CONV][~connected(geometry, tuned.weights[CONV].shape[0])].any()
