"""``calibrate``: calibrate a chip's neurons to targets and write the calibration file (the target's hook); a range
of chips (``mock:0-15``) in parallel worker processes, one file per chip."""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional

from ..atomic import check_output, nameless_temporaries
from ..backends.registry import expand_backends, get_backend
from ..backends.retry import Retrying
from ..errors import NeurodeployError
from ..targets.registry import get_target
from ..validation.arguments import WORKERS, check_argument
from .figures import check_plot_folder
from .run import calibration_of


def parse_sets(items: tuple[str, ...]) -> dict:
    """``("tau_mem_s=1e-5", ...)`` → ``{"tau_mem_s": 1e-05}``; each value a finite number."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise NeurodeployError(f"--set '{item}' is not NAME=NUMBER", "e.g. --set tau_mem_s=1e-5")
        if not math.isfinite(number):
            raise NeurodeployError(f"--set '{item}' is not a finite number", "e.g. --set tau_mem_s=1e-5")
        out[key.strip()] = number
    return out


def calibrate_chip(backend: str, target: str = "bss2", sets: Optional[dict] = None,
                   output: Optional[str | Path] = None, seed: int = 0, plot_dir: Optional[str | Path] = None,
                   progress: bool = True) -> dict:
    """Calibrate all neurons of the chip behind ``backend`` for ``target``; returns the before/after summary.

    A chip without analog codes (``mock:ideal``) has nothing to calibrate: the summary says so at once
    (``nothing_to_calibrate``) and nothing is written.
    """
    if output is not None:
        check_output(output)
    if plot_dir is not None:
        check_plot_folder(plot_dir)
    chosen = get_target(target)
    engine = Retrying(get_backend(backend))  # an experiment that loses the chip is run again
    if engine.target not in (None, chosen.name):
        raise NeurodeployError(f"backend '{engine.name}' runs target '{engine.target}', not '{chosen.name}'",
                               f"use --target {engine.target}")
    if engine.target is not None and not engine.uses_codes:  # e.g. mock:ideal: no analog codes to find
        return {"backend": engine.name, "chip": engine.chip_id, "nothing_to_calibrate": True, "output": None,
                "message": f"{engine.name} realises the requested settings exactly: there is nothing to calibrate "
                           "(calibrate a chip with analog mismatch, e.g. --backend mock:0)", "retried_runs": 0}
    with nameless_temporaries():
        summary = chosen.calibrate(engine, sets or {}, output=output, seed=seed, plot_dir=plot_dir,
                                   progress=progress)
    summary.pop("calibration", None)  # the object; the file holds it
    return {**summary, "retried_runs": engine.retries}


def calibrate_chips(backend: str, target: str = "bss2", sets: Optional[dict] = None,
                    output: Optional[str | Path] = None, seed: int = 0, plot_dir: Optional[str | Path] = None,
                    workers: int = 1, progress: bool = True) -> dict:
    """:func:`calibrate_chip` for every chip ``backend`` names (``mock:0-15``), ``workers`` at a time in separate
    processes; ``output`` (and ``plot_dir``) must then be patterns with ``{chip}``, filled in with each chip's
    number. One chip: :func:`calibrate_chip` itself. Each file is written atomically when its chip is done."""
    check_argument(WORKERS, workers, "--workers")
    names = expand_backends(backend)
    if len(names) == 1:
        return calibrate_chip(backend, target, sets, output, seed, plot_dir, progress)
    chips = [get_backend(name) for name in names]  # refuses a bad name before any work
    outputs = [None if output is None else calibration_of(output, chip.chip_id, True) for chip in chips]
    plots = [None if plot_dir is None else calibration_of(plot_dir, chip.chip_id, True) for chip in chips]
    for path in outputs:
        if path is not None:
            check_output(path)
    for folder in plots:
        if folder is not None:
            check_plot_folder(folder)
    started = time.perf_counter()
    jobs = [(name, target, sets, out, seed, plot) for name, out, plot in zip(names, outputs, plots)]
    if workers == 1:
        summaries = [_calibrate_one(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_one_thread) as pool:
            summaries = list(pool.map(_calibrate_one, jobs))
    return {"backend": backend, "workers": workers, "seconds": time.perf_counter() - started, "chips": summaries}


def _one_thread() -> None:
    """A worker computes with one thread: the workers, not their threads, share the cores."""
    import torch
    torch.set_num_threads(1)


def _calibrate_one(job: tuple) -> dict:
    name, target, sets, output, seed, plot_dir = job
    return calibrate_chip(name, target, sets, output, seed, plot_dir, progress=False)
