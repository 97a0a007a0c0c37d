"""setup, run, reset, end: PyNN's control functions for the emulated chip."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pyNN import common

from ..errors import BackendError
from . import simulator

TIME_SCALES = ("hardware", "biological")
DEFAULT_TIMESTEP_MS = {"hardware": 1e-3, "biological": 1.0}  # 1 us of chip time either way


def setup(timestep: Optional[float] = None, min_delay: Any = "auto", *, backend: Optional[str] = None,
          calibration: Any = None, time_scale: str = "hardware", record_sample_times: bool = True,
          initial_config: Any = None, **extra_params: Any) -> int:
    """Start a new network on the emulated chip.

    ``timestep`` (ms of the script's time): the emulation's step; default 1 µs of chip time. ``time_scale``:
    ``hardware`` (pynn_brainscales' convention: every time in the script, ``run()`` included, is chip time, 1000x
    faster than the biological time) or ``biological`` (times are the model's; the chip runs them 1000x faster).
    ``backend``: ``mock:ideal`` or ``mock:N`` (default: the calibration's chip, else ``mock:ideal``).
    ``calibration`` (or pynn_brainscales' ``initial_config``): a calibration file (or object) of that chip, whose
    codes the neurons use where the script leaves their parameters at the calibrated values.
    ``record_sample_times``: membranes as ``IrregularlySampledSignal`` (True, as pynn_brainscales) or
    ``AnalogSignal``. pynn_brainscales' other arguments (``initial_config``, ``neuronPermutation``, ...) are
    accepted and ignored.
    """
    if time_scale not in TIME_SCALES:
        raise BackendError(f"time_scale {time_scale!r} is unknown", f"use one of {TIME_SCALES}")
    timestep = DEFAULT_TIMESTEP_MS[time_scale] if timestep is None else float(timestep)
    max_delay = extra_params.pop("max_delay", "auto")
    common.setup(timestep, min_delay, max_delay=max_delay, **extra_params)
    state = simulator.state
    state.clear()
    state.dt = timestep
    state.min_delay = min_delay
    state.max_delay = max_delay
    state.time_scale = time_scale
    state.record_sample_times = bool(record_sample_times)
    state.current_sources = []
    state.calibration = None
    calibration = initial_config if calibration is None else calibration
    if calibration is not None:
        from ..targets.bss2.calibration_file import Calibration, load_calibration
        state.calibration = calibration if isinstance(calibration, Calibration) else \
            load_calibration(Path(calibration))
    from ..backends.registry import get_backend
    backend = backend or (state.calibration.backend if state.calibration is not None else "mock:ideal")
    state.engine = get_backend(backend)  # an unknown backend fails here, before any work; kept: its noise runs on
    state.backend = backend
    return 0


def end(compatible_output: bool = True) -> None:
    """Forget the network (recorded data already returned stays with the caller)."""
    simulator.state.clear()


run, run_until = common.build_run(simulator)
run_for = run
reset = common.build_reset(simulator)
initialize = common.initialize
get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes, rank = \
    common.build_state_queries(simulator)


def mapping_report() -> Optional[dict]:
    """The BSS-2 mapping report of the last run (circuits, rows, synapses used, per-layer scales)."""
    return simulator.state.last_mapping
