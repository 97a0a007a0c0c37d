"""The Python API: every verb of the command line as a function of objects (paths only to load and save).

>>> import neurodeploy as nd
>>> model = nd.train("yinyang", epochs=1)                       # or nd.load_model("yy.pt")
>>> deployment = nd.map(model, target="bss2")
>>> result = nd.run(deployment, backend="mock:ideal", inputs=nd.load_split("yinyang", "test")[0])
>>> result.accuracy(nd.load_split("yinyang", "test")[1])        # doctest: +SKIP

Errors are the project's typed exceptions (:mod:`neurodeploy.errors`), never ``SystemExit``. Numeric
arguments have documented ranges (:mod:`neurodeploy.validation.arguments`), checked before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
import torch

from .backends.base import Backend, Observations, membrane_in_model_units, readout_scores
from .backends.registry import get_backend
from .data.datasets import check_samples, load_split, training_probe
from .data.encoding import encode, encode_dataset
from .deployment import Deployment
from .errors import BackendError, DataError, DoesNotFitError, NeurodeployError
from .itl.run import train_in_the_loop
from .modelfile import ModelFile
from .models.delayed import network_from_model
from .recipe import Recipe, load_recipe
from .scoring import accuracy, batched_scores
from .targets.base import CheckResult, MapOptions, Target
from .targets.registry import all_targets, get_target
from .training.fit import fit
from .validation.arguments import (SEED, WEIGHT_COPIES, check_argument, check_itl_arguments, check_map_arguments,
                                   check_training_arguments)
from .validation.loading import load_checked_deployment


class RunResult(NamedTuple):
    """What a backend returned for a batch, with the deployment's readout decoded.

    ``observations``: spikes ``[T, B, neurons]`` (counts per step, logical neuron ids in deployment
    order), membranes of the recorded neurons, event counters (see the backend). ``scores``: the
    readout decoded as trained (max or mean over time), ``[B, classes]``. ``membrane``: the recorded
    neurons' (``observations.recorded``) membranes in model units on the model's time axis, comparable with
    the software model's (a chip's CADC readings converted as :func:`~neurodeploy.backends.base.model_units` says).
    """

    observations: Observations
    scores: torch.Tensor

    membrane: Optional[np.ndarray] = None  # [T, B, recorded] in model units (see membrane_in_model_units)

    @property
    def spikes(self) -> torch.Tensor:
        return self.observations.spikes

    @property
    def counters(self) -> dict:
        return self.observations.counters

    @property
    def predictions(self) -> torch.Tensor:
        return self.scores.argmax(dim=1)

    def accuracy(self, labels: np.ndarray | torch.Tensor) -> float:
        """Share of samples whose largest readout score is the label's."""
        return accuracy(self.scores, labels)


def train(recipe: Recipe | str | Path, *, epochs: Optional[int] = None, seed: Optional[int] = None,
          progress: bool = False) -> ModelFile:
    """Train a recipe (an object, a shipped recipe's name or a file) → the model.

    >>> model = nd.train("digits", epochs=1)  # doctest: +SKIP
    """
    check_training_arguments(epochs, seed)
    if not isinstance(recipe, Recipe):
        source = str(recipe)
        recipe = load_recipe(recipe)
        return fit(recipe, epochs=epochs, seed=seed, progress=progress, recipe_file=Path(source).name)
    return fit(recipe, epochs=epochs, seed=seed, progress=progress)


def evaluate(model: ModelFile, data: Optional[tuple[np.ndarray, np.ndarray]] = None) -> float:
    """The model's accuracy in software (float weights) on ``data`` = (features, labels); default its test split.

    >>> nd.evaluate(model)  # doctest: +SKIP
    """
    if data is not None:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise DataError("data must be a pair (features [N, F], labels [N])", "pass data=(x, y)")
        x, y = check_samples(*data, model.dataset)
    else:
        x, y = load_split(model.dataset, "test")
    net = network_from_model(model)
    scores = batched_scores(lambda s: net(s).readout_v, encode_dataset(x, model.encoding, model.dt_s),
                            model.training.get("loss", "max_over_time"))
    return accuracy(scores, y)


def check(model: ModelFile, target: str | Target = "bss2", **options: Any) -> CheckResult:
    """Every design rule ``model`` breaks on ``target`` and the warnings; options as :func:`map`."""
    check_argument(WEIGHT_COPIES, options.get("weight_copies"), "--weight-copies", optional=True)
    chosen = target if isinstance(target, Target) else get_target(target)
    return chosen.check(model, MapOptions(**options))


def map(model: ModelFile, target: str | Target = "bss2", *, calibration: Any = None, clip_quantile: float = 1.0,
        weight_scale: str = "per-neuron", delays: Optional[str] = None, weight_copies: Optional[int] = None,
        probe: bool = True) -> Deployment:
    """Map ``model`` onto ``target`` → the deployment (its report: ``deployment.meta["report"]``).

    A model that breaks design rules raises :class:`~neurodeploy.errors.DoesNotFitError` with every
    violation. ``probe``: measure firing rates and the readout's range on 500 training samples.

    >>> deployment = nd.map(model, target="xylo")  # doctest: +SKIP
    """
    check_map_arguments(clip_quantile, weight_scale, weight_copies)
    chosen = target if isinstance(target, Target) else get_target(target)
    options = MapOptions(clip_quantile=clip_quantile, weight_scale=weight_scale, calibration=calibration,
                         delays=delays, weight_copies=weight_copies)
    chosen.check_options(options)
    if probe:
        options = options._replace(probe_inputs=training_probe(model.dataset, model.encoding, model.dt_s))
    deployment, _, violations = chosen.map(model, options)
    if violations or deployment is None:
        raise DoesNotFitError(chosen.name, violations)
    return deployment


def load_deployment(path: str | Path) -> Deployment:
    """Read a deployment file and check everything in it before it is used: what every deployment holds, what
    its target's chip needs (:meth:`~neurodeploy.targets.base.Target.validate_deployment`) and its checksum.

    >>> deployment = nd.load_deployment("yy.npz")  # doctest: +SKIP
    """
    return load_checked_deployment(path)


def _times_of_raster(deployment: Deployment, raster: np.ndarray | torch.Tensor) -> np.ndarray:
    """A raster ``[T, B, C]`` with at most one spike per channel → spike times ``[B, C]`` (NaN: none)."""
    x = raster.detach().cpu().numpy() if isinstance(raster, torch.Tensor) else np.asarray(raster)
    if x.ndim != 3:
        raise DataError(f"the raster has shape {x.shape}, not [T, B, channels]", "give a [T, B, channels] raster")
    if (x.sum(axis=0) > 1).any():
        raise DataError("the raster has channels that spike more than once in a sample; backends take one spike "
                        "per channel and sample", "give spike_times_s [B, channels] or raw features")
    step = np.argmax(x > 0, axis=0).astype(np.float64)
    return np.where(x.any(axis=0), step * deployment.meta["dt_s"], np.nan)


def for_backend(deployment: Deployment, engine: Backend, calibration: Any = None) -> Deployment:
    """The deployment as the chip behind ``engine`` needs it (its target decides; e.g. a calibration's codes);
    a backend of another target is refused."""
    if engine.target is not None and engine.target != deployment.target:
        raise BackendError(f"backend '{engine.name}' runs target '{engine.target}' deployments, this one is for "
                           f"'{deployment.target}'", f"map the model with --target {engine.target}, or choose a "
                           f"backend of target '{deployment.target}'")
    return get_target(deployment.target).for_backend(deployment, engine, calibration)


def run(deployment: Deployment, backend: str | Backend = "mock:ideal", inputs: Any = None, *,
        spike_times_s: Any = None, raster: Any = None, calibration: Any = None) -> RunResult:
    """Run ``deployment`` on ``backend`` → its observations and decoded readout.

    Give one of: ``inputs``, raw features ``[B, F]`` (encoded as the model was trained; default:
    the deployment's test split); ``spike_times_s``, one time per channel ``[B, channels]`` (NaN:
    no spike); ``raster``, ``[T, B, channels]`` with at most one spike per channel and sample.
    ``calibration``: the chip's calibration (a file or the object :func:`calibrate` returns).

    >>> result = nd.run(deployment, "mock:0", inputs=x); result.accuracy(y)  # doctest: +SKIP
    """
    if sum(a is not None for a in (inputs, spike_times_s, raster)) > 1:
        raise NeurodeployError("give only one of inputs, spike_times_s and raster", "pass one input form")
    engine = backend if not isinstance(backend, str) else get_backend(backend)
    deployment = for_backend(deployment, engine, calibration)
    if raster is not None:
        times = _times_of_raster(deployment, raster)
    elif spike_times_s is not None:
        times = np.asarray(spike_times_s, np.float64)
    else:
        features = load_split(deployment.meta["dataset"], "test")[0] if inputs is None else np.asarray(inputs)
        times = encode(features, deployment.meta["encoding"])
    channels = int(deployment.meta["graph"]["populations"][0]["size"])
    if times.ndim != 2 or times.shape[1] != channels:
        raise DataError(f"the inputs give spike times of shape {times.shape}, the model has {channels} input channels",
                        "give features of the model's dataset, or [B, channels] spike times")
    observations = engine.run(deployment, times)
    return RunResult(observations, readout_scores(deployment, observations),
                     membrane_in_model_units(deployment, observations))


def calibrate(backend: str | Backend, target: str | Target = "bss2", *, sets: Optional[dict] = None,
              seed: int = 0, progress: bool = False) -> dict:
    """Calibrate the chip behind ``backend``; returns the summary, its ``"calibration"`` the object
    that :func:`map` and :func:`run` take (save it with the target's writer).

    >>> summary = nd.calibrate("mock:0")  # doctest: +SKIP
    """
    check_argument(SEED, seed, "--seed")
    chosen = target if isinstance(target, Target) else get_target(target)
    engine = backend if not isinstance(backend, str) else get_backend(backend)
    return chosen.calibrate(engine, sets or {}, seed=seed, progress=progress)


def itl(model: ModelFile, backend: str | Backend, target: str | Target = "bss2", *, calibration: Any = None,
        epochs: int = 2, train_samples: Optional[int] = None, learning_rate: float = 3e-3,
        weight_copies: Optional[int] = None,
        seed: int = 0, progress: bool = False, uncalibrated: bool = False) -> ModelFile:
    """Fine-tune ``model`` with the chip in the loop → the trained model (its ``metrics["in_the_loop"]``
    holds the summary). Nothing is written. A chip with analog mismatch needs ``calibration``, or
    ``uncalibrated=True`` to train on it uncalibrated on purpose.

    >>> tuned = nd.itl(model, "mock:0", calibration=cal, epochs=1)  # doctest: +SKIP
    """
    check_itl_arguments(epochs, train_samples, learning_rate, weight_copies, seed)  # before the backend starts
    chosen = target if isinstance(target, Target) else get_target(target)
    engine = backend if not isinstance(backend, str) else get_backend(backend)
    result, _ = train_in_the_loop(model, engine, chosen, calibration, epochs=epochs, train_samples=train_samples,
                                  learning_rate=learning_rate, weight_copies=weight_copies, seed=seed,
                                  progress=progress, uncalibrated=uncalibrated)
    return result


def targets() -> list[dict]:
    """Every target with its description, limits and backends.

    >>> [t["name"] for t in nd.targets()]  # doctest: +SKIP
    ['bss2', 'xylo']
    """
    return [{"name": t.name, "description": t.description, "limits": t.limits(), "backends": t.backend_names(),
             "spec": t.spec.path} for t in all_targets()]
