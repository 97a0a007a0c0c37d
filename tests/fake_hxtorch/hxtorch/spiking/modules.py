"""hxtorch spiking/modules (fake): ``InputNeuron``, ``LIF``, ``LI``, ``Synapse`` and the module machinery.

Signatures and checks as in modules/hx_module.py, input_neuron.py, neuron.py, synapse.py, types.py.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from hxtorch.spiking import functional as F
from hxtorch.spiking.handle import (AnalogObservable, LIFObservables, LIObservables, NeuronHardwareData,
                                    SynapseHandle)
from hxtorch.spiking.morphology import SingleCompartmentNeuron
from hxtorch.spiking.parameter import HXBaseParameter, HXParameter, HXTransformedModelParameter
from hxtorch.spiking.transforms import weight_transforms


class HXModule(torch.nn.Module):
    """hx_module.py ``HXModule``: calling it records the graph and returns its (persistent) output handle."""

    output_type: type = LIFObservables

    def __init__(self, experiment, execution_instance=None, chip_coordinate=None) -> None:
        super().__init__()
        self.experiment = experiment
        if execution_instance is None and not experiment.mock:
            execution_instance = experiment.default_execution_instance
        self.execution_instance = execution_instance
        self.chip_coordinate = chip_coordinate
        self.descriptor = None
        self._output_handle = self.output_type()

    def forward(self, *input):  # noqa: A002
        """``HXBaseExperimentModule.forward``: ``experiment.connect(self, input, output_handle)``."""
        self.experiment.connect(self, input, self._output_handle)
        return self._output_handle

    def exec_forward(self, input, output, hw_map) -> None:  # noqa: A002
        """``exec_forward``: run ``forward_func`` with this module's hardware data (None in mock mode)."""
        output.clone(self.forward_func(*input, hw_data=hw_map.get(self.descriptor)))

    def register_hw_entity(self) -> None:
        pass

    def post_process(self, hw_data, runtime: float):
        return None


class InputNeuron(HXModule):
    """input_neuron.py ``InputNeuron(size, experiment, execution_instance=None, chip_coordinate=None)``."""

    def __init__(self, size: int, experiment, execution_instance=None, chip_coordinate=None) -> None:
        super().__init__(experiment, execution_instance, chip_coordinate)
        self.size = size

    def register_hw_entity(self) -> None:
        self.experiment.register_population(self)

    def forward_func(self, input: LIFObservables, hw_data=None) -> LIFObservables:  # noqa: A002
        return LIFObservables(spikes=F.input_neuron(input.spikes, hw_data=hw_data))


class Synapse(HXModule):
    """synapse.py ``Synapse(in_features, out_features, experiment, execution_instance=None, chip_coordinate=None,
    device=None, dtype=None, transform=linear_saturating, plasticity_rule=None)``; weight ``[out, in]``."""

    output_type = SynapseHandle

    def __init__(self, in_features: int, out_features: int, experiment, execution_instance=None,
                 chip_coordinate=None, device=None, dtype=None, transform=weight_transforms.linear_saturating,
                 plasticity_rule=None) -> None:
        super().__init__(experiment, execution_instance, chip_coordinate)
        self.in_features, self.out_features = in_features, out_features
        self.weight = torch.nn.Parameter(torch.empty((out_features, in_features), device=device, dtype=dtype))
        self.weight_transform = transform
        torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # reset_parameters

    def register_hw_entity(self) -> None:
        self.experiment.register_projection(self)

    def connections(self) -> tuple[np.ndarray, np.ndarray]:
        """``add_to_network_graph``: the transformed weight split into an excitatory (``w + .5``, truncated) and an
        inhibitory (``w - .5``, truncated) integer matrix, as ``weight_to_connection`` receives them."""
        w = self.weight_transform(torch.clone(self.weight.data))
        exc, inh = torch.clone(w), torch.clone(w)
        exc[exc < 0.] = 0
        inh[inh >= 0.] = 0
        return (exc + .5).int().numpy(), (inh - .5).int().numpy()

    def forward_func(self, input: LIFObservables, hw_data=None) -> SynapseHandle:  # noqa: A002
        return SynapseHandle(graded_spikes=F.linear(input.spikes, self.weight, None))


DEFAULTS = {"leak": 80, "reset": 80, "threshold": 125, "tau_mem": 10e-6, "tau_syn": 10e-6, "i_synin_gm": 500,
            "membrane_capacitance": None, "refractory_time": 1e-6, "synapse_dac_bias": 600, "holdoff_time": 0.}


class AELIF(HXModule):
    """neuron.py ``AELIF`` as LIF/LI use it (no exponential term, no adaptation)."""

    def __init__(self, size: int, experiment, *, fire: bool, execution_instance=None, chip_coordinate=None,
                 enable_spike_recording: bool = True, enable_cadc_recording: bool = True,
                 enable_cadc_recording_placement_in_dram: bool = False, enable_madc_recording: bool = False,
                 record_neuron_id: Optional[int] = None, placement_constraint=None, trace_offset=0.,
                 trace_scale=1., cadc_time_shift: int = 0, shift_cadc_to_first: bool = False,
                 interpolation_mode: str = "linear", neuron_structure=None, method: str = "superspike",
                 alpha: float = 50., **params) -> None:
        self.output_type = LIFObservables if fire else LIObservables
        super().__init__(experiment, execution_instance, chip_coordinate)
        self.size, self.fire = size, fire
        for key, default in DEFAULTS.items():
            value = params.pop(key, default)
            if value is None:  # the default capacitance: HXTransformedModelParameter(10e-6, m / 10e-6 * 63)
                value = HXTransformedModelParameter(10e-6, lambda m: m / 10e-6 * 63)
            setattr(self, key, value if isinstance(value, HXBaseParameter) else HXParameter(value))
        if params:
            raise TypeError(f"unexpected parameters {sorted(params)}")
        if placement_constraint is not None and len(placement_constraint) != size:
            raise ValueError("The number of neurons in logical neurons in `placement_constraint` does not equal the "
                             "`size` of the module.")
        self._placement_constraint = placement_constraint
        self._neuron_structure = neuron_structure or SingleCompartmentNeuron(1)
        self._enable_spike_recording = enable_spike_recording
        self._enable_cadc_recording = enable_cadc_recording
        self._enable_madc_recording = enable_madc_recording
        self._record_neuron_id = record_neuron_id
        self.offset, self.scale = trace_offset, trace_scale
        self.cadc_time_shift, self.shift_cadc_to_first = cadc_time_shift, shift_cadc_to_first
        self.unit_ids: Optional[np.ndarray] = None

    def register_hw_entity(self) -> None:
        """``register_hw_entity``: placement (``NeuronPlacement.register_id``) and the one-MADC check."""
        instance = self.execution_instance
        self.unit_ids = np.arange(instance.id_counter, instance.id_counter + self.size)
        instance.neuron_placement.register_id(self.unit_ids, self._neuron_structure.compartments,
                                              self._placement_constraint)
        instance.id_counter += self.size
        self.experiment.register_population(self)
        if self._enable_madc_recording:
            if instance.has_madc_recording:
                raise RuntimeError("Another HXModule already registered MADC recording. MADC recording is only "
                                   "enabled for a single neuron on one execution instance.")
            instance.has_madc_recording = True

    def post_process(self, hw_data, runtime: float) -> NeuronHardwareData:
        """``AELIF.post_process``: dense CADC (time shift, offset, scale), dense spikes, raw MADC."""
        cadc = spikes = madc = None
        dt = self.experiment.dt
        if self._enable_cadc_recording:
            cadc = hw_data.cadc.to_dense(runtime, dt)
            if self.cadc_time_shift != 0:
                cadc = torch.roll(cadc, shifts=-self.cadc_time_shift, dims=0)
            cadc = cadc - cadc[0].unsqueeze(0) if self.shift_cadc_to_first else cadc - self.offset
            cadc = cadc * self.scale
        if self._enable_spike_recording:
            spikes = hw_data.spikes.to_dense(runtime, dt).float()
        if self._enable_madc_recording:
            madc = hw_data.madc.to_raw()
        return NeuronHardwareData(voltage=AnalogObservable(cadc=cadc, madc=madc), adaptation=AnalogObservable(),
                                  spikes=spikes)

    def forward_func(self, *input: SynapseHandle, hw_data=None):  # noqa: A002
        """``AELIF.forward_func``: the numerics with the model values (hardware observables injected)."""
        t_ref = self.refractory_time.model_value
        refractory = self.fire and bool(torch.as_tensor(t_ref).ne(0).any())
        c = torch.as_tensor(self.membrane_capacitance.model_value)
        membrane, madc, current, spikes = F.cuba_aelif_integration(
            tuple(h.graded_spikes for h in input), leak=self.leak.model_value, reset=self.reset.model_value,
            threshold=self.threshold.model_value, tau_syn=self.tau_syn.model_value, c_mem=c,
            g_l=c / torch.as_tensor(self.tau_mem.model_value), refractory_time=t_ref, dt=self.experiment.dt,
            fire=self.fire, refractory=refractory, hw_data=hw_data)
        if self.fire:
            return LIFObservables(membrane_cadc=membrane, membrane_madc=madc, current=current, spikes=spikes)
        return LIObservables(membrane_cadc=membrane, membrane_madc=madc, current=current)


class LIF(AELIF):
    """neuron.py ``LIF(size, experiment, leak=80, reset=80, threshold=125, tau_mem=10e-6, tau_syn=10e-6,
    i_synin_gm=500, membrane_capacitance=..., refractory_time=1e-6, synapse_dac_bias=600, ...)``."""

    def __init__(self, size: int, experiment, **kwargs) -> None:
        super().__init__(size, experiment, fire=True, **kwargs)


class LI(AELIF):
    """neuron.py ``LI(size, experiment, leak=80, tau_mem=10e-6, tau_syn=10e-6, i_synin_gm=500, ...)``: no reset,
    threshold or refractory time; never spikes, records no spikes."""

    def __init__(self, size: int, experiment, **kwargs) -> None:
        for key in ("reset", "threshold", "refractory_time", "enable_spike_recording"):
            if key in kwargs:
                raise TypeError(f"LI.__init__() got an unexpected keyword argument '{key}'")
        super().__init__(size, experiment, fire=False, refractory_time=0., enable_spike_recording=False, **kwargs)
