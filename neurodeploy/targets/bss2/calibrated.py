"""From requested physical settings to CapMem codes: nominal curves, or a chip's calibration.

With a calibration, each circuit gets the codes calibration found for it, and its synaptic input
strength from the gain line measured on it (:math:`c = c_0 + g / s`): the software-to-hardware
weight scale is measured on the chip, not assumed. A calibration only fits a model whose neuron
parameters are its targets; circuits that failed calibration are never used.
"""

from __future__ import annotations

import numpy as np

from ...deployment import Deployment
from ...errors import CalibrationError
from .spec import BSS2Spec
from .calibration_file import Calibration
from .thresholds import threshold_codes, unmoved_thresholds
from .analog import ChipCodes, clip_code, nominal_codes


# Layer setting (lower.HardwareNeuron) → calibration target, and which layer kinds use it.
MATCHED = (("tau_mem_s", "tau_mem_s", ("lif", "li")), ("tau_syn_s", "tau_syn_s", ("lif", "li")),
           ("v_leak_cadc", "v_leak_cadc", ("lif", "li")), ("v_th_cadc", "v_threshold_cadc", ("lif",)),
           ("v_reset_cadc", "v_reset_cadc", ("lif",)), ("t_ref_s", "t_ref_s", ("lif",)))


def check_targets(layers: list, calibration: Calibration, source: str = "the calibration") -> None:
    """Raise when a layer needs neuron parameters the chip was not calibrated for."""
    for layer in layers:
        for setting, target, kinds in MATCHED:
            if layer.kind not in kinds:
                continue
            need, have = float(getattr(layer.hw, setting)), float(calibration.targets[target])
            if not np.isclose(need, have, rtol=0.01, atol=0.5 if target.endswith("cadc") else 0.0):
                raise CalibrationError(
                    f"layer '{layer.name}' needs {target}={need:g} (hardware units) but {source} targets {have:g}",
                    "calibrate for the model: "
                    f"neurodeploy calibrate --backend BACKEND --target bss2 --set {target}={need:g}")


def calibrated_codes(settings: dict[str, np.ndarray], calibration: Calibration,
                     spec: BSS2Spec) -> tuple[ChipCodes, np.ndarray]:
    """Codes for per-circuit ``settings`` on the calibrated chip, and the unclipped gain codes (to check range)."""
    nominal = nominal_codes(settings, spec)
    cal = calibration.codes
    gain_code = calibration.gain_codes(settings["synaptic_gain_cadc_per_lsb"])
    codes = nominal._replace(
        v_leak=cal.v_leak.copy(), v_reset=cal.v_reset.copy(), v_threshold=np.where(
            nominal.threshold_enabled, cal.v_threshold, nominal.v_threshold),
        i_bias_leak=cal.i_bias_leak.copy(), i_bias_syn_tau=cal.i_bias_syn_tau.copy(),
        i_bias_synin_gm=clip_code(np.nan_to_num(gain_code, nan=0.0), spec),
        synapse_dac_bias=cal.synapse_dac_bias.copy())
    return codes, gain_code


def gain_code_limit(spec: BSS2Spec) -> int:
    return int(spec["capmem"]["code_max"])


def settings_of(deployment: Deployment) -> dict[str, np.ndarray]:
    """The per-circuit physical settings a deployment asked for."""
    names = ("tau_mem_s", "tau_syn_s", "t_ref_s", "v_leak_cadc", "v_th_cadc", "v_reset_cadc",
             "synaptic_gain_cadc_per_lsb")
    return {name: deployment[f"circuit_{name}"] for name in names}


def apply_calibration(deployment: Deployment, calibration: Calibration, spec: BSS2Spec,
                      source: str = "the calibration") -> Deployment:
    """The same deployment with the codes of the chip ``calibration`` describes."""
    used = deployment["circuit_enabled"]
    failed = np.flatnonzero(used & ~calibration.success)
    if len(failed):
        raise CalibrationError(
            f"{len(failed)} circuits this deployment uses (e.g. {failed[:5].tolist()}) failed calibration on chip "
            f"{calibration.chip}", "map the model again with --calibration so that they are avoided")
    spiking = np.isfinite(deployment["circuit_v_th_cadc"])
    requested = {**settings_of(deployment), "v_th_cadc": unmoved_thresholds(deployment)}  # as mapped
    for setting, target, kinds in MATCHED:
        values = requested[setting][used & (True if "li" in kinds else spiking)]
        if len(values) and not np.allclose(values, calibration.targets[target], rtol=0.01,
                                           atol=0.5 if target.endswith("cadc") else 0.0):
            raise CalibrationError(f"the deployment needs {target}={float(values[0]):g} but {source} targets "
                                   f"{calibration.targets[target]:g}",
                                   f"calibrate the chip with --set {target}={float(values[0]):g}")
    codes, gain_code = calibrated_codes(requested, calibration, spec)
    bad = used & ~((gain_code >= 0) & (gain_code <= gain_code_limit(spec)))
    if bad.any():
        raise CalibrationError(f"{int(bad.sum())} circuits cannot reach their synaptic gain on chip {calibration.chip}",
                               "map the model again with this calibration (it reports BSS2-GAIN)")
    moved = {k: np.asarray(v, np.float64) for k, v in deployment.meta.get("threshold_offsets", {}).items()}
    codes = codes._replace(v_threshold=threshold_codes(codes.v_threshold, deployment, moved, spec))
    arrays = {**deployment.arrays, **codes.to_arrays()}
    meta = {**deployment.meta, "chip": calibration.chip,
            "calibration": {"chip": calibration.chip, "checksum": calibration.checksum, "created": calibration.created,
                            "madc": dict(calibration.madc)}}  # MADC codes → CADC, for recordings
    return Deployment(meta=meta, arrays=arrays)
