"""``map``: model file → deployment for a target, with a mapping report; ``--check`` writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..deployment import save_deployment
from ..errors import DoesNotFitError, NeurodeployError
from ..calibration.file import load_calibration
from ..modelfile import load_model
from ..targets.bss2.mapper import check as bss2_check, map_to_bss2
from ..targets.spec import load_target
from .common import check_weight_copies

MAPPERS = {"bss2": (map_to_bss2, bss2_check)}


def _mappers(spec_name: str):
    if spec_name not in MAPPERS:
        raise NeurodeployError(f"target '{spec_name}' has no mapper", f"use one of {sorted(MAPPERS)}")
    return MAPPERS[spec_name]


def check_model(model_path: str | Path, target: str = "bss2", delays: Optional[str] = None,
                weight_copies: int = 1) -> dict:
    """All design-rule violations and warnings of a model on a target (``delays``: the delay strategy)."""
    check_weight_copies(weight_copies)
    model, spec = load_model(model_path), load_target(target)
    _, violations, warnings = _mappers(spec.name)[1](model, spec, delays=delays, weight_copies=weight_copies)
    return {"target": spec.name, "fits": not violations, "violations": [v.to_dict() for v in violations],
            "warnings": warnings}


def map_model(model_path: str | Path, target: str = "bss2", output: Optional[str | Path] = None,
              clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
              calibration: Optional[str | Path] = None, delays: Optional[str] = None,
              weight_copies: Optional[int] = None) -> dict:
    """Map and write the deployment to ``output``; a model that does not fit raises ``DoesNotFitError``.

    With ``calibration`` (a calibration file), the deployment carries that chip's codes and avoids
    its failed circuits. ``delays`` chooses how trained delays are realised (multi-synapse,
    spike-strength, gradient-only; default gradient-only for a model with delays). ``weight_copies``:
    the most synapses that share one weight (targets/bss2/lower.py; None: as the model was trained
    in the loop, else 1).
    """
    check_weight_copies(weight_copies)
    if not 0 < clip_quantile <= 1:
        raise NeurodeployError(f"--clip-quantile {clip_quantile} is outside (0, 1]", "e.g. 0.999")
    model, spec = load_model(model_path), load_target(target)
    chip = None if calibration is None else load_calibration(calibration)
    if chip is not None and chip.target != spec.name:
        raise NeurodeployError(f"calibration {calibration} is for target '{chip.target}', not '{spec.name}'",
                               f"use a calibration made with --target {spec.name}")
    deployment, report, violations = _mappers(spec.name)[0](model, spec, clip_quantile=clip_quantile,
                                                            weight_scale=weight_scale, calibration=chip,
                                                            delays=delays, weight_copies=weight_copies)
    if violations:
        raise DoesNotFitError(spec.name, violations)
    if output is not None:
        save_deployment(deployment, output)
        report = {**report, "output": str(output)}
    report = {**report, "chip": deployment.meta["chip"]}
    return report
