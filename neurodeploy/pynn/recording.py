"""Recording: PyNN's Recorder, fed from the last experiment on the emulated chip (network.Experiment)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pyNN import recording

from . import simulator


class Recorder(recording.Recorder):
    _simulator = simulator

    def _record(self, variable: Any, new_ids: Any, sampling_interval: Optional[float] = None) -> None:
        if sampling_interval is None:
            return
        every = sampling_interval / simulator.state.dt
        if every < 1 - 1e-9 or abs(every - round(every)) > 1e-6:
            from ..errors import NeurodeployError
            raise NeurodeployError(f"sampling_interval {sampling_interval} ms is not a whole number of time steps "
                                   f"({simulator.state.dt} ms): the chip's membranes are read once per step",
                                   "use a multiple of the time step")
        self.sampling_interval = sampling_interval

    def _get_spiketimes(self, ids: Any, clear: bool = False) -> Any:
        """``(cell ids, times)`` of every spike (PyNN builds one SpikeTrainList from them: fast for many cells)."""
        last = simulator.state.last
        start = float(self._recording_start_time)  # after get_data(clear=True), only what came since

        def train(cell: Any) -> np.ndarray:
            times = np.asarray([] if last is None else last.spikes.get(int(cell), []), float)
            return times[times >= start]

        if not hasattr(ids, "__len__"):
            return train(ids)
        trains = [train(i) for i in ids]
        cells = np.concatenate([np.full(len(t), int(i)) for i, t in zip(ids, trains)] + [np.zeros(0, int)])
        return cells, np.concatenate(trains + [np.zeros(0)])

    def _get_all_signals(self, variable: Any, ids: Any, clear: bool = False) -> tuple[np.ndarray, Any]:
        last = simulator.state.last
        if last is None or not len(ids):
            return np.zeros((0, len(ids))), np.zeros(0)
        every = max(1, int(round(self.sampling_interval / simulator.state.dt)))
        keep = last.sample_times_ms >= float(self._recording_start_time) - 1e-9  # since the last clear
        keep &= np.arange(len(keep)) % every == 0
        values = np.stack([last.membrane[int(i)][keep] for i in ids], axis=1)
        return values, last.sample_times_ms[keep]

    def _local_count(self, variable: Any, filter_ids: Any = None) -> dict[int, int]:
        last = simulator.state.last
        return {int(i): 0 if last is None else len(last.spikes.get(int(i), []))
                for i in self.filter_recorded(variable, filter_ids)}

    def _clear_simulator(self) -> None:
        pass

    def _reset(self) -> None:
        pass
