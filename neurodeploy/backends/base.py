"""The backend interface shared by the software reference, the mock chip and real hardware.

A backend takes a deployment and input spike times (model seconds) and returns
:class:`Observations`. Calibration, evaluation and in-the-loop training talk only to this
interface, so the same code runs against any backend.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import torch

from ..deployment import Deployment
from ..models.network import decode


class Observations(NamedTuple):
    spikes: torch.Tensor  # [T, B, n_neurons] of the deployment's logical neurons, on the backend's step grid
    membrane: torch.Tensor  # [T, B, len(recorded)] membrane samples (model units or CADC LSB)
    recorded: np.ndarray  # logical neuron ids of membrane's last axis
    baseline: torch.Tensor  # [len(recorded)] resting potential of each recorded neuron
    time_step_s: float  # the step of the time axis, in the backend's own (hardware) seconds
    counters: dict  # event counters: delivered, dropped, ...


class Backend(Protocol):
    name: str

    def run(self, deployment: Deployment, input_times_s: np.ndarray) -> Observations:
        """Run one batch: ``input_times_s`` ``[B, channels]`` spike times in model seconds (NaN: none)."""
        ...


def readout_scores(deployment: Deployment, obs: Observations) -> torch.Tensor:
    """Each readout neuron's membrane above its rest, decoded as trained (max or mean over time)."""
    first, count = deployment.meta["readout_neurons"]
    columns = [int(np.flatnonzero(obs.recorded == n)[0]) for n in range(first, first + count)]
    v = obs.membrane[..., columns] - obs.baseline[columns]
    return decode(v, deployment.meta["training"].get("loss") or "max_over_time")
