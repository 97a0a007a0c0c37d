"""``itl``: fine-tune a model file with the chip in the loop and write the result (files around
:func:`neurodeploy.itl.run.train_in_the_loop`).

Nothing is written before every input has been checked. A checkpoint ``OUTPUT.checkpoint`` is
written after every epoch; ``resume`` continues from it (the same run's settings; ``epochs`` may
differ) and it is removed once the output is written.

A backend naming several chips (``mock:0-3``, with ``calibration`` a pattern such as ``cal/mock-{chip}.yaml``)
trains with all of them in the loop at once (:mod:`neurodeploy.itl.chips`); ``nproc`` runs them in that many
processes (:mod:`.parallel_itl`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from ..atomic import check_output, nameless_temporaries
from ..backends.registry import expand_backends, get_backend
from ..errors import NeurodeployError
from ..itl.checkpoint import checkpoint_path
from ..itl.chips_run import check_chips, train_on_chips
from ..itl.run import Checkpointing, train_in_the_loop
from ..modelfile import load_model, save_model
from ..targets.registry import get_target
from .figures import check_plot_dir, history_figure
from .run import calibration_of


def itl(model_path: str | Path, output: str | Path, *, backend: str, target: str = "bss2",
        calibration: Optional[str | Path] = None, epochs: int = 2, train_samples: Optional[int] = None,
        learning_rate: float = 3e-3, weight_copies: Optional[int] = None, resume: bool = False, seed: int = 0,
        progress: bool = True, delays: Optional[str] = None, uncalibrated: bool = False,
        plot_dir: Optional[str | Path] = None, method: str = "surrogate", nproc: int = 1) -> dict:
    """Train ``model_path`` in the loop on ``backend`` for ``epochs`` and write ``output``; returns the summary
    (with ``plot_dir``, also the figure of loss and validation accuracy on the chip per epoch, ``itl.png``).
    ``backend`` may name several chips (``mock:0-3``): all train at once, in ``nproc`` processes."""
    names = expand_backends(backend)
    if not 1 <= nproc <= len(names):
        raise NeurodeployError(f"--nproc {nproc} is outside 1..{len(names)} (the chips of --backend {backend})",
                               f"use --nproc {len(names)} or fewer, or name more chips (e.g. --backend mock:0-3)")
    if len(names) > 1 or nproc > 1:
        return _itl_on_chips(model_path, output, names, backend=backend, target=target, calibration=calibration,
                             epochs=epochs, train_samples=train_samples, learning_rate=learning_rate,
                             weight_copies=weight_copies, resume=resume, seed=seed, progress=progress, delays=delays,
                             uncalibrated=uncalibrated, plot_dir=plot_dir, method=method, nproc=nproc)
    check_output(output, (model_path, calibration))
    folder = check_plot_dir(plot_dir)
    ckpt = checkpoint_path(output)
    if not resume or not ckpt.is_file():  # a checkpoint to resume from is an input; otherwise it will be written
        check_output(ckpt, (model_path, calibration))
    engine, chosen, model = get_backend(backend), get_target(target), load_model(model_path)
    fingerprint = {"model_sha256": hashlib.sha256(Path(model_path).read_bytes()).hexdigest()}
    with nameless_temporaries():  # the checkpoints and the model: torch.save
        result, summary = train_in_the_loop(
            model, engine, chosen, calibration, epochs=epochs, train_samples=train_samples,
            learning_rate=learning_rate, weight_copies=weight_copies, seed=seed, progress=progress, delays=delays,
            uncalibrated=uncalibrated, method=method,
            source=Path(model_path).name, checkpoint=Checkpointing(ckpt, fingerprint, resume))
        save_model(result, output)
    ckpt.unlink(missing_ok=True)
    if folder is not None:
        summary["figures"] = history_figure(summary["history"], folder, "itl", f"itl on {engine.name}")
    return {**summary, "output": str(output)}


def _itl_on_chips(model_path: str | Path, output: str | Path, names: list[str], *, backend: str, target: str,
                  calibration: Optional[str | Path], nproc: int, plot_dir: Optional[str | Path], resume: bool,
                  progress: bool, **settings) -> dict:
    """``itl`` with the chips ``names`` in the loop at once (in ``nproc`` processes)."""
    engines = [get_backend(name) for name in names]
    calibrations = [calibration_of(calibration, e.chip_id, True) for e in engines]
    inputs = (model_path, *[c for c in calibrations if c is not None])
    check_output(output, inputs)
    folder = check_plot_dir(plot_dir)
    ckpt = checkpoint_path(output)
    if not resume or not ckpt.is_file():
        check_output(ckpt, inputs)
    fingerprint = {"model_sha256": hashlib.sha256(Path(model_path).read_bytes()).hexdigest()}
    checkpointing = Checkpointing(ckpt, fingerprint, resume)
    if nproc > 1:  # the checks one process would make, before any process starts
        from .parallel_itl import itl_parallel

        check_chips(load_model(model_path), engines, get_target(target), calibrations, backend=backend, nproc=nproc,
                    source=Path(model_path).name, **settings)

        summary = itl_parallel(model_path, output, names, calibrations, nproc, backend=backend, target=target,
                               checkpoint=checkpointing, progress=progress, **settings)
    else:
        with nameless_temporaries():
            result, summary = train_on_chips(load_model(model_path), engines, get_target(target), calibrations,
                                             backend=backend, progress=progress, checkpoint=checkpointing,
                                             source=Path(model_path).name, **settings)
            save_model(result, output)
    ckpt.unlink(missing_ok=True)
    if folder is not None:
        summary["figures"] = history_figure(summary["history"], folder, "itl", f"itl on {backend}")
    return {**summary, "output": str(output)}
