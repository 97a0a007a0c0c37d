"""``run``: execute a deployment on a backend and score its readout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from ..api import for_backend
from ..backends.base import Backend, readout_recording, readout_scores
from ..backends.registry import expand_backends, get_backend
from ..backends.retry import Retrying
from ..data.datasets import load_data
from ..data.encoding import encode
from ..deployment import Deployment
from ..errors import NeurodeployError
from ..multichip import MultiChipDeployment, is_multichip, load_multichip
from ..targets.registry import get_target
from ..scoring import accuracy
from ..statistics import spread
from ..validation.arguments import REPEAT, check_argument
from ..validation.loading import load_checked_deployment
from .figures import check_plot_dir, run_figures

BATCH = 500


def other_chip_warnings(deployment: Deployment, engine: Backend) -> list[str]:
    """A model trained in the loop on one chip has learned that chip's mismatch; on another it may lose accuracy."""
    trained = (deployment.meta.get("trained_on") or {}).get("chip")
    chip = engine.chip_id
    if trained is None or chip is None or trained == chip:
        return []
    return [f"this model was trained in the loop on chip {trained}, it runs on chip {chip}: "
            f"expect lower accuracy (fix: neurodeploy itl on chip {chip})"]


def uncalibrated_warnings(deployment: Deployment, engine: Backend) -> list[str]:
    """A chip with analog mismatch that runs nominal (uncalibrated) codes loses much of the model's accuracy
    (on the mock chips typically 15-40 points): say how to calibrate it."""
    if not engine.uses_codes or deployment.meta.get("chip") is not None:
        return []
    return [f"{engine.name} runs this deployment uncalibrated (nominal codes): expect far lower accuracy than in "
            f"software (fix: neurodeploy calibrate --backend {engine.name} -o cal.yaml, then run with "
            "--calibration cal.yaml, or map with it)"]


def _score(engine: Retrying, deployment: Deployment, times: Any, y: Any, progress: bool) -> dict:
    """One pass over the samples on ``engine``: accuracy, summed counters."""
    scores: list[torch.Tensor] = []
    counters: dict[str, int] = {}
    record = readout_recording(deployment)  # the readout's membranes are all a score needs
    for start in tqdm(range(0, len(y), BATCH), desc=f"run on {engine.name}", disable=not progress, leave=False):
        obs = engine.run(deployment, times[start:start + BATCH], record)
        scores.append(readout_scores(deployment, obs))
        for key, value in obs.counters.items():
            counters[key] = counters.get(key, 0) + value
    return {"accuracy": accuracy(torch.cat(scores), y), "counters": counters}


def calibration_of(calibration: Optional[str | Path], chip: Optional[str], several: bool) -> Optional[str | Path]:
    """The calibration file of one chip: ``calibration`` itself, or its ``{chip}`` pattern filled in with the
    chip's number (the digits that end its id: ``mock-chip-3`` → ``calibration/mock-3.yaml``), else its id."""
    if calibration is None or "{chip}" not in str(calibration):
        if several and calibration is not None:
            raise NeurodeployError(f"--calibration {calibration} is one chip's calibration, the backend names "
                                   "several chips", "give a pattern such as calibration/mock-{chip}.yaml")
        return calibration
    if chip is None:
        raise NeurodeployError(f"--calibration {calibration} is a per-chip pattern, the backend has no chip number",
                               "give the calibration file itself")
    number = re.search(r"(\d+)$", chip)
    return str(calibration).replace("{chip}", number.group(1) if number else chip)


def run(deployment_path: str | Path, backend: str = "mock:ideal", data: Optional[str] = None,
        progress: bool = False, calibration: Optional[str | Path] = None, repeat: int = 1,
        plot_dir: Optional[str | Path] = None) -> dict:
    """Accuracy and event counters of a deployment on a backend (with ``plot_dir``, and figures: accuracy per chip,
    placement map, weight codes; :func:`~neurodeploy.workflows.figures.run_figures`).

    ``backend`` may name several chips (``mock:0-4``) and ``repeat`` runs each several times (a noisy chip
    scores differently each time); then ``accuracy`` is the mean over all runs, with ``accuracy_std`` and
    ``accuracy_interval95`` (:mod:`neurodeploy.statistics`), ``per_backend`` the same per chip and ``runs``
    every run. ``calibration`` may be a pattern with ``{chip}`` (``calibration/mock-{chip}.yaml``).
    """
    check_argument(REPEAT, repeat, "--repeat")
    folder = check_plot_dir(plot_dir)
    if is_multichip(deployment_path):
        if plot_dir is not None or calibration is not None:
            raise NeurodeployError("a multi-chip deployment runs without --plot and --calibration (not supported yet)",
                                   "leave them out")
        return run_multichip(deployment_path, backend, data, progress, repeat)
    result = _run(deployment_path, backend, data, progress, calibration, repeat)
    if folder is not None:
        result["figures"] = run_figures(deployment_path, result, folder)
    return result


def _run(deployment_path: str | Path, backend: str, data: Optional[str], progress: bool,
         calibration: Optional[str | Path], repeat: int) -> dict:
    names = expand_backends(backend)
    loaded = load_checked_deployment(deployment_path)
    x, y = load_data(loaded.meta["dataset"], data)
    times = encode(x, loaded.meta["encoding"])
    runs, per_backend, warnings, retried = [], {}, [], 0
    if loaded.meta["layer_kinds"][-1] != "li":
        warnings.append(f"the network has no readout layer ('{loaded.meta['layers'][-1]}' spikes): accuracy takes "
                        "its neurons' membranes as classes; a network that learned without labels is read out by "
                        "label assignment (neurodeploy.workflows.label)")
    for name in names:
        engine = Retrying(get_backend(name))  # a run that loses the chip is run again with the same batch
        deployment = for_backend(loaded, engine, calibration_of(calibration, engine.chip_id, len(names) > 1))
        scored = [_score(engine, deployment, times, y, progress) for _ in range(repeat)]
        per_backend[engine.name] = spread([r["accuracy"] for r in scored])
        runs += [{"backend": engine.name, "chip": engine.chip_id, **r} for r in scored]
        warnings += [w for w in other_chip_warnings(loaded, engine) + uncalibrated_warnings(deployment, engine)
                     if w not in warnings]
        retried += engine.retries
    first = runs[0]
    result = {"accuracy": first["accuracy"], "warnings": warnings, "n_samples": int(len(y)),
              "backend": first["backend"], "target": loaded.target, "dataset": loaded.meta["dataset"],
              "data": data or "test", "chip": first["chip"], "counters": first["counters"], "retried_runs": retried}
    if len(runs) == 1:
        return result
    overall = spread([r["accuracy"] for r in runs])
    result = {**result, "backend": backend, "chip": None, "counters": None, "repeat": repeat,
              "accuracy": overall.mean, "accuracy_std": overall.std, "accuracy_interval95": overall.interval,
              "n_runs": overall.n, "summary": overall.text(), "runs": runs,
              "per_backend": {name: {"mean": s.mean, "std": s.std, "interval95": s.interval, "n_runs": s.n,
                                     "summary": s.text()} for name, s in per_backend.items()}}
    if len(per_backend) > 1:
        # What another chip of the same kind will score: the chips are the samples, not the runs (the runs of
        # one chip share its mismatch, so pooling them would claim more certainty than there is).
        chips = spread([s.mean for s in per_backend.values()])
        result["across_chips"] = {"mean": chips.mean, "std": chips.std, "interval95": chips.interval,
                                  "n_chips": chips.n, "summary": chips.text(of="chips")}
    return result


def chip_backends(multi: MultiChipDeployment, backend: str) -> list[str]:
    """One backend name per chip of ``multi``: a list (``mock:0,mock:1``) or a range (``mock:0-1``) names one per
    chip, in partition order; one name (``mock:ideal``, ``mock:3``) serves every chip (each its own instance)."""
    chips = len(multi.chips)
    names = [n.strip() for n in backend.split(",")] if "," in backend else expand_backends(backend)
    if len(names) == 1:
        return names * chips
    if len(names) != chips:
        raise NeurodeployError(f"backend '{backend}' names {len(names)} chips, the deployment is partitioned over "
                               f"{chips}", f"give one backend for all chips or {chips}, e.g. "
                               + ",".join(f"mock:{k}" for k in range(chips)))
    return names


def run_multichip(deployment_path: str | Path, backend: str = "mock:ideal", data: Optional[str] = None,
                  progress: bool = False, repeat: int = 1) -> dict:
    """Accuracy of a multi-chip deployment (:mod:`neurodeploy.multichip`): ``software`` runs the whole network's
    float weights (the one-"big-chip" reference); any other backend runs every chip on its own single-chip
    backend and passes the spikes between them through the target's chip pipeline."""
    multi = load_multichip(deployment_path)
    x, y = load_data(multi.meta["dataset"], data)
    times = encode(x, multi.meta["encoding"])
    result: dict[str, Any] = {"backend": backend, "target": multi.target, "dataset": multi.meta["dataset"],
                              "data": data or "test", "n_samples": int(len(y)), "chips": len(multi.chips),
                              "chip": None, "warnings": [], "retried_runs": 0}
    if backend == "software":
        whole = multi.whole()
        scored = [_score(Retrying(get_backend("software")), whole, times, y, progress) for _ in range(repeat)]
    else:
        names = chip_backends(multi, backend)
        engines = [Retrying(get_backend(name)) for name in names]
        chips = [for_backend(chip, engine) for chip, engine in zip(multi.chips, engines)]
        multi = MultiChipDeployment(meta=multi.meta, chips=chips, arrays=multi.arrays)
        pipeline = get_target(multi.target).chip_pipeline(multi, engines)
        scored = [_score_chips(pipeline, multi, times, y, progress) for _ in range(repeat)]
        result["backends"] = names
        result["inter_chip_latency_us"] = float(multi.meta["report"]["link_latency_us"])
        result["warnings"] = [w for w in dict.fromkeys(
            w for chip, engine in zip(chips, engines) for w in uncalibrated_warnings(chip, engine))]
        result["retried_runs"] = sum(engine.retries for engine in engines)
    result.update(accuracy=scored[0]["accuracy"], counters=scored[0]["counters"])
    if repeat > 1:
        overall = spread([r["accuracy"] for r in scored])
        result.update(accuracy=overall.mean, accuracy_std=overall.std, accuracy_interval95=overall.interval,
                      n_runs=overall.n, summary=overall.text(), repeat=repeat)
    return result


def _score_chips(pipeline: Any, multi: MultiChipDeployment, times: Any, y: Any, progress: bool) -> dict:
    """:func:`_score` through the chip pipeline: the readout chip's scores, the counters of every chip."""
    scores: list[torch.Tensor] = []
    counters: dict[str, int] = {}
    readout_chip = multi.chips[-1]
    for start in tqdm(range(0, len(y), BATCH), desc=f"run on {len(multi.chips)} chips", disable=not progress,
                      leave=False):
        obs, chip_counters = pipeline.run(times[start:start + BATCH])
        scores.append(readout_scores(readout_chip, obs))
        for key, value in chip_counters.items():
            counters[key] = counters.get(key, 0) + value
    return {"accuracy": accuracy(torch.cat(scores), y), "counters": counters}
