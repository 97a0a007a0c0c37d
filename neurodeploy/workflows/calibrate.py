"""``calibrate``: calibrate a chip's neurons to targets and write the calibration file (the target's hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..atomic import check_output
from ..backends.registry import get_backend
from ..errors import NeurodeployError
from ..targets.registry import get_target


def parse_sets(items: tuple[str, ...]) -> dict:
    """``("tau_mem_s=1e-5", ...)`` → ``{"tau_mem_s": 1e-05}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise NeurodeployError(f"--set '{item}' is not NAME=NUMBER", "e.g. --set tau_mem_s=1e-5")
    return out


def calibrate_chip(backend: str, target: str = "bss2", sets: Optional[dict] = None,
                   output: Optional[str | Path] = None, seed: int = 0, plot_dir: Optional[str | Path] = None,
                   progress: bool = True) -> dict:
    """Calibrate all neurons of the chip behind ``backend`` for ``target``; returns the before/after summary."""
    if output is not None:
        check_output(output)
    chosen = get_target(target)
    engine = get_backend(backend)
    if engine.target not in (None, chosen.name):
        raise NeurodeployError(f"backend '{engine.name}' runs target '{engine.target}', not '{chosen.name}'",
                               f"use --target {engine.target}")
    summary = chosen.calibrate(engine, sets or {}, output=output, seed=seed, plot_dir=plot_dir, progress=progress)
    summary.pop("calibration", None)  # the object; the file holds it
    return summary
