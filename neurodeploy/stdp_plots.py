"""Figures of the unsupervised STDP network (:mod:`neurodeploy.training.stdp`): receptive fields."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .plots import pyplot


def receptive_field_grid(fields: np.ndarray, path: str | Path, labels: np.ndarray | None = None,
                         w_max: float = 1.0, title: str = "", columns: int = 0, dpi: int = 80) -> Path:
    """Each neuron's incoming weights ``fields [n, side, side]`` as one grey tile (black 0, white ``w_max``),
    in a grid of ``columns`` (0: square); ``labels [n]`` (−1: never fired) are written on the tiles."""
    plt = pyplot()
    n = fields.shape[0]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(0.45 * columns, 0.45 * rows + (0.3 if title else 0)),
                                squeeze=False)
    for k, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if k >= n:
            continue
        axis.imshow(fields[k], cmap="gray", vmin=0.0, vmax=w_max, interpolation="nearest")
        if labels is not None:
            text = "–" if labels[k] < 0 else str(int(labels[k]))
            axis.text(0.5, 1.5, text, color="orange", fontsize=5, fontweight="bold")
    if title:
        figure.suptitle(title, fontsize=7)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.97 if not title else 0.94,
                           wspace=0.05, hspace=0.05)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
