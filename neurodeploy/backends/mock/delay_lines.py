"""The FPGA's delay lines and the synapse drivers' strength decoding, as the mock chip executes them.

* Delay lines: a deployment with delays lists its delayed copies (``delay_copies``: input channel,
  delay in steps, strength code). The FPGA sends copy ``v`` of each event of channel ``j`` ``d``
  model steps later (÷ speed-up in hardware time); the copies are the chip's input sources.
* Strength (``spike-strength``): the top ``strength_bits`` of an event's label are not matched by the
  synapses; the driver scales the pulse width, hence each synapse's charge, by ``(code + 1) / 8``.
"""

from __future__ import annotations

import numpy as np

from ...deployment import Deployment
from ...errors import BackendError
from ...targets.bss2.delays import input_copy_times, strength_factor
from .connectivity import route_currents


def fpga_delayed_times(deployment: Deployment, times_s: np.ndarray) -> np.ndarray:
    """Input spike times ``[B, channels]`` → the times of the copies the FPGA sends ``[B, copies]`` (model s)."""
    if "delays" not in deployment.meta:
        return times_s
    if np.ndim(times_s) != 2:
        raise BackendError("a deployment with delay lines takes one spike per input channel ([batch, channels]), "
                           "not spike trains", "encode the inputs as the model was trained")
    return input_copy_times(np.asarray(times_s, np.float64), deployment["delay_copies"], deployment.meta["dt_s"])


def input_route_currents(routes: np.ndarray, weight: np.ndarray, arrays: dict, meta: dict) -> np.ndarray:
    """Per FPGA route, the signed LSB each circuit receives, with strength bits decoded
    (connectivity.route_currents)."""
    strength_bits = int(meta.get("delays", {}).get("strength_bits", 0))
    if strength_bits == 0:
        return route_currents(routes, weight, arrays["synapse_label"], arrays["row_mode"])
    address_bits = int(meta["delays"]["address_bits"])
    address = routes.copy()
    address[:, 3] = routes[:, 3] & ((1 << address_bits) - 1)  # what the synapses compare
    factor = strength_factor(routes[:, 3] >> address_bits)
    return route_currents(address, weight, arrays["synapse_label"], arrays["row_mode"]) * factor[:, None]
