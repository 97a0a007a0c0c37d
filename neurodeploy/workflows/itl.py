"""``itl``: fine-tune a model with the chip in the loop (forward on the backend, backward in software).

The steps are :mod:`neurodeploy.itl.loop`'s; the target provides the deployment and the weight
handling (:meth:`~neurodeploy.targets.base.Target.itl_session`). This verb adds what makes a run
safe to interrupt and to keep: the fingerprint of its inputs, a checkpoint per epoch, the choice
of the epoch (0: the model as given) with the best validation accuracy on the chip, and the
output model that records the chip it was trained on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from ..backends.registry import get_backend
from ..errors import FileKindError, NeurodeployError
from ..itl.alignment import Alignment
from ..itl.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from ..itl.forward import layer_neurons
from ..itl.loop import itl_data, snapshot, train_epoch
from ..itl.measure import measure_alignment
from ..modelfile import ModelFile, load_model, save_model
from ..scoring import backend_accuracy, check_weight_copies
from ..targets.registry import get_target
from .map import probe_inputs

PROBE_SAMPLES = 200
EVAL_BATCH = 500


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
    chosen = get_target(target)
    if engine.target not in (None, chosen.name):
        raise NeurodeployError(f"backend '{engine.name}' runs target '{engine.target}', not '{chosen.name}'",
                               f"use --target {engine.target}")
    calibration_id = None if calibration is None else chosen.calibration_identity(calibration)
    model = load_model(model_path)
    if model.delays:  # itl's forward injects layer by layer and has no delay kernels yet
        raise NeurodeployError(f"{model_path} has learned delays ({', '.join(model.delays)}); in-the-loop training "
                               "does not support delayed projections yet", "fine-tune a model without delays")
    data = itl_data(model, train_samples)
    used = len(data.labels)
    fingerprint = {"model_sha256": _sha256(model_path), "backend": engine.name, "target": chosen.name,
                   "calibration": None if calibration_id is None else calibration_id["checksum"],
                   "train_samples": used, "learning_rate": float(learning_rate), "seed": int(seed),
                   "weight_copies": int(weight_copies)}
    ckpt = checkpoint_path(output)
    state = load_checkpoint(ckpt, fingerprint) if resume else None
    if resume and state is None:
        raise FileKindError(f"--resume: there is no checkpoint {ckpt}", "run without --resume to start")
    if not resume and ckpt.exists():
        raise FileKindError(f"checkpoint {ckpt} of an interrupted run exists",
                            "add --resume to continue it, or delete it to start over")

    session = chosen.itl_session(model, engine, calibration, weight_copies, probe_inputs(model))
    neurons = layer_neurons(session.deployment.meta, session.deployment["neuron_layer"])
    weights = {k: torch.nn.Parameter(v.clone()) for k, v in model.weights.items()}
    optimiser = torch.optim.AdamW(weights.values(), lr=learning_rate, weight_decay=0.0)
    accuracy_of = lambda dep, times, labels: backend_accuracy(engine, dep, times, labels, EVAL_BATCH)  # noqa: E731
    if state is None:
        session.clamp(weights)
        deployment, _ = session.reconfigured(session.deployment, weights)
        probe = min(PROBE_SAMPLES, used)
        alignment = measure_alignment(engine, deployment, model.graph, session.chip_weights(weights), neurons,
                                      data.train_times[:probe], data.train_spikes[:, :probe], model.dt_s)
        before = {"validation": accuracy_of(deployment, data.val_times, data.val_labels),
                  "test": accuracy_of(deployment, data.test_times, data.test_labels)}
        history: list[dict] = []
        best: dict[str, Any] = {"validation_accuracy": before["validation"], "epoch": 0, "weights": snapshot(weights)}
        done = 0
    else:
        with torch.no_grad():
            for k, w in weights.items():
                w.copy_(state["weights"][k])
        optimiser.load_state_dict(state["optimiser"])
        alignment, before, history, best = (Alignment.from_dict(state["alignment"]), state["before"],
                                            state["history"], state["best"])
        done = int(state["epoch"])
        deployment, _ = session.reconfigured(session.deployment, weights)

    bar = tqdm(range(done, epochs), desc=f"itl on {engine.name}", unit="epoch", disable=not progress,
               initial=done, total=epochs)
    for epoch in bar:
        order = torch.randperm(used, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        deployment, row = train_epoch(engine, session, deployment, weights, optimiser, data, model, alignment,
                                      neurons, order)
        row = {"epoch": epoch + 1, "loss": row["loss"], "train_accuracy_on_chip": row["train_accuracy_on_chip"],
               "validation_accuracy_on_chip": accuracy_of(deployment, data.val_times, data.val_labels),
               "synapses_rewritten": row["synapses_rewritten"]}
        history.append(row)
        if row["validation_accuracy_on_chip"] >= best["validation_accuracy"]:
            best = {"validation_accuracy": row["validation_accuracy_on_chip"], "epoch": epoch + 1,
                    "weights": snapshot(weights)}
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['validation_accuracy_on_chip']:.3f}")
        save_checkpoint(ckpt, {"fingerprint": fingerprint, "epoch": epoch + 1, "weights": snapshot(weights),
                               "optimiser": optimiser.state_dict(), "alignment": alignment.to_dict(),
                               "before": before, "history": history, "best": best})

    final, _ = session.reconfigured(deployment, best["weights"])
    after_test = accuracy_of(final, data.test_times, data.test_labels)
    trained_on = {"chip": engine.chip_id, "backend": engine.name, "target": chosen.name,
                  "calibration": calibration_id}
    summary = {"backend": engine.name, "chip": trained_on["chip"], "epochs": epochs, "resumed_from_epoch":
               done if state is not None else None, "train_samples": used, "learning_rate": learning_rate,
               "kept_epoch": best["epoch"], "validation_accuracy_before": before["validation"],
               "validation_accuracy_after": best["validation_accuracy"], "test_accuracy_before": before["test"],
               "test_accuracy_after": after_test, "history": history,
               "alignment": {k: v._asdict() for k, v in alignment.layers.items()}}
    mapping = {**session.mapping_record(deployment), "alignment": alignment.to_dict(), "trained_on": trained_on,
               "weight_copies": int(weight_copies)}
    result = ModelFile(graph=model.graph, weights=best["weights"], dt_s=model.dt_s, encoding=model.encoding,
                       dataset=model.dataset, seed=model.seed, training=model.training,
                       metrics={**model.metrics, "in_the_loop": {k: v for k, v in summary.items() if k != "history"}},
                       provenance={**model.provenance, "itl": {"from_model": Path(model_path).name,
                                                              "history": history}},
                       mapping=mapping)
    save_model(result, output)
    ckpt.unlink(missing_ok=True)
    return {**summary, "output": str(output)}
