"""benchmarks/brian2_net.py runs the network of mock:ideal: the same membranes up to float32 rounding."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.deployment import load_deployment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_brian2_network_matches_the_ideal_mock(deployment_file):
    from brian2_net import Brian2Network

    dep = load_deployment(deployment_file)
    times = np.random.default_rng(0).integers(2, 27, size=(6, 5)) * 1e-3
    times[::3, 1] = np.nan
    net = Brian2Network(dep, batch=len(times), target="numpy")  # numpy: no compiler needed
    mock = MockChip("ideal").run(dep, times)
    for _ in range(2):  # a second batch starts from the restored initial state
        v = torch.as_tensor(net.run(times), dtype=torch.float32)
        assert v.shape == mock.membrane.shape
        assert torch.allclose(v, mock.membrane, atol=1e-3, rtol=1e-4)
