"""``learn``: a model's plastic projections learn on the chip, by a plasticity program between time slices.

The model is mapped once (as ``itl`` maps it: fixed scales, so a weight's integer is its value); then the
training samples are presented ``slice_samples`` at a time. After each slice the chip's correlation sensors (of
the plastic projections only), spike counters and weights go to the program (:mod:`neurodeploy.plasticity`),
whose new 6-bit weights, and threshold offsets where it adapts thresholds, are written into the chip before the
next slice. A quiet slice is presented again at a raised Poisson rate where the program asks for it. The output
is a model file with the learned weights (integer times the layer's scale), the threshold offsets and the mapping
it learned with, so that ``map`` reproduces it exactly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import check_output, nameless_temporaries
from ..backends.base import Observations, Recording
from ..backends.registry import get_backend
from ..backends.retry import Retrying
from ..data.datasets import load_split, training_probe
from ..data.encoding import encode
from ..errors import NeurodeployError
from ..itl.forward import layer_neurons
from ..modelfile import ModelFile, load_model, save_model
from ..plasticity import COUNTER_MAX, PlasticityProgram, SliceObservables, load_program, on_chip
from ..targets.registry import get_target
from ..validation.arguments import EPOCHS, SEED, check_argument

MAX_SLICES = 1_000_000


def _plastic(model: ModelFile, program: PlasticityProgram) -> dict[str, tuple[str, str]]:
    """Plastic projection → (its presynaptic, its postsynaptic population); each must exist, be feed-forward and
    excitatory."""
    plastic = {}
    for name in program.projections:
        projection = next((p for p in model.graph.projections if p.name == name), None)
        if projection is None:
            raise NeurodeployError(f"the program rewrites projection '{name}', the model has "
                                   f"{[p.name for p in model.graph.projections]}", "name one of the model's")
        if projection.recurrent or projection.geometry is not None or projection.max_delay_steps:
            raise NeurodeployError(f"projection '{name}' is recurrent, convolutional or delayed: plasticity "
                                   "programs rewrite plain feed-forward projections", "choose another projection")
        if model.graph.population(projection.post).kind != "lif":
            raise NeurodeployError(f"projection '{name}' ends on a non-spiking layer: its sensors never pair",
                                   "make a projection onto a spiking layer plastic")
        if bool((model.weights[name] < 0).any()):
            raise NeurodeployError(f"projection '{name}' has negative weights: a program rewrites the magnitudes of "
                                   "excitatory synapses", "start from non-negative weights")
        plastic[name] = (projection.pre, projection.post)
    return plastic


def _observables(obs: Observations, name: str, counts: dict[str, np.ndarray], pre: str, post: str,
                 weights: np.ndarray, index: int) -> SliceObservables:
    """One slice's readings for projection ``name``: the slice's runs accumulate (and saturate) as one."""
    if obs.correlation is None or name not in obs.correlation:
        raise NeurodeployError("the backend returned no correlation sensor readings",
                               "learn on a backend with correlation sensors (mock:N, mock:ideal)")
    causal, acausal = (np.minimum(r.sum(0, dtype=np.int64), COUNTER_MAX) for r in obs.correlation[name])
    return SliceObservables(name, weights, causal, acausal, np.minimum(counts[post], COUNTER_MAX), counts[pre], index)


def learn(model_path: str | Path, program_path: str | Path, output: str | Path, *, backend: str,
          target: str = "bss2", calibration: Optional[str | Path] = None, epochs: int = 1,
          train_samples: Optional[int] = None, weight_copies: Optional[int] = None, seed: int = 0,
          uncalibrated: bool = False, progress: bool = False) -> dict:
    """Let ``program_path``'s program train ``model_path`` on ``backend`` for ``epochs`` passes; write ``output``."""
    check_output(output, (model_path, program_path, calibration))
    check_argument(EPOCHS, epochs, "--epochs")
    check_argument(SEED, seed, "--seed")
    program_file = load_program(program_path)
    program = program_file.program
    model = load_model(model_path)
    plastic = _plastic(model, program)
    engine = Retrying(get_backend(backend))
    chosen = get_target(target)
    if not uncalibrated and calibration is None and engine.uses_codes:
        raise NeurodeployError(f"{engine.name} is a chip with analog mismatch and no --calibration was given",
                               f"calibrate it (neurodeploy calibrate --backend {engine.name} -o cal.yaml) and give "
                               "--calibration cal.yaml, or add --uncalibrated")
    copies = int(weight_copies or model.mapping.get("weight_copies", 1))
    session = chosen.itl_session(model, engine, calibration, copies,
                                 training_probe(model.dataset, model.encoding, model.dt_s))
    scales = session.mapping_record(session.deployment)["weight_scale"]
    weights = {k: v.detach().clone() for k, v in model.weights.items()}
    deployment, _ = session.reconfigured(session.deployment, weights)  # the weights as the chip holds them
    x, _ = load_split(model.dataset, "train")
    x = x if train_samples is None else x[:train_samples]
    boost = program_file.boost.checked(model.encoding)
    size = program_file.slice_samples
    slices = epochs * -(-len(x) // size)
    if slices > MAX_SLICES:
        raise NeurodeployError(f"{slices} slices are more than {MAX_SLICES}", "use fewer samples or larger slices")
    neurons = layer_neurons(deployment.meta, deployment["neuron_layer"])
    rng = np.random.default_rng(seed)
    mean_before = {name: float(np.abs(deployment[f"quantised_weight:{name}"]).mean()) for name in plastic}
    theta: dict[str, np.ndarray] = {}  # threshold offsets the program wrote, per layer (model units)
    changed, started, index, repeated = 0, time.perf_counter(), 0, 0
    bar = tqdm(total=slices, desc=f"learn on {engine.name}", unit="slice", disable=not progress)
    for epoch in range(epochs):
        for start in range(0, len(x), size):
            for attempt in range(boost.max_boosts + 1):
                # Poisson trains drawn anew each epoch, the rate raised per repetition
                encoding = boost.presentation(model.encoding, attempt, int(model.encoding.get("seed", 0)) + epoch)
                times = encode(x[start:start + size], encoding)
                obs = engine.run(deployment, times, Recording(spikes=True, membrane=False, correlation=tuple(plastic)))
                totals = obs.spikes.sum(dim=(0, 1)).numpy().astype(np.int64)
                counts = {name: totals[ids] for name, ids in neurons.items()}
                counts[model.graph.input.name] = _input_counts(times, model.graph.input.size)
                for name, (pre, post) in plastic.items():
                    held = np.abs(deployment[f"quantised_weight:{name}"]).astype(np.int64)
                    seen = _observables(obs, name, counts, pre, post, held, index)._replace(theta=theta.get(post))
                    new = on_chip(program.update(seen, rng))
                    weights[name] = torch.as_tensor(new, dtype=torch.float32) * scales[post][:, None].float()
                    offsets = program.homeostasis(seen)
                    if offsets is not None:
                        theta[post] = np.asarray(offsets, np.float64)
                deployment, n_changed = session.reconfigured(deployment, weights)
                if theta:  # rewritten with the weights: reconfigured() keeps the mapped threshold codes
                    deployment = session.with_threshold_offsets(deployment, theta)
                changed += n_changed
                index += 1
                quiet = sum(int(counts[post].sum()) for _, post in plastic.values()) < boost.min_spikes
                if not quiet or attempt == boost.max_boosts:
                    break
                repeated += 1
            bar.update()
    bar.close()
    mapping = {**session.mapping_record(deployment), "weight_copies": copies,
               **({"threshold_offsets": {k: torch.as_tensor(v, dtype=torch.float32) for k, v in theta.items()}}
                  if theta else {}),
               "trained_on": {"chip": engine.chip_id, "backend": engine.name, "target": chosen.name,
                              "calibration": None if calibration is None else
                              chosen.calibration_identity(calibration)}}
    summary = {"backend": engine.name, "chip": engine.chip_id, "program": type(program).__name__,
               "projections": list(plastic), "epochs": epochs, "samples": int(len(x)), "slices": index,
               "synapses_rewritten": changed, "presented_again": repeated, "seconds": time.perf_counter() - started,
               "mean_weight_lsb_before": mean_before,
               "mean_weight_lsb_after": {n: float(np.abs(deployment[f"quantised_weight:{n}"]).mean()) for n in plastic}}
    result = ModelFile(graph=model.graph, weights=weights, dt_s=model.dt_s, encoding=model.encoding,
                       dataset=model.dataset, seed=model.seed, training=model.training,
                       metrics={**model.metrics, "learned_on_chip": summary},
                       provenance={**model.provenance, "learn": {"from_model": Path(model_path).name,
                                                                 "program": Path(program_path).name}},
                       mapping=mapping, recurrent=model.recurrent, delays=model.delays,
                       delay_sigma_steps=model.delay_sigma_steps)
    with nameless_temporaries():
        save_model(result, output)
    return {**summary, "output": str(output)}


def _input_counts(times_s: np.ndarray, channels: int) -> np.ndarray:
    """Spikes per input channel in a slice (times ``[B, channels]`` or trains ``[B, channels, K]``; NaN: none)."""
    finite = np.isfinite(np.asarray(times_s)[:, :channels])
    return finite.reshape(len(finite), channels, -1).sum((0, 2)).astype(np.int64)
