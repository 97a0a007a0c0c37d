"""The backend interface shared by the software reference, the mock chip and real hardware.

A backend takes a deployment and input spike times (model seconds) and returns
:class:`Observations`. Calibration, evaluation and in-the-loop training talk only to this
interface, so the same code runs against any backend.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Protocol

import numpy as np
import torch

from ..deployment import Deployment
from ..graph import Graph
from ..models.network import decode


class Recording(NamedTuple):
    """What to record in a run. Each batch entry is one run on a chip, so each may have its own MADC neuron."""

    spikes: bool = True
    membrane: bool = True  # CADC samples of all neurons (or of membrane_neurons)
    madc_neuron: Optional[np.ndarray] = None  # [B] logical neuron per run, or None: no MADC
    madc_source: str = "membrane"  # or "synaptic_input" (the synaptic input line, as calix's tau_syn step)
    # The synapses' correlation sensors (causal, acausal), read after the run: True for every projection onto a
    # spiking layer, or the names of the projections to read (a PPU reads only the rows its program uses).
    correlation: bool | tuple[str, ...] = False
    membrane_neurons: Optional[np.ndarray] = None  # logical neurons whose membranes to read (None: all); a hint a
    # backend may ignore (it then records all): Observations.recorded says which it read


class Observations(NamedTuple):
    """A backend's readouts; a field not recorded is empty (last axis 0) or None."""

    spikes: torch.Tensor  # [T, B, n_neurons] of the deployment's logical neurons, on the backend's step grid
    membrane: torch.Tensor  # [T, B, len(recorded)] membrane samples (model units or CADC LSB)
    recorded: np.ndarray  # logical neuron ids of membrane's last axis
    baseline: torch.Tensor  # [len(recorded)] resting potential of each recorded neuron
    time_step_s: float  # the step of the time axis, in the backend's own (hardware) seconds
    counters: dict  # event counters: delivered, dropped, ...
    madc: Optional[torch.Tensor] = None  # [T, B] 10-bit MADC samples of Recording.madc_neuron, one per run
    spike_events: Optional[np.ndarray] = None  # [n, 3] (time_s on the clock grid, batch, neuron)
    correlation: Optional[dict] = None  # projection → (causal, acausal) 8-bit readings [B, post, pre]


class Backend(Protocol):
    """What every backend declares and does; workflows read these fields, they never probe."""

    name: str  # as the user typed it, e.g. "mock:0"
    target: Optional[str]  # the target whose deployments it executes; None: any target's (software)
    chip_id: Optional[str]  # the unique identity of the chip behind it; None: no particular chip
    uses_codes: bool  # runs per-chip analog codes: a deployment calibrated for one chip is wrong on another
    capabilities: frozenset[str]  # optional readouts it offers beyond spikes and membrane, e.g. "madc"

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        """Run one batch: ``input_times_s`` ``[B, channels]`` spike times in model seconds (NaN: none), or spike
        trains ``[B, channels, K]`` (NaN-padded; the PyNN backends take one spike per channel only)."""
        ...


class ModelUnits(NamedTuple):
    """How a backend's membrane readings of a deployment become model units, per layer.

    A reading :math:`r` of a neuron of layer :math:`l` with rest reading :math:`b` is
    :math:`v = (r - b)/g_l + v_{leak,l}` in model units, :math:`g_l` the readings per model unit (a chip's
    ``cadc_per_model_unit`` from the mapping report; 1 where the backend reads model units itself, as the
    software backend and the Xylo emulator's model-step runs do). A current has no rest: :math:`I = (r - b)/g_l`.
    """

    neuron_layer: np.ndarray  # [N] layer index of each logical neuron
    per_unit: list[float]  # g_l
    v_leak: list[float]  # v_leak,l

    def convert(self, readings: torch.Tensor | np.ndarray, neurons: np.ndarray,
                baseline: torch.Tensor | np.ndarray, current: bool = False) -> np.ndarray:
        """``readings`` ``[..., len(neurons)]`` → model units (float32)."""
        layer = self.neuron_layer[np.asarray(neurons, np.int64)]
        scale = np.asarray([self.per_unit[i] for i in layer], np.float64)
        leak = 0.0 if current else np.asarray([self.v_leak[i] for i in layer], np.float64)
        values = (np.asarray(readings, np.float64) - np.asarray(baseline, np.float64)) / scale + leak
        return values.astype(np.float32)


def model_units(deployment: Deployment, obs: Observations) -> ModelUnits:
    """The :class:`ModelUnits` of ``obs``: a backend whose time step is not the model's reads in its own units."""
    graph = Graph.from_dict(deployment.meta["graph"])
    layers = deployment.meta["layers"]
    sizes = [graph.population(name).size for name in layers]
    neuron_layer = np.asarray(deployment["neuron_layer"]) if "neuron_layer" in deployment.arrays else \
        np.repeat(np.arange(len(layers)), sizes)
    report = {row["name"]: row for row in deployment.meta.get("report", {}).get("layers", [])}
    own_units = obs.time_step_s != deployment.meta["dt_s"]  # a chip's readings are in its own units (CADC)
    per_unit = [float(report.get(name, {}).get("cadc_per_model_unit", 1.0)) if own_units else 1.0 for name in layers]
    v_leak = [float(graph.population(name).parameters.v_leak) for name in layers]
    return ModelUnits(neuron_layer, per_unit, v_leak)


def membrane_in_model_units(deployment: Deployment, obs: Observations) -> np.ndarray:
    """``obs.membrane`` ``[T, B, len(obs.recorded)]`` in model units, comparable to the software model's."""
    return model_units(deployment, obs).convert(obs.membrane, np.asarray(obs.recorded), obs.baseline)


def readout_recording(deployment: Deployment) -> Recording:
    """What classifying needs: the readout neurons' membranes, no spikes (a chip reads back only those)."""
    first, count = deployment.meta["readout_neurons"]
    return Recording(spikes=False, membrane=True, membrane_neurons=np.arange(first, first + count))


def readout_scores(deployment: Deployment, obs: Observations) -> torch.Tensor:
    """Each readout neuron's membrane above its rest, decoded as trained (max or mean over time)."""
    first, count = deployment.meta["readout_neurons"]
    columns = [int(np.flatnonzero(obs.recorded == n)[0]) for n in range(first, first + count)]
    # Readout neurons are usually recorded side by side: a slice reads them without a gather's copy.
    consecutive = columns == list(range(columns[0], columns[0] + count)) if count else False
    picked = slice(columns[0], columns[0] + count) if consecutive else columns
    how = deployment.meta["training"].get("loss") or "max_over_time"
    if how == "max_over_time":  # max(v - b) = max(v) - b exactly (rounding is monotone): subtract after
        return decode(obs.membrane[..., picked], how) - obs.baseline[picked]
    return decode(obs.membrane[..., picked] - obs.baseline[picked], how)
