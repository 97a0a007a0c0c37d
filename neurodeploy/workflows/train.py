"""``train``: recipe file → trained model file (the training itself is :func:`neurodeploy.training.fit.fit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..atomic import check_output, nameless_temporaries
from ..modelfile import save_model
from ..recipe import load_recipe
from ..training.fit import fit


def train(recipe_path: str | Path, output: str | Path, *, epochs: Optional[int] = None,
          seed: Optional[int] = None, progress: bool = True) -> dict:
    """Train the recipe's network and write the model file; returns its metrics (see ``fit``)."""
    check_output(output, (recipe_path,))
    model = fit(load_recipe(recipe_path), epochs=epochs, seed=seed, progress=progress,
                recipe_file=Path(recipe_path).name)
    with nameless_temporaries():
        save_model(model, output)
    return model.metrics
