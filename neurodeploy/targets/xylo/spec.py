"""The Xylo spec (``targets/xylo.yaml``): its sections, checked, and the numbers the mapper reads.

Every key of every section is checked on load (:data:`SCHEMA`: type and range, no unknown key), then
the invariants between them: the quantisation's thresholds within the threshold bits and its
readout target within the state bits. A refusal is a ``TargetSpecError`` naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...validation.rules import Anything, Fields, Invalid, Number, OneOf
from ..spec import ENVELOPE_KEYS, TargetSpec, load_spec, refuse_spec, spec_path

SECTIONS = ("geometry", "weights", "state", "spikes_per_step", "time", "quantisation")
_COUNT = Number(lo=1, integer=True)
_BITS = Number(lo=2, hi=32, integer=True)
SCHEMA = Fields(required={
    **{key: Anything() for key in ENVELOPE_KEYS},
    "geometry": Fields(required={"input_channels": _COUNT, "hidden_neurons": _COUNT, "output_neurons": _COUNT,
                                 "synapses_per_hidden_neuron": _COUNT, "synapses_per_output_neuron": _COUNT,
                                 "output_sources": OneOf(("hidden",))}),
    "weights": Fields(required={"bits": _BITS, "shift_max": Number(lo=0, hi=31, integer=True)}),
    "state": Fields(required={"bits": _BITS, "threshold_bits": _BITS, "dash_max": Number(lo=0, hi=31, integer=True),
                              "reset": Anything()}),
    "spikes_per_step": Fields(required={"input": _COUNT, "hidden": _COUNT, "output": _COUNT}),
    "time": Fields(required={"transmission_latency_steps": Number(lo=0, integer=True)}),
    "quantisation": Fields(required={"threshold_target": _COUNT, "threshold_max": _COUNT, "readout_target": _COUNT,
                                     "tau_warn_relative_error": Number(lo=0, hi=1, lo_open=True)}),
})


def check_consistency(raw: dict) -> None:
    """Thresholds within the threshold bits, the readout target within the state bits."""
    q = raw["quantisation"]
    threshold_max = 2 ** (raw["state"]["threshold_bits"] - 1) - 1
    if not q["threshold_target"] <= q["threshold_max"] <= threshold_max:
        raise Invalid("quantisation.threshold_max", f"= {q['threshold_max']} must lie in threshold_target "
                      f"({q['threshold_target']})..{threshold_max} (the threshold bits)", "lower it")
    state_max = 2 ** (raw["state"]["bits"] - 1) - 1
    if q["readout_target"] > state_max:
        raise Invalid("quantisation.readout_target", f"= {q['readout_target']} exceeds the state's {state_max}",
                      "lower it")


@dataclass(frozen=True)
class XyloSpec(TargetSpec):
    """Xylo's limits: neuron counts, weight and state bits, decay shifts, spikes per step."""

    @classmethod
    def from_spec(cls, spec: TargetSpec) -> XyloSpec:
        spec.require(SECTIONS)
        try:
            SCHEMA.check(spec.raw, "")
            if spec["state"]["reset"] != "subtract":
                raise Invalid("state.reset", f"= {spec['state']['reset']!r}: Xylo resets only by subtracting the "
                              "threshold", "set state.reset: subtract")
            check_consistency(dict(spec.raw))
        except Invalid as invalid:
            raise refuse_spec(spec, invalid) from None
        return cls(name=spec.name, description=spec.description, raw=spec.raw, path=spec.path)

    @property
    def weight_max(self) -> int:
        """The largest stored weight magnitude (symmetric, so that rounding treats both signs alike)."""
        return 2 ** (self.raw["weights"]["bits"] - 1) - 1

    @property
    def state_max(self) -> int:
        return 2 ** (self.raw["state"]["bits"] - 1) - 1

    @property
    def dash_max(self) -> int:
        return int(self.raw["state"]["dash_max"])


def load_xylo_spec(name_or_path: str | Path = "xylo") -> XyloSpec:
    """The Xylo spec by name or path, validated."""
    return XyloSpec.from_spec(load_spec(spec_path(name_or_path)))
