r"""In-the-loop training of one model with several chips in the loop at once (``itl --backend mock:0-3``), as a
library function; the epoch itself is :func:`.chips.chips_epoch`.

Each chip gets its own deployment (its own calibration, :meth:`Target.itl_session`) and its own measured
alignment; the float weights are shared. The epoch kept is the one with the best validation accuracy averaged
over the chips, :math:`\bar a = \frac1K \sum_k a_k` (epoch 0: the model as given). The summary gives every
chip's accuracy before and after, and their mean and spread (sample standard deviation over chips).

Every rank (``--nproc``) maps every chip, so that all clamp the weights alike and hold the same weights after
every step, but runs only its own; per-chip records (alignments, accuracies) are gathered on every rank. Rank 0
writes the checkpoint; a resumed run loads it on every rank, whatever the number of processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from ..backends.base import Backend
from ..backends.retry import Retrying
from ..data.datasets import training_probe
from ..errors import NeurodeployError
from ..modelfile import ModelFile
from ..scoring import backend_accuracy
from ..targets.base import Target
from .alignment import Alignment
from .checkpoint import save_checkpoint, starting_state
from .chips import Chip, Ranks, chips_epoch
from .forward import layer_neurons
from .loop import itl_data, shadow_weights, snapshot
from .measure import measure_alignment
from .run import EVAL_BATCH, PROBE_SAMPLES, Checkpointing, check_run


def train_on_chips(model: ModelFile, engines: list[Backend], target: Target,
                   calibrations: list[Optional[str | Path]], *, backend: str, epochs: int = 2,
                   train_samples: Optional[int] = None, learning_rate: float = 3e-3,
                   weight_copies: Optional[int] = None, seed: int = 0, progress: bool = True,
                   checkpoint: Optional[Checkpointing] = None, source: str = "model", delays: Optional[str] = None,
                   uncalibrated: bool = False, method: str = "surrogate",
                   ranks: Optional[Ranks] = None) -> tuple[ModelFile, dict]:
    """Fine-tune ``model`` with the chips of ``engines`` (each with its ``calibrations`` entry) in the loop at once;
    returns the trained model and the run's summary (on every rank). ``backend`` names the chips in the summary
    (``mock:0-3``); ``ranks``: this process's share of the chips (None: all of them). Settings as
    :func:`.run.train_in_the_loop`."""
    ranks = ranks or Ranks()
    weight_copies = check_chips(model, engines, target, calibrations, backend=backend, nproc=ranks.world,
                                method=method, epochs=epochs, train_samples=train_samples,
                                learning_rate=learning_rate, weight_copies=weight_copies, seed=seed,
                                uncalibrated=uncalibrated, source=source)
    identities = [None if c is None else target.calibration_identity(c) for c in calibrations]
    data = itl_data(model, train_samples)
    used = len(data.labels)
    wrapped = [Retrying(e) for e in engines]  # every run: a failed one is retried with the same batch
    engines = list(wrapped)
    state = None
    if checkpoint is not None:
        fingerprint = {**checkpoint.fingerprint, "backend": [e.name for e in engines], "target": target.name,
                       "calibration": [None if i is None else i["checksum"] for i in identities],
                       "train_samples": used, "learning_rate": float(learning_rate), "seed": int(seed),
                       "weight_copies": int(weight_copies or 1), "delays": delays, "method": method}
        state = starting_state(checkpoint.path, fingerprint, checkpoint.resume)

    map_probe = training_probe(model.dataset, model.encoding, model.dt_s)
    sessions = [target.itl_session(model, e, c, int(weight_copies or 1), map_probe, delays)
                for e, c in zip(engines, calibrations)]
    weights = shadow_weights(model)
    optimiser = torch.optim.AdamW(weights.values(), lr=learning_rate, weight_decay=0.0)
    if state is not None:
        with torch.no_grad():
            for name, w in weights.items():
                w.copy_(state["weights"][name])
        optimiser.load_state_dict(state["optimiser"])
    for session in sessions:
        session.clamp(weights)
    chips = []
    for k, (engine, session) in enumerate(zip(engines, sessions)):
        if ranks.mine(k):
            deployment, _ = session.reconfigured(session.deployment, weights)
            chips.append(Chip(k, engine, session, deployment,
                              layer_neurons(session.deployment.meta, session.deployment["neuron_layer"]),
                              Alignment(torch.zeros(0), {})))

    def validation() -> list[float]:
        """Every chip's validation accuracy (on every rank)."""
        mine = {c.index: backend_accuracy(c.engine, c.deployment, data.val_times, data.val_labels, EVAL_BATCH)
                for c in chips}
        merged = ranks.per_chip(mine)
        return [merged[k] for k in range(len(engines))]

    if state is None:
        probe = min(PROBE_SAMPLES, used)
        for c in chips:
            c.alignment = measure_alignment(c.engine, c.deployment, model.graph, c.session.chip_weights(weights),
                                            c.neurons, data.train_times[:probe], data.train_spikes[:, :probe],
                                            model.dt_s, c.session.projection_input)
        alignments = ranks.per_chip({c.index: c.alignment.to_dict() for c in chips})
        val = validation()  # before the test pass, as on one chip: each chip's runs in the same order
        tests = ranks.per_chip({c.index: backend_accuracy(c.engine, c.deployment, data.test_times, data.test_labels,
                                                          EVAL_BATCH) for c in chips})
        before = {"validation": val, "test": [tests[k] for k in range(len(engines))]}
        history: list[dict] = []
        best: dict[str, Any] = {"validation_accuracy": mean(val), "per_chip": val, "epoch": 0,
                                "weights": snapshot(weights)}
        done = 0
    else:
        alignments = {int(k): v for k, v in state["alignments"].items()}
        for c in chips:
            c.alignment = Alignment.from_dict(alignments[c.index])
        before, history, best, done = state["before"], state["history"], state["best"], int(state["epoch"])

    bar = tqdm(range(done, epochs), desc=f"itl on {backend}", unit="epoch", disable=not progress or ranks.rank != 0,
               initial=done, total=epochs)
    bytes_read = 0
    for epoch in bar:
        order = torch.randperm(used, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        row = chips_epoch(chips, len(engines), sessions, weights, optimiser, data, model, order, ranks,
                          progress and ranks.rank == 0)
        bytes_read += row["bytes_read"]
        val = validation()
        row = {"epoch": epoch + 1, "loss": row["loss"], "train_accuracy_on_chip": row["train_accuracy_on_chip"],
               "validation_accuracy_on_chip": mean(val), "validation_accuracy_per_chip": val,
               "synapses_rewritten": row["synapses_rewritten"]}
        history.append(row)
        if row["validation_accuracy_on_chip"] >= best["validation_accuracy"]:
            best = {"validation_accuracy": row["validation_accuracy_on_chip"], "per_chip": val, "epoch": epoch + 1,
                    "weights": snapshot(weights)}
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['validation_accuracy_on_chip']:.3f}")
        if checkpoint is not None and ranks.rank == 0:
            save_checkpoint(checkpoint.path, {"fingerprint": fingerprint, "epoch": epoch + 1,
                                              "weights": snapshot(weights), "optimiser": optimiser.state_dict(),
                                              "alignments": alignments, "before": before, "history": history,
                                              "best": best})

    finals = {c.index: c.session.reconfigured(c.deployment, best["weights"])[0] for c in chips}
    after = ranks.per_chip({c.index: backend_accuracy(c.engine, finals[c.index], data.test_times, data.test_labels,
                                                      EVAL_BATCH) for c in chips})
    after_test = [after[k] for k in range(len(engines))]
    retried = ranks.totals([float(sum(e.retries for k, e in enumerate(wrapped) if ranks.mine(k)))])[0]
    per_chip = [{"backend": e.name, "chip": e.chip_id, "calibration": None if c is None else str(c),
                 "validation_accuracy_before": before["validation"][k],
                 "validation_accuracy_after": best["per_chip"][k],
                 "test_accuracy_before": before["test"][k], "test_accuracy_after": after_test[k],
                 "alignment": {name: dict(layer) for name, layer in alignments[k]["layers"].items()}}
                for k, (e, c) in enumerate(zip(engines, calibrations))]
    summary = {"backend": backend, "chip": None, "chips": per_chip, "processes": ranks.world, "epochs": epochs,
               "resumed_from_epoch": done if state is not None else None, "train_samples": used,
               "learning_rate": learning_rate, "kept_epoch": best["epoch"],
               "validation_accuracy_before": mean(before["validation"]),
               "validation_accuracy_after": best["validation_accuracy"],
               "test_accuracy_before": mean(before["test"]), "test_accuracy_after": mean(after_test),
               "test_accuracy_spread_before": std(before["test"]), "test_accuracy_spread_after": std(after_test),
               "history": history,
               "alignment": per_chip[0]["alignment"], "runs_retried": int(retried), "method": method,
               "bytes_read_by_training": int(bytes_read)}
    trained_on = {"chip": None, "chips": [e.chip_id for e in engines], "backend": backend, "target": target.name,
                  "calibration": identities}
    mapping = {**sessions[0].mapping_record(sessions[0].deployment), "alignment": alignments[0],
               "alignments": {e.chip_id or e.name: alignments[k] for k, e in enumerate(engines)},
               "trained_on": trained_on, "weight_copies": int(weight_copies or 1),
               **({"delays": sessions[0].deployment.meta["delays"]["strategy"]}
                  if "delays" in sessions[0].deployment.meta else {})}
    result = ModelFile(graph=model.graph, weights=best["weights"], dt_s=model.dt_s, encoding=model.encoding,
                       dataset=model.dataset, seed=model.seed, training=model.training,
                       metrics={**model.metrics, "in_the_loop": {k: v for k, v in summary.items() if k != "history"}},
                       provenance={**model.provenance, "itl": {"from_model": source, "history": history}},
                       mapping=mapping, recurrent=model.recurrent, delays=model.delays,
                       delay_sigma_steps=model.delay_sigma_steps)
    return result, summary


def check_chips(model: ModelFile, engines: list[Backend], target: Target, calibrations: list[Optional[str | Path]],
                *, backend: str, nproc: int, method: str, epochs: int, train_samples: Optional[int],
                learning_rate: float, weight_copies: Optional[int], seed: int, uncalibrated: bool, source: str,
                **_: Any) -> int:
    """Refuse what a run on several chips cannot honour, before any chip runs (one line each); returns the weight
    copies to map with (:func:`.run.check_run`)."""
    if method != "surrogate":
        raise NeurodeployError(f"--method {method} trains on one chip", "use --method surrogate with several chips, "
                               "or one chip (--backend mock:0)")
    if len(engines) < nproc:
        raise NeurodeployError(f"--nproc {nproc} is more than the {len(engines)} chips of --backend {backend}",
                               f"use --nproc {len(engines)} or fewer")
    copies = weight_copies
    for engine, calibration in zip(engines, calibrations):
        copies = check_run(model, engine, target, calibration, method=method, epochs=epochs,
                           train_samples=train_samples, learning_rate=learning_rate, weight_copies=weight_copies,
                           seed=seed, uncalibrated=uncalibrated, source=source)
    return int(copies or 1)


def mean(values: list[float]) -> float:
    return float(sum(values) / len(values))


def std(values: list[float]) -> float:
    r"""Sample standard deviation over chips, :math:`\sqrt{\sum_k (a_k - \bar a)^2 / (K - 1)}` (0 for one chip)."""
    return float(torch.tensor(values, dtype=torch.float64).std()) if len(values) > 1 else 0.0
