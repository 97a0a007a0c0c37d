"""Figures (PNG) of a deployment and of its runs, for the deployment report (:mod:`neurodeploy.workflows.report`).

* :func:`placement_map`: where each layer sits on the chip, drawn from the grids its target describes
  (:meth:`~neurodeploy.targets.base.Target.placement`; BSS-2: neuron circuits, synapse arrays, drivers;
  Xylo: input channels, hidden and output neurons);
* :func:`quantisation_histograms`: per projection, how often each integer weight code is used, against the
  target's code range (:meth:`~neurodeploy.targets.base.Target.weight_code_range`): clipping shows as a pile at
  the ends, and the count of levels used says how much of the range the weights occupy;
* :func:`accuracy_per_chip`: the accuracy per chip of a ``neurodeploy run --json`` result, with the 95 %
  interval of the mean (or ± std) over its repeats.

matplotlib is optional (extra ``plot``); without it each function raises a one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .deployment import Deployment
from .errors import NeurodeployError
from .plots import pyplot
from .targets.registry import get_target

DPI = 90
UNUSED = "#ececec"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
NO_METADATA = {"Software": None}  # no matplotlib URL in the PNG's text chunks


def _save(figure: Any, path: Path) -> Path:
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, metadata=NO_METADATA)
    plt.close(figure)
    return path


def _colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def placement_map(deployment: Deployment, path: str | Path) -> Path:
    """Draw the deployment's placement as its target describes it; a target that describes none gets a figure
    that says so."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    panels = get_target(deployment.target).placement(deployment)
    if not panels:
        figure, axis = plt.subplots(figsize=(6, 1.2))
        axis.axis("off")
        axis.text(0.5, 0.5, f"target '{deployment.target}' describes no placement", ha="center", va="center")
        return _save(figure, Path(path))
    names: list[str] = []
    for panel in panels:
        names += [name for name in panel.legend if name not in names]
    colour = _colours(names)
    heights = [1.0 + 2.8 * min(panel.owner.shape[0], 256) / 256 for panel in panels]
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, sum(heights) + 0.8), layout="constrained",
                                gridspec_kw={"height_ratios": heights}, squeeze=False)
    shown: list[str] = []
    for axis, panel in zip(axes[:, 0], panels):
        owner = np.asarray(panel.owner, np.int64)
        if owner.ndim == 1:
            owner = owner[None, :]
        cmap = ListedColormap([UNUSED, *(colour[name] for name in panel.legend)])
        axis.imshow(owner + 1, cmap=cmap, vmin=0, vmax=len(panel.legend), aspect="auto", interpolation="nearest")
        used = int((owner >= 0).sum())
        axis.set_title(f"{panel.title} ({used} of {owner.size} used)", fontsize=8)
        axis.set_ylabel(panel.row_label, fontsize=7)
        axis.set_xlabel(panel.column_label, fontsize=7)
        axis.tick_params(labelsize=6)
        if owner.shape[0] <= 4:
            axis.set_yticks(range(owner.shape[0]) if owner.shape[0] > 1 else [])
        shown += [panel.legend[i] for i in np.unique(owner[owner >= 0]) if panel.legend[i] not in shown]
    handles = [Patch(color=colour[name], label=name) for name in names if name in shown]
    handles.append(Patch(color=UNUSED, label="unused"))
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=7,
                  frameon=False)
    figure.suptitle(f"placement on {deployment.target}", fontsize=9)
    return _save(figure, Path(path))


def quantisation_histograms(deployment: Deployment, path: str | Path) -> Path:
    """One histogram per projection of its integer weight codes (``quantised_weight:PROJECTION``), with the
    target's code range; each panel says how many levels are used and how many weights sit at the range's ends."""
    plt = pyplot()
    from matplotlib.ticker import ScalarFormatter

    keys = [key for key in deployment.arrays if key.startswith("quantised_weight:")]  # the mapper's order
    if not keys:
        raise NeurodeployError(f"the {deployment.target} deployment holds no quantised weights",
                               "draw a deployment made by `neurodeploy map`")
    limits = get_target(deployment.target).weight_code_range()
    clipped_of = {row.get("name"): row.get("clipped_fraction") for row in deployment.meta.get("report", {})
                  .get("layers", []) if isinstance(row, dict)}  # the mapping report's, per post-synaptic layer
    figure, axes = plt.subplots(len(keys), 1, figsize=(6.5, 2.3 * len(keys) + 0.3), squeeze=False)
    for axis, key in zip(axes[:, 0], keys):
        codes = np.asarray(deployment[key]).astype(np.int64).ravel()
        low, high = limits if limits is not None else (int(codes.min(initial=0)), int(codes.max(initial=0)))
        lo, hi = min(low, int(codes.min(initial=low))), max(high, int(codes.max(initial=high)))
        counts = np.bincount(codes - lo, minlength=hi - lo + 1)
        axis.bar(np.arange(lo, hi + 1), counts, width=1.0, color=PALETTE[0], linewidth=0)
        if limits is not None:
            for edge in limits:
                axis.axvline(edge, color="k", linestyle="--", linewidth=0.8)
        at_ends = int(((codes <= low) | (codes >= high)).sum()) if limits is not None else 0
        clipped = clipped_of.get(key.split(":", 1)[1].rsplit("->", 1)[-1])
        levels = int(np.count_nonzero(counts))
        note = f"{levels} of {high - low + 1} levels used"
        if limits is not None:
            share = at_ends / max(codes.size, 1)
            note += f"; {at_ends} of {codes.size} weights ({100 * share:.1f} %) at the ends {low}/{high}"
        if isinstance(clipped, (int, float)):
            note += f"\n{100 * clipped:.1f} % of the layer's weights clipped (beyond the largest code)"
        axis.set_title(f"{key.split(':', 1)[1]}: {note}", fontsize=8)
        axis.set_yscale("symlog", linthresh=1)  # a few clipped weights stay visible beside a large peak
        axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.set_ylabel("weights", fontsize=7)
        axis.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel("integer weight code" + ("; dashed: the target's range" if limits is not None else ""),
                           fontsize=7)
    figure.tight_layout()
    return _save(figure, Path(path))


def _chip_points(run_result: dict) -> list[tuple[str, float, float, float, list[float]]]:
    """``(name, mean, lower error, upper error, runs)`` per backend of a ``run --json`` result."""
    if not isinstance(run_result, dict) or not isinstance(run_result.get("accuracy"), (int, float)):
        raise NeurodeployError("the run result has no accuracy", "pass the output of `neurodeploy run ... --json`")
    runs = [r for r in run_result.get("runs") or [] if isinstance(r, dict)]
    per_backend = run_result.get("per_backend")
    if not isinstance(per_backend, dict) or not per_backend:
        accuracy = float(run_result["accuracy"])
        return [(str(run_result.get("backend", "backend")), accuracy, 0.0, 0.0, [accuracy])]
    points = []
    for name, chip in per_backend.items():
        if not isinstance(chip, dict) or not isinstance(chip.get("mean"), (int, float)):
            raise NeurodeployError(f"the run result's per_backend entry {str(name)[:40]!r} has no mean",
                                   "pass the output of `neurodeploy run ... --json`")
        mean = float(chip["mean"])
        interval = chip.get("interval95")
        if isinstance(interval, (list, tuple)) and len(interval) == 2:
            below, above = mean - float(interval[0]), float(interval[1]) - mean
        else:
            below = above = float(chip.get("std") or 0.0)
        values = [float(r["accuracy"]) for r in runs if r.get("backend") == name
                  and isinstance(r.get("accuracy"), (int, float))]
        points.append((str(name), mean, max(below, 0.0), max(above, 0.0), values))
    return points


def accuracy_per_chip(run_result: dict, path: str | Path) -> Path:
    """Accuracy per chip (backend) of a ``neurodeploy run --json`` result: the mean with the 95 % interval of the
    mean as error bar (± std where no interval is given), each run as a small dot; a single run is one point."""
    plt = pyplot()
    points = _chip_points(run_result)
    figure, axis = plt.subplots(figsize=(max(3.5, 0.9 * len(points) + 2), 3))
    x = np.arange(len(points))
    given = run_result.get("per_backend")
    chips: dict = given if isinstance(given, dict) else {}
    intervals = any(isinstance(c, dict) and c.get("interval95") for c in chips.values())
    label = "mean, 95 % interval of the mean" if intervals else "mean ± std" if chips else "accuracy (one run)"
    axis.errorbar(x, [100 * p[1] for p in points], yerr=[[100 * p[2] for p in points], [100 * p[3] for p in points]],
                  fmt="o", color=PALETTE[0], capsize=4, label=label)
    for i, point in enumerate(points):
        if len(point[4]) > 1:
            jitter = np.linspace(-0.12, 0.12, len(point[4]))
            axis.scatter(i + jitter, [100 * v for v in point[4]], s=8, color=PALETTE[1], zorder=3,
                         label="runs" if i == 0 else None)
    overall = run_result.get("accuracy")
    if len(points) > 1 and isinstance(overall, (int, float)):
        axis.axhline(100 * overall, color="k", linewidth=0.7, linestyle=":", label="all chips")
    axis.set_xticks(x)
    axis.set_xticklabels([p[0] for p in points], fontsize=7, rotation=30 if len(points) > 4 else 0)
    axis.set_xlim(-0.6, len(points) - 0.4)
    axis.set_ylabel("accuracy (%)", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=6)
    axis.set_title(f"accuracy per chip on {run_result.get('n_samples', '?')} samples", fontsize=8)
    figure.tight_layout()
    return _save(figure, Path(path))
