"""The ``xylo-sim`` backend: a Xylo deployment on this project's bit-exact emulator of the SNN core.

Input spike times are binned on the model's step (the chip's step is the model's ``dt``, set by
its clock) and fed one step later (:func:`.mapper.input_counts`). Spikes come back as counts per
step (a hidden neuron may spike up to 31 times in one step); membranes come back in model units
(the integer state divided by the neuron's state scale, relative to rest), for every neuron.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ...backends.base import Observations, Recording
from ...data.encoding import n_steps
from ...deployment import Deployment
from ...errors import BackendError
from .emulator import MAX_INPUT_SPIKES, evolve
from .mapper import config_of, input_counts


def _binned(input_times_s: np.ndarray, dt_s: float, steps: int) -> torch.Tensor:
    """Spike times ``[B, C]`` or trains ``[B, C, K]`` → event counts ``[T, B, C]`` on the step grid (several per
    bin add up: Xylo's input takes event counts per step)."""
    counts = torch.zeros(steps, *input_times_s.shape[:2])
    index = np.round(input_times_s / dt_s)
    inside = np.nonzero(np.isfinite(index) & (index >= 0) & (index < steps))
    counts.index_put_((torch.as_tensor(index[inside], dtype=torch.long), torch.as_tensor(inside[0]),
                       torch.as_tensor(inside[1])), torch.ones(len(inside[0])), accumulate=True)
    return counts


class XyloSimBackend:
    """Runs Xylo deployments on :mod:`.emulator` (deterministic: no chip, no noise, no calibration)."""

    name = "xylo-sim"
    target: Optional[str] = "xylo"
    chip_id: Optional[str] = None
    uses_codes = False
    capabilities: frozenset[str] = frozenset()

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        if deployment.target != self.target:
            raise BackendError(f"backend {self.name} runs Xylo deployments, this one is for '{deployment.target}'",
                               "map the model with --target xylo")
        if record is not None and record.madc_neuron is not None:
            raise BackendError("Xylo has no MADC", "record membranes (all neurons) instead")
        meta, a = deployment.meta, deployment.arrays
        counts = _binned(np.asarray(input_times_s, np.float64), meta["dt_s"], n_steps(meta["encoding"], meta["dt_s"]))
        chip_input = input_counts(counts)
        rec = evolve(config_of(deployment), chip_input)
        bank, index = a["neuron_bank"], a["neuron_index"]
        hidden = bank == 0
        spikes = np.zeros(rec.spikes.shape[:2] + (len(bank),), np.float32)
        membrane = np.zeros_like(spikes)
        spikes[..., hidden], spikes[..., ~hidden] = rec.spikes[..., index[hidden]], rec.out_spikes[..., index[~hidden]]
        membrane[..., hidden] = rec.v_mem[..., index[hidden]]
        membrane[..., ~hidden] = rec.v_mem_out[..., index[~hidden]]
        membrane /= a["state_scale"].astype(np.float32)
        saturated = int((np.abs(rec.v_mem.astype(np.int32)) >= 32767).sum()
                        + (np.abs(rec.v_mem_out.astype(np.int32)) >= 32767).sum())
        counters = {"events_in": int(chip_input.sum()),
                    "events_dropped": int(np.clip(chip_input - MAX_INPUT_SPIKES, 0, None).sum()),
                    "hidden_spikes": int(rec.spikes.sum()), "membrane_saturated_samples": saturated}
        return Observations(spikes=torch.from_numpy(spikes), membrane=torch.from_numpy(membrane),
                            recorded=np.arange(len(bank)), baseline=torch.zeros(len(bank)),
                            time_step_s=float(meta["dt_s"]), counters=counters)
