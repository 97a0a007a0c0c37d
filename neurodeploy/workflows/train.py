"""``train``: recipe file → trained model file (the training itself is :func:`neurodeploy.training.fit.fit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..atomic import check_output, nameless_temporaries
from ..modelfile import save_model
from ..recipe import load_recipe
from ..training.fit import fit
from .figures import check_plot_dir, history_figure


def train(recipe_path: str | Path, output: str | Path, *, epochs: Optional[int] = None,
          seed: Optional[int] = None, progress: bool = True, plot_dir: Optional[str | Path] = None,
          nproc: int = 1) -> dict:
    """Train the recipe's network and write the model file; returns its metrics (see ``fit``), and with
    ``plot_dir`` the figure of its loss and accuracies per epoch (``training.png``). ``nproc`` > 1: in that many
    data-parallel processes (:mod:`.parallel_train`)."""
    check_output(output, (recipe_path,))
    folder = check_plot_dir(plot_dir)
    if nproc > 1:
        from .parallel_train import train_parallel

        metrics = train_parallel(recipe_path, output, nproc, epochs=epochs, seed=seed)
        if folder is None:
            return metrics
        from ..modelfile import load_model
        history = load_model(output).provenance.get("history", [])
        return {**metrics, "figures": history_figure(history, folder, "training", f"train {Path(output).name}")}
    model = fit(load_recipe(recipe_path), epochs=epochs, seed=seed, progress=progress,
                recipe_file=Path(recipe_path).name)
    with nameless_temporaries():
        save_model(model, output)
    if folder is None:
        return model.metrics
    history = model.provenance.get("history", [])
    return {**model.metrics, "figures": history_figure(history, folder, "training", f"train {Path(output).name}")}
