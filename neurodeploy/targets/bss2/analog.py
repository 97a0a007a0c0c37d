r"""BSS-2 analog settings as the chip takes them: 10-bit CapMem codes and digital refractory counters.

Per neuron circuit (bss2.md §1.5): the leak, reset and threshold potentials (voltage cells), the
leak bias (sets :math:`\tau_{mem}`), the synaptic time-constant bias (:math:`\tau_{syn}`) and the
synaptic input strength bias ``i_synin_gm``; per quadrant the synapse DAC bias (scales every
weight of the quadrant) and the refractory clock scaler; per circuit an 8-bit refractory counter.

The *nominal* curves below (constants in ``targets/bss2.yaml: capmem``) are what a code gives on
an average circuit. Each real circuit deviates; calibration measures where its codes land.

.. math::
    v = o + k\,c, \qquad \tau = A / c, \qquad g = s\,c\,\frac{c_{dac}}{c_{dac}^{ref}}, \qquad
    t_{ref} = n\,(m + 1) / f_{clk}
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .spec import BSS2Spec

NEURON_CODES = ("v_leak", "v_reset", "v_threshold", "i_bias_leak", "i_bias_syn_tau", "i_bias_synin_gm")
QUADRANT_CODES = ("synapse_dac_bias", "refractory_scaler")


class ChipCodes(NamedTuple):
    """Everything analog a chip is configured with; arrays over circuits (``[512]``) or quadrants (``[4]``)."""

    v_leak: np.ndarray
    v_reset: np.ndarray
    v_threshold: np.ndarray
    i_bias_leak: np.ndarray
    i_bias_syn_tau: np.ndarray
    i_bias_synin_gm: np.ndarray
    refractory_counter: np.ndarray
    threshold_enabled: np.ndarray  # bool per circuit: the spike comparator (off for readouts)
    synapse_dac_bias: np.ndarray  # per quadrant
    refractory_scaler: np.ndarray  # per quadrant

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Deployment arrays ``code:<name>``."""
        return {f"code:{name}": np.asarray(value) for name, value in self._asdict().items()}

    @classmethod
    def from_arrays(cls, arrays: dict) -> ChipCodes:
        return cls(**{name: np.asarray(arrays[f"code:{name}"]) for name in cls._fields})

    def replace_circuits(self, mask: np.ndarray, other: ChipCodes) -> ChipCodes:
        """Per-circuit codes from ``other`` where ``mask``, quadrant codes from ``other``."""
        fields = {}
        for name in self._fields:
            mine, theirs = getattr(self, name), getattr(other, name)
            fields[name] = theirs.copy() if name in QUADRANT_CODES else np.where(mask, theirs, mine)
        return ChipCodes(**fields)


def quadrant_of(n_circuits: int, spec: BSS2Spec) -> np.ndarray:
    """Quadrant of each circuit (``circuit = hemisphere * 256 + column``; 128 columns per quadrant)."""
    columns = spec["geometry"]["circuits_per_hemisphere"]
    per_row = spec["capmem"]["quadrants"] // spec["geometry"]["hemispheres"]
    circuit = np.arange(n_circuits)
    return (circuit // columns) * per_row + (circuit % columns) // (columns // per_row)


def clip_code(code: np.ndarray, spec: BSS2Spec) -> np.ndarray:
    return np.clip(np.round(code), 0, spec["capmem"]["code_max"]).astype(np.int32)


# Nominal curves and their inverses ------------------------------------------------------------

def nominal_potential_cadc(code: np.ndarray, spec: BSS2Spec) -> np.ndarray:
    c = spec["capmem"]["potential_cadc"]
    return c["offset"] + c["per_code"] * np.asarray(code, float)


def nominal_potential_code(v_cadc: np.ndarray, spec: BSS2Spec) -> np.ndarray:
    c = spec["capmem"]["potential_cadc"]
    return (np.asarray(v_cadc, float) - c["offset"]) / c["per_code"]


def nominal_tau_s(code: np.ndarray, spec: BSS2Spec, which: str) -> np.ndarray:
    return spec["capmem"][f"{which}_s_times_code"] / np.maximum(np.asarray(code, float), 1.0)


def nominal_tau_code(tau_s: np.ndarray, spec: BSS2Spec, which: str) -> np.ndarray:
    return spec["capmem"][f"{which}_s_times_code"] / np.asarray(tau_s, float)


def nominal_gain(code: float | np.ndarray, dac_code: np.ndarray, spec: BSS2Spec) -> np.ndarray:
    c = spec["capmem"]
    return c["synaptic_gain_per_code"] * np.asarray(code, float) * np.asarray(dac_code, float) / c["synapse_dac_bias"]


def refractory_time_s(counter: np.ndarray, scaler: np.ndarray, spec: BSS2Spec) -> np.ndarray:
    return np.asarray(counter, float) * (np.asarray(scaler, float) + 1.0) / spec["refractory"]["clock_hz"]


def refractory_codes(t_ref_s: np.ndarray, quadrant: np.ndarray, spec: BSS2Spec) -> tuple[np.ndarray, np.ndarray]:
    """Counter per circuit and the smallest scaler per quadrant that fits its longest period (exact, digital)."""
    r = spec["refractory"]
    cycles = np.asarray(t_ref_s, float) * r["clock_hz"]
    n_quadrants = spec["capmem"]["quadrants"]
    scaler = np.zeros(n_quadrants, np.int32)
    for q in range(n_quadrants):
        longest = cycles[quadrant == q].max(initial=0.0)
        scaler[q] = min(int(np.ceil(longest / r["counter_max"])) - 1, r["scaler_max"]) if longest > 0 else 0
        scaler[q] = max(scaler[q], 0)
    counter = np.clip(np.round(cycles / (scaler[quadrant] + 1)), 0, r["counter_max"]).astype(np.int32)
    return counter, scaler


def nominal_codes(settings: dict[str, np.ndarray], spec: BSS2Spec) -> ChipCodes:
    """Codes that give the requested physical ``settings`` on an average circuit (no calibration).

    ``settings`` are per-circuit arrays: ``v_leak_cadc``, ``v_reset_cadc``, ``v_th_cadc`` (``inf``:
    comparator off), ``tau_mem_s``, ``tau_syn_s``, ``t_ref_s``, ``synaptic_gain_cadc_per_lsb``.
    Unused circuits (zeros) get harmless codes.
    """
    n = len(settings["v_leak_cadc"])
    quadrant = quadrant_of(n, spec)
    dac = np.full(spec["capmem"]["quadrants"], spec["capmem"]["synapse_dac_bias"], np.int32)
    spiking = np.isfinite(settings["v_th_cadc"])
    v_th = np.where(spiking, settings["v_th_cadc"], nominal_potential_cadc(spec["capmem"]["code_max"], spec))
    tau = lambda key, which: np.where(settings[key] > 0, nominal_tau_code(  # noqa: E731
        np.where(settings[key] > 0, settings[key], 1.0), spec, which), 0)
    counter, scaler = refractory_codes(settings["t_ref_s"], quadrant, spec)
    gain_code = settings["synaptic_gain_cadc_per_lsb"] / nominal_gain(1.0, dac[quadrant], spec)
    return ChipCodes(
        v_leak=clip_code(nominal_potential_code(settings["v_leak_cadc"], spec), spec),
        v_reset=clip_code(nominal_potential_code(settings["v_reset_cadc"], spec), spec),
        v_threshold=clip_code(nominal_potential_code(v_th, spec), spec),
        i_bias_leak=clip_code(tau("tau_mem_s", "tau_mem"), spec),
        i_bias_syn_tau=clip_code(tau("tau_syn_s", "tau_syn"), spec),
        i_bias_synin_gm=clip_code(gain_code, spec),
        refractory_counter=counter, threshold_enabled=spiking, synapse_dac_bias=dac, refractory_scaler=scaler)
