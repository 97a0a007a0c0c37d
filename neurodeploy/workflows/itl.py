"""``itl``: fine-tune a model file with the chip in the loop and write the result (files around
:func:`neurodeploy.itl.run.train_in_the_loop`).

Nothing is written before every input has been checked. A checkpoint ``OUTPUT.checkpoint`` is
written after every epoch; ``resume`` continues from it (the same run's settings; ``epochs`` may
differ) and it is removed once the output is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from ..atomic import check_output, nameless_temporaries
from ..backends.registry import get_backend
from ..itl.checkpoint import checkpoint_path
from ..itl.run import Checkpointing, train_in_the_loop
from ..modelfile import load_model, save_model
from ..targets.registry import get_target
from .figures import check_plot_dir, history_figure


def itl(model_path: str | Path, output: str | Path, *, backend: str, target: str = "bss2",
        calibration: Optional[str | Path] = None, epochs: int = 2, train_samples: Optional[int] = None,
        learning_rate: float = 3e-3, weight_copies: Optional[int] = None, resume: bool = False, seed: int = 0,
        progress: bool = True, delays: Optional[str] = None, uncalibrated: bool = False,
        plot_dir: Optional[str | Path] = None, method: str = "surrogate") -> dict:
    """Train ``model_path`` in the loop on ``backend`` for ``epochs`` and write ``output``; returns the summary
    (with ``plot_dir``, also the figure of loss and validation accuracy on the chip per epoch, ``itl.png``)."""
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
