"""Whole-chip neuron calibration in calix's order (bss2.md §3.2), through the backend interface only.

Order: refractory counters (digital, computed) → MADC against CADC → τ_syn → threshold →
synaptic input strength → leak → τ_mem → reset. Each analog step is a noisy binary search over
CapMem codes for all 512 circuits at once; a time constant's search ends with one refinement step
on a measurement with four times the repeats. Then each circuit's gain line (the measured weight
scale) is fitted. Afterwards every parameter is measured twice more: at the calibrated codes (residuals,
success mask) and with every circuit at the median calibrated code (the uncalibrated spread, as
calix's hardware tests define it).
"""

from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple, Optional
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend
from ..errors import NeurodeployError
from ..targets.bss2.analog import ChipCodes, nominal_codes, quadrant_of, refractory_codes
from ..targets.bss2.spec import BSS2Spec
from .measure import GAIN_DRIVERS, PRECISE_TAU_REPEATS, Meter
from .search import noisy_binary_search

TARGET_KEYS = ("v_leak_cadc", "v_reset_cadc", "v_threshold_cadc", "tau_mem_s", "tau_syn_s", "t_ref_s",
               "synaptic_gain_cadc_per_lsb")
GAIN_WEIGHT, GAIN_PERIOD_S = 1, 8e-6  # x 64 synapses: a mean rise of about 80 LSB at the default target
# A neuron counts as calibrated when it is this close to its target (and its code is not at a bound).
TOLERANCE = {"v_leak_cadc": 3.0, "v_reset_cadc": 3.0, "v_threshold_cadc": 3.0, "tau_mem_s": 0.05,
             "tau_syn_s": 0.05, "synaptic_gain_cadc_per_lsb": 0.05}
RELATIVE = ("tau_mem_s", "tau_syn_s", "synaptic_gain_cadc_per_lsb")


def calibration_targets(spec: BSS2Spec, overrides: Optional[dict] = None) -> dict:
    """The spec's calibration targets with ``overrides`` (hardware units); unknown keys and bad values are errors."""
    targets = {k: float(v) for k, v in spec["calibration"].items()}
    for key, value in (overrides or {}).items():
        if key not in TARGET_KEYS:
            raise NeurodeployError(f"unknown calibration target '{key}'", f"use one of {list(TARGET_KEYS)}")
        targets[key] = float(value)
    limits = {"tau_mem_s": spec["neuron"]["tau_mem_s"]["limits"], "tau_syn_s": spec["neuron"]["tau_syn_s"]["limits"],
              "t_ref_s": spec["neuron"]["t_ref_s"]["limits"], "v_leak_cadc": spec["neuron"]["potentials_cadc"]["leak"],
              "v_reset_cadc": spec["neuron"]["potentials_cadc"]["reset"],
              "v_threshold_cadc": spec["neuron"]["potentials_cadc"]["threshold"]}
    for key, (low, high) in limits.items():
        if not low <= targets[key] <= high:
            raise NeurodeployError(f"calibration target {key}={targets[key]:g} is outside the chip's range "
                                   f"[{low:g}, {high:g}]",
                                   f"choose {key} within [{low:g}, {high:g}] (targets/{spec.name}.yaml)")
    if targets["synaptic_gain_cadc_per_lsb"] <= 0:
        raise NeurodeployError("calibration target synaptic_gain_cadc_per_lsb must be positive", "e.g. 2.0")
    return targets


class CalibrationResult(NamedTuple):
    codes: ChipCodes
    gain_slope: np.ndarray  # CADC per LSB per i_synin_gm code, per circuit (measured)
    gain_offset_code: np.ndarray  # code where the gain reaches zero (measured)
    measured: dict  # parameter → per-circuit value at the calibrated codes
    uncalibrated: dict  # parameter → per-circuit value with all circuits at the median code
    success: np.ndarray  # bool per circuit
    rounds: int
    seconds: float
    madc_gain: float
    madc_offset: float


def _measurements(meter: Meter, targets: dict) -> dict[str, Callable[[ChipCodes], np.ndarray]]:
    return {
        "tau_syn_s": meter.tau_syn, "v_threshold_cadc": meter.threshold,
        "synaptic_gain_cadc_per_lsb":
            lambda c: meter.synaptic_gain(c, GAIN_WEIGHT, GAIN_PERIOD_S, targets["tau_syn_s"]),
        "v_leak_cadc": meter.rest, "tau_mem_s": meter.tau_mem, "v_reset_cadc": meter.reset,
    }


def _precise(meter: Meter) -> dict[str, Callable[[ChipCodes], np.ndarray]]:
    """Time constants measured with 4x the repeats: each search's last step, the residuals, the gain line."""
    return {"tau_syn_s": partial(meter.tau_syn, repeats=PRECISE_TAU_REPEATS),
            "tau_mem_s": partial(meter.tau_mem, repeats=PRECISE_TAU_REPEATS)}

# The code each parameter is searched in, and whether a larger code gives a smaller value.
SEARCHED = {"tau_syn_s": ("i_bias_syn_tau", True), "v_threshold_cadc": ("v_threshold", False),
            "synaptic_gain_cadc_per_lsb": ("i_bias_synin_gm", False), "v_leak_cadc": ("v_leak", False),
            "tau_mem_s": ("i_bias_leak", True), "v_reset_cadc": ("v_reset", False)}


def calibrate(backend: Backend, spec: BSS2Spec, targets: dict, *, seed: int = 0,
              progress: bool = True) -> CalibrationResult:
    """Calibrate every neuron circuit of the chip behind ``backend`` to ``targets``."""
    started = time.perf_counter()
    n = spec.total_circuits
    rng = np.random.default_rng(seed)
    meter = Meter(backend, spec)
    quadrant = quadrant_of(n, spec)
    full = lambda value: np.full(n, value, float)  # noqa: E731
    start = nominal_codes({"v_leak_cadc": full(targets["v_leak_cadc"]), "v_reset_cadc": full(targets["v_reset_cadc"]),
                           "v_th_cadc": full(targets["v_threshold_cadc"]), "tau_mem_s": full(targets["tau_mem_s"]),
                           "tau_syn_s": full(targets["tau_syn_s"]), "t_ref_s": full(targets["t_ref_s"]),
                           "synaptic_gain_cadc_per_lsb": full(targets["synaptic_gain_cadc_per_lsb"])}, spec)
    counter, scaler = refractory_codes(full(targets["t_ref_s"]), quadrant, spec)  # step 1: digital, exact
    codes = start._replace(refractory_counter=counter, refractory_scaler=scaler)
    measure, measure_precisely = _measurements(meter, targets), _precise(meter)
    # One tick per searched parameter, then the gain line and the before/after measurements.
    steps = tqdm(total=len(SEARCHED) + 2, desc="calibrate", disable=not progress, unit="step")
    steps.set_postfix_str("MADC against CADC")  # shown at once: the first steps take the longest
    meter.cross_calibrate_madc(codes)
    for name in SEARCHED:
        steps.set_postfix_str(name)
        field, inverted = SEARCHED[name]

        def probe(c: np.ndarray, name: str = name, codes: ChipCodes = codes, field: str = field) -> np.ndarray:
            return measure[name](codes._replace(**{field: c}))
        found, _ = noisy_binary_search(probe, targets[name], n, rng,
                                       inverted=inverted, code_max=spec["capmem"]["code_max"])
        codes = codes._replace(**{field: found})
        if name in measure_precisely:
            codes = refine_time_constant(codes, field, measure_precisely[name], targets[name],
                                         spec["capmem"]["code_max"])
        steps.update()
    steps.set_postfix_str("gain line")
    precise = {name: measure_now(codes) for name, measure_now in measure_precisely.items()}
    slope, offset_code = gain_line(meter, codes, precise["tau_syn_s"], spec["capmem"]["code_max"])
    steps.update()
    steps.set_postfix_str("spread before/after")
    measured = {name: precise[name] if name in precise else measure[name](codes) for name in SEARCHED}
    median = codes._replace(**{SEARCHED[name][0]: np.full(n, int(np.median(getattr(codes, SEARCHED[name][0]))))
                               for name in SEARCHED})
    uncalibrated = {name: measure[name](median) for name in SEARCHED}
    steps.update()
    steps.close()
    success = _success(codes, measured, targets, spec) & (slope > 0)
    return CalibrationResult(codes=codes, gain_slope=slope, gain_offset_code=offset_code, measured=measured,
                             uncalibrated=uncalibrated, success=success, rounds=meter.rounds,
                             seconds=time.perf_counter() - started, madc_gain=meter.madc_scale.gain,
                             madc_offset=meter.madc_scale.offset)


def refine_time_constant(codes: ChipCodes, field: str, measure: Callable[[ChipCodes], np.ndarray], target: float,
                         code_max: int) -> ChipCodes:
    r"""One refinement of a time constant's codes from a measurement with 4× the repeats.

    A search step's measurement scatters by about 1 % (MADC noise), which is what the binary search
    converges to. A time constant is a capacitance over a conductance that a bias current sets, so to
    first order :math:`\tau \propto 1/c` (the mock's transfer curve; on silicon this is one Newton step
    on the measured ratio): :math:`c \leftarrow \mathrm{round}(c\,\tau/\tau^*)`.
    """
    code = getattr(codes, field)
    tau = measure(codes)
    usable = np.isfinite(tau) & (tau > 0)
    better = np.clip(np.round(code * np.where(usable, tau, target) / target), 0, code_max)
    return codes._replace(**{field: better.astype(code.dtype)})


def gain_line(meter: Meter, codes: ChipCodes, tau_syn_s: np.ndarray, code_max: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Each circuit's gain line :math:`g = s\,(c - c_0)` in its ``i_bias_synin_gm`` code: ``(s, c_0)``.

    This is the software-to-hardware weight scale: mapping reads the line at each neuron's own
    gain, anywhere between a few tens and a thousand codes, so it is fitted by least squares to
    the gain at 1/2, 1, 2 and 4 times the calibrated code. Every point averages 128 synapses per
    circuit (their mismatch would otherwise scale all of the circuit's weights) in rounds of equal
    membrane rise (fewer drivers per round at higher codes, so the CADC stays in range), and is the
    jump per event, computed with each circuit's measured :math:`\tau_{syn}` (``tau_syn_s``), so that
    :math:`\tau_{syn}`'s residual does not leak into the gain.
    """
    all_drivers = meter.spec["geometry"]["synapse_drivers_per_hemisphere"]  # 128
    points, gains = [], []
    for factor in (0.5, 1, 2, 4):
        drivers = GAIN_DRIVERS // max(1, int(factor))  # equal membrane rise at every code
        code = np.clip(np.round(codes.i_bias_synin_gm * factor), 1, code_max).astype(codes.i_bias_synin_gm.dtype)
        points.append(code.astype(float))
        gains.append(meter.synaptic_gain(codes._replace(i_bias_synin_gm=code), GAIN_WEIGHT, GAIN_PERIOD_S, tau_syn_s,
                                         driver_sets=all_drivers // drivers, drivers=drivers))
    c, g = np.stack(points), np.stack(gains)
    dc, dg = c - c.mean(0), g - g.mean(0)
    slope = (dc * dg).sum(0) / np.maximum((dc * dc).sum(0), 1e-12)
    offset_code = c.mean(0) - g.mean(0) / np.where(slope > 0, slope, np.inf)
    return slope, offset_code


def _success(codes: ChipCodes, measured: dict, targets: dict, spec: BSS2Spec) -> np.ndarray:
    ok = np.ones(len(codes.v_leak), bool)
    for name, (field, _) in SEARCHED.items():
        code = getattr(codes, field)
        ok &= (code > 0) & (code < spec["capmem"]["code_max"])
        error = measured[name] - targets[name]
        if name in RELATIVE:
            error = error / targets[name]
        ok &= np.isfinite(error) & (np.abs(error) <= TOLERANCE[name])
    return ok


def spread(values: np.ndarray, name: str, trim: float = 0.05) -> float:
    """Neuron-to-neuron spread as calix's tests define it: the 5 %-trimmed std (relative for time constants and
    gains)."""
    v = np.sort(values[np.isfinite(values)])
    cut = int(len(v) * trim / 2)
    v = v[cut:len(v) - cut] if cut else v
    return float(np.std(v) / np.mean(v)) if name in RELATIVE else float(np.std(v))
