"""``map``: model file → deployment for a target, with a mapping report; ``--check`` writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .. import api
from ..atomic import check_output, nameless_temporaries
from ..data.datasets import training_probe
from ..deployment import save_deployment
from ..errors import DoesNotFitError
from ..modelfile import ModelFile, load_model
from ..multichip import MultiChipDeployment, save_multichip
from ..scoring import check_weight_copies
from ..targets.base import MapOptions
from ..targets.registry import get_target
from ..validation.arguments import check_map_arguments

def check_model(model_path: str | Path, target: str = "bss2", delays: Optional[str] = None,
                weight_copies: Optional[int] = None, clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
                calibration: Optional[str | Path] = None, chips: Optional[int] = None) -> dict:
    """All design-rule violations and warnings of a model on a target, with the options ``map`` would get
    (``delays``: the delay strategy; ``chips``: partitioned over that many chips, links included); nothing is
    written."""
    check_weight_copies(weight_copies)
    chosen = get_target(target)
    if chips is not None:
        _, report, violations = _map_chips(load_model(model_path), target, chips, clip_quantile, weight_scale,
                                           calibration, delays, weight_copies)
        return {"target": chosen.name, "fits": not violations, "violations": [v.to_dict() for v in violations],
                "warnings": report.get("warnings", []), "chips": chips}
    violations, warnings = api.check(load_model(model_path), chosen, delays=delays, weight_copies=weight_copies,
                                     clip_quantile=clip_quantile, weight_scale=weight_scale, calibration=calibration)
    return {"target": chosen.name, "fits": not violations, "violations": [v.to_dict() for v in violations],
            "warnings": warnings}


def map_model(model_path: str | Path, target: str = "bss2", output: Optional[str | Path] = None,
              clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
              calibration: Optional[str | Path] = None, delays: Optional[str] = None,
              weight_copies: Optional[int] = None, chips: Optional[int] = None) -> dict:
    """Map a model file and write the deployment to ``output`` (:func:`neurodeploy.api.map`); returns the report.

    ``chips``: partition the network over that many chips (the target's ``map_chips``) and write a multi-chip
    deployment (:mod:`neurodeploy.multichip`); None: one chip, a single-chip deployment as always.
    """
    if output is not None:
        check_output(output, (model_path,))
    if chips is not None:
        multi, report, violations = _map_chips(load_model(model_path), target, chips, clip_quantile, weight_scale,
                                               calibration, delays, weight_copies)
        if violations or multi is None:
            raise DoesNotFitError(get_target(target).name, violations)
        if output is not None:
            with nameless_temporaries():
                save_multichip(multi, output)
            report = {**report, "output": str(output)}
        return {**report, "chip": None}
    deployment = api.map(load_model(model_path), target, calibration=calibration, clip_quantile=clip_quantile,
                         weight_scale=weight_scale, delays=delays, weight_copies=weight_copies)
    report = deployment.meta["report"]
    if output is not None:
        with nameless_temporaries():
            save_deployment(deployment, output)
        report = {**report, "output": str(output)}
    return {**report, "chip": deployment.meta.get("chip")}


def _map_chips(model: ModelFile, target: str, chips: int, clip_quantile: float, weight_scale: str,
               calibration: Optional[str | Path], delays: Optional[str], weight_copies: Optional[int]
               ) -> tuple[Optional[MultiChipDeployment], dict, list]:
    """The target's multi-chip mapping, its rates and links measured on 500 training samples (as ``api.map``)."""
    check_map_arguments(clip_quantile, weight_scale, weight_copies)
    options = MapOptions(clip_quantile=clip_quantile, weight_scale=weight_scale, calibration=calibration,
                         delays=delays, weight_copies=weight_copies,
                         probe_inputs=training_probe(model.dataset, model.encoding, model.dt_s))
    return get_target(target).map_chips(model, chips, options)
