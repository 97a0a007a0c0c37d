"""Figures (PNG) for ``--plot DIR``; matplotlib is an optional dependency (extra ``plot``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .errors import NeurodeployError


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise NeurodeployError("--plot needs matplotlib, which is not installed",
                               "pip install 'neurodeploy[plot]' (or pip install matplotlib)")


def calibration_histograms(before: dict, after: dict, targets: dict, folder: Path) -> list[Path]:
    """One histogram per parameter: uncalibrated (median codes) against calibrated values."""
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in after:
        figure, axis = plt.subplots(figsize=(5, 3.2))
        finite = [v[np.isfinite(v)] for v in (before[name], after[name])]
        bins = np.histogram_bin_edges(np.concatenate(finite), bins=60).tolist()  # a list: what Axes.hist is typed for
        axis.hist(finite[0], bins=bins, alpha=0.6, label="uncalibrated (median codes)")
        axis.hist(finite[1], bins=bins, alpha=0.8, label="calibrated")
        axis.axvline(targets[name], color="k", linewidth=1, label="target")
        axis.set_xlabel(name)
        axis.set_ylabel("neuron circuits")
        axis.legend(fontsize=7)
        figure.tight_layout()
        path = folder / f"calibration_{name}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
