"""``hxtorch`` and ``hxtorch:mock``: a BSS-2 deployment run through hxtorch.spiking (real BrainScaleS-2).

hxtorch is not on PyPI; it comes with the BrainScaleS-2 software stack (:data:`INSTALL_HINT`). Where it is
not importable, asking for this backend is a one-line :class:`~neurodeploy.errors.BackendError` (exit 2).

What is built (:mod:`.hxtorch_plan` decides, this module calls hxtorch; each call names the hxtorch
function it relies on, as read at electronicvisions/hxtorch@3bfc7aadf3):

* ``Experiment(mock=..., dt=dt_hw)`` (``spiking/experiment.py``): one per configuration; ``hxtorch:mock``
  runs hxtorch's own numerical forward functions on the host, ``hxtorch`` the chip.
* ``InputNeuron(channels)`` (``modules/input_neuron.py``) fed a dense ``[T, B, channels]`` spike tensor on
  the dt grid (FPGA clock first, then the step, as the mock chip bins); with delays the FPGA's delayed copies.
* one ``LIF`` / ``LI`` per layer (``modules/neuron.py``), placed on exactly our circuits
  (``placement_constraint``: ``LogicalNeuronOnDLS`` of a ``SingleCompartmentNeuron(k)`` morphology at each
  neuron's first circuit, ``morphology.py``); parameters as ``HXParameter`` (potentials, CADC) and
  ``MixedHXModelParameter`` (model: forward-Euler equivalents, hardware: chip seconds) (``parameter.py``).
  calix calibrates them on the first run (``ExecutionInstance.calibrate``; cached by calix).
* one ``Synapse`` per (source, layer) (``modules/synapse.py``): its weight is our signed integers times the
  common gain g (CADC/LSB), its ``transform`` ``linear_saturating(w, scale=1/g)`` (``transforms/
  weight_transforms.py``) gives grenade our integers back exactly; placement of synapses and labels is
  grenade's router's (our drivers and labels are not imposed: hxtorch's custom ``hw_routing_func`` would need
  a full grenade ``RoutingResult``).
* ``run(experiment, steps)`` (``spiking/run.py``); observables from the neuron handles
  (``handle.py``: ``spikes``, ``membrane_cadc``, ``membrane_madc``) become :class:`Observations` on the
  hardware step in the deployment's CADC units (a reading ``v'`` of a neuron with potential ratio ``r``
  becomes ``v_leak + (v' - v_leak)/r``, :mod:`.hxtorch_plan`).

Calibration: hxtorch's own (calix, from the requested parameters) — not neurodeploy's ``calibrate``,
whose experiments write raw CapMem codes that hxtorch's parameter interface cannot express. So
``uses_codes`` is False (the deployment's ``code:*`` arrays are not used) and ``calibrate --backend hxtorch``
is refused with a pointer to docs/real-chip.md.
"""

from __future__ import annotations

import atexit
import importlib
from functools import partial
from typing import Any, Optional

import numpy as np
import torch

from ..deployment import Deployment
from ..errors import BackendError
from ..targets.bss2.spec import load_bss2_spec
from .base import Observations, Recording
from .hxtorch_plan import CAPACITANCE_LSB, DOCS, NetworkPlan, PopulationPlan, input_spikes, plan_network

INSTALL_HINT = ("hxtorch is not on PyPI: use the BrainScaleS-2 software stack, e.g. the EBRAINS JupyterLab kernel "
                "'EBRAINS-experimental' or the Electronic Vision(s) container "
                "(singularity exec --app dls /containers/stable/latest, see hxtorch's README)")
CALIBRATION_REFUSAL = ("neurodeploy's calibration writes raw CapMem codes, which hxtorch's parameter interface cannot "
                       "set; hxtorch calibrates the chip itself with calix on its first run")
CALIBRATION_HINT = f"run the deployment with --backend hxtorch directly, no calibrate step ({DOCS})"
MODES = {"hxtorch": False, "hxtorch:mock": True}  # name → hxtorch's Experiment(mock=...)


def import_hxtorch() -> Any:
    """``hxtorch`` (and with it ``hxtorch.spiking``), or a BackendError saying how to get it."""
    try:
        hxtorch = importlib.import_module("hxtorch")
        importlib.import_module("hxtorch.spiking")
        return hxtorch
    except ImportError as exc:
        raise BackendError(f"backend 'hxtorch' needs the hxtorch package, which is not importable here ({exc})",
                           INSTALL_HINT) from None


class _Built:
    """The hxtorch objects of one configuration: modules are kept, hxtorch re-records the graph every run."""

    def __init__(self, plan: NetworkPlan, experiment: Any, inputs: Any, populations: dict, synapses: dict,
                 key: tuple, madc: Optional[tuple[str, int]]) -> None:
        self.plan, self.experiment, self.inputs = plan, experiment, inputs
        self.populations, self.synapses, self.key, self.madc = populations, synapses, key, madc


def structure_key(deployment: Deployment, record: Recording, madc: Optional[tuple[str, int]]) -> tuple:
    """What forces new hxtorch modules: anything but synapse weights (a weight change only rewrites weights, as
    hxtorch's ``Synapse.changed_since_last_run`` re-uses the routing)."""
    arrays = tuple((k, v.shape, hash(np.ascontiguousarray(v).tobytes())) for k, v in sorted(deployment.arrays.items())
                   if k != "synapse_weight" and not k.startswith(("quantised_weight:", "float_weight:")))
    return arrays, record.spikes, record.membrane, madc


class HxtorchBackend:
    """A deployment on BSS-2 through hxtorch (``hxtorch``), or through hxtorch's mock mode (``hxtorch:mock``)."""

    target: Optional[str] = "bss2"
    chip_id: Optional[str] = None  # hxtorch reports no chip identity through its spiking API
    uses_codes = False  # calix calibrates hxtorch's chip from the requested parameters; code:* are not used
    capabilities = frozenset({"madc"})

    def __init__(self, name: str = "hxtorch") -> None:
        if name not in MODES:
            raise BackendError(f"unknown hxtorch backend '{name}'", f"use one of {list(MODES)}")
        self.name = name
        self.mock = MODES[name]
        self.capabilities = frozenset() if self.mock else frozenset({"madc"})  # hxtorch's mock has no MADC
        self._hxtorch = import_hxtorch()
        self._spec = load_bss2_spec()
        self._built: Optional[_Built] = None
        self._planned: Optional[tuple[Deployment, NetworkPlan]] = None
        self._hardware_up = False

    def _plan(self, deployment: Deployment) -> NetworkPlan:
        """The plan of ``deployment``, kept while the same object is run again (like the mock chip's configuration)."""
        if self._planned is None or self._planned[0] is not deployment:
            self._planned = (deployment, plan_network(deployment, self._spec))
        return self._planned[1]

    # -- building -------------------------------------------------------------------------------------------

    def _build(self, deployment: Deployment, record: Recording, madc: Optional[tuple[str, int]]) -> _Built:
        snn = importlib.import_module("hxtorch.spiking")
        plan = self._plan(deployment)
        experiment = snn.Experiment(mock=self.mock, dt=plan.dt_s)  # spiking/experiment.py: Experiment.__init__
        inputs = snn.InputNeuron(plan.input_size, experiment)  # modules/input_neuron.py: InputNeuron.__init__
        populations = {p.name: self._population(snn, experiment, p, plan, record, madc) for p in plan.populations}
        weight_transforms = importlib.import_module("hxtorch.spiking.transforms.weight_transforms")
        bound = float(max(plan.max_weight, 63))
        synapses = {}
        for projection in plan.projections:
            source_size = plan.input_size if projection.source == "input" else \
                plan.population(projection.source).size
            # modules/synapse.py: Synapse(in_features, out_features, experiment, transform=...); the transform
            # (transforms/weight_transforms.py: linear_saturating) maps weight · (1/g) back to our integers.
            synapse = snn.Synapse(source_size, plan.population(projection.target).size, experiment,
                                  transform=partial(weight_transforms.linear_saturating,
                                                    scale=1.0 / plan.gain_cadc_per_lsb, min_weight=-bound,
                                                    max_weight=bound))
            synapses[(projection.source, projection.target)] = synapse
        built = _Built(plan, experiment, inputs, populations, synapses, structure_key(deployment, record, madc), madc)
        self._set_weights(built, plan)
        return built

    def _population(self, snn: Any, experiment: Any, p: PopulationPlan, plan: NetworkPlan, record: Recording,
                    madc: Optional[tuple[str, int]]) -> Any:
        tensor = lambda v: torch.as_tensor(np.asarray(v, np.float64), dtype=torch.float32)  # noqa: E731
        hx = snn.HXParameter  # parameter.py: the same value for calix and the numerics
        mixed = snn.MixedHXModelParameter  # parameter.py: MixedHXModelParameter(model_value, hardware_value)
        common = dict(
            leak=hx(tensor(p.leak_cadc)),
            tau_mem=mixed(tensor(p.tau_mem_model_s), tensor(p.tau_mem_s)),
            tau_syn=mixed(tensor(p.tau_syn_model_s), tensor(p.tau_syn_s)),
            # c = tau_mem' makes g_L = c / tau_mem' = 1 in cuba_aelif_integration (functional/aelif.py)
            membrane_capacitance=mixed(tensor(p.tau_mem_model_s), CAPACITANCE_LSB),
            i_synin_gm=hx(plan.i_synin_gm), synapse_dac_bias=hx(plan.synapse_dac_bias),
            enable_cadc_recording=record.membrane,
            enable_madc_recording=madc is not None and madc[0] == p.name,
            record_neuron_id=madc[1] if madc is not None and madc[0] == p.name else None,
            placement_constraint=self._placement(p), neuron_structure=self._morphology(p.circuits_per_neuron))
        if p.kind == "li":
            return snn.LI(p.size, experiment, **common)  # modules/neuron.py: LI.__init__
        return snn.LIF(p.size, experiment, reset=hx(tensor(p.reset_cadc)), threshold=hx(tensor(p.threshold_cadc)),
                       refractory_time=mixed(tensor(p.refractory_model_s), tensor(p.refractory_s)),
                       enable_spike_recording=True, **common)  # modules/neuron.py: LIF.__init__

    @staticmethod
    def _morphology(k: int) -> Any:
        # morphology.py: SingleCompartmentNeuron(size, expand_horizontally=False) fills columns first, as place.py
        return importlib.import_module("hxtorch.spiking.morphology").SingleCompartmentNeuron(k)

    def _placement(self, p: PopulationPlan) -> list:
        """``LogicalNeuronOnDLS`` per neuron, on exactly the deployment's circuits (neuron_placement.py:
        ``NeuronPlacement._register_with_logical_neurons``)."""
        from dlens_vx_v3 import halco  # as hxtorch's neuron_placement.py imports it
        shape = self._morphology(p.circuits_per_neuron).compartments
        columns = self._spec["geometry"]["circuits_per_hemisphere"]
        out = []
        for circuits in p.circuits:
            row, column = divmod(int(circuits[0]), columns)
            anchor = halco.AtomicNeuronOnDLS(halco.NeuronColumnOnDLS(column), halco.NeuronRowOnDLS(row))
            neuron = halco.LogicalNeuronOnDLS(shape, anchor)
            placed = sorted(int(an.toEnum().value()) for an in neuron.get_atomic_neurons())
            if placed != sorted(int(c) for c in circuits):
                raise BackendError(f"layer '{p.name}': circuits {sorted(circuits.tolist())} are not one hxtorch "
                                   f"single-compartment neuron (it would take {placed})", "map the model again")
            out.append(neuron)
        return out

    @staticmethod
    def _set_weights(built: _Built, plan: NetworkPlan) -> None:
        with torch.no_grad():
            for projection in plan.projections:
                weight = built.synapses[(projection.source, projection.target)].weight
                weight.data.copy_(torch.as_tensor(projection.weight_lsb * plan.gain_cadc_per_lsb, dtype=weight.dtype))

    def _configured(self, deployment: Deployment, record: Recording, madc: Optional[tuple[str, int]]) -> _Built:
        built = self._built
        if built is not None and built.key == structure_key(deployment, record, madc):
            new_plan = self._plan(deployment)
            if [(p.source, p.target) for p in new_plan.projections] == \
                    [(p.source, p.target) for p in built.plan.projections] and \
                    new_plan.gain_cadc_per_lsb == built.plan.gain_cadc_per_lsb:
                self._set_weights(built, new_plan)  # weights only (itl): hxtorch keeps its routing if it can
                built.plan = new_plan
                return built
        self._built = self._build(deployment, record, madc)
        return self._built

    def describe(self, deployment: Deployment) -> dict:
        """What the translation does to ``deployment`` (:mod:`.hxtorch_plan`): the common gain and its
        ``i_synin_gm``, the smallest leak-to-threshold swing, the connections whose integer weight changed."""
        plan = self._plan(deployment)
        return {"gain_cadc_per_lsb": plan.gain_cadc_per_lsb, "i_synin_gm": plan.i_synin_gm,
                "synapse_dac_bias": plan.synapse_dac_bias, "smallest_swing_cadc": plan.smallest_swing_cadc,
                "weights_requantised": plan.requantised, "dt_s": plan.dt_s, "steps": plan.steps,
                "populations": {p.name: {"kind": p.kind, "size": p.size, "circuits_per_neuron": p.circuits_per_neuron}
                                for p in plan.populations},
                "projections": [f"{p.source}->{p.target}" for p in plan.projections]}

    # -- running --------------------------------------------------------------------------------------------

    def _madc_target(self, record: Recording, plan_of: Any) -> Optional[tuple[str, int]]:
        if record.madc_neuron is None:
            return None
        if self.mock:
            raise BackendError("hxtorch's mock mode has no MADC", "record the MADC with --backend hxtorch or mock:CHIP")
        if record.madc_source != "membrane":
            raise BackendError(f"the hxtorch backend records the MADC of the membrane, not '{record.madc_source}'",
                               "record the synaptic input on mock:CHIP")
        neurons = np.unique(np.asarray(record.madc_neuron))
        if len(neurons) != 1:
            raise BackendError("hxtorch records one MADC neuron per experiment (modules/neuron.py record_neuron_id); "
                               f"this batch asks for {len(neurons)}", "record one neuron for the whole batch")
        for p in plan_of.populations:
            hit = np.flatnonzero(p.neurons == neurons[0])
            if len(hit):
                return p.name, int(hit[0])
        raise BackendError(f"MADC neuron {int(neurons[0])} is not in the deployment", "give a logical neuron id")

    def _start_hardware(self) -> None:
        if self.mock or self._hardware_up:
            return
        self._hxtorch.init_hardware()  # _hxtorch_core: init_hardware / release_hardware bracket chip use
        atexit.register(self._hxtorch.release_hardware)
        self._hardware_up = True

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        """One batch through hxtorch: spikes ``[T, B, n_neurons]`` and CADC membranes of every neuron on the
        hardware step (``time_step_s`` = dt / speed-up), CADC units; ``madc`` ``[T, B]`` raw 10-bit samples
        held to the step grid (hardware only)."""
        record = record or Recording()
        if record.correlation:
            raise BackendError("the hxtorch backend does not read the correlation sensors", "use mock:CHIP")
        madc = self._madc_target(record, self._plan(deployment))
        built = self._configured(deployment, record, madc)
        plan = built.plan
        dense = torch.as_tensor(input_spikes(plan, np.asarray(input_times_s, np.float64)))
        snn = importlib.import_module("hxtorch.spiking")
        self._start_hardware()
        # The graph is recorded anew for every run (backend/module_manager.py: ModuleManager.done clears it).
        handles = {"input": built.inputs(snn.LIFObservables(spikes=dense))}
        for p in plan.populations:
            incoming = [built.synapses[(pr.source, pr.target)](handles[pr.source])
                        for pr in plan.projections if pr.target == p.name]
            if not incoming:
                raise BackendError(f"layer '{p.name}' receives no synapses", "map the model again")
            handles[p.name] = built.populations[p.name](*incoming)
        with torch.no_grad():
            snn.run(built.experiment, plan.steps)  # spiking/run.py: run(experiment, runtime in steps of dt)
        return self._observations(plan, handles, dense, record, madc)

    def _observations(self, plan: NetworkPlan, handles: dict, dense: torch.Tensor, record: Recording,
                      madc: Optional[tuple[str, int]]) -> Observations:
        steps, batch = plan.steps, dense.shape[1]
        spikes = torch.zeros(steps, batch, plan.n_neurons)
        membrane = torch.zeros(steps, batch, plan.n_neurons)
        baseline = torch.zeros(plan.n_neurons)
        madc_out = None
        for p in plan.populations:
            handle, ids = handles[p.name], torch.as_tensor(p.neurons)
            if p.kind == "lif" and getattr(handle, "spikes", None) is not None:
                spikes[:, :, ids] = _on_steps(handle.spikes, steps).float()
            leak = torch.as_tensor(p.leak_cadc, dtype=torch.float32)
            baseline[ids] = leak
            if record.membrane:
                if handle.membrane_cadc is None:
                    raise BackendError(f"hxtorch returned no CADC trace for layer '{p.name}'", "record membranes")
                reading = _on_steps(handle.membrane_cadc, steps).detach().float()
                membrane[:, :, ids] = leak + (reading - leak) / torch.as_tensor(p.ratio, dtype=torch.float32)
            if madc is not None and madc[0] == p.name:
                if handle.membrane_madc is None:
                    raise BackendError("hxtorch returned no MADC samples", "check the MADC recording on the chip")
                madc_out = madc_on_steps(handle.membrane_madc, steps, plan.dt_s, batch)
        recorded = np.arange(plan.n_neurons) if record.membrane else np.arange(0)
        counters = {"events_in": int(dense.sum()), "spikes_out": int(spikes.sum())}
        events = None
        if record.spikes:
            t, b, n = torch.nonzero(spikes, as_tuple=True)
            events = np.column_stack([t.numpy() * plan.dt_s, b.numpy(), n.numpy()]) if len(t) else np.zeros((0, 3))
        return Observations(spikes=spikes if record.spikes else torch.zeros(steps, batch, 0),
                            membrane=membrane if record.membrane else torch.zeros(steps, batch, 0),
                            recorded=recorded, baseline=baseline[torch.as_tensor(recorded, dtype=torch.long)],
                            time_step_s=plan.dt_s, counters=counters, madc=madc_out, spike_events=events)


def _on_steps(tensor: torch.Tensor, steps: int) -> torch.Tensor:
    """hxtorch's dense observables have ``ceil(runtime/dt) + 1`` rows on hardware (``to_dense``,
    detail/to_dense.cpp) and ``T`` in mock mode: the first ``steps`` rows, held at the last where short."""
    if tensor.shape[0] >= steps:
        return tensor[:steps]
    pad = tensor[-1:].expand(steps - tensor.shape[0], *tensor.shape[1:])
    return torch.cat([tensor, pad])


def madc_on_steps(raw: torch.Tensor, steps: int, dt_s: float, batch: int, clock_hz: float = 125e6) -> torch.Tensor:
    """hxtorch's raw MADC tensor ``[2, samples, B]`` (row 0: time in FPGA clock cycles, row 1: the 10-bit value;
    ``MADCHandle.to_raw``, detail/to_dense.cpp ``sparse_madc_to_dense_raw``) → ``[steps, B]``: at each step the
    last sample taken at or before it (the first sample before any)."""
    times_s = raw[0].double() / clock_hz
    values = raw[1].float()
    grid = torch.arange(steps, dtype=torch.float64) * dt_s
    out = torch.empty(steps, batch)
    for b in range(batch):
        index = torch.searchsorted(times_s[:, b].contiguous(), grid, right=True) - 1
        out[:, b] = values[index.clamp_min(0), b]
    return out

