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


def _pyplot():
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def delay_spike_times(runs: dict, targets: list[float], threshold: float, path: Path) -> Path:
    """Experiment (b) of seed 001 on a chip: each output's membrane per delay realisation (``runs``: strategy →
    :func:`~neurodeploy.delay_experiments.spike_times_on_chip`'s result), the threshold and the target times."""
    plt = _pyplot()
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


def recording_figures(meta: dict, arrays: dict, folder: Path, sample: int = 0) -> list[Path]:
    """Two figures of one sample of a recording (:mod:`neurodeploy.workflows.record`): a spike raster per spiking
    layer, the backend's spikes (dots) over the software model's (rings); and each readout neuron's membrane on
    the backend against the software model's, in model units on the model's time axis."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    step_ms = meta["time_step_s"] * 1e3
    spiking = [i for i, kind in enumerate(meta["layer_kinds"]) if kind == "lif"]
    figure, axes = plt.subplots(max(len(spiking), 1), 1, figsize=(6, 2.2 * max(len(spiking), 1)), squeeze=False)
    for axis, index in zip(axes[:, 0], spiking):
        neurons = np.flatnonzero(arrays["neuron_layer"] == index)
        for key, style in (("software_spikes", dict(marker="o", facecolors="none", edgecolors="tab:gray", s=18,
                                                    label="software")),
                           ("spikes", dict(marker=".", color="tab:blue", s=10, label=meta["backend"]))):
            t, n = np.nonzero(arrays[key][:, sample, neurons])
            axis.scatter(t * step_ms, n, **style)
        axis.set_ylabel(f"{meta['layers'][index]} neuron")
        axis.legend(fontsize=6, loc="upper right")
    axes[-1, 0].set_xlabel("time (ms, model time)")
    figure.suptitle(f"sample {sample} (label {int(arrays['labels'][sample])})", fontsize=8)
    figure.tight_layout()
    raster = folder / "raster.png"
    figure.savefig(raster, dpi=110)
    plt.close(figure)

    readout = len(meta["layers"]) - 1  # the readout is the last layer
    columns = np.flatnonzero(arrays["neuron_layer"][arrays["recorded"]] == readout)
    figure, axis = plt.subplots(figsize=(6, 3))
    steps = np.arange(arrays["membrane"].shape[0]) * step_ms
    for k, column in enumerate(columns):
        line = axis.plot(steps, arrays["membrane"][:, sample, column], linewidth=1,
                         label=f"class {k} ({meta['backend']})")
        axis.plot(steps, arrays["software_readout"][:, sample, k], linestyle="--", linewidth=0.8,
                  color=line[0].get_color())
    axis.set_xlabel("time (ms, model time); dashed: software")
    axis.set_ylabel("readout v (model units)")
    axis.legend(fontsize=6)
    figure.tight_layout()
    traces = folder / "readout.png"
    figure.savefig(traces, dpi=110)
    plt.close(figure)
    return [raster, traces]


def calibration_histograms(before: dict, after: dict, targets: dict, folder: Path) -> list[Path]:
    """One histogram per parameter: uncalibrated (median codes) against calibrated values."""
    plt = _pyplot()
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
