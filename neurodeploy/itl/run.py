"""In-the-loop training of one model on one chip, as a library function (no files unless checkpointing).

The verb :mod:`neurodeploy.workflows.itl` adds the files: it reads the model, writes the output
and lets this function keep a checkpoint per epoch, so that ``--resume`` continues a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Optional

import torch
from tqdm import tqdm

from ..backends.base import Backend
from ..backends.retry import Retrying
from ..data.datasets import training_probe
from ..errors import NeurodeployError
from ..deployment import Deployment
from ..modelfile import ModelFile
from ..scoring import backend_accuracy
from ..targets.base import Target
from ..training.asf import check_supported
from ..validation.arguments import check_itl_arguments
from .alignment import Alignment
from .counters import counter_accuracy, counter_epoch
from .checkpoint import save_checkpoint, starting_state
from .forward import layer_neurons
from .loop import itl_data, shadow_weights, snapshot, train_epoch
from .measure import measure_alignment

PROBE_SAMPLES = 200  # training samples the trace alignment is measured on
METHODS = ("surrogate", "asf")  # itl --method
NO_ALIGNMENT = Alignment(torch.zeros(0), {})  # asf reads no membranes: nothing to align
EVAL_BATCH = 500


class Checkpointing(NamedTuple):
    """Where a run keeps its per-epoch checkpoint, what identifies the run, and whether to resume it."""

    path: Path
    fingerprint: dict  # what the caller knows of the run's inputs (e.g. the model file's hash)
    resume: bool = False


def train_in_the_loop(model: ModelFile, engine: Backend, target: Target, calibration: Optional[str | Path] = None,
                      *, epochs: int = 2, train_samples: Optional[int] = None, learning_rate: float = 3e-3,
                      weight_copies: Optional[int] = None, seed: int = 0, progress: bool = True,
                      checkpoint: Optional[Checkpointing] = None, source: str = "model",
                      delays: Optional[str] = None, uncalibrated: bool = False,
                      method: str = "surrogate") -> tuple[ModelFile, dict]:
    """Fine-tune ``model`` with ``engine``'s chip in the loop; returns the trained model and the run's summary.

    Each epoch's validation accuracy is measured on the chip; the epoch (0: the model as given)
    with the best one is kept. ``source`` names the model in the output's provenance. ``delays``: the
    realisation of learned delays (the target's default when None); the delays stay as trained, the weights
    learn through their realisation, and the output model records it so that ``map`` realises them alike.
    A chip with analog mismatch (``engine.uses_codes``) without ``calibration`` is refused unless
    ``uncalibrated``: training would learn the chip's uncalibrated errors, which calibration removes.
    ``method``: ``surrogate`` (the chip's spikes and membranes injected into the model's forward pass, surrogate
    gradients) or ``asf`` (the chip's spike counters only, Accumulated Spiking Flow's gradients; validation on
    the counters too: :mod:`.counters`).
    """
    weight_copies = check_run(model, engine, target, calibration, method=method, epochs=epochs,
                              train_samples=train_samples, learning_rate=learning_rate, weight_copies=weight_copies,
                              seed=seed, uncalibrated=uncalibrated, source=source)
    calibration_id = None if calibration is None else target.calibration_identity(calibration)
    data = itl_data(model, train_samples)
    used = len(data.labels)
    engine = Retrying(engine)  # every run below: a failed one is retried with the same batch
    state = None
    if checkpoint is not None:
        fingerprint = {**checkpoint.fingerprint, "backend": engine.name, "target": target.name,
                       "calibration": None if calibration_id is None else calibration_id["checksum"],
                       "train_samples": used, "learning_rate": float(learning_rate), "seed": int(seed),
                       "weight_copies": int(weight_copies), "delays": delays, "method": method}
        state = starting_state(checkpoint.path, fingerprint, checkpoint.resume)

    map_probe = training_probe(model.dataset, model.encoding, model.dt_s)
    session = target.itl_session(model, engine, calibration, weight_copies, map_probe, delays)
    neurons = layer_neurons(session.deployment.meta, session.deployment["neuron_layer"])
    weights = shadow_weights(model)
    optimiser = torch.optim.AdamW(weights.values(), lr=learning_rate, weight_decay=0.0)
    accuracy_of = lambda dep, times, labels: backend_accuracy(engine, dep, times, labels, EVAL_BATCH)  # noqa: E731
    bytes_read = 0  # read back from the chip by the training passes

    def counters_test(dep: Deployment) -> float:
        return counter_accuracy(engine, session, dep, weights, model, neurons, data.test_times, data.test_labels,
                                EVAL_BATCH)[0]

    def validate(dep: Deployment) -> float:
        """Validation accuracy on the chip, as the method reads it (counters only for asf)."""
        if method == "asf":
            return counter_accuracy(engine, session, dep, weights, model, neurons, data.val_times, data.val_labels,
                                    EVAL_BATCH)[0]
        return accuracy_of(dep, data.val_times, data.val_labels)
    if state is None:
        session.clamp(weights)
        deployment, _ = session.reconfigured(session.deployment, weights)
        probe = min(PROBE_SAMPLES, used)
        alignment = NO_ALIGNMENT if method == "asf" else measure_alignment(
            engine, deployment, model.graph, session.chip_weights(weights), neurons, data.train_times[:probe],
            data.train_spikes[:, :probe], model.dt_s, session.projection_input)
        before = {"validation": validate(deployment),
                  "test": accuracy_of(deployment, data.test_times, data.test_labels)}
        if method == "asf":  # the readout decoded on the host from the chip's counters, as asf trains it
            before["test_counters"] = counters_test(deployment)
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
        if method == "asf":
            deployment, row = counter_epoch(engine, session, deployment, weights, optimiser, data, model, neurons,
                                            order, progress)
        else:
            deployment, row = train_epoch(engine, session, deployment, weights, optimiser, data, model, alignment,
                                          neurons, order, progress)
        bytes_read += row["bytes_read"]
        row = {"epoch": epoch + 1, "loss": row["loss"], "train_accuracy_on_chip": row["train_accuracy_on_chip"],
               "validation_accuracy_on_chip": validate(deployment), "synapses_rewritten": row["synapses_rewritten"],
               **({"counter_saturations": row["counter_saturations"]} if method == "asf" else {})}
        history.append(row)
        if row["validation_accuracy_on_chip"] >= best["validation_accuracy"]:
            best = {"validation_accuracy": row["validation_accuracy_on_chip"], "epoch": epoch + 1,
                    "weights": snapshot(weights)}
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['validation_accuracy_on_chip']:.3f}")
        if checkpoint is not None:
            save_checkpoint(checkpoint.path, {"fingerprint": fingerprint, "epoch": epoch + 1,
                                              "weights": snapshot(weights),
                                              "optimiser": optimiser.state_dict(),
                                              "alignment": alignment.to_dict(), "before": before,
                                              "history": history, "best": best})

    final, _ = session.reconfigured(deployment, best["weights"])
    after_test = accuracy_of(final, data.test_times, data.test_labels)
    trained_on = {"chip": engine.chip_id, "backend": engine.name, "target": target.name,
                  "calibration": calibration_id}
    summary = {"backend": engine.name, "chip": trained_on["chip"], "epochs": epochs, "resumed_from_epoch":
               done if state is not None else None, "train_samples": used, "learning_rate": learning_rate,
               "kept_epoch": best["epoch"], "validation_accuracy_before": before["validation"],
               "validation_accuracy_after": best["validation_accuracy"], "test_accuracy_before": before["test"],
               "test_accuracy_after": after_test, "history": history,
               "alignment": {k: v._asdict() for k, v in alignment.layers.items()}, "runs_retried": engine.retries,
               "method": method, "bytes_read_by_training": bytes_read}
    if method == "asf":
        with torch.no_grad():
            for k, w in weights.items():
                w.copy_(best["weights"][k])
        summary["test_accuracy_counters_before"] = before.get("test_counters")
        summary["test_accuracy_counters_after"] = counters_test(final)
    mapping = {**session.mapping_record(deployment), "alignment": alignment.to_dict(), "trained_on": trained_on,
               "weight_copies": int(weight_copies),
               **({"delays": deployment.meta["delays"]["strategy"]} if "delays" in deployment.meta else {})}
    result = ModelFile(graph=model.graph, weights=best["weights"], dt_s=model.dt_s, encoding=model.encoding,
                       dataset=model.dataset, seed=model.seed, training=model.training,
                       metrics={**model.metrics, "in_the_loop": {k: v for k, v in summary.items() if k != "history"}},
                       provenance={**model.provenance, "itl": {"from_model": source,
                                                              "history": history}},
                       mapping=mapping, recurrent=model.recurrent, delays=model.delays,
                       delay_sigma_steps=model.delay_sigma_steps)
    return result, summary


def check_run(model: ModelFile, engine: Backend, target: Target, calibration: Optional[str | Path], *, method: str,
              epochs: int, train_samples: Optional[int], learning_rate: float, weight_copies: Optional[int],
              seed: int, uncalibrated: bool, source: str) -> int:
    """Refuse settings in-the-loop training cannot honour on ``engine`` (one line each); returns the weight
    copies to map with (``weight_copies``, else the model's from an earlier itl run, else 1)."""
    if method not in METHODS:
        raise NeurodeployError(f"--method {method!r} is unknown", f"use one of {', '.join(METHODS)}")
    if method == "asf":
        check_supported(model.graph, {}, model.recurrent)
    check_itl_arguments(epochs, train_samples, learning_rate, weight_copies, seed)
    if weight_copies is None:  # as the model was trained in the loop before, else one synapse per weight
        weight_copies = int(model.mapping.get("weight_copies", 1))
    if engine.target not in (None, target.name):
        raise NeurodeployError(f"backend '{engine.name}' runs target '{engine.target}', not '{target.name}'",
                               f"use --target {engine.target}")
    if not uncalibrated and calibration is None and engine.uses_codes:
        raise NeurodeployError(f"{engine.name} is a chip with analog mismatch and no --calibration was given: itl "
                               "would train on its uncalibrated (nominal) codes",
                               f"calibrate it (neurodeploy calibrate --backend {engine.name} -o cal.yaml) and give "
                               "--calibration cal.yaml, or add --uncalibrated to train on the uncalibrated chip")
    if model.graph.discretisation != "native":  # itl/forward.py simulates the native step only
        raise NeurodeployError(f"{source} simulates its NIR graph ({model.graph.discretisation}); in-the-loop "
                               "training supports native models only", "fine-tune a native model (trained here, "
                               "or imported with discretisation 'native' where the graph allows it)")
    return int(weight_copies)
