"""``map``: model file → deployment for a target, with a mapping report; ``--check`` writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..data.datasets import load_split
from ..data.encoding import encode_dataset
from ..deployment import save_deployment
from ..errors import DoesNotFitError, NeurodeployError
from ..modelfile import ModelFile, load_model
from ..targets.base import MapOptions
from ..targets.registry import get_target
from ..scoring import check_weight_copies

PROBE_SAMPLES = 500  # training samples the mapper's rate and readout-range diagnostics run on


def probe_inputs(model: ModelFile, samples: int = PROBE_SAMPLES) -> torch.Tensor:
    """The first ``samples`` training samples, encoded: what a target measures rates on (never the test set)."""
    x, _ = load_split(model.dataset, "train")
    return encode_dataset(x[:samples], model.encoding, model.dt_s)


def check_model(model_path: str | Path, target: str = "bss2", delays: Optional[str] = None,
                weight_copies: Optional[int] = None) -> dict:
    """All design-rule violations and warnings of a model on a target (``delays``: the delay strategy)."""
    check_weight_copies(weight_copies)
    chosen, model = get_target(target), load_model(model_path)
    violations, warnings = chosen.check(model, MapOptions(delays=delays, weight_copies=weight_copies))
    return {"target": chosen.name, "fits": not violations, "violations": [v.to_dict() for v in violations],
            "warnings": warnings}


def map_model(model_path: str | Path, target: str = "bss2", output: Optional[str | Path] = None,
              clip_quantile: float = 1.0, weight_scale: str = "per-neuron",
              calibration: Optional[str | Path] = None, delays: Optional[str] = None,
              weight_copies: Optional[int] = None) -> dict:
    """Map and write the deployment to ``output``; a model that does not fit raises ``DoesNotFitError``.

    With ``calibration`` (a calibration file of the target's chip), the deployment carries that
    chip's settings. ``delays`` chooses how trained delays are realised (the target's strategies).
    ``weight_copies``: the most synapses that share one weight (None: as the model was trained in
    the loop, else 1). A target refuses options it does not support.
    """
    check_weight_copies(weight_copies)
    if not 0 < clip_quantile <= 1:
        raise NeurodeployError(f"--clip-quantile {clip_quantile} is outside (0, 1]", "e.g. 0.999")
    chosen, model = get_target(target), load_model(model_path)
    options = MapOptions(clip_quantile=clip_quantile, weight_scale=weight_scale, calibration=calibration,
                         delays=delays, weight_copies=weight_copies)
    chosen.check_options(options)
    deployment, report, violations = chosen.map(model, options._replace(probe_inputs=probe_inputs(model)))
    if violations or deployment is None:
        raise DoesNotFitError(chosen.name, violations)
    if output is not None:
        save_deployment(deployment, output)
        report = {**report, "output": str(output)}
    return {**report, "chip": deployment.meta.get("chip")}
