r"""Cell types of :mod:`neurodeploy.pynn`, named and parameterised as pynn_brainscales names them.

* :class:`HXNeuron`: hardware parameters of one neuron circuit, flattened as pynn_brainscales flattens
  ``lola.AtomicNeuron`` (``leak_v_leak``, ``leak_i_bias``, ``threshold_v_threshold``, ...). Values are 10-bit
  CapMem codes (0..1022) and, for ``refractory_period_refractory_time``, refractory clock cycles (125 MHz).
  A value equal to its default means "as calibrated": with ``setup(calibration=...)`` the circuit keeps the
  codes calibration found for it; any other value is written into every circuit of the population as it is,
  and the emulated chip realises it through its own transfer curves (so an uncalibrated value behaves as it
  would on a chip: differently on every circuit). Weights are integer synapse codes, 0..63.
* :class:`CalibHXNeuronCuba`: pynn_brainscales' calibrated current-based neuron: potentials in CADC units,
  times in hardware microseconds, the synaptic input strength as ``i_synin_gm_E/I`` and ``synapse_dac_bias``
  codes; weights are integer synapse codes, 0..63.
* :class:`IF_curr_exp`: PyNN's standard current-based LIF in its own units (ms, mV, nF, nA); the membrane is
  mapped affinely onto the chip's calibrated potentials and the weights are quantised as neurodeploy quantises
  a trained model's (:mod:`neurodeploy.targets.bss2.quantise`).
* :class:`SpikeSourceArray`: spike times (ms).

PyNN's other standard cell types (conductance-based, adaptive, alpha/delta synapses, Poisson sources) and
current sources exist so that scripts build; :func:`neurodeploy.pynn.run` refuses them naming the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyNN.parameters import Sequence
from pyNN.standardmodels import StandardCellType, build_translations, cells as std_cells, electrodes

from ..targets.bss2.analog import nominal_gain, nominal_potential_code, nominal_tau_code
from ..targets.bss2.spec import load_bss2_spec

__all__ = ["HXNeuron", "CalibHXNeuronCuba", "IF_curr_exp", "SpikeSourceArray", "IF_cond_exp", "IF_cond_alpha",
           "IF_cond_exp_gsfa_grr", "HH_cond_exp", "EIF_cond_alpha_isfa_ista", "EIF_cond_exp_isfa_ista", "IF_curr_alpha",
           "IF_curr_delta", "Izhikevich", "SpikeSourcePoisson", "SpikeSourceGamma", "SpikeSourcePoissonRefractory",
           "SpikeSourceInhGamma", "DCSource", "StepCurrentSource", "ACSource", "NoisyCurrentSource"]

_SPEC = load_bss2_spec()
_DEFAULTS = _SPEC["calibration"]  # the chip's default calibration targets (targets/bss2.yaml)

# HXNeuron field -> the chip's CapMem code it sets (targets/bss2/analog.py names).
HX_CODES = {
    "leak_v_leak": "v_leak", "reset_v_reset": "v_reset", "threshold_v_threshold": "v_threshold",
    "leak_i_bias": "i_bias_leak", "excitatory_input_i_bias_tau": "i_bias_syn_tau",
    "inhibitory_input_i_bias_tau": "i_bias_syn_tau", "excitatory_input_i_bias_gm": "i_bias_synin_gm",
    "inhibitory_input_i_bias_gm": "i_bias_synin_gm",
}
# Accepted so that pynn_brainscales scripts build, but not emulated (the mock's circuit has no such knob).
HX_NOT_EMULATED = ("membrane_capacitance_capacitance", "leak_enable_division", "leak_enable_multiplication",
                   "reset_i_bias", "reset_enable_multiplication", "excitatory_input_enable",
                   "inhibitory_input_enable", "refractory_period_reset_holdoff")


def _hx_defaults() -> dict[str, Any]:
    """The codes that give the default calibration targets on an average circuit (nominal curves)."""
    potential = lambda v: int(round(float(nominal_potential_code(np.asarray(v), _SPEC))))  # noqa: E731
    gain = float(_DEFAULTS["synaptic_gain_cadc_per_lsb"]) / float(nominal_gain(1.0, np.asarray(
        _SPEC["capmem"]["synapse_dac_bias"]), _SPEC))
    tau_mem = int(round(float(nominal_tau_code(np.asarray(_DEFAULTS["tau_mem_s"]), _SPEC, "tau_mem"))))
    tau_syn = int(round(float(nominal_tau_code(np.asarray(_DEFAULTS["tau_syn_s"]), _SPEC, "tau_syn"))))
    return {
        "leak_v_leak": potential(_DEFAULTS["v_leak_cadc"]), "reset_v_reset": potential(_DEFAULTS["v_reset_cadc"]),
        "threshold_v_threshold": potential(_DEFAULTS["v_threshold_cadc"]), "threshold_enable": True,
        "leak_i_bias": tau_mem, "excitatory_input_i_bias_tau": tau_syn, "inhibitory_input_i_bias_tau": tau_syn,
        "excitatory_input_i_bias_gm": int(round(gain)), "inhibitory_input_i_bias_gm": int(round(gain)),
        "refractory_period_refractory_time": int(round(_DEFAULTS["t_ref_s"] * _SPEC["refractory"]["clock_hz"])),
        "membrane_capacitance_capacitance": 63, "leak_enable_division": False, "leak_enable_multiplication": False,
        "reset_i_bias": 1000, "reset_enable_multiplication": False, "excitatory_input_enable": True,
        "inhibitory_input_enable": True, "refractory_period_reset_holdoff": 0,
    }


class HXNeuron(StandardCellType):
    """One BSS-2 neuron circuit by its hardware parameters (CapMem codes; see the module docstring)."""

    default_parameters = _hx_defaults()
    default_initial_values: dict = {}
    recordable = ["spikes", "v"]
    receptor_types = ("excitatory", "inhibitory")
    conductance_based = False
    injectable = False
    units = {"v": "dimensionless", **{name: "dimensionless" for name in default_parameters}}
    translations = build_translations(*[(name, name) for name in default_parameters])
    integer_weights = True


class CalibHXNeuronCuba(StandardCellType):
    """pynn_brainscales' calibrated CUBA neuron: potentials in CADC units, times in hardware µs, gm codes."""

    default_parameters = {
        "v_rest": 80.0, "v_reset": 70.0, "v_thresh": 125.0, "tau_m": 10.0, "tau_syn_E": 10.0, "tau_syn_I": 10.0,
        "cm": 63.0, "tau_refrac": 2.0, "i_synin_gm_E": 500.0, "i_synin_gm_I": 500.0, "synapse_dac_bias": 600.0,
    }
    default_initial_values: dict = {}
    recordable = ["spikes", "v"]
    receptor_types = ("excitatory", "inhibitory")
    conductance_based = False
    injectable = False
    units = {"v": "dimensionless", "v_rest": "dimensionless", "v_reset": "dimensionless",
             "v_thresh": "dimensionless", "tau_m": "us", "tau_syn_E": "us", "tau_syn_I": "us", "tau_refrac": "us",
             "cm": "dimensionless", "i_synin_gm_E": "dimensionless", "i_synin_gm_I": "dimensionless",
             "synapse_dac_bias": "dimensionless"}
    translations = build_translations(*[(name, name) for name in default_parameters])
    integer_weights = True


class IF_curr_exp(std_cells.IF_curr_exp):  # noqa: N801 (PyNN's name)
    __doc__ = std_cells.IF_curr_exp.__doc__
    translations = build_translations(*[(name, name) for name in std_cells.IF_curr_exp.default_parameters])
    integer_weights = False


class SpikeSourceArray(std_cells.SpikeSourceArray):
    __doc__ = std_cells.SpikeSourceArray.__doc__
    translations = build_translations(("spike_times", "spike_times"))
    default_parameters = {"spike_times": Sequence([])}


def _refused(base: Any, why: str, fix: str) -> type:
    """A PyNN standard cell type that builds (parameters, recording) and that run() refuses with ``why``/``fix``."""
    names = list(base.default_parameters)
    return type(base.__name__, (base,), {
        "__doc__": f"Not on the chip: {why}. {base.__doc__ or ''}",
        "translations": build_translations(*[(n, n) for n in names]), "refusal": (why, fix)})


_COND = ("conductance-based synaptic inputs (BSS-2's COBA mode) and adaptive cells are not emulated by the mock chip",
         "use IF_curr_exp, CalibHXNeuronCuba or HXNeuron")
IF_cond_exp = _refused(std_cells.IF_cond_exp, *_COND)
IF_cond_alpha = _refused(std_cells.IF_cond_alpha, *_COND)
IF_cond_exp_gsfa_grr = _refused(std_cells.IF_cond_exp_gsfa_grr, *_COND)
HH_cond_exp = _refused(std_cells.HH_cond_exp, "Hodgkin-Huxley dynamics are not the chip's LIF circuits",
                       "use IF_curr_exp, CalibHXNeuronCuba or HXNeuron")
EIF_cond_alpha_isfa_ista = _refused(std_cells.EIF_cond_alpha_isfa_ista, *_COND)
EIF_cond_exp_isfa_ista = _refused(std_cells.EIF_cond_exp_isfa_ista, *_COND)
IF_curr_alpha = _refused(std_cells.IF_curr_alpha, "alpha-shaped synaptic currents are not the chip's exponential "
                         "ones", "use IF_curr_exp")
IF_curr_delta = _refused(std_cells.IF_curr_delta, "delta synapses (voltage jumps) are not the chip's exponential "
                         "currents", "use IF_curr_exp with a short tau_syn_E/tau_syn_I")
Izhikevich = _refused(std_cells.Izhikevich, "Izhikevich dynamics are not the chip's LIF circuits",
                      "use IF_curr_exp, CalibHXNeuronCuba or HXNeuron")
SpikeSourcePoisson = _refused(std_cells.SpikeSourcePoisson, "random sources are not emulated",
                              "draw the spike times yourself (numpy) into a SpikeSourceArray")
SpikeSourceGamma = _refused(std_cells.SpikeSourceGamma, "random sources are not emulated",
                            "draw the spike times yourself (numpy) into a SpikeSourceArray")
SpikeSourcePoissonRefractory = _refused(std_cells.SpikeSourcePoissonRefractory, "random sources are not emulated",
                                        "draw the spike times yourself (numpy) into a SpikeSourceArray")
SpikeSourceInhGamma = _refused(std_cells.SpikeSourceInhGamma, "random sources are not emulated",
                               "draw the spike times yourself (numpy) into a SpikeSourceArray")


class _RefusedSource:
    """A current source: it may be built and injected; run() refuses it (the chip takes spikes only)."""

    refusal = ("current injection is not emulated (the chip takes spike input only)",
               "drive the neuron through a SpikeSourceArray and a Projection")

    def inject_into(self, cells: Any) -> None:
        from .simulator import state
        state.current_sources = getattr(state, "current_sources", []) + [self]

    def record(self) -> None:
        self.inject_into(None)  # run() then refuses it, as it refuses an injected one

    def _reset(self) -> None:
        pass


def _source(base: Any) -> type:
    names = list(base.default_parameters)
    return type(base.__name__, (_RefusedSource, base), {"translations": build_translations(*[(n, n) for n in names])})


def _checked_steps(self: Any, **parameters: Any) -> None:
    times = np.asarray(parameters.get("times", []), np.float64)
    if np.any(times < 0) or np.any(np.diff(times) <= 0):
        raise ValueError(f"step times {times.tolist()} must be non-negative and increasing")
    electrodes.StepCurrentSource.__init__(self, **parameters)


DCSource = _source(electrodes.DCSource)
StepCurrentSource = _source(electrodes.StepCurrentSource)
StepCurrentSource.__init__ = _checked_steps  # type: ignore[misc]
ACSource = _source(electrodes.ACSource)
NoisyCurrentSource = _source(electrodes.NoisyCurrentSource)

SUPPORTED = (HXNeuron, CalibHXNeuronCuba, IF_curr_exp)
