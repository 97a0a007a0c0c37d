r"""What makes one emulated chip differ from another, and from the nominal curves.

Every circuit's analog parameters come from its CapMem codes through its own transfer curve
(nominal curves in :mod:`neurodeploy.targets.bss2.analog`, scattered per circuit):

.. math::
    v = o + k\,c\,(1 + \epsilon_k) + \delta, \qquad \tau = \frac{A\,e^{\eta}}{c}, \qquad
    g = s\,e^{\gamma}\,(c - c_0)\,\frac{c_{dac}\,(1 + \epsilon_q)}{c_{dac}^{ref}}, \qquad
    w_{eff} = w\,(1 + \epsilon_{syn})

with :math:`\delta, \epsilon, \eta, \gamma, c_0` Gaussian, drawn once per chip from its id: the
fixed pattern. Default magnitudes are the *uncalibrated* spreads. bss2.md §2 suggests calibrated
spreads of 2–4 CADC LSB (potentials) and 2–5 % (time constants) and uncalibrated ones 3–5×
larger; calix's hardware tests bound the calibrated/uncalibrated ratio at 0.2–0.45. No chip's
measured distribution is published (§10), so every magnitude below is an **assumption** in that
range, except where a source is named.

========================  =========  ===========================================================
effect                    default    source
========================  =========  ===========================================================
potential offset δ        8 LSB      assumption: 3–5× the calibrated 2–4 LSB (§2)
potential slope ε_k       3 %        assumption
time constants η          15 %       assumption: 3–5× the calibrated 2–5 % (§2)
synaptic gain γ           15 %       assumption (calix equalises it: step 7 of §3.2)
gain offset c_0           8 codes    assumption (why the weight scale is a line fitted over codes)
quadrant DAC ε_q          5 %        assumption (calix equalises quadrants: step 4 of §3.2)
synapse weight ε_syn      5 %        §2 suggests 5–10 % per synapse; not calibratable
membrane noise            1 LSB      §2: trial-to-trial PSP std < 7 LSB; suggested 1–2 LSB
CADC read noise           0.5 LSB    assumption (calibrated CADC channels differ by < 3 LSB, §2)
spike-time jitter         8 ns       assumption: one FPGA clock cycle
MADC                      4 codes/LSB, offset 60 ± 20, gain ± 5 %: assumption (10 bit, §1.6)
========================  =========  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np

from ...errors import BackendError
from ...targets.bss2.analog import ChipCodes, quadrant_of, refractory_time_s
from ...targets.bss2.spec import BSS2Spec
from .faults import DEAD_POTENTIAL_CADC, FIX, KINDS, NO_FAULTS, NO_STUCK_CELLS, Faults, StuckCells, stick


@dataclass(frozen=True)
class MockEffects:
    """Non-idealities of a mock chip; each can be switched off (``mock:3:noise=off``), and faults switched on
    (``mock:3:faults=dead:0.02``, :mod:`.faults`)."""

    fixed_pattern: bool = True
    noise: bool = True
    jitter: bool = True
    cadc: bool = True  # 8-bit samples every ``readout.cadc.period_s`` (off: exact membrane every step)
    madc: bool = True  # 10-bit quantisation of the MADC trace
    event_drops: bool = True  # a bus takes one event per clock cycle; the rest are dropped and counted
    potential_offset_cadc: float = 8.0
    potential_slope_rel: float = 0.03
    tau_rel: float = 0.15
    gain_rel: float = 0.15
    gain_offset_codes: float = 8.0
    quadrant_dac_rel: float = 0.05
    synapse_rel: float = 0.05
    membrane_noise_cadc: float = 1.0
    cadc_read_noise_cadc: float = 0.5
    jitter_s: float = 8e-9
    madc_per_cadc: float = 4.0
    madc_offset: float = 60.0
    faults: Faults = NO_FAULTS

    SWITCHES = ("fixed_pattern", "noise", "jitter", "cadc", "madc", "event_drops")

    @classmethod
    def parse(cls, text: str) -> MockEffects:
        """``"noise=off,cadc=off"`` → effects with those switched off; ``"faults=dead:0.02+drop:0.001"`` → with
        those faults (:mod:`.faults`)."""
        effects = cls()
        for item in filter(None, text.split(",")):
            key, equals, value = item.partition("=")
            if key == "faults" and equals:
                effects = replace(effects, faults=Faults.parse(value, effects.faults))
                continue
            if key not in cls.SWITCHES or value not in ("on", "off"):
                if item.partition(":")[0].partition("=")[0] in KINDS:  # "faults=dead:0.02,stuck:0.01", "dead=0.02"
                    raise BackendError(f"mock setting '{item}' is a fault outside 'faults='",
                                       "write faults=KIND:RATE, several joined with '+': "
                                       "mock:0:faults=dead:0.02+stuck:0.01")
                raise BackendError(f"unknown mock effect setting '{item}'",
                                   f"use EFFECT=on|off with EFFECT one of {list(cls.SWITCHES)}, "
                                   f"e.g. mock:0:noise=off; for faults {FIX}")
            switch: dict[str, Any] = {key: value == "on"}
            effects = replace(effects, **switch)
        return effects

    def describe(self) -> dict:
        return {f.name: (self.faults.describe() if f.name == "faults" else getattr(self, f.name))
                for f in fields(self)}


class ChipVariation(NamedTuple):
    """One chip's fixed pattern: per circuit ``[512]``, per quadrant ``[4]``, per synapse ``[2, 256, 256]``."""

    offset: dict  # potential name → δ per circuit
    slope: dict  # potential name → ε_k per circuit
    tau_mem: np.ndarray  # η
    tau_syn: np.ndarray
    gain: np.ndarray  # γ
    gain_offset_code: np.ndarray  # c_0
    quadrant_dac: np.ndarray  # ε_q
    synapse: np.ndarray  # ε_syn
    madc_gain: float
    madc_offset: float


POTENTIALS = ("v_leak", "v_reset", "v_threshold")
NO_DEAD_CIRCUITS = np.zeros(0, np.int64)  # default of realise(): every circuit works


def draw_variation(chip: int, spec: BSS2Spec, effects: MockEffects) -> ChipVariation:
    """The fixed pattern of chip ``chip``: the same id always gives the same chip."""
    rng = np.random.default_rng(np.random.SeedSequence([0x6E64, chip]))
    g = spec["geometry"]
    n = spec.total_circuits
    rows = g["synapse_drivers_per_hemisphere"] * g["rows_per_driver"]
    on = 1.0 if effects.fixed_pattern else 0.0
    normal = lambda sigma, shape: on * sigma * rng.standard_normal(shape)  # noqa: E731
    return ChipVariation(
        offset={p: normal(effects.potential_offset_cadc, n) for p in POTENTIALS},
        slope={p: normal(effects.potential_slope_rel, n) for p in POTENTIALS},
        tau_mem=normal(effects.tau_rel, n), tau_syn=normal(effects.tau_rel, n),
        gain=normal(effects.gain_rel, n), gain_offset_code=normal(effects.gain_offset_codes, n),
        quadrant_dac=normal(effects.quadrant_dac_rel, spec["capmem"]["quadrants"]),
        synapse=normal(effects.synapse_rel, (g["hemispheres"], rows, g["circuits_per_hemisphere"])),
        madc_gain=effects.madc_per_cadc * (1.0 + float(normal(0.05, ()))),
        madc_offset=effects.madc_offset + float(normal(20.0, ())))


class CircuitPhysics(NamedTuple):
    """What each circuit physically does, in hardware seconds and CADC LSB."""

    v_leak: np.ndarray
    v_reset: np.ndarray
    v_th: np.ndarray  # +inf where the comparator is off
    tau_mem_s: np.ndarray
    tau_syn_s: np.ndarray
    t_ref_s: np.ndarray
    gain_cadc_per_lsb: np.ndarray


def realise(codes: ChipCodes, variation: ChipVariation, spec: BSS2Spec,
            dead: np.ndarray = NO_DEAD_CIRCUITS, stuck: StuckCells = NO_STUCK_CELLS) -> CircuitPhysics:
    """Per-circuit physical parameters that ``codes`` produce on this chip.

    ``dead`` circuits (an injected fault) ignore their codes: the membrane sits at the bottom of
    the range and no synaptic input arrives. ``stuck`` CapMem cells hold their own code whatever
    ``codes`` asks for.
    """
    codes = stick(codes, stuck)
    c = spec["capmem"]
    n = len(codes.v_leak)
    quadrant = quadrant_of(n, spec)

    def potential(name: str) -> np.ndarray:
        code = getattr(codes, name).astype(float)
        pc = c["potential_cadc"]
        return pc["offset"] + pc["per_code"] * code * (1.0 + variation.slope[name]) + variation.offset[name]

    def tau(code: np.ndarray, a: float, eta: np.ndarray) -> np.ndarray:
        return a * np.exp(eta) / np.maximum(code.astype(float), 0.5)  # code 0 is the weakest bias, not zero

    dac = codes.synapse_dac_bias.astype(float) * (1.0 + variation.quadrant_dac) / c["synapse_dac_bias"]
    gain = (c["synaptic_gain_per_code"] * np.exp(variation.gain)
            * np.maximum(codes.i_bias_synin_gm - variation.gain_offset_code, 0.0) * dac[quadrant])
    v_leak, v_reset = potential("v_leak"), potential("v_reset")
    v_leak[dead], v_reset[dead], gain[dead] = DEAD_POTENTIAL_CADC, DEAD_POTENTIAL_CADC, 0.0
    return CircuitPhysics(
        v_leak=v_leak, v_reset=v_reset,
        v_th=np.where(codes.threshold_enabled, potential("v_threshold"), np.inf),
        tau_mem_s=tau(codes.i_bias_leak, c["tau_mem_s_times_code"], variation.tau_mem),
        tau_syn_s=tau(codes.i_bias_syn_tau, c["tau_syn_s_times_code"], variation.tau_syn),
        t_ref_s=refractory_time_s(codes.refractory_counter, codes.refractory_scaler[quadrant], spec),
        gain_cadc_per_lsb=gain)
