"""Chip experiments for calibration, expressed as ordinary deployments.

A calibration talks to a chip only through the backend interface, so each measurement is a
deployment: every circuit is its own neuron, one FPGA input channel reaches every circuit through
driver 0 of each hemisphere (excitatory row, label 0), and the analog settings are the codes under
test (the ``drivers`` option spreads it over several rows). The run's step is the MADC sample period
(its clock scaled down, to 133 ns), so MADC traces are sampled exactly.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..deployment import Deployment
from ..targets.bss2.analog import ChipCodes, nominal_gain, nominal_potential_cadc, nominal_tau_s, quadrant_of
from ..targets.bss2.analog import refractory_time_s
from ..targets.bss2.spec import BSS2Spec


MADC_CLOCK_SCALE = 1  # the MADC's clock scaling divides its rate by 2 (scale + 1) (bss2.md §1.6): 7.5 MSa/s


def step_s(spec: BSS2Spec) -> float:
    """The experiments' time step (hardware seconds): one MADC sample at the scaled rate (133 ns)."""
    return 2 * (MADC_CLOCK_SCALE + 1) / float(spec["readout"]["madc"]["sample_rate_hz"])


def chip_experiment(spec: BSS2Spec, codes: ChipCodes, duration_s: float, input_weight: int = 0,
                    rest_cadc: Optional[np.ndarray] = None, drivers: int = 1, first_driver: int = 0) -> Deployment:
    """A deployment that configures every circuit with ``codes`` and feeds input channel 0 to all of them.

    The channel reaches each circuit through the excitatory rows of ``drivers`` synapse drivers,
    so one event crosses that many synapses per circuit (averaging their weight variation);
    ``first_driver`` shifts them along each bus (another set of synapses).
    """
    g = spec["geometry"]
    n = spec.total_circuits
    rows = g["synapse_drivers_per_hemisphere"] * g["rows_per_driver"]
    weight = np.zeros((g["hemispheres"], rows, g["circuits_per_hemisphere"]), np.uint8)
    label = np.zeros_like(weight)
    row_mode = np.zeros((g["hemispheres"], rows), np.uint8)
    routes = np.zeros((0, 4), np.int64)
    if input_weight > 0:
        used = spread_drivers(drivers, spec, first_driver)
        exc_rows = 2 * used  # the top row of each driver
        weight[:, exc_rows, :] = input_weight
        row_mode[:, exc_rows] = 1  # excitatory
        routes = np.array([[0, h, d, 0] for h in range(g["hemispheres"]) for d in used], np.int64)
    quadrant = quadrant_of(n, spec)
    # What an ideal chip would do with these codes (the ideal mock reads these, a real chip the codes).
    nominal = {
        "circuit_v_leak_cadc": nominal_potential_cadc(codes.v_leak, spec) if rest_cadc is None else rest_cadc,
        "circuit_v_reset_cadc": nominal_potential_cadc(codes.v_reset, spec),
        "circuit_v_th_cadc": np.where(codes.threshold_enabled, nominal_potential_cadc(codes.v_threshold, spec), np.inf),
        "circuit_tau_mem_s": nominal_tau_s(codes.i_bias_leak, spec, "tau_mem"),
        "circuit_tau_syn_s": nominal_tau_s(codes.i_bias_syn_tau, spec, "tau_syn"),
        "circuit_t_ref_s": refractory_time_s(codes.refractory_counter, codes.refractory_scaler[quadrant], spec),
        "circuit_synaptic_gain_cadc_per_lsb": nominal_gain(codes.i_bias_synin_gm, codes.synapse_dac_bias[quadrant],
                                                           spec),
    }
    dt_hw = step_s(spec)
    arrays = {
        "neuron_circuits": np.arange(n, dtype=np.int32)[:, None], "neuron_layer": np.zeros(n, np.int32),
        "synapse_weight": weight, "synapse_label": label, "row_mode": row_mode,
        "input_routes": routes, "neuron_routes": np.zeros((0, 4), np.int64),
        "circuit_enabled": np.ones(n, bool), **nominal, **codes.to_arrays(),
    }
    meta = {"kind": "chip-experiment", "target": spec.name, "speedup": spec.speedup,
            "clock_period_s": spec["time"]["clock_period_s"], "dt_s": dt_hw * spec.speedup,
            "input_channels": 1, "steps": int(round(duration_s / dt_hw))}
    return Deployment(meta=meta, arrays=arrays)


def spread_drivers(count: int, spec: BSS2Spec, first: int = 0) -> np.ndarray:
    """``count`` drivers spread evenly over a hemisphere's buses, so that no bus carries more copies of an
    event than needed: drivers ``first, first + 1, ...`` of each bus."""
    g = spec["geometry"]
    buses = min(g["buses_per_hemisphere"], count)
    per_bus = -(-count // buses)
    if first + per_bus > g["drivers_per_bus"]:
        raise ValueError(f"drivers {first}..{first + per_bus - 1} of a bus do not exist "
                         f"({g['drivers_per_bus']} per bus)")
    return np.array([b * g["drivers_per_bus"] + first + j for b in range(buses) for j in range(per_bus)][:count])


def input_times(spec: BSS2Spec, runs: int, at_s: np.ndarray) -> np.ndarray:
    """``[runs, 1]``-shaped spike times (model seconds) for one input channel firing at hardware times ``at_s``.

    A channel carries one spike per run in the deployment format, so a train is sent as several
    channels' worth of identical routes: see :func:`train_experiment`.
    """
    return np.tile(np.asarray(at_s, float)[None, :] * spec.speedup, (runs, 1))


def train_experiment(experiment: Deployment, spikes: int) -> Deployment:
    """The same experiment with ``spikes`` input channels on the same synapses (a spike train)."""
    a = dict(experiment.arrays)
    routes = experiment.arrays["input_routes"]
    a["input_routes"] = np.concatenate([np.column_stack([np.full(len(routes), k), routes[:, 1:]])
                                        for k in range(spikes)]).astype(np.int64)
    return Deployment(meta={**experiment.meta, "input_channels": spikes}, arrays=a)
