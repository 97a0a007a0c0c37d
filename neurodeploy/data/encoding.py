r"""Spike encoders: raw features → spike times per input channel (seconds, NaN = no spike).

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
* ``poisson`` (seed 003): each feature a Poisson spike train of rate ``max_rate_hz`` · :math:`v_i`, drawn per
  step of ``dt_s`` for ``duration_s`` (:func:`poisson_trains`; ``seed`` picks the draws): several spikes per
  channel, ``[B, channels, K]``.

``bin_spike_times`` turns times into the dense ``[T, B, channels]`` tensor a simulator steps through; it also
takes spike trains ``[B, channels, K]`` (NaN-padded), such as :func:`poisson_trains` draws (seed 003's input).
"""

from __future__ import annotations

import zlib
from typing import Any
from collections.abc import Mapping

import numpy as np
import torch

from ..errors import RecipeError

ENCODING_KEYS = {
    "time_to_spike": {"kind", "t_early_s", "t_late_s", "t_bias_s", "duration_s"},
    "latency": {"kind", "t_min_s", "t_max_s", "threshold", "duration_s"},
    "log_latency": {"kind", "tau_s", "threshold", "duration_s"},
    "poisson": {"kind", "max_rate_hz", "dt_s", "duration_s", "seed"},
}
OPTIONAL_KEYS = {"t_bias_s", "seed"}


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
    missing = ENCODING_KEYS[kind] - set(enc) - OPTIONAL_KEYS
    if missing:
        raise RecipeError(f"encoding '{kind}' lacks {sorted(missing)}", "add them to the recipe")
    for key, value in enc.items():
        if key.endswith("_s") and value is not None and float(value) < 0:
            raise RecipeError(f"encoding.{key} = {value} is negative", "times must be >= 0")
    if kind == "poisson":
        for key in ("max_rate_hz", "dt_s", "duration_s"):
            if not float(enc[key]) > 0:
                raise RecipeError(f"encoding.{key} = {enc[key]} must be > 0", f"give encoding.{key} a positive value")
        if float(enc["max_rate_hz"]) * float(enc["dt_s"]) > 1:
            raise RecipeError(f"encoding max_rate_hz × dt_s = {float(enc['max_rate_hz']) * float(enc['dt_s']):g} "
                              "exceeds one spike per step", "lower max_rate_hz or dt_s")


def n_channels(enc: Mapping[str, Any], n_features: int) -> int:
    """Input channels the encoder produces for ``n_features`` raw features."""
    bias = enc["kind"] == "time_to_spike" and enc.get("t_bias_s") is not None
    return n_features + int(bias)


def encode(features: np.ndarray, enc: Mapping[str, Any]) -> np.ndarray:
    """Raw features ``[B, F]`` in [0, 1] → spike times ``[B, channels]`` in seconds (NaN: none); ``poisson``:
    spike trains ``[B, F, K]`` (:func:`sample_trains`)."""
    v = np.clip(np.asarray(features, dtype=np.float64), 0.0, 1.0)
    if enc["kind"] == "poisson":
        return sample_trains(v, enc)
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


def sample_trains(features: np.ndarray, enc: Mapping[str, Any]) -> np.ndarray:
    """The ``poisson`` encoding: :func:`poisson_trains` of each sample drawn from a generator seeded by the
    encoding's ``seed`` and the sample's own values, so that a sample gets the same trains in any batch, split or
    order (a new ``seed`` draws new ones, e.g. per epoch); padded to the longest train of the batch."""
    rows = []
    for row in np.asarray(features, np.float64):
        rng = np.random.default_rng([int(enc.get("seed", 0)), zlib.crc32(row.tobytes())])
        rows.append(poisson_trains(row[None], float(enc["max_rate_hz"]), float(enc["duration_s"]),
                                   float(enc["dt_s"]), rng)[0])
    longest = max((r.shape[-1] for r in rows), default=1)
    out = np.full((len(rows), np.shape(features)[1], longest), np.nan)
    for i, r in enumerate(rows):
        out[i, :, :r.shape[-1]] = r
    return out


def n_steps(enc: Mapping[str, Any], dt_s: float) -> int:
    """Simulation length in steps of ``dt_s``."""
    return int(round(enc["duration_s"] / dt_s))


def grid_events(step_index: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spike times already counted in steps (float, NaN: none), one per channel ``[B, C]`` or spike trains
    ``[B, C, K]`` → ``(step, batch, channel)`` of each event inside ``[0, steps)``.

    Events of one channel that land on the same step merge into one: the step is the time resolution (a
    Poisson train drawn per step has at most one anyway). One spike per channel keeps the row-major order;
    trains come sorted by batch, channel, step.
    """
    step_index = np.asarray(step_index, np.float64)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(step_index) & (step_index >= 0) & (step_index < steps)
    if step_index.ndim == 2:
        b, c = np.nonzero(inside)
        return step_index[b, c].astype(np.int64), b, c
    if step_index.ndim != 3:
        raise ValueError(f"input spike times have shape {step_index.shape}: expected [batch, channels] "
                         "or [batch, channels, spikes]")
    b, c, k = np.nonzero(inside)
    channels = step_index.shape[1]
    key = np.unique((b * channels + c) * steps + step_index[b, c, k].astype(np.int64))
    run_channel, step = np.divmod(key, steps)
    b, c = np.divmod(run_channel, channels)
    return step, b, c


def bin_spike_times(times_s: np.ndarray, dt_s: float, steps: int) -> torch.Tensor:
    """Spike times ``[B, C]``, or spike trains ``[B, C, K]`` (NaN-padded), → dense spikes ``[T, B, C]``
    (float32), rounding to the step grid (:func:`grid_events`)."""
    times_s = np.asarray(times_s, np.float64)
    step, b, c = grid_events(np.round(times_s / dt_s), steps)
    spikes = torch.zeros(steps, *times_s.shape[:2])
    spikes[torch.as_tensor(step), torch.as_tensor(b), torch.as_tensor(c)] = 1.0
    return spikes


def poisson_trains(features: np.ndarray, max_rate_hz: float, duration_s: float, dt_s: float,
                   rng: np.random.Generator) -> np.ndarray:
    r"""Features ``[B, F]`` in [0, 1] → Poisson spike trains ``[B, F, K]`` (s, NaN-padded; K the most spikes
    of any channel): channel :math:`i` spikes at step :math:`k` when :math:`u_{k} < r_{max} v_i \Delta t`,
    at time :math:`k \Delta t`, for :math:`k < T = \mathrm{round}(duration/\Delta t)` (a Bernoulli process,
    at most one spike per step)."""
    v = np.clip(np.asarray(features, np.float64), 0.0, 1.0)
    steps = max(1, int(round(duration_s / dt_s)))
    fire = rng.random((v.shape[0], v.shape[1], steps)) < (max_rate_hz * dt_s) * v[..., None]
    count = fire.sum(-1)
    trains = np.full((*v.shape, max(1, int(count.max(initial=0)))), np.nan)
    b, c, k = np.nonzero(fire)
    slot = np.arange(len(k)) - np.repeat(np.cumsum(count.ravel()) - count.ravel(), count.ravel())
    trains[b, c, slot] = k * dt_s
    return trains


def encode_dataset(features: np.ndarray, enc: Mapping[str, Any], dt_s: float) -> torch.Tensor:
    """Raw features ``[N, F]`` → dense input spikes ``[T, N, channels]`` on the model's step grid."""
    return bin_spike_times(encode(features, enc), dt_s, n_steps(enc, dt_s))
