"""``calibrate``: calibrate a chip's neurons to targets and write the calibration file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..backends.registry import get_backend
from ..calibration.calibrate import SEARCHED, CalibrationResult, calibrate, calibration_targets, spread
from ..calibration.file import Calibration, save_calibration
from ..errors import BackendError, NeurodeployError
from ..targets.spec import TargetSpec, load_target


def chip_id(engine) -> str:
    """The identity of the chip behind a backend; a backend without chips cannot be calibrated."""
    identity = getattr(engine, "chip_id", None)
    if identity is None:
        raise BackendError(f"backend '{engine.name}' has no chip to calibrate",
                           "calibrate a chip: --backend mock:0 (emulated) or hxtorch (hardware)")
    return identity


def parse_sets(items: tuple[str, ...]) -> dict:
    """``("tau_mem_s=1e-5", ...)`` → ``{"tau_mem_s": 1e-05}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise NeurodeployError(f"--set '{item}' is not NAME=NUMBER", "e.g. --set tau_mem_s=1e-5")
    return out


def calibration_from_result(result: CalibrationResult, engine, spec: TargetSpec, targets: dict) -> Calibration:
    """The calibration file's content for a finished calibration."""
    spreads = {name: {"spread_before": spread(result.uncalibrated[name], name),
                      "spread_after": spread(result.measured[name], name)} for name in SEARCHED}
    for row in spreads.values():
        row["ratio"] = row["spread_after"] / row["spread_before"] if row["spread_before"] > 0 else None
    return Calibration(
        chip=chip_id(engine), backend=engine.name, target=spec.name, targets=targets, codes=result.codes,
        gain_slope=result.gain_slope, gain_offset_code=result.gain_offset_code,
        residuals={name: result.measured[name] - targets[name] for name in SEARCHED}, success=result.success,
        spread=spreads, madc={"gain": result.madc_gain, "offset": result.madc_offset},
        seconds=round(result.seconds, 2), measurement_rounds=result.rounds)


def calibrate_chip(backend: str, target: str = "bss2", sets: Optional[dict] = None,
                   output: Optional[str | Path] = None, seed: int = 0, plot_dir: Optional[str | Path] = None,
                   progress: bool = True) -> dict:
    """Calibrate all neurons of the chip behind ``backend``; returns the before/after summary."""
    spec = load_target(target)
    targets = calibration_targets(spec, sets)
    engine = get_backend(backend)
    identity = chip_id(engine)
    if plot_dir is not None:
        from ..plots import require_matplotlib
        require_matplotlib()
    result = calibrate(engine, spec, targets, seed=seed, progress=progress)
    calibration = calibration_from_result(result, engine, spec, targets)
    spreads = calibration.spread
    if output is not None:
        save_calibration(calibration, output)
    if plot_dir is not None:
        from ..plots import calibration_histograms
        calibration_histograms(result.uncalibrated, result.measured, targets, Path(plot_dir))
    return {"chip": identity, "backend": engine.name, "target": spec.name, "targets": targets,
            "parameters": {name: {"unit": "relative std" if name.endswith(("_s", "lsb")) else "std (CADC LSB)",
                                  **row} for name, row in spreads.items()},
            "neurons": int(len(result.success)), "calibrated": int(np.sum(result.success)),
            "failed": np.flatnonzero(~result.success).tolist(), "seconds": round(result.seconds, 2),
            "measurement_rounds": result.rounds, "output": None if output is None else str(output)}
