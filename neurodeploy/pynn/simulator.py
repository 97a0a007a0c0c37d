"""The simulator state of :mod:`neurodeploy.pynn`: PyNN's bookkeeping plus what one emulated BSS-2 experiment needs.

Times kept here are in the script's frame (ms): hardware ms (pynn_brainscales' convention, the default) or
biological ms (``setup(time_scale="biological")``: the model's time, the chip runs 1000x faster).
"""

from __future__ import annotations

from typing import Any, Optional

from pyNN import common

name = "neurodeploy.pynn (emulated BrainScaleS-2)"


class ID(int, common.IDMixin):
    """A cell's global id (PyNN's)."""

    def __init__(self, n: int) -> None:
        int.__init__(n)
        common.IDMixin.__init__(self)


class State(common.control.BaseState):
    """PyNN's state, the chosen backend and calibration, and the last experiment's recordings."""

    def __init__(self) -> None:
        common.control.BaseState.__init__(self)
        self.mpi_rank = 0
        self.num_processes = 1
        self.dt = 1e-3
        self.min_delay: Any = "auto"
        self.max_delay: Any = "auto"
        self.backend = "mock:ideal"
        self.engine: Optional[Any] = None  # the backend object, kept across runs (a chip's noise runs on)
        self.calibration: Optional[Any] = None  # a Calibration object (targets.bss2.calibration_file)
        self.time_scale = "hardware"
        self.record_sample_times = True  # membranes as IrregularlySampledSignal, as pynn_brainscales returns them
        self.populations: list = []
        self.projections: list = []
        self.last: Optional[Any] = None  # the last experiment's results (network.Experiment)
        self.t: float = 0.0  # ms of the script's time
        self.t_previous: float = 0.0  # the end of the previous run of this segment
        self.sent: dict = {}  # source cell id -> spike times sent in earlier runs of this segment (ms)
        self.last_mapping: Optional[dict] = None  # its mapping report
        self.cache: dict = {}  # fingerprint -> deployment: runs of an unchanged network are not mapped again
        self.clear()

    def run(self, simtime: float) -> None:
        self.run_until(self.t + simtime)

    def run_until(self, tstop: float) -> None:
        from .network import execute  # the translation needs the whole package

        self.t_previous, self.t = self.t, tstop
        self.running = True
        self.last = execute(self)
        self.sent = {cell: times for cell, times in self.last.spikes.items() if cell in self.source_cells()}
        self.t_previous = self.t

    def source_cells(self) -> set:
        from .cells import SpikeSourceArray
        return {int(c) for p in self.populations if isinstance(p.celltype, SpikeSourceArray) for c in p.all_cells}

    def clear(self) -> None:
        self.recorders: set = set()
        self.id_counter = 0
        self.segment_counter = -1
        self.populations = []
        self.projections = []
        self.cache = {}
        self.last = None
        self.reset()

    def reset(self) -> None:
        """Time back to 0 and a new segment; the network stays."""
        self.running = False
        self.t = 0.0
        self.t_previous = 0.0
        self.sent = {}
        self.t_start = 0.0
        self.segment_counter += 1
        self.last = None


state = State()
