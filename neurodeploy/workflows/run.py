"""``run``: execute a deployment on a backend and score its readout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..backends.base import readout_scores
from ..backends.registry import get_backend
from ..data.datasets import load_data
from ..data.encoding import encode
from ..calibration.file import load_calibration
from ..deployment import Deployment, load_deployment
from ..errors import CalibrationError
from ..targets.bss2.calibrated import apply_calibration
from ..targets.spec import load_target
from .common import accuracy

BATCH = 500


def for_backend(deployment: Deployment, engine, calibration: Optional[str | Path] = None) -> Deployment:
    """The deployment as the chip behind ``engine`` needs it.

    With ``calibration``, the codes are that chip's (its identity must be the backend's). Without,
    a deployment calibrated for one chip is refused on another: its codes would be wrong there.
    """
    chip = getattr(engine, "chip_id", None)
    if calibration is not None:
        cal = load_calibration(calibration)
        if chip is not None and cal.chip != chip:
            raise CalibrationError(f"calibration {calibration} is of chip {cal.chip}, the backend is chip {chip}",
                                   f"calibrate this chip: neurodeploy calibrate --backend {engine.name} -o FILE")
        return apply_calibration(deployment, cal, load_target(deployment.target), source=str(calibration))
    wanted = deployment.meta.get("chip")
    if wanted is not None and chip is not None and getattr(engine, "uses_codes", True) and wanted != chip:
        raise CalibrationError(f"the deployment was calibrated for chip {wanted}, the backend is chip {chip}",
                               f"run it with --calibration FILE of chip {chip}, or map again with that calibration")
    return deployment


def other_chip_warnings(deployment: Deployment, engine) -> list[str]:
    """A model trained in the loop on one chip has learned that chip's mismatch; on another it may lose accuracy."""
    trained = (deployment.meta.get("trained_on") or {}).get("chip")
    chip = getattr(engine, "chip_id", None)
    if trained is None or chip is None or trained == chip:
        return []
    return [f"this model was trained in the loop on chip {trained}, it runs on chip {chip}: "
            f"expect lower accuracy (fix: neurodeploy itl on chip {chip})"]


def run(deployment_path: str | Path, backend: str = "mock:ideal", data: Optional[str] = None,
        progress: bool = False, calibration: Optional[str | Path] = None) -> dict:
    """Accuracy and event counters of a deployment on a backend."""
    engine = get_backend(backend)
    deployment = for_backend(load_deployment(deployment_path), engine, calibration)
    x, y = load_data(deployment.meta["dataset"], data)
    times = encode(x, deployment.meta["encoding"])
    scores, counters = [], {}
    for start in tqdm(range(0, len(y), BATCH), desc=f"run on {backend}", disable=not progress):
        obs = engine.run(deployment, times[start:start + BATCH])
        scores.append(readout_scores(deployment, obs))
        for key, value in obs.counters.items():
            counters[key] = counters.get(key, 0) + value
    return {"accuracy": accuracy(torch.cat(scores), y), "warnings": other_chip_warnings(deployment, engine),
            "n_samples": int(len(y)), "backend": engine.name,
            "target": deployment.target, "dataset": deployment.meta["dataset"], "data": data or "test",
            "chip": getattr(engine, "chip_id", None),
            "counters": counters}
