"""Synapse types: ``StaticSynapse`` runs; PyNN's plastic and short-term-plastic ones build and are refused at run().

Weights: for ``HXNeuron`` and ``CalibHXNeuronCuba`` targets integer synapse codes 0..63 (the sign is the
receptor's: ``receptor_type="inhibitory"`` inhibits whatever the weight's sign, as in pynn_brainscales); for
``IF_curr_exp`` nA, negative or positive on an inhibitory projection alike. Delays: 0 (pynn_brainscales'
convention) or one time step (PyNN's default ``min_delay``) both mean the chip's fixed routing latency of one
step; any other delay is refused at run().
"""

from __future__ import annotations

from typing import Any

from pyNN.standardmodels import build_translations, synapses as std

from .simulator import state

__all__ = ["StaticSynapse", "STDPMechanism", "TsodyksMarkramSynapse", "ElectricalSynapse", "SimpleStochasticSynapse",
           "StochasticTsodyksMarkramSynapse", "MultiQuantalSynapse", "AdditiveWeightDependence",
           "MultiplicativeWeightDependence", "AdditivePotentiationMultiplicativeDepression", "GutigWeightDependence",
           "SpikePairRule", "Vogels2011Rule"]


def _minimum_delay() -> float:
    return state.dt if state.min_delay == "auto" else float(state.min_delay)


class StaticSynapse(std.StaticSynapse):
    __doc__ = std.StaticSynapse.__doc__
    translations = build_translations(("weight", "weight"), ("delay", "delay"))

    def _get_minimum_delay(self) -> float:
        return _minimum_delay()


def _refused(base: Any, why: str, fix: str, **extra: object) -> type:
    stdp = base is std.STDPMechanism  # its parameters are its components'; its own are these three
    names = ["weight", "delay", "dendritic_delay_fraction"] if stdp else list(base.default_parameters)
    body: dict = {"refusal": (why, fix), "_get_minimum_delay": lambda self: _minimum_delay(), **extra}
    key = "base_translations" if stdp else "translations"
    body[key] = build_translations(*[(n, n) for n in names])
    return type(base.__name__, (base,), body)


_PLASTIC = ("synaptic plasticity runs on the chip's plasticity processor, which this emulation's PyNN front end "
            "does not program", "use StaticSynapse (train weights with `neurodeploy itl` or `train --stdp`)")
STDPMechanism = _refused(std.STDPMechanism, *_PLASTIC)
TsodyksMarkramSynapse = _refused(std.TsodyksMarkramSynapse, "short-term plasticity is not emulated",
                                 "use StaticSynapse")
ElectricalSynapse = _refused(std.ElectricalSynapse, "the chip has no gap junctions", "use StaticSynapse")
SimpleStochasticSynapse = _refused(std.SimpleStochasticSynapse, "stochastic synapses are not emulated",
                                   "use StaticSynapse")
StochasticTsodyksMarkramSynapse = _refused(std.StochasticTsodyksMarkramSynapse,
                                           "stochastic synapses are not emulated", "use StaticSynapse")
MultiQuantalSynapse = _refused(std.MultiQuantalSynapse, "stochastic synapses are not emulated", "use StaticSynapse")


def _component(base: Any) -> type:
    """An STDP weight or timing dependence: only for building an STDPMechanism (which run() refuses)."""
    names = list(base.default_parameters)
    return type(base.__name__, (base,), {"translations": build_translations(*[(n, n) for n in names])})


AdditiveWeightDependence = _component(std.AdditiveWeightDependence)
MultiplicativeWeightDependence = _component(std.MultiplicativeWeightDependence)
AdditivePotentiationMultiplicativeDepression = _component(std.AdditivePotentiationMultiplicativeDepression)
GutigWeightDependence = _component(std.GutigWeightDependence)
SpikePairRule = _component(std.SpikePairRule)
Vogels2011Rule = _component(std.Vogels2011Rule)
