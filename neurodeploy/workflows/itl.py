r"""``itl``: fine-tune a model with the chip in the loop (forward on the backend, backward in software).

Each mini-batch runs on the backend through the deployment; its spikes and membrane samples
(aligned to the model by :mod:`neurodeploy.itl.alignment`, measured once per run) are injected
into the model's forward pass (:mod:`neurodeploy.itl.forward`), so the loss is the chip's and the
gradient is the model's surrogate gradient on the chip's trajectory. AdamW updates the float
shadow weights; they are re-quantised with the first mapping's fixed scales and only the changed
synapses are rewritten (:mod:`neurodeploy.itl.reconfigure`). After every epoch the chip's
validation accuracy is measured and a checkpoint is written; the output keeps the epoch (0: the
model as given) with the best validation accuracy, and records the chip it was trained on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ..backends.base import Backend
from ..backends.registry import get_backend
from ..calibration.file import Calibration, load_calibration
from ..data.datasets import SPLITS, load_split
from ..data.encoding import encode, encode_dataset
from ..errors import BackendError, CalibrationError, DoesNotFitError, FileKindError, NeurodeployError
from ..itl.alignment import Alignment
from ..itl.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from ..itl.forward import injected_forward, layer_neurons, measured_per_layer
from ..itl.measure import measure_alignment
from ..itl.reconfigure import chip_weights, clamp_to_range, fixed_layout, reconfigured
from ..modelfile import ModelFile, load_model, save_model
from ..models.network import decode
from ..targets.bss2.mapper import map_to_bss2
from ..targets.spec import load_target
from .common import backend_accuracy, check_weight_copies

PROBE_SAMPLES = 200
EVAL_BATCH = 500


def _checked_calibration(calibration: Optional[str | Path], engine: Backend, target: str) -> Optional[Calibration]:
    """The calibration, refused unless it is of the backend's chip and target."""
    if calibration is None:
        return None
    cal = load_calibration(calibration)
    chip = getattr(engine, "chip_id", None)
    if cal.chip != chip:
        raise CalibrationError(f"calibration {calibration} is of chip {cal.chip}, the backend {engine.name} is "
                               f"{'chip ' + chip if chip else 'no calibrated chip'}",
                               f"calibrate this chip: neurodeploy calibrate --backend {engine.name} --target "
                               f"{target} -o FILE")
    if cal.target != target:
        raise CalibrationError(f"calibration {calibration} is for target '{cal.target}', not '{target}'",
                               f"use a calibration made with --target {target}")
    return cal


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _validation(model: ModelFile, train_x: np.ndarray, train_y: np.ndarray, used: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation split, or (datasets without one) the training samples itl does not use."""
    if "validation" in SPLITS[model.dataset]:
        return load_split(model.dataset, "validation")
    if used >= len(train_y):
        raise NeurodeployError(f"dataset '{model.dataset}' has no validation split and all {len(train_y)} training "
                               "samples are used for training", f"use --train-samples below {len(train_y)}")
    return train_x[used:], train_y[used:]


def itl(model_path: str | Path, output: str | Path, *, backend: str, target: str = "bss2",
        calibration: Optional[str | Path] = None, epochs: int = 2, train_samples: Optional[int] = None,
        learning_rate: float = 3e-3, weight_copies: int = 1, resume: bool = False, seed: int = 0,
        progress: bool = True) -> dict:
    """Train ``model_path`` in the loop on ``backend`` for ``epochs`` and write ``output``; returns the summary.

    Nothing is written before every input has been checked. ``resume`` continues from the
    checkpoint ``OUTPUT.checkpoint`` (the same run's settings; ``epochs`` may differ).
    """
    if epochs < 1:
        raise NeurodeployError(f"--epochs {epochs} is below 1", "give --epochs 1 or more")
    check_weight_copies(weight_copies)
    if not learning_rate > 0:
        raise NeurodeployError(f"--learning-rate {learning_rate} is not positive", "e.g. --learning-rate 3e-3")
    engine = get_backend(backend)
    spec = load_target(target)
    if spec.name != "bss2":
        raise NeurodeployError(f"in-the-loop training supports target bss2, not '{spec.name}'", "use --target bss2")
    cal = _checked_calibration(calibration, engine, spec.name)
    model = load_model(model_path)
    if model.delays:  # itl's forward injects layer by layer and has no delay kernels yet
        raise NeurodeployError(f"{model_path} has learned delays ({', '.join(model.delays)}); in-the-loop training "
                               "does not support delayed projections yet", "fine-tune a model without delays")
    train_x, train_y = load_split(model.dataset, "train")
    used = len(train_y) if train_samples is None else int(train_samples)
    if not 0 < used <= len(train_y):
        raise NeurodeployError(f"--train-samples {train_samples} is outside 1..{len(train_y)}",
                               f"the '{model.dataset}' training set has {len(train_y)} samples")
    val_x, val_y = _validation(model, train_x, train_y, used)
    test_x, test_y = load_split(model.dataset, "test")
    fingerprint = {"model_sha256": _sha256(model_path), "backend": engine.name, "target": spec.name,
                   "calibration": None if cal is None else cal.checksum, "train_samples": used,
                   "learning_rate": float(learning_rate), "seed": int(seed), "weight_copies": int(weight_copies)}
    ckpt = checkpoint_path(output)
    state = load_checkpoint(ckpt, fingerprint) if resume else None
    if resume and state is None:
        raise FileKindError(f"--resume: there is no checkpoint {ckpt}", "run without --resume to start")
    if not resume and ckpt.exists():
        raise FileKindError(f"checkpoint {ckpt} of an interrupted run exists",
                            "add --resume to continue it, or delete it to start over")

    deployment, _, violations = map_to_bss2(model, spec, calibration=cal, weight_copies=weight_copies)
    if violations:
        raise DoesNotFitError(spec.name, violations)
    layout = fixed_layout(model, spec, deployment, None if cal is None else cal.success)
    neurons = layer_neurons(deployment.meta, deployment["neuron_layer"])
    settings = model.training
    times = {"train": encode(train_x[:used], model.encoding), "val": encode(val_x, model.encoding),
             "test": encode(test_x, model.encoding)}
    train_spikes = encode_dataset(train_x[:used], model.encoding, model.dt_s)
    labels = torch.as_tensor(train_y[:used])

    weights = {k: torch.nn.Parameter(v.clone()) for k, v in model.weights.items()}
    optimiser = torch.optim.AdamW(weights.values(), lr=learning_rate, weight_decay=0.0)
    if state is None:
        clamp_to_range(weights, layout)
        deployment, _ = reconfigured(deployment, weights, layout)
        probe = min(PROBE_SAMPLES, used)
        alignment = measure_alignment(engine, deployment, model.graph, chip_weights(weights, layout), neurons,
                                      times["train"][:probe], train_spikes[:, :probe], model.dt_s)
        before = {"validation": backend_accuracy(engine, deployment, times["val"], val_y, EVAL_BATCH),
                  "test": backend_accuracy(engine, deployment, times["test"], test_y, EVAL_BATCH)}
        history: list[dict] = []
        best = {"validation_accuracy": before["validation"], "epoch": 0,
                "weights": {k: w.detach().clone() for k, w in weights.items()}}
        done = 0
    else:
        with torch.no_grad():
            for k, w in weights.items():
                w.copy_(state["weights"][k])
        optimiser.load_state_dict(state["optimiser"])
        alignment, before, history, best = (Alignment.from_dict(state["alignment"]), state["before"],
                                            state["history"], state["best"])
        done = int(state["epoch"])
        deployment, _ = reconfigured(deployment, weights, layout)

    bar = tqdm(range(done, epochs), desc=f"itl on {engine.name}", unit="epoch", disable=not progress,
               initial=done, total=epochs)
    for epoch in bar:
        order = torch.randperm(used, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        losses, correct, rewritten = [], 0, 0
        for start in range(0, used, settings["batch_size"]):
            idx = order[start:start + settings["batch_size"]]
            obs = engine.run(deployment, times["train"][idx.numpy()])
            if obs.spikes.shape[0] not in (0, train_spikes.shape[0]):
                raise BackendError(f"backend {engine.name} returned {obs.spikes.shape[0]} steps, the model has "
                                   f"{train_spikes.shape[0]}", "use a backend on the model's time grid")
            measured = measured_per_layer(obs, model.graph, neurons, alignment)
            out = injected_forward(model.graph, chip_weights(weights, layout), train_spikes[:, idx], model.dt_s,
                                   measured, settings["surrogate_steepness"])
            scores = decode(out.readout_v, settings["loss"])
            loss = torch.nn.functional.cross_entropy(settings["readout_scale"] * scores, labels[idx])
            if settings.get("rate_weight", 0) > 0:
                rates = torch.stack([z.mean() for name, z in out.spikes.items() if name != model.graph.input.name])
                loss = loss + settings["rate_weight"] * ((rates - settings["rate_target"]) ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            clamp_to_range(weights, layout)
            deployment, changed = reconfigured(deployment, weights, layout)
            losses.append(loss.item())
            correct += int((scores.argmax(1) == labels[idx]).sum())
            rewritten += changed
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_accuracy_on_chip": correct / used,
               "validation_accuracy_on_chip": backend_accuracy(engine, deployment, times["val"], val_y, EVAL_BATCH),
               "synapses_rewritten": rewritten}
        history.append(row)
        if row["validation_accuracy_on_chip"] >= best["validation_accuracy"]:
            best = {"validation_accuracy": row["validation_accuracy_on_chip"], "epoch": epoch + 1,
                    "weights": {k: w.detach().clone() for k, w in weights.items()}}
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['validation_accuracy_on_chip']:.3f}")
        save_checkpoint(ckpt, {"fingerprint": fingerprint, "epoch": epoch + 1,
                               "weights": {k: w.detach().clone() for k, w in weights.items()},
                               "optimiser": optimiser.state_dict(), "alignment": alignment.to_dict(),
                               "before": before, "history": history, "best": best})

    final, _ = reconfigured(deployment, best["weights"], layout)
    after_test = backend_accuracy(engine, final, times["test"], test_y, EVAL_BATCH)
    trained_on = {"chip": getattr(engine, "chip_id", None), "backend": engine.name, "target": spec.name,
                  "calibration": None if cal is None else {"chip": cal.chip, "checksum": cal.checksum,
                                                           "created": cal.created, "file": Path(calibration).name}}
    summary = {"backend": engine.name, "chip": trained_on["chip"], "epochs": epochs, "resumed_from_epoch":
               done if state is not None else None, "train_samples": used, "learning_rate": learning_rate,
               "kept_epoch": best["epoch"], "validation_accuracy_before": before["validation"],
               "validation_accuracy_after": best["validation_accuracy"], "test_accuracy_before": before["test"],
               "test_accuracy_after": after_test, "history": history,
               "alignment": {k: v._asdict() for k, v in alignment.layers.items()}}
    mapping = {"weight_scale": {k: v.clone() for k, v in layout.scale.items()},
               "cadc_per_model_unit": {row["name"]: float(row["cadc_per_model_unit"])
                                       for row in deployment.meta["report"]["layers"]},
               "alignment": alignment.to_dict(), "trained_on": trained_on, "weight_copies": int(weight_copies)}
    result = ModelFile(graph=model.graph, weights=best["weights"], dt_s=model.dt_s, encoding=model.encoding,
                       dataset=model.dataset, seed=model.seed, training=model.training,
                       metrics={**model.metrics, "in_the_loop": {k: v for k, v in summary.items() if k != "history"}},
                       provenance={**model.provenance, "itl": {"from_model": Path(model_path).name,
                                                              "history": history}},
                       mapping=mapping)
    save_model(result, output)
    ckpt.unlink(missing_ok=True)
    return {**summary, "output": str(output)}
