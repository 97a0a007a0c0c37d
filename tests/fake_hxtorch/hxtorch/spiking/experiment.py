"""hxtorch spiking/experiment.py, run.py, execution_instance.py, neuron_placement.py (fake), with a stand-in chip.

``Experiment(mock=True)``: ``run`` executes every module's ``forward_func`` in graph order (hxtorch's mock mode).
``Experiment(mock=False)``: ``get_hw_results`` registers the hardware entities, "calibrates" (records the calix
target), turns synapses into integer connections and emulates an ideally calibrated chip with the hardware
values (:class:`FakeChip`), returning observables in hxtorch's hardware formats.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from hxtorch.spiking.modules import AELIF, InputNeuron, Synapse

FPGA_CLOCK_CYCLES_PER_US = 125  # hal.Timer.Value.fpga_clock_cycles_per_us
TIMER_MAX = 2**32 - 1  # hal.Timer.Value.max
ATOMIC_NEURONS = 512


class NeuronPlacement:
    """neuron_placement.py: logical neurons per unit id; a circuit given twice is a ValueError."""

    def __init__(self) -> None:
        self._id_2_ln: dict = {}
        self._used_an: list = []

    def register_id(self, neuron_id, shape, placement_constraint=None) -> None:
        if placement_constraint is None:
            raise NotImplementedError("the fake places only with placement_constraint")
        for idx, ln in zip(neuron_id, placement_constraint):
            if set(self._used_an).intersection(set(ln.get_atomic_neurons())):
                raise ValueError(f"Cannot register LogicalNeuron {ln} since at least one of its compartments are "
                                 "already allocated.")
            self._used_an += ln.get_atomic_neurons()
            self._id_2_ln[int(idx)] = ln

    def id2logicalneuron(self, neuron_id):
        try:
            return [self._id_2_ln[int(i)] for i in neuron_id]
        except TypeError:
            return self._id_2_ln[int(neuron_id)]


class ExecutionInstance:
    """execution_instance.py ``ExecutionInstance(calib_path=None, input_loopback=False)``."""

    def __init__(self, calib_path=None, input_loopback: bool = False) -> None:
        self.calib_path = calib_path
        self.input_loopback = input_loopback
        self.neuron_placement = NeuronPlacement()
        self.id_counter = 0
        self.has_madc_recording = False
        self.calib_target: Optional[dict] = None  # the fake's record of what calix was asked for
        self.calibrations = 0

    def calibrate(self, populations: list) -> None:
        """``ExecutionInstance.calibrate`` without a calib_path: a ``SpikingCalibTarget`` from the populations'
        hardware values (``Population.calibration_from_params``), then calix. ``i_synin_gm`` and
        ``synapse_dac_bias`` must be the same for all populations (AttributeError)."""
        target = {key: np.full(ATOMIC_NEURONS, np.nan) for key in
                  ("leak", "reset", "threshold", "tau_mem", "tau_syn", "refractory_time", "membrane_capacitance")}
        target.update(i_synin_gm=None, synapse_dac_bias=None)
        for pop in populations:
            gm, dac = float(pop.i_synin_gm.hardware_value), float(pop.synapse_dac_bias.hardware_value)
            if target["i_synin_gm"] is not None and target["i_synin_gm"] != gm:
                raise AttributeError("'i_synin_gm[0]' requires same value for all neurons")
            if target["synapse_dac_bias"] is not None and target["synapse_dac_bias"] != dac:
                raise AttributeError("'synapse_dac_bias' requires same value for all neurons")
            target["i_synin_gm"], target["synapse_dac_bias"] = gm, dac
            coords = self.neuron_placement.id2logicalneuron(pop.unit_ids)
            for in_pop, ln in enumerate(coords):
                for an in ln.get_atomic_neurons():
                    for key in ("leak", "reset", "threshold", "tau_mem", "tau_syn", "refractory_time",
                                "membrane_capacitance"):
                        value = torch.as_tensor(getattr(pop, key).hardware_value, dtype=torch.float64)
                        target[key][an.toEnum().value()] = float(value if value.dim() == 0 else value[in_pop])
        self.calib_target = target
        self.calibrations += 1


class ModuleManager:
    """backend/module_manager.py: the graph of one run, cleared by ``done`` (here a list in call order)."""

    def __init__(self) -> None:
        self.nodes: list = []

    def add_node(self, module, sources, target) -> None:
        self.nodes.append((module, sources if isinstance(sources, tuple) else (sources,), target))

    def done(self) -> list:
        nodes, self.nodes = self.nodes, []
        return nodes


class Experiment:
    """experiment.py ``Experiment(mock=False, dt=1e-6, hw_routing_func=PortfolioRouter())``."""

    def __init__(self, mock: bool = False, dt: float = 1e-6, hw_routing_func=None) -> None:
        self.mock, self.dt = mock, dt
        self.hw_routing_func = hw_routing_func
        self.modules = ModuleManager()
        self._default_execution_instance: Optional[ExecutionInstance] = None
        self._populations: list = []
        self._projections: list = []
        self.chip = FakeChip()
        self.last_connections: dict = {}  # the fake's record: synapse → (exc, inh) integer matrices

    @property
    def default_execution_instance(self) -> ExecutionInstance:
        if self._default_execution_instance is None:
            self._default_execution_instance = ExecutionInstance()
        return self._default_execution_instance

    def connect(self, module, input_handles, output_handle) -> None:
        self.modules.add_node(module, input_handles, output_handle)

    def register_population(self, module) -> None:
        self._populations.append(module)

    def register_projection(self, module) -> None:
        self._projections.append(module)

    def get_hw_results(self, runtime: Optional[int]):
        """``get_hw_results``: ``({}, None)`` in mock mode, else the hardware data per module descriptor."""
        if self.mock:
            return {}, None
        nodes = self.modules.nodes
        for module, _, _ in nodes:
            if module not in self._populations and module not in self._projections:
                module.register_hw_entity()
                module.descriptor = module
        instance = self.default_execution_instance
        hw_pops = [m for m in self._populations if isinstance(m, AELIF)]
        if instance.calib_target is None:
            instance.calibrate(hw_pops)
        runtime_in_clocks = int(runtime * self.dt * 1e6 * FPGA_CLOCK_CYCLES_PER_US)
        if runtime_in_clocks > TIMER_MAX:
            raise ValueError(f"Runtime of {runtime} to long.")
        for module, sources, _ in nodes:
            if isinstance(module, Synapse):
                assert len(sources) == 1, "On hardware, a projection can only have one source population."
                self.last_connections[module] = module.connections()
        observables = self.chip.emulate(nodes, self, runtime)
        runtime_s = runtime_in_clocks / FPGA_CLOCK_CYCLES_PER_US / 1e6
        return {module: module.post_process(observables.get(module), runtime_s) for module, _, _ in nodes
                if isinstance(module, AELIF)}, {"time": None}


def run(experiment: Experiment, runtime: Optional[int]):
    """run.py ``run(experiment, runtime)``: runtime in steps of ``experiment.dt`` (an int on hardware)."""
    if not isinstance(runtime, int) and not experiment.mock:
        raise ValueError("Requested runtime invalid.")
    data_map, info = experiment.get_hw_results(runtime)
    for module, inputs, output in experiment.modules.done():
        module.exec_forward(inputs, output, data_map)
    return info


class SpikeHandle:
    """_hxtorch_spiking.SpikeHandle: ``to_dense(runtime, dt)`` → ``[ceil(runtime/dt) + 1, B, N]``."""

    def __init__(self, spikes: torch.Tensor) -> None:
        self.spikes = spikes

    def to_dense(self, runtime: float, dt: float) -> torch.Tensor:
        rows = int(math.ceil(round(runtime / dt, 6))) + 1
        out = torch.zeros(rows, *self.spikes.shape[1:])
        n = min(rows, self.spikes.shape[0])
        out[:n] = self.spikes[:n]
        return out


class CADCHandle:
    """_hxtorch_spiking.CADCHandle: samples every ``period`` steps, ``to_dense(runtime, dt, mode="linear")``
    interpolates them linearly onto ``[ceil(runtime/dt) + 1]`` rows (held beyond the last sample)."""

    def __init__(self, v: torch.Tensor, period_steps: int) -> None:
        self.sample_steps = torch.arange(0, v.shape[0], period_steps)
        self.samples = v[self.sample_steps]

    def to_dense(self, runtime: float, dt: float, mode: str = "linear") -> torch.Tensor:
        rows = int(math.ceil(round(runtime / dt, 6))) + 1
        t = torch.arange(rows, dtype=torch.float64)
        s = self.sample_steps.double()
        hi = torch.searchsorted(s, t, right=False).clamp(max=len(s) - 1)
        lo = (hi - 1).clamp(min=0)
        span = (s[hi] - s[lo]).clamp(min=1e-9)
        frac = ((t - s[lo]) / span).clamp(0, 1).float()[:, None, None]
        return (1 - frac) * self.samples[lo] + frac * self.samples[hi]


class MADCHandle:
    """_hxtorch_spiking.MADCHandle: ``to_raw()`` → ``[2, samples, B]``: FPGA-cycle times and 10-bit values."""

    def __init__(self, v: torch.Tensor, dt: float, period_cycles: int, gain: float, offset: float) -> None:
        cycles_per_step = dt * 1e6 * FPGA_CLOCK_CYCLES_PER_US
        times = torch.arange(0, v.shape[0] * cycles_per_step, period_cycles, dtype=torch.float64)
        step = (times / cycles_per_step).long().clamp(max=v.shape[0] - 1)
        values = torch.clamp(torch.round(v[step] * gain + offset), 0, 1023)
        self.raw = torch.stack([times[:, None].expand(-1, v.shape[1]).float(), values.float()])

    def to_raw(self) -> torch.Tensor:
        return self.raw


class HardwareObservables:
    def __init__(self, spikes=None, cadc=None, madc=None) -> None:
        self.spikes, self.cadc, self.madc = spikes, cadc, madc


class FakeChip:
    """An ideally calibrated chip: CuBa LIF with the *hardware* values, exact exponential decay per dt, synaptic
    gain ``cadc_per_lsb_per_gm · i_synin_gm · synapse_dac_bias / 600`` CADC per weight LSB. Tests set the
    constants; no mismatch, no noise."""

    cadc_per_lsb_per_gm = 0.004
    cadc_period_s = 2e-6
    madc_period_cycles = 4
    madc_gain, madc_offset = 4.0, 0.0

    def emulate(self, nodes: list, experiment: Experiment, runtime: int) -> dict:
        dt = experiment.dt
        out_spikes: dict = {}
        inputs: dict = {}
        results: dict = {}
        for module, sources, output in nodes:
            if isinstance(module, InputNeuron):
                out_spikes[id(output)] = sources[0].spikes[:runtime].float()
            elif isinstance(module, Synapse):
                exc, inh = experiment.last_connections[module]
                w = torch.as_tensor(exc + inh, dtype=torch.float32)
                inputs.setdefault(id(output), (module, out_spikes[id(sources[0])] @ w.T))
            elif isinstance(module, AELIF):
                x = sum(inputs[id(s)][1] for s in sources)
                gain = (self.cadc_per_lsb_per_gm * float(module.i_synin_gm.hardware_value)
                        * float(module.synapse_dac_bias.hardware_value) / 600.0)
                spikes, v = self._neurons(module, x * gain, dt)
                out_spikes[id(output)] = spikes
                madc = None
                if module._enable_madc_recording:
                    neuron = int(module._record_neuron_id)
                    madc = MADCHandle(v[:, :, neuron], dt, self.madc_period_cycles, self.madc_gain, self.madc_offset)
                period = max(1, int(round(self.cadc_period_s / dt)))
                results[module] = HardwareObservables(spikes=SpikeHandle(spikes), cadc=CADCHandle(v, period),
                                                      madc=madc)
        return results

    @staticmethod
    def _neurons(module: AELIF, x: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        hw = lambda name: torch.as_tensor(getattr(module, name).hardware_value, dtype=torch.float32)  # noqa: E731
        alpha, beta = torch.exp(-dt / hw("tau_syn")), torch.exp(-dt / hw("tau_mem"))
        leak = hw("leak")
        n_ref = torch.round(hw("refractory_time") / dt) if module.fire else torch.zeros(())
        i = torch.zeros(x.shape[1:])
        v = leak.expand(x.shape[1:]).clone()
        ref = torch.zeros(x.shape[1:])
        spikes, trace = torch.zeros_like(x), torch.zeros_like(x)
        for t in range(x.shape[0]):
            v = leak + beta * (v - leak) + (1 - beta) * i  # the membrane follows the current one step later
            i = alpha * i + x[t]
            if module.fire:
                hold = ref > 0
                v = torch.where(hold, hw("reset").expand_as(v), v)
                z = ((v > hw("threshold")) & ~hold).float()
                v = torch.where(z > 0, hw("reset").expand_as(v), v)
                ref = torch.where(z > 0, n_ref.expand_as(ref), (ref - 1).clamp(min=0))
                spikes[t] = z
            trace[t] = v
        return spikes, trace
