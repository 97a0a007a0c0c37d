r"""Measurements of each neuron parameter, through the backend's readouts only (CADC, MADC).

Each function configures the chip with the given codes (a chip experiment), runs it on the
backend and turns the readouts into one value per circuit. Nothing here reads the chip's hidden
parameters: a real chip behind the same interface would be measured the same way. Every call of
``backend.run`` is one measurement round (a batch of runs on the chip).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..backends.base import Backend, Recording
from ..errors import BackendError
from ..targets.bss2.analog import ChipCodes
from ..targets.bss2.spec import BSS2Spec
from .experiment import chip_experiment, input_times, step_s, train_experiment

CADC_RUNS = 8
GAIN_DRIVERS = 64  # synapses per neuron that each gain-measurement event crosses (16 per bus)
TAU_REPEATS = 32  # MADC runs per neuron for a time constant in a search step: noise averages out
PRECISE_TAU_REPEATS = 128  # for the final refinement and residuals: about 0.5 % instead of 1 % (std)
THRESHOLD_DRIVE_CADC = 60.0  # leak above threshold while the threshold is measured
CADC_ONLY = Recording(spikes=False, membrane=True)
NO_INPUT_S = np.zeros(0)  # default input times: no input events


class MadcScale(NamedTuple):
    r"""The MADC's relation to CADC units, :math:`m = a\,v + b`, measured on the chip (one line per chip)."""

    gain: float
    offset: float

    def to_cadc(self, madc: torch.Tensor) -> torch.Tensor:
        return (madc - self.offset) / self.gain


class Meter:
    """Runs chip experiments on a backend and counts the measurement rounds."""

    def __init__(self, backend: Backend, spec: BSS2Spec) -> None:
        self.backend, self.spec = backend, spec
        self.n = spec.total_circuits
        self.rounds = 0
        self.madc_scale = MadcScale(1.0, 0.0)

    def cadc(self, codes: ChipCodes, duration_s: float, weight: int = 0, at_s: np.ndarray = NO_INPUT_S,
             drivers: int = 1, first_driver: int = 0) -> torch.Tensor:
        """CADC traces ``[T, runs, 512]`` of all circuits, ``CADC_RUNS`` repetitions."""
        experiment = chip_experiment(self.spec, codes, duration_s, weight, drivers=drivers, first_driver=first_driver)
        times = np.full((CADC_RUNS, 1), np.nan)
        if len(at_s):
            experiment = train_experiment(experiment, len(at_s))
            times = input_times(self.spec, CADC_RUNS, at_s)
        self.rounds += 1
        return self.backend.run(experiment, times, CADC_ONLY).membrane

    def madc(self, codes: ChipCodes, duration_s: float, weight: int = 0, at_s: np.ndarray = NO_INPUT_S,
             source: str = "membrane", repeats: int = 1) -> torch.Tensor:
        """MADC traces ``[T, 512]`` in CADC units: one run per circuit and repeat, each recording its own
        neuron; repeats are averaged."""
        experiment = chip_experiment(self.spec, codes, duration_s, weight)
        runs = self.n * repeats
        times = np.full((runs, 1), np.nan)
        if len(at_s):
            experiment = train_experiment(experiment, len(at_s))
            times = input_times(self.spec, runs, at_s)
        self.rounds += 1
        record = Recording(spikes=False, membrane=False, madc_neuron=np.tile(np.arange(self.n), repeats),
                           madc_source=source)
        madc = self.backend.run(experiment, times, record).madc
        if madc is None:
            raise BackendError(f"backend {self.backend.name} returned no MADC samples",
                               "calibrate on a backend with an MADC (a mock chip or hardware)")
        return self.madc_scale.to_cadc(madc.reshape(madc.shape[0], repeats, self.n).mean(1))

    # One observable each ------------------------------------------------------------------

    def rest(self, codes: ChipCodes) -> np.ndarray:
        """Resting potential (CADC): the mean over runs and samples, threshold off."""
        v = self.cadc(codes._replace(threshold_enabled=np.zeros(self.n, bool)), 20e-6)
        return v.mean(dim=(0, 1)).numpy()

    def cross_calibrate_madc(self, codes: ChipCodes, levels: tuple[int, ...] = (200, 300, 400, 500)) -> MadcScale:
        """Fit the MADC's gain and offset against the CADC with neurons resting at several leak codes.

        The levels (about 75–200 LSB on nominal curves) stay inside the CADC's reliable range
        (30–210): one level above it biased the line by up to 1 LSB at the threshold.
        """
        self.madc_scale = MadcScale(1.0, 0.0)
        cadc, madc = [], []
        quiet = codes._replace(threshold_enabled=np.zeros(self.n, bool))
        for level in levels:
            at = quiet._replace(v_leak=np.full(self.n, level))
            cadc.append(self.rest(at))
            madc.append(self.madc(at, 10e-6).mean(0).numpy())
        gain, offset = np.polyfit(np.concatenate(cadc), np.concatenate(madc), 1)
        self.madc_scale = MadcScale(float(gain), float(offset))
        return self.madc_scale

    def threshold(self, codes: ChipCodes) -> np.ndarray:
        """Threshold (CADC): highest membrane value before the resets of a neuron whose leak lies above it.

        The leak sits about ``THRESHOLD_DRIVE_CADC`` above the threshold (in codes, on the nominal
        slope): the membrane then creeps up to the threshold, so the last sample below it lies within
        a fraction of an LSB (a leak at the top of the range overshoots by a step of about 2 LSB).
        """
        above = int(round(THRESHOLD_DRIVE_CADC / self.spec["capmem"]["potential_cadc"]["per_code"]))
        leak = np.minimum(codes.v_threshold.astype(np.int64) + above, self.spec["capmem"]["code_max"])
        spiking = codes._replace(threshold_enabled=np.ones(self.n, bool), v_leak=leak.astype(codes.v_leak.dtype),
                                 refractory_counter=np.full(self.n, 20), refractory_scaler=np.zeros(4, np.int32))
        return self.madc(spiking, 60e-6).amax(0).numpy()

    def reset(self, codes: ChipCodes) -> np.ndarray:
        """Reset (CADC): where the membrane is held during long refractory periods (the median CADC sample)."""
        held = codes._replace(threshold_enabled=np.ones(self.n, bool), v_leak=np.full(self.n, 1022),
                              refractory_counter=np.full(self.n, 255), refractory_scaler=np.full(4, 7, np.int32))
        v = self.cadc(held, 60e-6)
        return v[v.shape[0] // 4:].flatten(0, 1).median(0).values.numpy()

    def tau_syn(self, codes: ChipCodes, repeats: int = TAU_REPEATS) -> np.ndarray:
        """Synaptic time constant (s): exponential fit to the synaptic input line after one event (MADC)."""
        quiet = codes._replace(threshold_enabled=np.zeros(self.n, bool))
        start = 2e-6
        trace = self.madc(quiet, 40e-6, weight=50, at_s=np.array([start]), source="synaptic_input", repeats=repeats)
        return decay_time_constant(trace, step_s(self.spec), start + step_s(self.spec) * 2)

    def tau_mem(self, codes: ChipCodes, repeats: int = TAU_REPEATS) -> np.ndarray:
        """Membrane time constant (s): exponential fit to the membrane's return to rest after a burst (MADC).

        The synapse is set to its fastest (τ_syn up to about 2.4 µs on a mock chip), so that from 10 µs
        after the burst the tail is the membrane's own decay; from 7 µs the synapse's last few percent
        lengthened the fit by 0.5 % on average.
        """
        fast = codes._replace(threshold_enabled=np.zeros(self.n, bool), i_bias_syn_tau=np.full(self.n, 1022))
        burst = np.arange(6) * 1e-6 + 2e-6
        trace = self.madc(fast, 90e-6, weight=63, at_s=burst, repeats=repeats)
        return decay_time_constant(trace, step_s(self.spec), burst[-1] + 10e-6)

    def synaptic_gain(self, codes: ChipCodes, weight: int, period_s: float, tau_syn_s: float | np.ndarray,
                      driver_sets: int = 1, drivers: int = GAIN_DRIVERS) -> np.ndarray:
        r"""Synaptic input strength (CADC per weight LSB) from the mean rise of the membrane under a regular train
        (CADC).

        At steady state the mean membrane above rest is the mean synaptic input,
        :math:`\bar v - v_{rest} = g\,w / (k\,(1 - \alpha))` with ``k`` steps between events and
        :math:`\alpha = e^{-\Delta t/\tau_{syn}}` (``tau_syn_s``: the target, or each circuit's
        measured value, which makes :math:`g` the jump per event rather than the charge). Each event
        crosses ``drivers`` synapses of every neuron, so their individual variation averages out;
        ``driver_sets`` rounds on disjoint sets of drivers average it over that many times more.
        """
        quiet = codes._replace(threshold_enabled=np.zeros(self.n, bool))
        dt = step_s(self.spec)
        drive_start, duration = 10e-6, 150e-6
        at = np.arange(drive_start, duration, period_s)
        per_bus = drivers // self.spec["geometry"]["buses_per_hemisphere"]
        rise: float | np.ndarray = 0.0
        for s in range(driver_sets):
            v = self.cadc(quiet, duration, weight=weight, at_s=at, drivers=drivers, first_driver=s * per_bus)
            t = (np.arange(v.shape[0]) + 1) * dt
            rest = v[t < drive_start - 2e-6].mean(dim=(0, 1))
            driven = v[t > duration - 50e-6].mean(dim=(0, 1))
            rise = rise + (driven - rest).numpy() / driver_sets
        k = period_s / dt
        return rise * k * (1 - np.exp(-dt / np.asarray(tau_syn_s))) / (weight * drivers)


def decay_time_constant(trace: torch.Tensor, dt_s: float, fit_from_s: float,
                        tau_range_s: tuple[float, float] = (0.1e-6, 500e-6), grid: int = 1024) -> np.ndarray:
    r"""Per column of ``trace`` ``[T, N]``, :math:`\tau` of :math:`v(t) = v_\infty + A e^{-t/\tau}` after
    ``fit_from_s``.

    For a given :math:`\tau` the best :math:`v_\infty, A` are linear least squares, so the residual
    is a function of :math:`\tau` alone:
    :math:`r(\tau) = S_{yy} - (S_{ee} S_y^2 - 2 S_e S_y S_{ey} + m S_{ey}^2) / (m S_{ee} - S_e^2)`
    with :math:`e_k = e^{-t_k/\tau}`. It is evaluated for all columns on ``grid`` values of
    :math:`\log\tau` at once (the only per-column term, :math:`S_{ey}`, is one matrix product), and
    the minimum is refined by a parabola through the best grid point and its neighbours. Fitting the
    rest as a free parameter matters: noise makes any separately measured rest wrong by about a
    noise standard deviation, which biases a log-linear fit badly in the tail.
    """
    t_all = (torch.arange(trace.shape[0], dtype=torch.float64) + 1) * dt_s
    window = t_all >= fit_from_s
    y = trace[window].double().t()  # [N, m]
    y = y - y.mean(1, keepdim=True)  # centring changes no residual (v_inf is free) and keeps float64 sums exact
    t = t_all[window] - t_all[window][0]
    m = float(y.shape[1])
    log_tau = torch.linspace(np.log(tau_range_s[0]), np.log(tau_range_s[1]), grid, dtype=torch.float64)
    e = torch.exp(-t[None, :] / torch.exp(log_tau)[:, None])  # [grid, m]
    s_e, s_ee = e.sum(1), (e * e).sum(1)
    s_ey = y @ e.t()  # [N, grid]
    # With centred y (S_y = 0) the explained part reduces to m S_ey^2 / (m S_ee - S_e^2).
    explained = m * s_ey ** 2 / (m * s_ee - s_e ** 2).clamp_min(1e-300)
    residual = (y * y).sum(1, keepdim=True) - explained
    best = residual.argmin(1).clamp(1, grid - 2)
    rows = torch.arange(len(best))
    r_left, r_mid, r_right = residual[rows, best - 1], residual[rows, best], residual[rows, best + 1]
    curvature = r_left - 2 * r_mid + r_right
    shift = torch.where(curvature > 0, 0.5 * (r_left - r_right) / curvature.clamp_min(1e-300), torch.zeros_like(r_mid))
    step = log_tau[1] - log_tau[0]
    return torch.exp(log_tau[best] + shift.clamp(-1, 1) * step).numpy()
