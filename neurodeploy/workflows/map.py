"""``map``: model file → deployment for a target, with a mapping report; ``--check`` writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .. import api
from ..atomic import check_output, nameless_temporaries
from ..deployment import save_deployment
from ..modelfile import load_model
from ..scoring import check_weight_copies
from ..targets.registry import get_target

def check_model(model_path: str | Path, target: str = "bss2", delays: Optional[str] = None,
                weight_copies: Optional[int] = None, clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
                calibration: Optional[str | Path] = None) -> dict:
    """All design-rule violations and warnings of a model on a target, with the options ``map`` would get
    (``delays``: the delay strategy); nothing is written."""
    check_weight_copies(weight_copies)
    chosen = get_target(target)
    violations, warnings = api.check(load_model(model_path), chosen, delays=delays, weight_copies=weight_copies,
                                     clip_quantile=clip_quantile, weight_scale=weight_scale, calibration=calibration)
    return {"target": chosen.name, "fits": not violations, "violations": [v.to_dict() for v in violations],
            "warnings": warnings}


def map_model(model_path: str | Path, target: str = "bss2", output: Optional[str | Path] = None,
              clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
              calibration: Optional[str | Path] = None, delays: Optional[str] = None,
              weight_copies: Optional[int] = None) -> dict:
    """Map a model file and write the deployment to ``output`` (:func:`neurodeploy.api.map`); returns the report."""
    if output is not None:
        check_output(output, (model_path,))
    deployment = api.map(load_model(model_path), target, calibration=calibration, clip_quantile=clip_quantile,
                         weight_scale=weight_scale, delays=delays, weight_copies=weight_copies)
    report = deployment.meta["report"]
    if output is not None:
        with nameless_temporaries():
            save_deployment(deployment, output)
        report = {**report, "output": str(output)}
    return {**report, "chip": deployment.meta.get("chip")}
