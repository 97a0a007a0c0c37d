r"""Spike encoders: raw features → one spike time per input channel (seconds, NaN = no spike).

* ``time_to_spike`` (Yin-Yang, hxtorch's ``CoordinatesToSpikes``):
  :math:`t_i = t_{early} + v_i (t_{late} - t_{early})` for each feature :math:`v_i \in [0, 1]`, plus an
  optional bias channel spiking at :math:`t_{bias}`.
* ``latency`` (digits): :math:`t_i = t_{min} + (1 - v_i)(t_{max} - t_{min})`; features at or below
  ``threshold`` stay silent.
* ``log_latency`` (Zenke & Vogels 2021, seed 004_5fb35622c679aa12.txt): the first spike of a LIF neuron
  driven by a constant current :math:`v_i`, :math:`t_i = \tau \ln\big(v_i / (v_i - \vartheta)\big)` for
  :math:`v_i > \vartheta` (``tau_s``, ``threshold``; the seed's 20 ms and 0.2); brighter is earlier
  (:math:`v = 1`: :math:`\tau \ln(1/(1-\vartheta))`), features at or below ``threshold`` and times past
  ``duration_s`` stay silent.

``bin_spike_times`` turns times into the dense ``[T, B, channels]`` tensor a simulator steps through.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import numpy as np
import torch

from ..errors import RecipeError

ENCODING_KEYS = {
    "time_to_spike": {"kind", "t_early_s", "t_late_s", "t_bias_s", "duration_s"},
    "latency": {"kind", "t_min_s", "t_max_s", "threshold", "duration_s"},
    "log_latency": {"kind", "tau_s", "threshold", "duration_s"},
}


def validate_encoding(enc: Mapping[str, Any]) -> None:
    """Raise ``RecipeError`` naming any unknown kind, unknown key or impossible time."""
    kind = enc.get("kind")
    if not isinstance(kind, str) or kind not in ENCODING_KEYS:  # a list or mapping there is unhashable
        raise RecipeError(f"unknown encoding kind {kind!r}",
                          f"use one of {sorted(ENCODING_KEYS)}")
    unknown = set(enc) - ENCODING_KEYS[kind]
    if unknown:
        raise RecipeError(f"unknown key(s) {sorted(unknown)} in encoding '{kind}'",
                          f"allowed keys: {sorted(ENCODING_KEYS[kind])}")
    missing = ENCODING_KEYS[kind] - set(enc) - {"t_bias_s"}
    if missing:
        raise RecipeError(f"encoding '{kind}' lacks {sorted(missing)}", "add them to the recipe")
    for key, value in enc.items():
        if key.endswith("_s") and value is not None and float(value) < 0:
            raise RecipeError(f"encoding.{key} = {value} is negative", "times must be >= 0")


def n_channels(enc: Mapping[str, Any], n_features: int) -> int:
    """Input channels the encoder produces for ``n_features`` raw features."""
    bias = enc["kind"] == "time_to_spike" and enc.get("t_bias_s") is not None
    return n_features + int(bias)


def encode(features: np.ndarray, enc: Mapping[str, Any]) -> np.ndarray:
    """Raw features ``[B, F]`` in [0, 1] → spike times ``[B, channels]`` in seconds (NaN: none)."""
    v = np.clip(np.asarray(features, dtype=np.float64), 0.0, 1.0)
    if enc["kind"] == "time_to_spike":
        times = enc["t_early_s"] + v * (enc["t_late_s"] - enc["t_early_s"])
        if enc.get("t_bias_s") is not None:
            bias = np.full((v.shape[0], 1), float(enc["t_bias_s"]))
            times = np.concatenate([times, bias], axis=1)
        return times
    if enc["kind"] == "log_latency":
        threshold = float(enc["threshold"])
        above = v > threshold
        with np.errstate(divide="ignore", invalid="ignore"):
            times = np.where(above, enc["tau_s"] * np.log(v / np.where(above, v - threshold, 1.0)), np.nan)
        return times
    times = enc["t_min_s"] + (1.0 - v) * (enc["t_max_s"] - enc["t_min_s"])
    times[v <= enc["threshold"]] = np.nan
    return times


def n_steps(enc: Mapping[str, Any], dt_s: float) -> int:
    """Simulation length in steps of ``dt_s``."""
    return int(round(enc["duration_s"] / dt_s))


def bin_spike_times(times_s: np.ndarray, dt_s: float, steps: int) -> torch.Tensor:
    """Spike times ``[B, C]`` → dense spikes ``[T, B, C]`` (float32), rounding to the step grid."""
    batch, channels = times_s.shape
    spikes = torch.zeros(steps, batch, channels)
    index = np.round(times_s / dt_s)
    b, c = np.nonzero(np.isfinite(index) & (index >= 0) & (index < steps))
    spikes[torch.as_tensor(index[b, c], dtype=torch.long), torch.as_tensor(b), torch.as_tensor(c)] = 1.0
    return spikes


def encode_dataset(features: np.ndarray, enc: Mapping[str, Any], dt_s: float) -> torch.Tensor:
    """Raw features ``[N, F]`` → dense input spikes ``[T, N, channels]`` on the model's step grid."""
    return bin_spike_times(encode(features, enc), dt_s, n_steps(enc, dt_s))
