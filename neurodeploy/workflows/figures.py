"""``--plot DIR`` of ``train``, ``itl``, ``run`` (and ``run --record``): which figures each verb draws.

matplotlib is optional: a verb given ``--plot`` checks for it before any work (:func:`check_plot_dir`), so that
a missing extra is said at once, not after an hour of training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..atomic import check_output
from ..deployment_plots import accuracy_per_chip, placement_map, quantisation_histograms
from ..errors import FileKindError, NeurodeployError
from ..plots import recording_figures, require_matplotlib, training_curves
from ..validation.loading import load_checked_deployment
from .record import load_recording


def check_plot_folder(plot_dir: str | Path) -> None:
    """``--plot DIR`` must be a folder, or a name one can be made with (before any work starts)."""
    folder = Path(plot_dir)
    if folder.exists() and not folder.is_dir():
        raise FileKindError(f"--plot {folder} is a file, not a folder", "give a folder for the figures")
    check_output(folder / "plot.png")


def check_plot_dir(folder: Optional[str | Path]) -> Optional[Path]:
    """``folder`` as a path after checking that figures can be drawn there (matplotlib too); None stays None."""
    if folder is None:
        return None
    require_matplotlib()
    check_plot_folder(folder)
    return Path(folder)


def history_figure(history: list[dict], folder: Path, name: str, title: str) -> list[str]:
    """Loss and accuracies per epoch of ``train`` or ``itl``."""
    return [str(training_curves(history, folder / f"{name}.png", title))]


def run_figures(deployment_path: str | Path, result: Optional[dict], folder: Path) -> list[str]:
    """Accuracy per chip of ``run``'s ``result`` (with its interval over repeats; None: none), the placement map
    and the weight codes per layer."""
    deployment = load_checked_deployment(deployment_path)
    written = [] if result is None else [accuracy_per_chip(result, folder / "accuracy_per_chip.png")]
    if "graph" in deployment.meta:  # a model's deployment, not a chip experiment
        written += [placement_map(deployment, folder / "placement.png"),
                    quantisation_histograms(deployment, folder / "quantisation.png")]
    return [str(path) for path in written]


def recording_figure_files(recording: str | Path, folder: Path, sample: int = 0) -> list[str]:
    """The figures of one sample of a recording (raster, readout, membranes, current)."""
    meta, arrays = load_recording(recording)
    if not 0 <= sample < meta["samples"]:
        raise NeurodeployError(f"--sample {sample}: the recording has {meta['samples']} samples",
                               f"choose 0..{meta['samples'] - 1}")
    return [str(path) for path in recording_figures(meta, arrays, folder, sample)]
