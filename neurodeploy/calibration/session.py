"""A whole calibration of one chip: run it, summarise it, write the file (the BSS-2 target's hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..backends.base import Backend
from ..errors import BackendError
from ..targets.bss2.calibration_file import Calibration, save_calibration
from ..targets.bss2.spec import BSS2Spec
from .calibrate import SEARCHED, CalibrationResult, calibrate, calibration_targets, spread


def chip_id(engine: Backend) -> str:
    """The identity of the chip behind a backend; a backend without chips cannot be calibrated."""
    if engine.chip_id is None:
        raise BackendError(f"backend '{engine.name}' has no chip to calibrate",
                           "calibrate a chip: --backend mock:0 (emulated) or hxtorch (hardware)")
    return engine.chip_id


def calibration_from_result(result: CalibrationResult, engine: Backend, spec: BSS2Spec, targets: dict) -> Calibration:
    """The calibration file's content for a finished calibration."""
    spreads: dict[str, dict[str, Optional[float]]] = {}
    for name in SEARCHED:
        before, after = spread(result.uncalibrated[name], name), spread(result.measured[name], name)
        spreads[name] = {"spread_before": before, "spread_after": after,
                         "ratio": after / before if before > 0 else None}
    return Calibration(
        chip=chip_id(engine), backend=engine.name, target=spec.name, targets=targets, codes=result.codes,
        gain_slope=result.gain_slope, gain_offset_code=result.gain_offset_code,
        residuals={name: result.measured[name] - targets[name] for name in SEARCHED}, success=result.success,
        spread=spreads, madc={"gain": result.madc_gain, "offset": result.madc_offset},
        seconds=round(result.seconds, 2), measurement_rounds=result.rounds)


def calibrate_chip(engine: Backend, spec: BSS2Spec, sets: Optional[dict] = None, output: Optional[str | Path] = None,
                   seed: int = 0, plot_dir: Optional[str | Path] = None, progress: bool = True) -> dict:
    """Calibrate all neurons of the chip behind ``engine``; returns the before/after summary."""
    targets = calibration_targets(spec, sets)
    identity = chip_id(engine)
    if plot_dir is not None:
        from ..plots import require_matplotlib
        require_matplotlib()
    result = calibrate(engine, spec, targets, seed=seed, progress=progress)
    calibration = calibration_from_result(result, engine, spec, targets)
    if output is not None:
        save_calibration(calibration, output)
    if plot_dir is not None:
        from ..plots import calibration_histograms
        calibration_histograms(result.uncalibrated, result.measured, targets, Path(plot_dir))
    return {"chip": identity, "backend": engine.name, "target": spec.name, "targets": targets,
            "parameters": {name: {"unit": "relative std" if name.endswith(("_s", "lsb")) else "std (CADC LSB)",
                                  **row} for name, row in calibration.spread.items()},
            "neurons": int(len(result.success)), "calibrated": int(np.sum(result.success)),
            "failed": np.flatnonzero(~result.success).tolist(), "seconds": round(result.seconds, 2),
            "measurement_rounds": result.rounds, "output": None if output is None else str(output),
            "calibration": calibration}
