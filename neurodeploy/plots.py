"""Figures (PNG) for ``--plot DIR``; matplotlib is an optional dependency (extra ``plot``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NeurodeployError


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise NeurodeployError("--plot needs matplotlib, which is not installed",
                               "pip install 'neurodeploy[plot]' (or pip install matplotlib)")


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (a one-line error without matplotlib)."""
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def delay_spike_times(runs: dict, targets: list[float], threshold: float, path: Path) -> Path:
    """Experiment (b) of seed 001 on a chip: each output's membrane per delay realisation (``runs``: strategy →
    :func:`~neurodeploy.delay_experiments.spike_times_on_chip`'s result), the threshold and the target times."""
    plt = pyplot()
    figure, axes = plt.subplots(len(runs), 1, figsize=(6, 1.9 * len(runs)), sharex=True, squeeze=False)
    for axis, (strategy, run) in zip(axes[:, 0], runs.items()):
        membrane = np.asarray(run["membrane"])
        steps = np.arange(len(membrane)) * run["time_step_s"] * 1e3
        for n, target in enumerate(targets):
            line = axis.plot(steps, membrane[:, n], linewidth=1, label=f"output {n + 1}: spike at {run['chip'][n]}")
            axis.axvline(target, color=line[0].get_color(), linestyle="--", linewidth=0.8)
        axis.axhline(threshold, color="k", linewidth=0.6)
        axis.set_ylabel("v (model units)")
        axis.set_title(strategy, fontsize=8)
        axis.legend(fontsize=6, loc="upper left")
    axes[-1, 0].set_xlabel("time (ms, model time); dashed: target spike times")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(figure)
    return path


def _neuron_name(meta: dict, neuron_layer: np.ndarray, neuron: int) -> str:
    layer = int(neuron_layer[neuron])
    return f"{meta['layers'][layer]}/{neuron - int(np.flatnonzero(neuron_layer == layer)[0])}"


def recording_figures(meta: dict, arrays: dict, folder: Path, sample: int = 0, traces: int = 4) -> list[Path]:
    """Figures of one sample of a recording (:mod:`neurodeploy.workflows.record`), model units on the model's time
    axis: ``raster.png``, a spike raster per spiking layer, the backend's spikes (dots) over the software model's
    (rings); ``readout.png``, each readout neuron's membrane on the backend against the software model's;
    ``membrane.png``, up to ``traces`` recorded hidden neurons, CADC against software, and the MADC neuron's
    10-bit trace; ``current.png``, the synaptic current read by the MADC against the software model's."""
    plt = pyplot()
    written = []
    step_ms = meta["time_step_s"] * 1e3
    layer_of = arrays["neuron_layer"]
    title = f"sample {sample} (label {int(arrays['labels'][sample])}) on {meta['backend']}"
    if "spikes" in arrays:
        spiking = [i for i, kind in enumerate(meta["layer_kinds"]) if kind == "lif"]
        rows = max(len(spiking), 1)
        figure, axes = plt.subplots(rows, 1, figsize=(6, 2.2 * rows), squeeze=False)
        for axis, index in zip(axes[:, 0], spiking):
            neurons = np.flatnonzero(layer_of == index)
            for key, style in (("software_spikes", dict(marker="o", facecolors="none", edgecolors="tab:gray", s=18,
                                                        label="software")),
                               ("spikes", dict(marker=".", color="tab:blue", s=10, label=meta["backend"]))):
                t, n = np.nonzero(arrays[key][:, sample, neurons])
                axis.scatter(t * step_ms, n, **style)
            axis.set_ylabel(f"{meta['layers'][index]} neuron")
            axis.set_xlim(0, arrays["spikes"].shape[0] * step_ms)  # the whole sample, not only its spikes
            axis.set_ylim(-0.5, len(neurons) - 0.5)
            axis.legend(fontsize=6, loc="upper right")
        axes[-1, 0].set_xlabel("time (ms, model time)")
        figure.suptitle(title, fontsize=8)
        written.append(_save(figure, folder / "raster.png"))

    steps = np.arange(arrays["membrane"].shape[0]) * step_ms
    readout = len(meta["layers"]) - 1  # the readout is the last layer
    columns = np.flatnonzero(layer_of[arrays["recorded"]] == readout)
    if len(columns):
        figure, axis = plt.subplots(figsize=(6, 3))
        for k, column in enumerate(columns):
            line = axis.plot(steps, arrays["membrane"][:, sample, column], linewidth=1,
                             label=f"class {k} ({meta['backend']})")
            axis.plot(steps, arrays["software_readout"][:, sample, k], linestyle="--", linewidth=0.8,
                      color=line[0].get_color())
        axis.set_xlabel("time (ms, model time); dashed: software")
        axis.set_ylabel("readout v (model units)")
        axis.legend(fontsize=6)
        figure.suptitle(title, fontsize=8)
        written.append(_save(figure, folder / "readout.png"))

    hidden = np.flatnonzero(layer_of[arrays["recorded"]] != readout)[:traces]
    if len(hidden) and "software_membrane" in arrays:
        figure, axes = plt.subplots(len(hidden), 1, figsize=(6, 1.6 * len(hidden) + 0.6), sharex=True, squeeze=False)
        for axis, column in zip(axes[:, 0], hidden):
            neuron = int(arrays["recorded"][column])
            axis.plot(steps, arrays["software_membrane"][:, sample, column], color="tab:gray", linestyle="--",
                      linewidth=0.9, label="software")
            axis.plot(steps, arrays["membrane"][:, sample, column], color="tab:blue", linewidth=1,
                      label="CADC (8 bit, 2 µs)")
            if "madc" in arrays and int(arrays["madc_neuron"]) == neuron and np.isfinite(arrays["madc"]).all():
                axis.plot(steps, arrays["madc"][:, sample], color="tab:orange", linewidth=0.8,
                          label="MADC (10 bit)")
            axis.set_ylabel(_neuron_name(meta, layer_of, neuron), fontsize=7)
            axis.legend(fontsize=6, loc="upper right")
        axes[-1, 0].set_xlabel("time (ms, model time); membrane v (model units)")
        figure.suptitle(title, fontsize=8)
        written.append(_save(figure, folder / "membrane.png"))

    if "current" in arrays:
        figure, axis = plt.subplots(figsize=(6, 2.6))
        axis.plot(steps, arrays["software_current"][:, sample], color="tab:gray", linestyle="--", linewidth=0.9,
                  label="software")
        axis.plot(steps, arrays["current"][:, sample], color="tab:orange", linewidth=1, label="MADC (10 bit)")
        axis.set_xlabel("time (ms, model time)")
        axis.set_ylabel(f"I_syn of {_neuron_name(meta, layer_of, int(arrays['current_neuron']))}", fontsize=7)
        axis.legend(fontsize=6)
        figure.suptitle(title, fontsize=8)
        written.append(_save(figure, folder / "current.png"))
    return written


def training_curves(history: list[dict], path: Path, title: str = "") -> Path:
    """Loss and accuracies per epoch (``train`` or ``itl``'s history rows): loss on the left axis, every
    ``*accuracy*`` column on the right."""
    plt = pyplot()
    epochs = np.arange(1, len(history) + 1)
    figure, loss_axis = plt.subplots(figsize=(6, 3))
    if history and "loss" in history[0]:
        loss_axis.plot(epochs, [row["loss"] for row in history], color="k", linewidth=1, label="loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    accuracy_axis = loss_axis.twinx()
    names = [key for key in (history[0] if history else {}) if "accuracy" in key]
    for name in names:
        values = [row.get(name) for row in history]
        accuracy_axis.plot(epochs, [np.nan if v is None else 100 * v for v in values], marker=".", linewidth=1,
                           label=name.replace("_", " "))
    accuracy_axis.set_ylabel("accuracy (%)")
    lines = loss_axis.get_legend_handles_labels()
    more = accuracy_axis.get_legend_handles_labels()
    accuracy_axis.legend(lines[0] + more[0], lines[1] + more[1], fontsize=6, loc="center right")
    loss_axis.set_title(title, fontsize=8)
    return _save(figure, path)


def calibration_histograms(before: dict, after: dict, targets: dict, folder: Path) -> list[Path]:
    """One histogram per parameter: uncalibrated (median codes) against calibrated values."""
    plt = pyplot()
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
